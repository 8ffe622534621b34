//! `driftwatch health` against real sockets: healthy, unhealthy, nobody listening, and the
//! bearer token sent when asked.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// Serves one request with `answer`; the request text comes back on the channel.
fn serve_once(answer: &'static str) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(answer.as_bytes()).unwrap();
        let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
    });
    (addr, rx)
}

fn health(args: &[&str]) -> (i32, String) {
    let out = Command::new(DRIFTWATCH)
        .arg("health")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_200_is_healthy_and_the_path_is_asked() {
    let (addr, req) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let (code, out) = health(&["--address", &addr]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy"), "{out}");
    let req = req.recv().unwrap();
    assert!(req.starts_with("GET /healthz HTTP/1.1\r\n"), "{req}");
    assert!(!req.contains("Authorization"), "{req}");
}

#[test]
fn a_503_is_unhealthy_with_the_body() {
    let (addr, _req) = serve_once(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\n\r\nsensor not attached",
    );
    let (code, out) = health(&["--address", &addr, "--path", "/readyz"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("answered 503") && out.contains("sensor not attached"),
        "{out}"
    );
    assert!(out.contains("/readyz"), "{out}");
}

#[test]
fn nobody_listening_is_unhealthy_naming_the_address() {
    // Bind then drop: a port on loopback with no listener.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, out) = health(&["--address", &addr, "--timeout", "1"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&addr) && out.contains("connecting"), "{out}");
}

#[test]
fn the_token_file_becomes_a_bearer_header() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\nignored second line\n").unwrap();
    let (addr, req) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (code, out) = health(&["--address", &addr, "--token-file", token.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let req = req.recv().unwrap();
    assert!(req.contains("Authorization: Bearer s3cret\r\n"), "{req}");
    // A missing token file is an error naming it (exit 1 from main).
    let (code, out) = health(&["--address", &addr, "--token-file", "/nonexistent/token"]);
    assert_eq!(code, 1);
    assert!(out.contains("/nonexistent/token"), "{out}");
}
