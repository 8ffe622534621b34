//! `dw-diff-bench`: `driftwatch diff` against `docker diff` on one container whose writable
//! layer holds many files (some large), measured in the same run: wall time of each (median
//! of alternating rounds, and the ratio), files per second, MB/s hashed, and the peak RSS of
//! the `driftwatch diff` process (getrusage of the child).
//!
//! Run as root with dockerd up, the test images built and a release build:
//! `cargo build --release -p driftwatch -p driftwatch-bench && target/release/dw-diff-bench`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_bench::{BUSYBOX, Container, DOCKER, docker, median};

#[derive(Parser)]
struct Args {
    /// The driftwatch binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/driftwatch")]
    driftwatch: PathBuf,
    /// Files in the container's writable layer, large ones included.
    #[arg(long, default_value_t = 50_000)]
    files: u64,
    /// How many of them are large.
    #[arg(long, default_value_t = 16)]
    large: u64,
    /// Size of each large file, MiB.
    #[arg(long, default_value_t = 16)]
    large_mib: u64,
    /// Alternating driftwatch/docker rounds (medians are reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Drop the page cache before every measured run (cold reads for both tools).
    #[arg(long)]
    cold: bool,
    /// Pass --no-hash-added to driftwatch diff (files also in the image are still hashed).
    #[arg(long)]
    no_hash_added: bool,
    /// Keep the container afterwards (its id is printed).
    #[arg(long)]
    keep: bool,
}

/// One measured child process.
struct Run {
    wall: Duration,
    max_rss_kib: u64,
    stdout: Vec<u8>,
    status: i32,
}

/// Spawns `argv`, reads its stdout, and waits with `wait4` for its resource usage.
fn measure(argv: &[&str]) -> anyhow::Result<Run> {
    let start = Instant::now();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning {}", argv[0]))?;
    let mut out = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid out-pointers; std's Child is not
    // waited on afterwards.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if r < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let wall = start.elapsed();
    let stdout = reader.join().unwrap_or_default();
    Ok(Run {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
        stdout,
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    })
}

fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3\n");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.driftwatch.exists() {
        bail!(
            "{} not found: cargo build --release -p driftwatch (or pass --driftwatch)",
            args.driftwatch.display()
        );
    }
    let small = args.files.saturating_sub(args.large);
    let id = docker(&["run", "-d", "--network", "none", BUSYBOX, "sleep", "86400"])?;
    let container = Container(id.clone());
    // Small files in 1000-file directories, sizes from a few bytes to ~8 KiB; large
    // random files; plus copy-ups of image files (touched, appended, chmod'ed) so both
    // sides are hashed.
    let script = format!(
        r#"set -e
n={small}; d=0; i=0
head -c 8192 /dev/urandom > /tmp/seed
while [ $i -lt $n ]; do
  if [ $((i % 1000)) -eq 0 ]; then d=$((i / 1000)); mkdir -p /data/d$d; cd /data/d$d; fi
  if [ $((i % 10)) -eq 0 ]; then head -c $(( (i * 37) % 8192 )) /tmp/seed > f$i; else echo "$i" > f$i; fi
  i=$((i + 1))
done
mkdir -p /big; j=0
while [ $j -lt {large} ]; do dd if=/dev/urandom of=/big/b$j bs=1M count={mib} 2>/dev/null; j=$((j + 1)); done
rm /tmp/seed
touch /bin/busybox; echo x >> /etc/passwd; chmod 4755 /bin/ping 2>/dev/null || true
"#,
        large = args.large,
        mib = args.large_mib,
    );
    let t = Instant::now();
    docker(&["exec", &id, "sh", "-c", &script])?;
    eprintln!(
        "filled {} with {} small + {} x {} MiB files in {:.1}s",
        &id[..12],
        small,
        args.large,
        args.large_mib,
        t.elapsed().as_secs_f64()
    );
    let dw = args.driftwatch.to_string_lossy().to_string();
    let mut dw_argv = vec![dw.as_str(), "diff", "--json", id.as_str()];
    if args.no_hash_added {
        dw_argv.push("--no-hash-added");
    }
    let docker_argv = [DOCKER, "diff", id.as_str()];
    // A warm-up of each, so the first measured round is not the only one reading the disk.
    if !args.cold {
        measure(&dw_argv)?;
        measure(&docker_argv)?;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut peak_rss = 0u64;
    let mut last_json = Vec::new();
    let mut docker_lines = 0usize;
    for round in 0..args.rounds {
        // Alternate which goes first, so neither always gets the warmer cache.
        for first_ours in [round % 2 == 0, round % 2 != 0] {
            if args.cold {
                drop_caches();
            }
            if first_ours {
                let r = measure(&dw_argv)?;
                if r.status != 1 {
                    bail!("driftwatch diff exited {} (expected 1: drift)", r.status);
                }
                peak_rss = peak_rss.max(r.max_rss_kib);
                ours.push(r.wall);
                last_json = r.stdout;
            } else {
                let r = measure(&docker_argv)?;
                if r.status != 0 {
                    bail!("docker diff exited {}", r.status);
                }
                docker_lines = r
                    .stdout
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
                theirs.push(r.wall);
            }
        }
    }
    let report: serde_json::Value =
        serde_json::from_slice(&last_json).context("driftwatch diff --json output")?;
    let stats = &report["stats"];
    let entries = stats["entries"].as_u64().unwrap_or(0);
    let hashed_bytes = stats["bytes_hashed"].as_u64().unwrap_or(0);
    let hashed_files = stats["files_hashed"].as_u64().unwrap_or(0);
    let docker_view = report["files"]
        .as_array()
        .map(|f| f.iter().filter(|x| !x["docker"].is_null()).count())
        .unwrap_or(0);
    let (o, d) = (median(&ours), median(&theirs));
    let secs = o.as_secs_f64();
    println!(
        "container {}: {} files in the writable layer ({} small, {} x {} MiB), {} rounds{}{}",
        &id[..12],
        args.files,
        small,
        args.large,
        args.large_mib,
        args.rounds,
        if args.cold {
            ", page cache dropped before each run"
        } else {
            ", warm page cache"
        },
        if args.no_hash_added {
            ", --no-hash-added"
        } else {
            ""
        }
    );
    println!(
        "docker diff:     {:.3} s median, {} lines",
        d.as_secs_f64(),
        docker_lines
    );
    println!(
        "driftwatch diff: {:.3} s median, {} entries, {} docker-view paths (agree: {}), {} files hashed",
        secs,
        entries,
        docker_view,
        docker_view == docker_lines,
        hashed_files
    );
    println!(
        "ratio driftwatch/docker = {:.2}; {:.0} files/s; {:.0} MB/s hashed ({:.1} MB); peak RSS {:.1} MiB (--json, whole report held)",
        secs / d.as_secs_f64(),
        entries as f64 / secs,
        hashed_bytes as f64 / 1e6 / secs,
        hashed_bytes as f64 / 1e6,
        peak_rss as f64 / 1024.0
    );
    if args.keep {
        println!("kept container {id}");
        std::mem::forget(container);
    }
    Ok(())
}
