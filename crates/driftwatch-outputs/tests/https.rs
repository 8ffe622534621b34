//! The HTTP output over TLS: a rustls receiver on 127.0.0.1 with a test CA's certificate
//! (driftwatch-kube's fixtures). Trusted through `ca_file`, the alert arrives; with the public
//! roots only, the handshake fails and the alert counts as failed after the retries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use driftwatch_config as config;
use driftwatch_model::{Alert, Priority};
use driftwatch_outputs::Outputs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../driftwatch-kube/tests/fixtures"
);

/// Serves HTTPS; sends each request body it reads (empty when the handshake failed).
fn https_receiver() -> (String, mpsc::Receiver<String>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_pem = std::fs::read(format!("{FIXTURES}/server.pem")).unwrap();
    let key_pem = std::fs::read(format!("{FIXTURES}/server-key.pem")).unwrap();
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&key_pem).unwrap();
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(server.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut len = 0;
            let mut ok = false;
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => {
                        ok = true;
                        break;
                    }
                    Ok(_) => {
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
            }
            let mut body = vec![0; len];
            if ok && reader.read_exact(&mut body).is_ok() {
                drop(reader);
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            } else {
                let _ = tx.send(String::new());
            }
        }
    });
    (url, rx)
}

fn alert() -> Alert {
    Alert {
        time: Alert::format_time(1_796_000_000_000_000_000),
        rule: "Drop and execute new binary in container".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "node-1".into(),
        output: "Executable not in the image executed".into(),
        tags: vec!["binary_drift".into()],
        output_fields: Default::default(),
    }
}

fn outputs(url: String, ca_file: Option<std::path::PathBuf>) -> config::OutputsConfig {
    config::OutputsConfig {
        stdout: config::StdoutOutput {
            enabled: false,
            ..config::StdoutOutput::default()
        },
        http: vec![config::HttpOutput {
            url,
            ca_file,
            retries: 1,
            ..config::HttpOutput::default()
        }],
        ..config::OutputsConfig::default()
    }
}

#[test]
fn https_with_the_receivers_ca_delivers() {
    let (url, bodies) = https_receiver();
    let ca = std::path::PathBuf::from(format!("{FIXTURES}/ca.pem"));
    let out = Outputs::start(&outputs(url, Some(ca)), "h").unwrap();
    out.emit(&alert());
    let body = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
    let back: Alert = serde_json::from_str(&body).unwrap();
    assert_eq!(back, alert());
}

#[test]
fn https_with_an_unknown_ca_fails_after_retries() {
    let (url, bodies) = https_receiver();
    let out = Outputs::start(&outputs(url, None), "h").unwrap();
    out.emit(&alert());
    // Both attempts reach the receiver and fail the handshake: nothing is read.
    for _ in 0..2 {
        assert_eq!(bodies.recv_timeout(Duration::from_secs(30)).unwrap(), "");
    }
    let start = Instant::now();
    loop {
        let s = out.stats().remove(0);
        if s.failed == 1 {
            assert_eq!((s.sent, s.retries), (0, 1));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let e = Outputs::start(
        &outputs("https://127.0.0.1:1/".into(), Some(missing.clone())),
        "h",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = Outputs::start(
        &outputs("https://127.0.0.1:1/".into(), Some(junk.clone())),
        "h",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains(&junk.display().to_string()) && e.contains("PEM"),
        "{e}"
    );
}
