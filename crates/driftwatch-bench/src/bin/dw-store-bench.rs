//! `dw-store-bench`: the alert store under a burst and a big database.
//!
//! 1. Burst: `--rate` alerts/s (default 10,000) for `--secs` seconds into `record_alert`,
//!    paced in 1 ms steps as a detection thread would call it: the time of each call
//!    (p50/p99/max), alerts dropped, and the writer's sustained insert rate (written / time
//!    until everything was written).
//! 2. Throughput: `--max-alerts` queued at once (queue as big), then flushed: inserts/s.
//! 3. Query: a database of `--db-alerts` (default 1M) alerts over 24 h, 500 containers; the
//!    latency of `driftwatch alerts --container X --since 1h` (by name and by id prefix) on a
//!    read-only connection, median and max of 20 runs.
//!
//! `cargo build --release -p driftwatch-bench && target/release/dw-store-bench`

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use driftwatch_model::{Alert, Priority};
use driftwatch_store::{AlertQuery, AlertReader, AlertSource, Store};

#[derive(Parser)]
struct Args {
    /// Alerts per second in the burst.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds the burst lasts.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Alerts queued at once for the throughput figure.
    #[arg(long, default_value_t = 200_000)]
    max_alerts: usize,
    /// Alerts in the query database.
    #[arg(long, default_value_t = 1_000_000)]
    db_alerts: usize,
    /// Where the databases go (a temporary directory under it).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
}

/// Now, as the store's columns keep times (i64 ns).
fn now_store_ns() -> i64 {
    i64::try_from(driftwatch_model::clock::now_ns()).unwrap_or(i64::MAX)
}

