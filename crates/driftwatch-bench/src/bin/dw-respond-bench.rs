//! dw-respond-bench: how fast a drifted exec is contained. A real `driftwatch run --playbook`
//! whose playbook isolates on binary drift; each trial drops and runs a new binary in a fresh
//! `--network none` container and measures, from the exec (the alert's kernel timestamp) and
//! from the moment the responder took the alert, until the isolation table is in place in the
//! container's network namespace (the `isolate` record's end, after the kernel acknowledged the
//! nf_tables netlink batch). Each trial's table is checked in the namespace with `nft list
//! tables`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{AgentCgroup, BenchAgent, Container};

#[derive(Parser)]
struct Args {
    /// The driftwatch binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    bin: PathBuf,
    /// Trials (one container each).
    #[arg(long, default_value_t = 40)]
    trials: usize,
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let playbook = dir.path().join("playbook.yaml");
    std::fs::write(
        &playbook,
        "playbooks:\n  - name: bench-isolate\n    match: {tags: [binary_drift], containers: ['dw-respond-bench-*']}\n    actions: [isolate]\n",
    )?;
    let log = dir.path().join("actions.jsonl");
    let cg = AgentCgroup::new_named("dw-respond-bench")?;
    let agent = BenchAgent::start(
        &args.bin,
        &cg,
        &[
            "--playbook",
            playbook.to_str().context("path")?,
            "--actions-log",
            log.to_str().context("path")?,
        ],
    )?;
    let mut from_exec = Vec::new();
    let mut from_queue = Vec::new();
    let mut nft_ms = Vec::new();
    for i in 0..args.trials {
        let name = format!("dw-respond-bench-{}-{i}", std::process::id());
        let c = Container::start(&["--name", &name])?;
        c.sh("mkdir -p /tmp/d && cp /bin/busybox /tmp/d/true")?;
        c.sh("/tmp/d/true")?;
        let start = Instant::now();
        let rec = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|r| r["container"]["id"] == c.0.as_str() && r["action"] == "isolate");
            if let Some(r) = found {
                break r;
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!("trial {i}: no isolate record within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if rec["result"] != "ok" {
            bail!("trial {i}: isolate did not succeed: {rec}");
        }
        let pid = driftwatch_bench::docker(&["inspect", "-f", "{{.State.Pid}}", &c.0])?;
        let tables = Command::new("nsenter")
            .args([
                &format!("--net=/proc/{pid}/ns/net"),
                "nft",
                "list",
                "tables",
            ])
            .output()?;
        if !String::from_utf8_lossy(&tables.stdout).contains("table inet driftwatch_isolate") {
            bail!("trial {i}: the table is not in the container's network namespace");
        }
        let end = rec["end_ns"].as_u64().context("end_ns")?;
        let start_ns = rec["start_ns"].as_u64().context("start_ns")?;
        let exec = rec["alert"]["time"]
            .as_str()
            .and_then(driftwatch_model::clock::parse_time_ns)
            .context("alert time")?;
        let received = rec["alert_received_ns"]
            .as_u64()
            .context("alert_received_ns")?;
        from_exec.push(end.saturating_sub(exec) as f64 / 1e6);
        from_queue.push(end.saturating_sub(received) as f64 / 1e6);
        nft_ms.push(end.saturating_sub(start_ns) as f64 / 1e6);
    }
    agent.stop()?;
    let show = |what: &str, v: &[f64]| {
        println!(
            "{what:<44} p50 {:7.2} ms   p99 {:7.2} ms   max {:7.2} ms",
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 1.0)
        );
    };
    println!(
        "isolation on binary drift, {} trials (one container each):",
        args.trials
    );
    show("exec (kernel time) -> isolated", &from_exec);
    show("alert taken by the responder -> isolated", &from_queue);
    show("the isolate action alone (resolve + netlink)", &nft_ms);
    Ok(())
}
