//! The Docker source against a fake engine on a temp unix socket, which the test takes away
//! and brings back (the real dockerd must not be stopped): the event stream reports the
//! outage, reconnects with backoff, replays what it missed without duplicates; calls during
//! the outage fail fast with one-line errors; a hung engine times out instead of blocking.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_model::ContainerId;
use driftwatch_runtime::{DockerConfig, DockerSource, EngineEvent, EngineSource, RuntimeError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

const ID: &str = "f8be0317314e5a0b9a4f3c1d2e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a";
const OTHER: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// How the fake answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A minimal Engine API: `/_ping`, `/version`, `/containers/json`, `/events` (chunked,
    /// fed by the test); everything else 404.
    Serve,
    /// Accepts connections and never answers.
    Hang,
}

/// A fake engine; `stop` closes the listener and every open connection (as a crashed daemon
/// would, leaving the socket file behind), `start` brings it back at the same path.
struct FakeEngine {
    path: PathBuf,
    task: Option<JoinHandle<()>>,
    events: broadcast::Sender<String>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeEngine {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            task: None,
            events: broadcast::channel(64).0,
            requests: Arc::default(),
        }
    }

    fn start(&mut self, mode: Mode) {
        let _ = std::fs::remove_file(&self.path); // stale socket of the "crashed" daemon
        let listener = UnixListener::bind(&self.path).unwrap();
        let events = self.events.clone();
        let requests = self.requests.clone();
        self.task = Some(tokio::spawn(async move {
            // Connections live in this JoinSet: aborting the task drops them all.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (events, requests) = (events.subscribe(), requests.clone());
                conns.spawn(serve(stream, mode, events, requests));
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    fn send(&self, action: &str, id: &str, time_nano: i64) {
        let ev = format!(
            r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"image":"x"}}}},"scope":"local","time":{},"timeNano":{time_nano}}}"#,
            time_nano / 1_000_000_000
        );
        self.events.send(ev).unwrap();
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests for the event stream have arrived.
    async fn wait_subscribed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self
            .requests()
            .iter()
            .filter(|r| r.contains("/events"))
            .count()
            < n
        {
            assert!(
                Instant::now() < deadline,
                "no /events request; saw {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(
    mut s: UnixStream,
    mode: Mode,
    mut events: broadcast::Receiver<String>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if mode == Mode::Hang {
        std::future::pending::<()>().await;
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap();
    let reply = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let response = if path.ends_with("/_ping") {
        reply("200 OK", "OK")
    } else if path.ends_with("/version") {
        reply(
            "200 OK",
            r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.99"}"#,
        )
    } else if path.ends_with("/containers/json") {
        reply("200 OK", "[]")
    } else if path.ends_with("/events") {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        while let Ok(ev) = events.recv().await {
            let line = format!("{ev}\n");
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if s.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
        return;
    } else {
        reply("404 Not Found", r#"{"message":"No such container"}"#)
    };
    let _ = s.write_all(response.as_bytes()).await;
}

fn source(path: &Path, timeout: Duration) -> DockerSource {
    DockerSource::new(DockerConfig {
        socket: path.to_path_buf(),
        timeout,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..DockerConfig::default()
    })
}

/// Polls the event stream continuously, as a consumer would (the stream only makes progress,
/// including resubscribing, while polled), and hands events over a channel.
fn forward(mut events: BoxStream<'static, EngineEvent>) -> mpsc::UnboundedReceiver<EngineEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next(events: &mut mpsc::UnboundedReceiver<EngineEvent>) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the stream never ends")
}

#[tokio::test]
async fn event_stream_survives_the_engine_going_away_and_coming_back() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("engine.sock");
    let mut fake = FakeEngine::new(&sock);
    fake.start(Mode::Serve);
    let src = source(&sock, Duration::from_millis(500));
    let id = ContainerId::new(ID).unwrap();

    let mut events = forward(src.events());
    fake.wait_subscribed(1).await;
    fake.send("create", ID, 1_000_000_000_100);
    fake.send("exec_create: sh", ID, 1_000_000_000_150); // not a lifecycle event: skipped
    fake.send("start", ID, 1_000_000_000_200);
    assert_eq!(next(&mut events).await, EngineEvent::Created(id.clone()));
    assert_eq!(next(&mut events).await, EngineEvent::Started(id.clone()));

    // The engine goes away: one Disconnected notice, however many retries follow.
    fake.stop().await;
    let t = Instant::now();
    match next(&mut events).await {
        EngineEvent::Disconnected { reason } => {
            assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "noticed after {:?}",
        t.elapsed()
    );

    // Calls during the outage fail fast and say why, in one line.
    let t = Instant::now();
    let e = src.inspect(&id).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("docker: cannot connect to {}: ", sock.display()))
            && msg.ends_with("(is dockerd running?)")
            && msg.contains("refused"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_millis(500));
    let e = src.list_running().await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");

    // Let it retry a few times with nothing to connect to, then come back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = fake.requests().len();
    fake.start(Mode::Serve);
    assert_eq!(next(&mut events).await, EngineEvent::Reconnected);
    fake.wait_subscribed(2).await;
    let resubscribe = fake.requests()[before..]
        .iter()
        .find(|r| r.contains("/events"))
        .cloned()
        .unwrap();
    assert!(
        resubscribe.contains("since=998.000000200"),
        "replay from 2 s before the last event seen (events come a little out of order): {resubscribe}"
    );

    // The engine replays what the subscriber already had (the same event): not passed on
    // twice.
    fake.send("create", ID, 1_000_000_000_100);
    fake.send("start", ID, 1_000_000_000_200);
    fake.send("die", ID, 1_000_000_000_300);
    fake.send("destroy", ID, 1_000_000_000_400);
    assert_eq!(next(&mut events).await, EngineEvent::Died(id.clone()));
    assert_eq!(next(&mut events).await, EngineEvent::Destroyed(id.clone()));
    // Another container's event stamped before the newest one seen, delivered after it
    // (dockerd does this under parallel churn): passed on.
    fake.send("destroy", OTHER, 1_000_000_000_350);
    assert_eq!(
        next(&mut events).await,
        EngineEvent::Destroyed(ContainerId::new(OTHER).unwrap())
    );

    // Calls work again.
    assert_eq!(src.list_running().await.unwrap(), vec![]);
    let e = src.inspect(&id).await.unwrap_err();
    assert!(matches!(e, RuntimeError::NotFound { .. }), "{e}");
    fake.stop().await;
}

#[tokio::test]
async fn stream_started_while_engine_is_absent_connects_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("late.sock");
    let src = source(&sock, Duration::from_millis(500));
    let mut events = forward(src.events());
    match next(&mut events).await {
        EngineEvent::Disconnected { reason } => {
            assert!(
                reason.contains("late.sock") && reason.contains("No such file"),
                "{reason}"
            )
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let mut fake = FakeEngine::new(&sock);
    fake.start(Mode::Serve);
    assert_eq!(next(&mut events).await, EngineEvent::Reconnected);
    fake.wait_subscribed(1).await;
    fake.send("create", ID, 5);
    assert_eq!(
        next(&mut events).await,
        EngineEvent::Created(ContainerId::new(ID).unwrap())
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_hung_engine_times_out_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hung.sock");
    let mut fake = FakeEngine::new(&sock);
    fake.start(Mode::Hang);
    let timeout = Duration::from_millis(300);
    let src = source(&sock, timeout);
    let id = ContainerId::new(ID).unwrap();

    for _ in 0..2 {
        let t = Instant::now();
        let e = src.inspect(&id).await.unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, RuntimeError::Timeout { .. }), "{e}");
        assert_eq!(e.to_string(), "docker: inspect timed out after 300 ms");
        assert!(took >= timeout && took < timeout * 3, "took {took:?}");
    }
    let t = Instant::now();
    assert!(src.list_running().await.unwrap_err().is_unavailable());
    assert!(t.elapsed() < timeout * 3);

    // The event stream reports the hung engine and keeps retrying.
    let mut events = forward(src.events());
    match next(&mut events).await {
        EngineEvent::Disconnected { reason } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    fake.stop().await;
}
