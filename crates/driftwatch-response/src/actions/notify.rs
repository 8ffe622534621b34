//! `notify`: an HTTP POST of the Falco JSON alert and the actions taken so far to a webhook
//! (Falcosidekick, a chat bridge, a SOAR), with a timeout. Redirects are never followed (a
//! 3xx is a failure naming where it pointed), so an alert never goes to a host the playbook
//! did not name. Plain `http://` only: there is no TLS client in the agent; point it at a
//! local forwarder (Falcosidekick on localhost) for HTTPS endpoints.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::webhook_url::WebhookUrl;

/// POSTs `body` (JSON) and returns the response's status line when it is 2xx.
pub fn post(url: &str, body: &[u8], timeout: Duration) -> Result<String, String> {
    let u = WebhookUrl::parse(url)?;
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: resolving {}: {e}", u.host))?
        .collect();
    let mut last = format!("{url}: {} has no address", u.host);
    let mut stream = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{url}: connecting to {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    s.set_write_timeout(Some(left)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let host_header = if u.host.contains(':') {
        format!("[{}]:{}", u.host, u.port)
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: driftwatch/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        u.path,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("{url}: sending: {e}"))?;
    // The status line and headers are enough; a body is not read.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if Instant::now() >= deadline
                    || e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(format!("{url}: no answer within {timeout:?}"));
            }
            Err(e) => return Err(format!("{url}: reading the answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let status_line = text.lines().next().unwrap_or_default().trim().to_string();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer: {status_line:?}"))?;
    match code {
        200..=299 => Ok(status_line),
        300..=399 => {
            let location = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("location")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            Err(format!(
                "{url}: answered {status_line} to {location:?}; redirects are not followed"
            ))
        }
        _ => Err(format!("{url}: answered {status_line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection with `answer`, returning what was received.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if got.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            c.write_all(answer.as_bytes()).unwrap();
            got
        });
        (url, h)
    }

    #[test]
    fn posts_json_and_accepts_2xx() {
        let (url, h) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let status = post(&url, br#"{"a":1}"#, Duration::from_secs(5)).unwrap();
        assert_eq!(status, "HTTP/1.1 204 No Content");
        let got = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(got.starts_with("POST /hook HTTP/1.1\r\n"), "{got}");
        assert!(got.contains("Content-Type: application/json\r\n"), "{got}");
        assert!(got.ends_with("\r\n\r\n{\"a\":1}"), "{got}");
    }

    #[test]
    fn redirects_are_not_followed() {
        let (url, h) =
            serve_once("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://evil.example/\r\n\r\n");
        let e = post(&url, b"{}", Duration::from_secs(5)).unwrap_err();
        assert!(
            e.contains("redirects are not followed") && e.contains("evil.example"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn errors_and_timeouts_are_failures() {
        let (url, h) = serve_once("HTTP/1.1 500 Internal Server Error\r\n\r\n");
        assert!(
            post(&url, b"{}", Duration::from_secs(5))
                .unwrap_err()
                .contains("500")
        );
        h.join().unwrap();
        // A listener that never answers.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let t = Instant::now();
        let e = post(&url, b"{}", Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(l);
    }
}
