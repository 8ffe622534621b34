//! The outputs for real: an HTTP receiver on loopback, syslog over a unix datagram socket,
//! UDP and TCP, JSON lines files, a reload in the middle of deliveries.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use driftwatch_config as config;
use driftwatch_model::{Alert, Priority};
use driftwatch_outputs::{OutputStats, Outputs};
use driftwatch_testkit::{HttpReceiver, ReceivedRequest, ReceiverReply};
use serde_json::{Value, json};

/// A binary-drift alert with the fields the rules fill in.
fn binary_alert(n: u32) -> Alert {
    let fields: BTreeMap<String, Value> = [
        ("container.id", json!("0123456789ab")),
        ("container.name", json!("web-1")),
        ("container.image.repository", json!("nginx")),
        ("container.image.tag", json!("1.27")),
        ("container.image.digest", json!("sha256:abcd")),
        ("drift.path", json!(format!("/tmp/x{n}"))),
        ("drift.verdict", json!("added")),
        ("k8s.ns.name", json!("shop")),
        ("k8s.pod.name", json!("web-7d9f")),
        ("proc.pid", json!(4242)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Alert {
        time: "2026-11-28T12:00:00.123456789Z".into(),
        rule: "Drop and execute new binary in container".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "node-1".into(),
        output: format!(
            "12:00:00.123456789: Critical Executable not in the image executed (drift_path=/tmp/x{n})"
        ),
        // Sorted, as Falco writes them (a set): what is read back equals what was sent.
        tags: vec!["binary_drift".into(), "container".into(), "drift".into()],
        output_fields: fields,
    }
}

fn only(c: config::OutputsConfig) -> config::OutputsConfig {
    config::OutputsConfig {
        stdout: config::StdoutOutput {
            enabled: false,
            ..c.stdout
        },
        ..c
    }
}

fn http(url: String, retries: u32, queue_size: usize) -> config::HttpOutput {
    config::HttpOutput {
        url,
        retries,
        queue_size,
        timeout: Duration::from_secs(10),
        ..config::HttpOutput::default()
    }
}

fn http_outputs(h: config::HttpOutput) -> config::OutputsConfig {
    only(config::OutputsConfig {
        http: vec![h],
        ..config::OutputsConfig::default()
    })
}

fn stat(o: &Outputs, kind: &str) -> OutputStats {
    o.stats()
        .into_iter()
        .find(|s| s.kind.as_str() == kind)
        .unwrap_or_else(|| panic!("no {kind} output in {:?}", o.stats()))
}

/// Waits (up to 60 s) for the stats to satisfy `pred`.
fn wait_stats(o: &Outputs, kind: &str, pred: impl Fn(&OutputStats) -> bool) -> OutputStats {
    let start = Instant::now();
    loop {
        let s = stat(o, kind);
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stats stuck at {s:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn http_posts_the_falco_json_alert_with_the_configured_headers() {
    let rx = HttpReceiver::start(&[]);
    let mut h = http(rx.url("/falco"), 3, 16);
    h.headers = [
        ("Authorization".to_string(), "Bearer s3cret".to_string()),
        ("X-Cluster".to_string(), "prod-eu".to_string()),
    ]
    .into();
    let out = Outputs::start(&http_outputs(h), "node-1").unwrap();
    let alert = binary_alert(1);
    out.emit(&alert);
    let req = rx.wait_requests(1).remove(0);
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/falco");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(req.header("x-cluster"), Some("prod-eu"));
    // Exactly Falco's alert object: what Falcosidekick's FalcoPayload reads.
    let v: Value = serde_json::from_str(&req.body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time"
        ]
    );
    assert_eq!(v["priority"], "Critical");
    assert_eq!(v["output_fields"]["container.id"], "0123456789ab");
    let back: Alert = serde_json::from_str(&req.body).unwrap();
    assert_eq!(back, alert);
    let s = wait_stats(&out, "http", |s| s.sent == 1);
    assert_eq!((s.queued, s.dropped, s.failed, s.retries), (1, 0, 0, 0));
    assert_eq!(s.name, format!("http:{}", rx.url("/falco")));
}

#[test]
fn http_5xx_and_429_are_retried_and_delivered_once() {
    let rx = HttpReceiver::start(&[
        ReceiverReply::Status(500),
        ReceiverReply::RetryAfter(429, 1),
        ReceiverReply::Status(200),
    ]);
    let out = Outputs::start(&http_outputs(http(rx.url("/"), 3, 16)), "h").unwrap();
    out.emit(&binary_alert(1));
    let s = wait_stats(&out, "http", |s| s.sent == 1);
    assert_eq!((s.sent, s.failed, s.retries, s.dropped), (1, 0, 2, 0));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3, "one attempt per reply: {reqs:?}");
    assert!(reqs.iter().all(|r| r.body == reqs[0].body));
    // Delivered once: shut down, nothing more arrives.
    assert!(out.shutdown(Duration::from_secs(5)));
    assert_eq!(rx.requests().len(), 3);
}

#[test]
fn http_4xx_is_not_retried_and_the_output_goes_on() {
    let rx = HttpReceiver::start(&[ReceiverReply::Status(400), ReceiverReply::Status(200)]);
    let out = Outputs::start(&http_outputs(http(rx.url("/"), 5, 16)), "h").unwrap();
    out.emit(&binary_alert(1));
    out.emit(&binary_alert(2));
    let s = wait_stats(&out, "http", |s| s.sent + s.failed == 2);
    assert_eq!((s.sent, s.failed, s.retries), (1, 1, 0));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].body.contains("/tmp/x1") && reqs[1].body.contains("/tmp/x2"));
}

#[test]
fn http_exhausted_retries_count_as_failed() {
    let rx = HttpReceiver::start(&[ReceiverReply::Status(503), ReceiverReply::Status(503)]);
    let out = Outputs::start(&http_outputs(http(rx.url("/"), 1, 16)), "h").unwrap();
    out.emit(&binary_alert(1));
    let s = wait_stats(&out, "http", |s| s.failed == 1);
    assert_eq!((s.sent, s.retries), (0, 1));
    assert_eq!(rx.requests().len(), 2);
}

#[test]
fn hanging_receiver_never_blocks_emit_full_queue_drops_and_counts() {
    let rx = HttpReceiver::start(&[ReceiverReply::Hang]);
    let out = Outputs::start(&http_outputs(http(rx.url("/"), 3, 4)), "h").unwrap();
    out.emit(&binary_alert(0));
    // The worker is now stuck in that request.
    rx.wait_requests(1);
    for i in 1..=20 {
        out.emit(&binary_alert(i));
    }
    let s = stat(&out, "http");
    assert_eq!((s.queued, s.dropped, s.depth, s.capacity), (5, 16, 4, 4));
    rx.release();
    let s = wait_stats(&out, "http", |s| s.sent == 5);
    assert_eq!((s.failed, s.depth), (0, 0));
    let bodies: Vec<String> = rx.wait_requests(5).into_iter().map(|r| r.body).collect();
    for (i, b) in bodies.iter().enumerate() {
        assert!(b.contains(&format!("/tmp/x{i}\"")), "in order: {b}");
    }
}

#[test]
fn receiver_down_then_back_resumes_delivery() {
    // A port with nobody listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = http(format!("http://{addr}/"), 30, 4);
    let out = Outputs::start(&http_outputs(h), "h").unwrap();
    out.emit(&binary_alert(0));
    wait_stats(&out, "http", |s| s.retries >= 1);
    for i in 1..=10 {
        out.emit(&binary_alert(i));
    }
    let s = stat(&out, "http");
    assert_eq!((s.queued, s.dropped, s.sent), (5, 6, 0));
    let rx = HttpReceiver::start_on(addr, &[]);
    let s = wait_stats(&out, "http", |s| s.sent == 5);
    assert_eq!(s.failed, 0);
    assert_eq!(rx.wait_requests(5).len(), 5);
}

const SYSLOG_EXPECTED_SD: &str = "[driftwatch@32473 rule=\"Drop \\\"x\\\" [a\\] \\\\ b\" priority=\"Critical\" container_id=\"0123456789ab\" container_name=\"web-1\" image=\"nginx:1.27\" k8s_ns=\"shop\" k8s_pod=\"web-7d9f\"]";

/// An alert whose rule needs SD escaping and whose output holds a newline and a NUL.
fn syslog_alert() -> Alert {
    let mut a = binary_alert(1);
    a.rule = "Drop \"x\" [a] \\ b".into();
    a.output = "line one\nline two\0end".into();
    a
}

fn syslog_expected() -> String {
    format!(
        "<130>1 2026-11-28T12:00:00.123456Z node-1 dwtest {} binary_drift {SYSLOG_EXPECTED_SD} line one\\nline two\\u{{0}}end",
        std::process::id()
    )
}

fn syslog_config(transport: config::SyslogTransport, address: String) -> config::OutputsConfig {
    only(config::OutputsConfig {
        syslog: config::SyslogOutput {
            enabled: true,
            transport,
            address,
            facility: "local0".into(),
            app_name: "dwtest".into(),
            queue_size: 16,
        },
        ..config::OutputsConfig::default()
    })
}

#[test]
fn syslog_over_a_unix_datagram_socket_is_rfc5424_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let out = Outputs::start(
        &syslog_config(config::SyslogTransport::Unix, path.display().to_string()),
        "h",
    )
    .unwrap();
    out.emit(&syslog_alert());
    let mut buf = vec![0; 65536];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), syslog_expected());
    wait_stats(&out, "syslog", |s| s.sent == 1);
}

