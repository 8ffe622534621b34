//! dw-outputs-bench: what the outputs cost the detection path. (1) `emit` per alert with
//! every output enabled (stdout, JSON file, syslog over UDP, Defender file, HTTP to a fast
//! receiver); (2) a burst of alerts within one second to a slow HTTP receiver: the time
//! `emit` spent in all (the sensor thread's cost), drops, and what was delivered.
//! Alerts on stdout are part of the measure: run with `>/dev/null`; numbers go to stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use clap::Parser;
use driftwatch_config as config;
use driftwatch_model::{Alert, Priority};
use driftwatch_outputs::Outputs;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Alerts emitted back to back for the per-alert cost.
    #[arg(long, default_value_t = 10_000)]
    alerts: u32,
    /// Alerts of the burst, spread over one second.
    #[arg(long, default_value_t = 10_000)]
    burst: u32,
    /// How long the slow receiver takes per request, in ms.
    #[arg(long, default_value_t = 50)]
    slow_ms: u64,
}

fn alert(n: u32) -> Alert {
    Alert {
        time: Alert::format_time(1_796_000_000_000_000_000 + u64::from(n)),
        rule: "Drop and execute new binary in container".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "bench".into(),
        output: format!(
            "Executable not in the image executed (verdict=added drift_path=/tmp/x{n} proc_exepath=/tmp/x{n} container_id=0123456789ab image=nginx:1.27)"
        ),
        tags: vec!["container".into(), "drift".into(), "binary_drift".into()],
        output_fields: [
            ("container.id", json!("0123456789ab")),
            ("container.name", json!("web-1")),
            ("container.image.repository", json!("nginx")),
            ("container.image.tag", json!("1.27")),
            ("drift.path", json!(format!("/tmp/x{n}"))),
            ("drift.verdict", json!("added")),
            ("proc.pid", json!(4242 + n)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

/// An HTTP/1.1 receiver on loopback answering 200 after `delay` per request.
fn receiver(delay: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(conn, delay));
        }
    });
    addr
}

fn serve(mut conn: TcpStream, delay: Duration) {
    let mut r = BufReader::new(conn.try_clone().expect("clone"));
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        std::thread::sleep(delay);
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// CPU time of the calling thread: what `emit` itself costs, apart from the time the thread
/// waited for a core while the outputs' threads it woke ran (2 cores).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let syslog = UdpSocket::bind("127.0.0.1:0")?;
    let syslog_addr = syslog.local_addr()?;
    std::thread::spawn(move || {
        let mut buf = vec![0; 65536];
        while syslog.recv(&mut buf).is_ok() {}
    });

    // (1) emit with every output enabled.
    let fast = receiver(Duration::ZERO);
    let all = config::OutputsConfig {
        stdout: config::StdoutOutput {
            enabled: true,
            color: config::ColorSetting::Never,
            ..config::StdoutOutput::default()
        },
        json_file: config::JsonFileOutput {
            enabled: true,
            path: dir.path().join("alerts.json"),
            ..config::JsonFileOutput::default()
        },
        syslog: config::SyslogOutput {
            enabled: true,
            transport: config::SyslogTransport::Udp,
            address: syslog_addr.to_string(),
            ..config::SyslogOutput::default()
        },
        http: vec![config::HttpOutput {
            url: format!("http://{fast}/"),
            ..config::HttpOutput::default()
        }],
        defender: config::DefenderOutput {
            enabled: true,
            path: dir.path().join("defender.json"),
            ..config::DefenderOutput::default()
        },
    };
    let outputs = Outputs::start(&all, "bench")?;
    let alerts: Vec<Alert> = (0..args.alerts).map(alert).collect();
    let t = Instant::now();
    let cpu = thread_cpu();
    for a in &alerts {
        outputs.emit(a);
    }
    let emit_cpu = thread_cpu() - cpu;
    let emit_total = t.elapsed();
    let flushed = outputs.shutdown(Duration::from_secs(60));
    let drain = t.elapsed();
    eprintln!(
        "emit, 5 outputs: {} alerts back to back: {:.0} ns per alert wall, {:.0} ns CPU of the emitting thread; all delivered {:.2} s after the first (flushed: {flushed})",
        args.alerts,
        emit_total.as_nanos() as f64 / f64::from(args.alerts),
        emit_cpu.as_nanos() as f64 / f64::from(args.alerts),
        drain.as_secs_f64()
    );
    for s in outputs.stats() {
        eprintln!("  {s:?}");
    }
    drop(outputs);

    // (2) a burst to a slow receiver.
    let slow = receiver(Duration::from_millis(args.slow_ms));
    let only_http = config::OutputsConfig {
        stdout: config::StdoutOutput {
            enabled: false,
            ..config::StdoutOutput::default()
        },
        http: vec![config::HttpOutput {
            url: format!("http://{slow}/"),
            ..config::HttpOutput::default()
        }],
        ..config::OutputsConfig::default()
    };
    let outputs = Outputs::start(&only_http, "bench")?;
    let alerts: Vec<Alert> = (0..args.burst).map(alert).collect();
    let period = Duration::from_secs(1) / args.burst.max(1);
    let start = Instant::now();
    let mut blocked = Duration::ZERO;
    let mut worst = Duration::ZERO;

    for (i, a) in alerts.iter().enumerate() {
        let due = start + period * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        outputs.emit(a);
        let d = t.elapsed();
        blocked += d;
        worst = worst.max(d);
    }
    let burst_took = start.elapsed();
    let s = outputs.stats().remove(0);
    eprintln!(
        "burst: {} alerts in {:.2} s to a receiver taking {} ms per request: emit took {:.3} ms in all (worst single emit {} µs); queued {}, dropped (queue full) {}, delivered by the end of the burst {}",
        args.burst,
        burst_took.as_secs_f64(),
        args.slow_ms,
        blocked.as_secs_f64() * 1e3,
        worst.as_micros(),
        s.queued,
        s.dropped,
        s.sent
    );
    std::thread::sleep(Duration::from_secs(5));
    let s = outputs.stats().remove(0);
    eprintln!(
        "  5 s later: delivered {}, waiting {} of {}",
        s.sent, s.depth, s.capacity
    );
    let flushed = outputs.shutdown(Duration::from_secs(2));
    let s = outputs.stats().remove(0);
    eprintln!(
        "  after a 2 s shutdown: flushed in time: {flushed}; delivered {}, given up {}",
        s.sent, s.failed
    );
    Ok(())
}