/// An alert of the size and shape the agent emits for binary drift.
fn alert(time_ns: i64, n: usize, containers: usize) -> Alert {
    let c = n % containers;
    let id = format!("{:012x}{:052x}", 0xc0ffee000000u64 + c as u64, n);
    let name = format!("app-{c}");
    let fields = [
        ("container.id", serde_json::json!(&id[..12])),
        ("container.full_id", serde_json::json!(id)),
        ("container.name", serde_json::json!(name)),
        (
            "container.image.repository",
            serde_json::json!("registry.example/app"),
        ),
        ("container.image.tag", serde_json::json!("1.4.2")),
        (
            "container.image.digest",
            serde_json::json!(
                "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            ),
        ),
        ("proc.pid", serde_json::json!(4000 + n % 1000)),
        ("proc.ppid", serde_json::json!(1)),
        ("proc.name", serde_json::json!("ls")),
        ("proc.exepath", serde_json::json!("/tmp/ls")),
        ("proc.cmdline", serde_json::json!("ls -la /")),
        (
            "proc.pcmdline",
            serde_json::json!("sh -c cp /bin/busybox /tmp/ls && /tmp/ls"),
        ),
        ("user.uid", serde_json::json!(0)),
        ("drift.path", serde_json::json!("/tmp/ls")),
        ("drift.verdict", serde_json::json!("added")),
        ("drift.subject", serde_json::json!("binary")),
        (
            "drift.sha256",
            serde_json::json!("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),
        ),
        ("evt.type", serde_json::json!("execve")),
    ];
    Alert {
        time: Alert::format_time(time_ns as u64),
        rule: "Drop and execute new binary in container".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "bench-host".into(),
        output: format!(
            "Executing binary not part of base image (proc.exe=/tmp/ls proc.pid={} container={name} ({}) image=registry.example/app:1.4.2)",
            4000 + n % 1000,
            &id[..12]
        ),
        tags: vec![
            "container".into(),
            "drift".into(),
            "binary_drift".into(),
            "mitre_execution".into(),
        ],
        output_fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn burst(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(&driftwatch_config::StoreConfig {
        path: dir.join("burst.db"),
        ..Default::default()
    })?;
    let total = (args.rate * args.secs) as usize;
    let alerts: Vec<Alert> = (0..total).map(|n| alert(now_store_ns(), n, 50)).collect();
    let per_ms = (args.rate / 1000).max(1) as usize;
    let mut calls = Vec::with_capacity(total);
    let start = Instant::now();
    for (i, chunk) in alerts.chunks(per_ms).enumerate() {
        let due = start + Duration::from_millis(i as u64);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        for a in chunk {
            let t = Instant::now();
            store.record_alert(a);
            calls.push(t.elapsed().as_nanos() as u64);
        }
    }
    let sent = start.elapsed();
    let max_depth = store.snapshot().queue_depth;
    store.flush();
    let done = start.elapsed();
    calls.sort_unstable();
    let s = store.snapshot();
    println!(
        "burst: {total} alerts at {}/s over {:.2} s: record_alert p50 {} ns, p99 {} ns, max {} us; dropped {}; queue depth at the end {max_depth}",
        args.rate,
        sent.as_secs_f64(),
        quantile(&calls, 0.5),
        quantile(&calls, 0.99),
        calls.last().copied().unwrap_or(0) / 1000,
        s.dropped
    );
    println!(
        "burst: written {} in {:.2} s ({:.0}/s sustained, all written {:.0} ms after the last call); db {} MiB",
        s.written,
        done.as_secs_f64(),
        s.written as f64 / done.as_secs_f64(),
        (done - sent).as_secs_f64() * 1000.0,
        s.db_bytes / (1024 * 1024)
    );
    Ok(())
}

fn throughput(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(&driftwatch_config::StoreConfig {
        path: dir.join("max.db"),
        queue_size: args.max_alerts,
        ..Default::default()
    })?;
    let alerts: Vec<Alert> = (0..args.max_alerts)
        .map(|n| alert(now_store_ns(), n, 50))
        .collect();
    let start = Instant::now();
    for a in &alerts {
        store.record_alert(a);
    }
    let queued = start.elapsed();
    store.flush();
    let done = start.elapsed();
    let s = store.snapshot();
    println!(
        "throughput: {} alerts queued in {:.0} ms, written in {:.2} s: {:.0} inserts/s (dropped {})",
        args.max_alerts,
        queued.as_secs_f64() * 1000.0,
        done.as_secs_f64(),
        s.written as f64 / done.as_secs_f64(),
        s.dropped
    );
    Ok(())
}

fn query(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let path = dir.join("big.db");
    let containers = 500;
    {
        let store = Store::open(&driftwatch_config::StoreConfig {
            path: path.clone(),
            queue_size: 100_000,
            max_bytes: 64 * 1024 * 1024 * 1024,
            ..Default::default()
        })?;
        let now = now_store_ns();
        let span = 24 * 3600 * 1_000_000_000i64;
        let start = Instant::now();
        for n in 0..args.db_alerts {
            let t = now - span + span / args.db_alerts as i64 * n as i64;
            let a = alert(t, n, containers);
            while store.snapshot().queue_depth >= 90_000 {
                std::thread::sleep(Duration::from_millis(5));
            }
            store.record_alert(&a);
        }
        store.flush();
        let s = store.snapshot();
        println!(
            "query db: {} alerts written in {:.1} s, {} MiB (dropped {})",
            s.written,
            start.elapsed().as_secs_f64(),
            s.db_bytes / (1024 * 1024),
            store.stats().dropped.load(Ordering::Relaxed)
        );
    }
    let reader = AlertReader::open(&path)?;
    let since = u64::try_from(now_store_ns() - 3600 * 1_000_000_000)?;
    for (what, container) in [
        ("name", "app-123".to_string()),
        ("id prefix", format!("{:012x}", 0xc0ffee000000u64 + 123)),
    ] {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let got = reader.query_alerts(&AlertQuery {
                since_ns: Some(since),
                container: Some(container.clone()),
                ..Default::default()
            })?;
            times.push(t.elapsed().as_micros() as u64);
            n = got.len();
        }
        times.sort_unstable();
        println!(
            "query --container ({what}) --since 1h on {} alerts: {n} alerts, median {} us, max {} us",
            args.db_alerts,
            quantile(&times, 0.5),
            times.last().copied().unwrap_or(0)
        );
    }
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        reader.query_alerts(&AlertQuery::default())?;
        times.push(t.elapsed().as_micros() as u64);
    }
    times.sort_unstable();
    println!(
        "query newest 100 (no filter): median {} us, max {} us",
        quantile(&times, 0.5),
        times.last().copied().unwrap_or(0)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir_in(&args.dir)?;
    burst(&args, dir.path())?;
    throughput(&args, dir.path())?;
    query(&args, dir.path())?;
    Ok(())
}