#[test]
fn syslog_to_a_missing_socket_fails_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody");
    let out = Outputs::start(
        &syslog_config(config::SyslogTransport::Unix, path.display().to_string()),
        "h",
    )
    .unwrap();
    out.emit(&syslog_alert());
    let s = wait_stats(&out, "syslog", |s| s.failed == 1);
    assert_eq!((s.sent, s.retries), (0, 3));
}

#[test]
fn syslog_over_udp() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let out = Outputs::start(
        &syslog_config(
            config::SyslogTransport::Udp,
            sock.local_addr().unwrap().to_string(),
        ),
        "h",
    )
    .unwrap();
    out.emit(&syslog_alert());
    let mut buf = vec![0; 65536];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), syslog_expected());
}

/// Reads one RFC 6587 octet-counted frame.
fn read_frame(r: &mut impl Read) -> String {
    let mut len = String::new();
    let mut b = [0u8; 1];
    loop {
        r.read_exact(&mut b).unwrap();
        if b[0] == b' ' {
            break;
        }
        assert!(b[0].is_ascii_digit(), "frame length: {len}{}", b[0] as char);
        len.push(b[0] as char);
    }
    let mut msg = vec![0; len.parse().unwrap()];
    r.read_exact(&mut msg).unwrap();
    String::from_utf8(msg).unwrap()
}

