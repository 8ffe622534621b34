//! A real HTTP/1.1 receiver on 127.0.0.1 for the tests: records each request and answers as
//! its script says (a status, a `Retry-After`, or a hang until released).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug)]
pub enum ReceiverReply {
    Status(u16),
    RetryAfter(u16, u64),
    /// Answer 200 once [`HttpReceiver::release`] is called.
    Hang,
}

#[derive(Default)]
struct State {
    requests: Vec<ReceivedRequest>,
    script: VecDeque<ReceiverReply>,
    released: bool,
}

pub struct HttpReceiver {
    pub addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl HttpReceiver {
    /// Listens on a free loopback port.
    pub fn start(script: &[ReceiverReply]) -> HttpReceiver {
        HttpReceiver::start_on("127.0.0.1:0".parse().unwrap(), script)
    }

    pub fn start_on(addr: SocketAddr, script: &[ReceiverReply]) -> HttpReceiver {
        let listener = TcpListener::bind(addr).expect("binding the receiver");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((
            Mutex::new(State {
                script: script.iter().copied().collect(),
                ..State::default()
            }),
            Condvar::new(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || serve(conn, state));
                }
            });
        }
        HttpReceiver { addr, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.0.lock().unwrap().requests.clone()
    }

    /// Waits (up to 60 s) until `n` requests arrived.
    pub fn wait_requests(&self, n: usize) -> Vec<ReceivedRequest> {
        let start = Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} requests of {n} arrived: {r:?}",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn release(&self) {
        let (m, cv) = &*self.state;
        m.lock().unwrap().released = true;
        cv.notify_all();
    }

    /// Stops accepting (connections in progress finish); the port is free again.
    pub fn stop(self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: Arc<(Mutex<State>, Condvar)>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let (m, _) = &*state;
            let mut s = m.lock().unwrap();
            s.requests.push(ReceivedRequest {
                method,
                path,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            s.script.pop_front().unwrap_or(ReceiverReply::Status(200))
        };
        let head = match reply {
            ReceiverReply::Status(code) => format!("HTTP/1.1 {code} X\r\n"),
            ReceiverReply::RetryAfter(code, secs) => {
                format!("HTTP/1.1 {code} X\r\nRetry-After: {secs}\r\n")
            }
            ReceiverReply::Hang => {
                let (m, cv) = &*state;
                let mut s = m.lock().unwrap();
                while !s.released {
                    s = cv.wait(s).unwrap();
                }
                "HTTP/1.1 200 OK\r\n".to_string()
            }
        };
        let msg = format!("{head}Content-Length: 2\r\n\r\nok");
        if conn.write_all(msg.as_bytes()).is_err() {
            return;
        }
    }
}
