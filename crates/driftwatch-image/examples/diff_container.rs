//! Diffs a Docker container against its image and prints timing, throughput and peak memory:
//! `cargo run --release --example diff_container -- CONTAINER [--docker] [--json]`.
//! With `--docker`, also times `docker diff` on the same container for the ratio; with
//! `--judge PATH...` (last), times the exec-time verdict on those paths.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use driftwatch_image::{ChangeKind, Differ};
use driftwatch_model::OverlayLayers;

fn layers(id: &str) -> OverlayLayers {
    let out = Command::new("/usr/bin/docker")
        .args(["inspect", "-f", "{{json .GraphDriver.Data}}", id])
        .output()
        .expect("run docker inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("no {k}"))
            .to_string()
    };
    OverlayLayers {
        upper: PathBuf::from(s("UpperDir")),
        lowers: s("LowerDir").split(':').map(PathBuf::from).collect(),
        merged: None,
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the example's own /proc/self/status"
)]
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let id = args
        .first()
        .expect("usage: diff_container CONTAINER [--docker] [--json]");
    let layers = layers(id);
    let progress = |s: &driftwatch_image::DiffStats| {
        eprint!(
            "\r{} entries, {} changes, {} MB hashed",
            s.entries,
            s.changes,
            s.bytes_hashed >> 20
        );
    };
    let t = Instant::now();
    let mut counts = std::collections::BTreeMap::new();
    let d = Differ::new(&layers)
        .progress(&progress)
        .for_each(&|f| {
            // Streamed: nothing kept but the counts.
            let _ = f;
        })
        .expect("diff");
    let ours = t.elapsed();
    let streaming_rss = peak_rss_kib();
    eprintln!();
    let full = Differ::new(&layers).run().expect("diff");
    for f in &full.files {
        *counts.entry(f.change).or_insert(0u64) += 1;
    }
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string(&full).expect("JSON"));
    }
    let s = d.stats;
    let secs = ours.as_secs_f64();
    println!(
        "driftwatch: {:.3}s, {} entries ({:.0}/s), {} files hashed, {:.1} MB hashed ({:.0} MB/s), peak RSS {} MiB streaming, {} MiB after collecting",
        secs,
        s.entries,
        s.entries as f64 / secs,
        s.files_hashed,
        s.bytes_hashed as f64 / 1e6,
        s.bytes_hashed as f64 / 1e6 / secs,
        streaming_rss / 1024,
        peak_rss_kib() / 1024
    );
    let by: Vec<String> = [
        ChangeKind::Added,
        ChangeKind::Deleted,
        ChangeKind::Modified,
        ChangeKind::Metadata,
        ChangeKind::Unchanged,
    ]
    .iter()
    .map(|k| format!("{} {}", k.as_str(), counts.get(k).copied().unwrap_or(0)))
    .collect();
    println!(
        "changes: {}; packages: {}",
        by.join(", "),
        full.packages.len()
    );
    if let Some(i) = args.iter().position(|a| a == "--judge") {
        // Latency of the exec-time verdict, warm hash cache.
        let judge = driftwatch_image::Judge::new();
        for path in &args[i + 1..] {
            let first = Instant::now();
            let j = judge.judge(&layers, path).expect("judge");
            let cold = first.elapsed();
            let n = 10_000;
            let t = Instant::now();
            for _ in 0..n {
                judge.judge(&layers, path).expect("judge");
            }
            println!(
                "judge {path}: {} (first call {:.1} µs, then {:.1} µs a call)",
                j.verdict,
                cold.as_secs_f64() * 1e6,
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
    }
    if args.iter().any(|a| a == "--docker") {
        let t = Instant::now();
        let out = Command::new("/usr/bin/docker")
            .args(["diff", id])
            .output()
            .expect("docker diff");
        let docker = t.elapsed();
        let lines = out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        println!(
            "docker diff: {:.3}s, {} lines; ratio driftwatch/docker = {:.2}",
            docker.as_secs_f64(),
            lines,
            secs / docker.as_secs_f64()
        );
    }
}