#[test]
fn syslog_over_tcp_with_octet_counting_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Outputs::start(
        &syslog_config(
            config::SyslogTransport::Tcp,
            listener.local_addr().unwrap().to_string(),
        ),
        "h",
    )
    .unwrap();
    out.emit(&syslog_alert());
    out.emit(&syslog_alert());
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_frame(&mut conn), syslog_expected());
    assert_eq!(read_frame(&mut conn), syslog_expected());
    // The receiver restarts: the output connects again.
    drop(conn);
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut conn = loop {
        out.emit(&syslog_alert());
        if let Ok((c, _)) = listener.accept() {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no reconnect");
        std::thread::sleep(Duration::from_millis(100));
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_frame(&mut conn), syslog_expected());
}

#[test]
fn json_file_and_defender_files_get_one_line_per_alert() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("log/alerts.json");
    let defender = dir.path().join("log/defender.json");
    let c = only(config::OutputsConfig {
        json_file: config::JsonFileOutput {
            enabled: true,
            path: json.clone(),
            ..config::JsonFileOutput::default()
        },
        defender: config::DefenderOutput {
            enabled: true,
            path: defender.clone(),
            ..config::DefenderOutput::default()
        },
        ..config::OutputsConfig::default()
    });
    let out = Outputs::start(&c, "h").unwrap();
    let alerts: Vec<Alert> = (0..50).map(binary_alert).collect();
    for a in &alerts {
        out.emit(a);
    }
    assert!(out.shutdown(Duration::from_secs(10)));
    // The final counts stay readable after shutdown.
    let s = stat(&out, "json_file");
    assert_eq!((s.queued, s.sent, s.depth), (50, 50, 0));
    assert_eq!(stat(&out, "defender").sent, 50);
    let lines: Vec<Alert> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, alerts);
    let docs: Vec<Value> = std::fs::read_to_string(&defender)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 50);
    assert_eq!(docs[7]["extendedProperties"]["drift.path"], "/tmp/x7");
}

