//! dw-api-bench: the HTTP API under load. 100 concurrent keep-alive clients on loopback ask
//! `/api/v1/alerts?limit=100`, then `/metrics`, for a fixed time each; prints throughput and
//! p50/p99/max latency. Against a running agent (`--addr 127.0.0.1:7878`, with `--token`
//! when it needs one), or by default against an in-process server whose ring holds
//! `--alerts` alerts shaped like the agent's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use driftwatch_api::{
    AgentView, AlertRing, ApiError, ApiServer, ApiServerConfig, ContainerDetail, ContainerSummary,
    Health, ManualAction, MetricsWriter, RuleSummary,
};
use driftwatch_model::{Alert, Priority};

#[derive(Parser)]
struct Args {
    /// A running API to measure (default: an in-process server).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Bearer token for --addr.
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Seconds per endpoint.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Alerts in the in-process ring.
    #[arg(long, default_value_t = 10_000)]
    alerts: usize,
}

/// The in-process server's agent side: no containers, a few metric families.
struct Quiet;

impl AgentView for Quiet {
    fn containers(&self) -> Vec<ContainerSummary> {
        Vec::new()
    }
    fn container(&self, c: &str) -> Result<ContainerDetail, ApiError> {
        Err(ApiError::not_found(format!("container {c}: none here")))
    }
    fn diff(&self, c: &str, _: usize) -> Result<serde_json::Value, ApiError> {
        Err(ApiError::not_found(format!("container {c}: none here")))
    }
    fn rules(&self) -> Vec<RuleSummary> {
        Vec::new()
    }
    fn actions(&self, _: Option<&str>, _: usize) -> Vec<serde_json::Value> {
        Vec::new()
    }
    fn act(&self, c: &str, _: ManualAction) -> Result<serde_json::Value, ApiError> {
        Err(ApiError::not_found(format!("container {c}: none here")))
    }
    fn metrics(&self, out: &mut MetricsWriter) {
        for i in 0..20 {
            out.counter1(&format!("driftwatch_bench_{i}_total"), "Filler.", i);
        }
        out.histogram(
            "driftwatch_bench_seconds",
            "Filler.",
            &[(0.001, 1), (0.01, 2), (0.1, 3)],
            false,
            0.5,
            6,
        );
    }
    fn health(&self) -> Health {
        Health::default()
    }
}

fn sample_alert(i: usize) -> Alert {
    let mut f = std::collections::BTreeMap::new();
    f.insert(
        "container.id".to_string(),
        serde_json::json!(format!("{:012x}", i % 50)),
    );
    f.insert(
        "container.name".to_string(),
        serde_json::json!(format!("web-{}", i % 50)),
    );
    f.insert("proc.pid".to_string(), serde_json::json!(1000 + i));
    f.insert(
        "proc.exepath".to_string(),
        serde_json::json!(format!("/tmp/x{i}/true")),
    );
    f.insert("drift.verdict".to_string(), serde_json::json!("added"));
    Alert {
        time: Alert::format_time(i as u64 * 1_000_000),
        rule: format!("rule {}", i % 12),
        priority: if i.is_multiple_of(3) {
            Priority::Critical
        } else {
            Priority::Notice
        },
        source: "syscall".into(),
        hostname: "bench".into(),
        output: format!("Executable not in the image executed (proc_exepath=/tmp/x{i}/true ...)"),
        tags: vec!["binary_drift".into(), "container".into()],
        output_fields: f.into_iter().collect(),
    }
}

/// One keep-alive GET; the latency.
fn get(r: &mut BufReader<TcpStream>, req: &[u8]) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    r.get_mut().write_all(req)?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("answer: {line}");
    }
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(t0.elapsed())
}

fn load(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    clients: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    let req: Arc<[u8]> = req.into_bytes().into();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let req = req.clone();
            std::thread::spawn(move || -> anyhow::Result<Vec<u32>> {
                let s = TcpStream::connect(addr).context("connecting")?;
                s.set_nodelay(true)?;
                let mut r = BufReader::new(s);
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let d = get(&mut r, &req)?;
                    lat.push(d.as_micros() as u32);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let lat = t
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        all.extend(lat);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let q = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    println!(
        "{path}: {} requests in {elapsed:.1} s by {clients} clients: {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut _server = None;
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let ring = Arc::new(AlertRing::new(args.alerts.max(1)));
            for i in 0..args.alerts {
                ring.push(&sample_alert(i));
            }
            let s = ApiServer::start(
                ApiServerConfig {
                    listen: "127.0.0.1:0".parse()?,
                    token: None,
                    token_for_reads: false,
                    ui: true,
                    metrics_listen: None,
                },
                Arc::new(Quiet),
                ring.clone(),
                ring,
            )?;
            let a = s.local_addr();
            println!(
                "in-process API server on {a}, {} alerts in its ring",
                args.alerts
            );
            _server = Some(s);
            a
        }
    };
    for path in ["/api/v1/alerts?limit=100", "/metrics"] {
        load(addr, path, args.token.as_deref(), args.clients, args.secs)?;
    }
    Ok(())
}