#[test]
fn start_errors_name_the_output_and_its_path_or_url() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let path = blocker.join("alerts.json");
    let c = only(config::OutputsConfig {
        json_file: config::JsonFileOutput {
            enabled: true,
            path: path.clone(),
            ..config::JsonFileOutput::default()
        },
        ..config::OutputsConfig::default()
    });
    let e = Outputs::start(&c, "h").err().unwrap().to_string();
    assert!(
        e.contains("json_file") && e.contains(&path.display().to_string()),
        "{e}"
    );

    let e = Outputs::start(&http_outputs(http("ftp://x/".into(), 0, 1)), "h")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ftp://x/") && e.contains("http"), "{e}");

    let mut h = http("http://127.0.0.1:1/".into(), 0, 1);
    h.headers.insert("Bad Header".into(), "v".into());
    let e = Outputs::start(&http_outputs(h), "h")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("Bad Header"), "{e}");
}

#[test]
fn reconfigure_keeps_unchanged_outputs_drains_changed_ones_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("alerts.json");
    let rx = HttpReceiver::start(&[ReceiverReply::Hang]);
    let json_cfg = config::JsonFileOutput {
        enabled: true,
        path: json.clone(),
        ..config::JsonFileOutput::default()
    };
    let mut before = only(config::OutputsConfig {
        json_file: json_cfg.clone(),
        http: vec![http(rx.url("/"), 3, 100)],
        ..config::OutputsConfig::default()
    });
    let out = Outputs::start(&before, "h").unwrap();
    out.emit(&binary_alert(0));
    rx.wait_requests(1);
    for i in 1..10 {
        out.emit(&binary_alert(i));
    }
    // The HTTP output changes (a header), json_file does not; the old HTTP worker still
    // holds 9 alerts and one in flight.
    before.http[0]
        .headers
        .insert("X-Generation".into(), "2".into());
    out.reconfigure(&before).unwrap();
    for i in 10..20 {
        out.emit(&binary_alert(i));
    }
    rx.release();
    let reqs = rx.wait_requests(20);
    let mut seen: Vec<u32> = reqs
        .iter()
        .map(|r| {
            let a: Alert = serde_json::from_str(&r.body).unwrap();
            a.output_fields["drift.path"].as_str().unwrap()[6..]
                .parse()
                .unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    // Only the new generation's requests carry the header; they are the last ten alerts.
    let new: Vec<&ReceivedRequest> = reqs
        .iter()
        .filter(|r| r.header("x-generation").is_some())
        .collect();
    assert_eq!(new.len(), 10);
    // Counters went on across the reload.
    let s = wait_stats(&out, "http", |s| s.sent == 20);
    assert_eq!((s.queued, s.dropped, s.failed), (20, 0, 0));
    let j = wait_stats(&out, "json_file", |s| s.sent == 20);
    assert_eq!(j.queued, 20);

    // An invalid configuration changes nothing.
    let mut bad = before.clone();
    bad.syslog.enabled = true;
    bad.syslog.facility = "nope".into();
    let e = out.reconfigure(&bad).unwrap_err().to_string();
    assert!(e.contains("syslog") && e.contains("nope"), "{e}");
    assert_eq!(out.stats().len(), 2);

    // Removing an output: what it had is delivered, then it is gone.
    let removed = config::OutputsConfig {
        http: vec![],
        ..before
    };
    out.emit(&binary_alert(20));
    out.reconfigure(&removed).unwrap();
    assert_eq!(rx.wait_requests(21).len(), 21);
    assert_eq!(out.stats().len(), 1);
    assert!(out.shutdown(Duration::from_secs(10)));
    assert_eq!(std::fs::read_to_string(&json).unwrap().lines().count(), 21);
}

#[test]
fn defender_document_for_binary_drift() {
    let d = driftwatch_outputs::defender_document(&binary_alert(1), "fallback");
    assert_eq!(d["alertType"], "K8S.NODE_ImageBinaryDrift");
    assert_eq!(d["severity"], "High");
    assert_eq!(
        d["description"],
        "Binary executed that was not part of the original container image"
    );
    assert_eq!(
        d["remediationSteps"][0],
        "Investigate the binary origin and purpose"
    );
    assert_eq!(d["remediationSteps"][3], "Enable readOnlyRootFilesystem");
    assert_eq!(d["timeGenerated"], "2026-11-28T12:00:00.123456789Z");
    assert_eq!(d["compromisedEntity"], "shop/web-7d9f");
    assert_eq!(
        d["alertDisplayName"],
        "Drop and execute new binary in container"
    );
    let ids = d["resourceIdentifiers"].as_array().unwrap();
    assert_eq!(
        ids[0],
        json!({"type": "Container", "containerId": "0123456789ab", "containerName": "web-1"})
    );
    assert_eq!(
        ids[1],
        json!({"type": "ContainerImage", "image": "nginx:1.27", "imageDigest": "sha256:abcd"})
    );
    assert_eq!(
        ids[2],
        json!({"type": "KubernetesPod", "namespace": "shop", "podName": "web-7d9f"})
    );
    assert_eq!(ids[3], json!({"type": "Host", "hostName": "node-1"}));
    let p = &d["extendedProperties"];
    assert_eq!(p["drift.path"], "/tmp/x1");
    assert_eq!(p["proc.pid"], 4242);
    assert_eq!(p["rule"], "Drop and execute new binary in container");
    assert_eq!(p["tags"], "binary_drift,container,drift");
}

#[test]
fn defender_document_for_file_drift_outside_kubernetes() {
    let mut a = binary_alert(1);
    a.rule = "Persistence file written in container".into();
    a.priority = Priority::Warning;
    a.tags = vec!["container".into(), "drift".into(), "file_drift".into()];
    a.output_fields.remove("k8s.ns.name");
    a.output_fields.insert("k8s.pod.name".into(), json!("<NA>"));
    a.hostname = String::new();
    let d = driftwatch_outputs::defender_document(&a, "fallback-host");
    assert_eq!(d["alertType"], "K8S.NODE_ImageFileDrift");
    assert_eq!(d["severity"], "Medium");
    assert_eq!(
        d["description"],
        "File in the container changed from the original container image"
    );
    assert!(
        d["remediationSteps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("driftwatch diff"))
    );
    assert_eq!(d["compromisedEntity"], "web-1");
    let ids = d["resourceIdentifiers"].as_array().unwrap();
    assert_eq!(ids.len(), 3, "no pod: {ids:?}");
    assert_eq!(ids[2], json!({"type": "Host", "hostName": "fallback-host"}));

    // The kind also comes from drift.kind when the tags do not say it.
    a.tags = vec!["container".into()];
    a.output_fields
        .insert("drift.kind".into(), json!("package"));
    let d = driftwatch_outputs::defender_document(&a, "h");
    assert_eq!(d["alertType"], "K8S.NODE_ImagePackageDrift");
}

#[test]
fn http_defender_format_posts_the_document() {
    let rx = HttpReceiver::start(&[]);
    let mut h = http(rx.url("/defender"), 0, 4);
    h.format = config::HttpFormat::Defender;
    let out = Outputs::start(&http_outputs(h), "h").unwrap();
    out.emit(&binary_alert(3));
    let req = rx.wait_requests(1).remove(0);
    assert_eq!(req.header("content-type"), Some("application/json"));
    let v: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(v["alertType"], "K8S.NODE_ImageBinaryDrift");
    assert_eq!(v["extendedProperties"]["drift.path"], "/tmp/x3");
}
