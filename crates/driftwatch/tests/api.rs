//! The HTTP API, metrics, health and web UI of a real `driftwatch run` (real kernel, real
//! containers, real sockets), and the UI in headless Chromium after its scripts ran.

mod browser;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::{Value, json};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);
const DRIFT_RULE: &str = "Drop and execute new binary in container";
/// A file name that is markup: the UI must show it as text and never run it.
const XSS: &str = "<img src=x onerror=window.__xss=1>";

fn name(test: &str) -> String {
    format!("dwapi-{test}-{}", std::process::id())
}

/// One HTTP/1.1 exchange (`Connection: close`): status, headers (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connecting to the API on port {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn get(port: u16, path: &str) -> Reply {
    http(port, "GET", path, &[], "")
}

/// A POSTed action as the UI sends it, with the agent's API token.
fn act(port: u16, token: &str, container: &str, action: &str) -> Reply {
    http(
        port,
        "POST",
        &format!("/api/v1/containers/{container}/{action}"),
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
            ("X-Driftwatch-Request", "1"),
            ("Origin", &format!("http://127.0.0.1:{port}")),
        ],
        r#"{"confirm": true}"#,
    )
}

/// `name{labels}` → value, from a Prometheus exposition (every line must be valid).
fn metrics(port: u16) -> Vec<(String, f64)> {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    let mut out = Vec::new();
    for line in r.body.lines() {
        driftwatch_api::metrics::check_line(line)
            .unwrap_or_else(|e| panic!("invalid exposition line: {e}"));
        if line.starts_with('#') {
            continue;
        }
        let (series, v) = line.rsplit_once(' ').unwrap();
        out.push((series.to_string(), v.parse().unwrap()));
    }
    out
}

fn metric(all: &[(String, f64)], series: &str) -> f64 {
    all.iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no metric {series}"))
}

/// The agent with its API on a free loopback port, its actions log in a tempdir.
struct Served {
    _agent: AgentProcess,
    port: u16,
    dir: tempfile::TempDir,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.path().join("actions.jsonl");
        let baseline = dir.path().join("baseline.json");
        let mut args = vec![
            "--api-listen",
            &listen,
            "--actions-log",
            log.to_str().unwrap(),
            "--baseline-file",
            baseline.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let agent = AgentProcess::start(DRIFTWATCH, &args);
        Served {
            _agent: agent,
            port,
            dir,
        }
    }

    /// The agent's API token.
    fn token(&self) -> String {
        self._agent.api_token()
    }

    /// Waits for an alert about `container` from the API.
    fn wait_alert(&self, container: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = get(
                self.port,
                &format!("/api/v1/alerts?limit=1000&container={container}"),
            );
            assert_eq!(r.status, 200, "{}", r.body);
            if let Some(a) = r.json()["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| pred(a))
            {
                return a.clone();
            }
            assert!(
                start.elapsed() < WAIT,
                "no such alert about {container} from the API: {}",
                r.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts/ui")
}

#[test]
fn health_metrics_containers_alerts_diff_and_isolation_through_the_api() {
    if !ready() || !require_tools(&["nft", "nsenter"]) {
        return;
    }
    let s = Served::start(&[]);
    let port = s.port;
    let n = name("flow");
    let c = TestContainer::httpd(&n);

    let h = get(port, "/healthz");
    assert_eq!(h.status, 200, "{}", h.body);
    let hj = h.json();
    assert_eq!(hj["healthy"], true, "{hj}");
    assert_eq!(hj["components"]["exec_sensor"]["status"], "ok", "{hj}");
    assert_eq!(hj["components"]["engines"]["status"], "ok", "{hj}");
    // Security headers on every answer.
    assert!(h.header("content-security-policy").is_some_and(
        |c| c.contains("frame-ancestors 'none'")
            && c.contains("script-src 'self'")
            && !c.contains("unsafe-inline")
    ));
    assert_eq!(h.header("x-content-type-options"), Some("nosniff"));

    // The container, with its engine, image and enforcement mode.
    let start = Instant::now();
    let listed = loop {
        let r = get(port, "/api/v1/containers");
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(x) = r.json()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n.as_str())
        {
            break x.clone();
        }
        assert!(start.elapsed() < WAIT, "{n} never listed: {}", r.body);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(listed["id"], c.id.as_str(), "{listed}");
    assert_eq!(listed["short_id"], c.short(), "{listed}");
    assert_eq!(listed["image"], BUSYBOX, "{listed}");
    assert_eq!(listed["engine"], "docker", "{listed}");
    assert_eq!(listed["enforcement"], "detect", "{listed}");
    assert_eq!(listed["running"], true, "{listed}");

    let before = metrics(port);
    let exec_before = metric(&before, "driftwatch_events_total{sensor=\"exec\"}");
    let alerts_before = metric(&before, "driftwatch_alerts_total");
    assert!(metric(&before, "driftwatch_containers_watched") >= 1.0);
    assert!(metric(&before, "process_resident_memory_bytes") > 0.0);

    drop_and_run(&c, "x");
    let a = s.wait_alert(&n, |a| a["rule"] == DRIFT_RULE);
    assert_eq!(a["output_fields"]["proc.exepath"], "/tmp/x/true", "{a}");
    assert_eq!(a["output_fields"]["container.name"], n.as_str(), "{a}");
    assert!(a["id"].as_u64().unwrap() > 0, "{a}");
    // Filters: another rule or a higher priority than the alert's finds nothing of it.
    let r = get(
        port,
        &format!("/api/v1/alerts?container={n}&rule=Nothing+such&limit=10"),
    );
    assert_eq!(r.json()["alerts"], json!([]), "{}", r.body);
    let r = get(
        port,
        &format!("/api/v1/alerts?container={n}&tag=binary_drift&priority=critical"),
    );
    assert!(
        !r.json()["alerts"].as_array().unwrap().is_empty(),
        "{}",
        r.body
    );
    let r = get(port, "/api/v1/alerts?priority=loud");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("loud"),
        "{}",
        r.body
    );

    let after = metrics(port);
    assert!(metric(&after, "driftwatch_events_total{sensor=\"exec\"}") > exec_before);
    assert!(metric(&after, "driftwatch_alerts_total") > alerts_before);
    assert!(
        metric(
            &after,
            &format!(
                "driftwatch_alerts_by_rule_total{{rule=\"{DRIFT_RULE}\",priority=\"Critical\"}}"
            )
        ) >= 1.0
    );
    assert!(metric(&after, "driftwatch_alert_latency_seconds_count") >= 1.0);

    // One container: drift counts, its processes from /proc.
    let d = get(port, &format!("/api/v1/containers/{n}"));
    assert_eq!(d.status, 200, "{}", d.body);
    let d = d.json();
    assert!(d["drift"]["alerts"].as_u64().unwrap() >= 1, "{d}");
    assert_eq!(d["drift"]["by_verdict"]["added"], 1, "{d}");
    assert!(d["drift"]["last_alert"]["rule"].is_string(), "{d}");
    assert!(
        d["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["exe"] == "/bin/busybox"
                && p["cmdline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "httpd")),
        "{d}"
    );
    assert_eq!(d["isolated"], false, "{d}");

    // Its diff against the image, computed on request.
    let diff = get(port, &format!("/api/v1/containers/{}/diff", c.short()));
    assert_eq!(diff.status, 200, "{}", diff.body);
    let diff = diff.json();
    assert_eq!(diff["drifted"], true, "{diff}");
    assert!(
        diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/tmp/x/true" && f["change"] == "added"),
        "{diff}"
    );

    // Unknown containers and endpoints: JSON errors naming them.
    let r = get(port, "/api/v1/containers/no-such-container");
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no-such-container"),
        "{}",
        r.body
    );
    let r = get(port, "/api/v1/nothing");
    assert_eq!(r.status, 404);

    // Actions are guarded: the token, confirmation, the custom header, same origin.
    let r = http(
        port,
        "POST",
        &format!("/api/v1/containers/{n}/isolate"),
        &[
            ("Authorization", &format!("Bearer {}", s.token())),
            ("Content-Type", "application/json"),
            ("X-Driftwatch-Request", "1"),
        ],
        "{}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains(&n),
        "{}",
        r.body
    );
    // A local process without the token: refused, whatever else it sends.
    let r = http(
        port,
        "POST",
        &format!("/api/v1/containers/{n}/isolate"),
        &[
            ("Content-Type", "application/json"),
            ("X-Driftwatch-Request", "1"),
        ],
        r#"{"confirm": true}"#,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let auth = format!("Bearer {}", s.token());
    let r = http(
        port,
        "POST",
        &format!("/api/v1/containers/{n}/isolate"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"confirm": true}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = http(
        port,
        "POST",
        &format!("/api/v1/containers/{n}/isolate"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("X-Driftwatch-Request", "1"),
            ("Origin", "http://evil.example"),
        ],
        r#"{"confirm": true}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get(port, &format!("/api/v1/containers/{n}/isolate"));
    assert_eq!(r.status, 405, "{}", r.body);

    // Isolation cuts the container's network for real; release restores it.
    let outside = TestNetns::link_to(&c, 91);
    let url = "169.254.91.2:8080";
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable before"
    );
    let r = act(port, &s.token(), &n, "isolate");
    assert_eq!(r.status, 200, "{}", r.body);
    let rec = r.json();
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["action"], "isolate", "{rec}");
    assert_eq!(rec["container"]["name"], n.as_str(), "{rec}");
    outside
        .fetch(url)
        .expect_err("the container must be unreachable once isolated");
    assert_eq!(
        get(port, &format!("/api/v1/containers/{n}")).json()["isolated"],
        true
    );

    let r = act(port, &s.token(), c.short(), "release");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], "ok", "{}", r.body);
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable after release"
    );

    let acts = get(port, &format!("/api/v1/actions?container={n}")).json();
    let names: Vec<&str> = acts["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["release", "isolate"], "{acts}");
    // The same records are in the actions log `driftwatch actions` reads.
    let log = std::fs::read_to_string(s.dir.path().join("actions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");

    let m = metrics(port);
    assert_eq!(
        metric(&m, "driftwatch_api_actions_total{result=\"ok\"}"),
        2.0
    );
    drop(s);
}

#[test]
fn a_token_is_required_when_configured_and_beyond_loopback() {
    if !ready() {
        return;
    }
    // No token file: a non-loopback address is refused before the agent starts, by the
    // configuration's own check, told at the flag.
    let out = Command::new(DRIFTWATCH)
        .args([
            "run",
            "--no-stdout",
            "--api-listen",
            "0.0.0.0:7879",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--api-listen 0.0.0.0:7879: api.listen: 0.0.0.0:7879 is reachable from other hosts"
        ),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let token = "s3cret-token-for-the-api-test";
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    // Readable by others (0644, as written with the usual umask): refused, naming the file.
    let out = Command::new(DRIFTWATCH)
        .args([
            "run",
            "--no-stdout",
            "--api-token-file",
            file.to_str().unwrap(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("API token file {}: mode 0644", file.display()))
            && !err.contains(token),
        "{err}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let out = Command::new(DRIFTWATCH)
        .args([
            "run",
            "--no-stdout",
            "--api-token-file",
            short.to_str().unwrap(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(short.to_str().unwrap()) && !err.contains("abc"),
        "{err}"
    );

    let s = Served::start(&["--api-token-file", file.to_str().unwrap()]);
    let port = s.port;
    for path in ["/api/v1/containers", "/api/v1/alerts", "/metrics"] {
        let r = get(port, path);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"driftwatch\"")
        );
        let r = http(
            port,
            "GET",
            path,
            &[("Authorization", "Bearer wrong-token-of-some-length")],
            "",
        );
        assert_eq!(r.status, 401, "{path}");
        let r = http(
            port,
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            "",
        );
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    // Health stays open (liveness probes), and says nothing secret.
    let r = get(port, "/healthz");
    assert_eq!(r.status, 200);
    assert!(!r.body.contains(token));
    // Actions with the token but cross-site: still refused.
    let auth = format!("Bearer {token}");
    let r = http(
        port,
        "POST",
        "/api/v1/containers/x/isolate",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"confirm":true}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // A foreign Host (DNS rebinding) is refused on loopback.
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    sock.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    // No secret in the agent's log, after good, wrong and cross-site uses of the token.
    let log = s._agent.log();
    assert!(!log.is_empty());
    assert!(
        !log.iter().any(|l| l.contains(token)),
        "the token is in the agent's log:\n{}",
        log.join("\n")
    );
}

#[test]
fn the_web_ui_shows_live_alerts_the_container_and_gates_actions() {
    if !ready() || !require_tools(&[browser::CHROMIUM, "nft"]) {
        return;
    }
    let s = Served::start(&[]);
    let port = s.port;
    let n = name("ui");
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    let shots = screenshots();

    let mut b = browser::Browser::start(1400, 900);
    b.navigate(&format!("http://127.0.0.1:{port}/"));
    b.wait_for(
        "the timeline",
        "document.body.dataset.ready === '1' && document.getElementById('alert-rows')",
        WAIT,
    );
    b.wait_for(
        "live updates",
        "document.getElementById('live').textContent === 'live'",
        WAIT,
    );

    // Drift after the page loaded: the alert arrives live.
    drop_and_run(&c, "x");
    let row = format!(
        "[...document.querySelectorAll('#alert-rows tr')].some(r => r.textContent.includes({}) && r.textContent.includes({}))",
        json!(DRIFT_RULE),
        json!(n)
    );
    b.wait_for("the drift alert in the timeline", &row, WAIT);
    // The time and priority have columns of their own: the output shows the rule's text
    // without Falco's `HH:MM:SS.nnnnnnnnn: Priority ` prefix.
    let doubled = b.eval(
        r"[...document.querySelectorAll('#alert-rows td.output')].filter(t => /\d\d:\d\d:\d\d\.\d{9}: [A-Z][a-z]+ /.test(t.textContent)).map(t => t.textContent)",
    );
    assert_eq!(doubled, json!([]), "output shown with its time prefix");

    // A drifted executable whose path is markup.
    let (_, out) = c.sh(&format!(
        "mkdir -p '/tmp/{XSS}' && cp /bin/busybox '/tmp/{XSS}/true' && '/tmp/{XSS}/true'"
    ));
    assert!(!out.contains("not found"), "{out}");
    let shown = format!(
        "[...document.querySelectorAll('#alert-rows .exe')].some(e => e.textContent === {})",
        json!(format!("/tmp/{XSS}/true"))
    );
    b.wait_for("the markup path shown as text", &shown, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.eval("typeof window.__xss"),
        json!("undefined"),
        "the payload ran"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('main img').length"),
        json!(0)
    );
    b.screenshot(&shots.join("timeline.png"));

    // Filters: text, then priority.
    b.eval("(() => { const i = document.getElementById('f-text'); i.value = 'onerror'; i.dispatchEvent(new Event('input')); })()");
    let rows = b.eval("[...document.querySelectorAll('#alert-rows tr')].map(r => r.textContent)");
    let rows = rows.as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.as_str().unwrap().contains(XSS)),
        "{rows:?}"
    );
    b.eval("(() => { const i = document.getElementById('f-text'); i.value = ''; i.dispatchEvent(new Event('input')); const p = document.getElementById('f-priority'); p.value = 'Critical'; p.dispatchEvent(new Event('change')); })()");
    let prios =
        b.eval("[...document.querySelectorAll('#alert-rows .prio')].map(p => p.textContent)");
    assert!(
        prios
            .as_array()
            .unwrap()
            .iter()
            .all(|p| ["Emergency", "Alert", "Critical"].contains(&p.as_str().unwrap())),
        "{prios}"
    );

    // The container page: image, mode, diff, processes.
    b.navigate(&format!("http://127.0.0.1:{port}/#/container/{n}"));
    b.wait_for("the image", &format!("document.getElementById('image') && document.getElementById('image').textContent === {}", json!(BUSYBOX)), WAIT);
    assert_eq!(
        b.eval("document.getElementById('mode').textContent"),
        json!("detect")
    );
    b.wait_for("the diff", "document.getElementById('diff-summary') && document.getElementById('diff-summary').textContent.includes('drifted')", Duration::from_secs(120));
    let entries =
        b.eval("[...document.querySelectorAll('#diff-entries td.mono')].map(t => t.textContent)");
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "/tmp/x/true"),
        "{entries}"
    );
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == &json!(format!("/tmp/{XSS}/true"))),
        "{entries}"
    );
    let tree = b.eval("document.getElementById('proc-tree').textContent");
    assert!(tree.as_str().unwrap().contains("sleep 300"), "{tree}");
    assert_eq!(b.eval("typeof window.__xss"), json!("undefined"));
    b.screenshot(&shots.join("container.png"));

    // Isolate asks first; cancelling does nothing.
    let actions = |port| {
        get(port, &format!("/api/v1/actions?container={n}")).json()["actions"]
            .as_array()
            .unwrap()
            .len()
    };
    b.eval("document.getElementById('btn-isolate').click()");
    b.wait_for(
        "the confirmation dialog",
        "document.getElementById('confirm').open",
        WAIT,
    );
    let title = b.eval("document.getElementById('confirm-title').textContent");
    assert!(title.as_str().unwrap().contains(&n), "{title}");
    b.screenshot(&shots.join("confirm-isolate.png"));
    assert_eq!(actions(port), 0, "nothing is done before confirming");
    b.eval("document.getElementById('confirm-cancel').click()");
    b.wait_for(
        "the dialog closed",
        "!document.getElementById('confirm').open",
        WAIT,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(actions(port), 0, "cancelled: nothing done");
    assert_eq!(
        get(port, &format!("/api/v1/containers/{n}")).json()["isolated"],
        false
    );

    // Confirmed: isolated for real.
    b.eval("document.getElementById('btn-isolate').click()");
    b.wait_for(
        "the confirmation dialog",
        "document.getElementById('confirm').open",
        WAIT,
    );
    b.eval("document.getElementById('confirm-ok').click()");
    // Actions need the API token: the UI asks for it (the first line of the token file).
    b.wait_for(
        "the token dialog",
        "document.getElementById('token').open",
        WAIT,
    );
    assert_eq!(actions(port), 0, "nothing is done without the token");
    b.eval(&format!(
        "(() => {{ document.getElementById('token-input').value = {}; document.querySelector('#token-form button').click(); }})()",
        json!(s.token())
    ));
    b.wait_for("the isolation result", "document.getElementById('action-result') && document.getElementById('action-result').textContent.includes('Isolate: ok')", WAIT);
    assert_eq!(
        get(port, &format!("/api/v1/containers/{n}")).json()["isolated"],
        true
    );
    b.wait_for(
        "the isolated badge",
        "document.getElementById('isolated')",
        WAIT,
    );
    b.screenshot(&shots.join("container-isolated.png"));
    let r = act(port, &s.token(), &n, "release");
    assert_eq!(r.json()["result"], "ok", "{}", r.body);

    // Rules.
    b.navigate(&format!("http://127.0.0.1:{port}/#/rules"));
    b.wait_for(
        "the rules",
        &format!(
            "[...document.querySelectorAll('#rules td')].some(t => t.textContent.includes({}))",
            json!(DRIFT_RULE)
        ),
        WAIT,
    );
    b.screenshot(&shots.join("rules.png"));

    b.navigate(&format!("http://127.0.0.1:{port}/#/containers"));
    b.wait_for("the containers", &format!("document.getElementById('containers') && document.getElementById('containers').textContent.includes({})", json!(n)), WAIT);
    b.screenshot(&shots.join("containers.png"));
    assert_eq!(b.eval("typeof window.__xss"), json!("undefined"));
    eprintln!("screenshots in {}", shots.display());
}

/// A user's rule that needs a syscall driftwatch does not trace loads inactive: the API and the
/// UI's rules view say so and why, next to the active defaults.
#[test]
fn the_api_and_ui_show_inactive_rules_with_their_reason() {
    require!(Bpf);
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ptrace_rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Ptrace by a shell\n  desc: a shell attaches to a process\n  condition: evt.type=ptrace and proc.name=sh\n  output: ptrace by %proc.name\n  priority: WARNING\n",
    )
    .unwrap();
    let s = Served::start(&["--rules", rules.to_str().unwrap()]);
    let r = get(s.port, "/api/v1/rules");
    assert_eq!(r.status, 200, "{}", r.body);
    let all = r.json()["rules"].as_array().unwrap().clone();
    let ptrace = all
        .iter()
        .find(|r| r["name"] == "Ptrace by a shell")
        .unwrap_or_else(|| panic!("the user's rule is listed: {}", r.body));
    assert_eq!(ptrace["active"], false, "{ptrace}");
    assert_eq!(ptrace["enabled"], true, "{ptrace}");
    assert_eq!(
        ptrace["inactive_reason"], "needs ptrace events, which driftwatch does not trace",
        "{ptrace}"
    );
    let drift = all
        .iter()
        .find(|r| r["name"] == DRIFT_RULE)
        .unwrap_or_else(|| panic!("the default drift rule is listed: {}", r.body));
    assert_eq!(drift["active"], true, "{drift}");
    assert_eq!(drift["inactive_reason"], Value::Null, "{drift}");

    if !require_tools(&[browser::CHROMIUM]) {
        return;
    }
    let mut b = browser::Browser::start(1400, 900);
    b.navigate(&format!("http://127.0.0.1:{}/#/rules", s.port));
    b.wait_for(
        "the inactive rule's reason",
        &format!(
            "[...document.querySelectorAll('#rules tr.inactive')].some(r => r.textContent.includes({}) && r.textContent.includes('no: needs ptrace events'))",
            json!("Ptrace by a shell")
        ),
        WAIT,
    );
    let inactive_rows = b.eval("document.querySelectorAll('#rules tr.inactive').length");
    assert_eq!(inactive_rows, json!(1), "only the ptrace rule is inactive");
    b.screenshot(&screenshots().join("rules-inactive.png"));
}

/// The DaemonSet's setting: the API on loopback with the token for everything, and
/// `api.metrics_listen` on every address, where a scraper gets `/metrics` and `/healthz`
/// without a token and nothing else.
#[test]
fn the_metrics_listener_serves_metrics_alone_without_a_token() {
    // No container is involved: the agent alone.
    require!(Bpf);
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "api:\n  listen: 127.0.0.1:{port}\n  token_file: {}\n  token_for_reads: true\n  metrics_listen: 0.0.0.0:{metrics_port}\n",
            dir.path().join("api.token").display()
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--config",
            config.to_str().unwrap(),
            "--store",
            dir.path().join("driftwatch.db").to_str().unwrap(),
            "--actions-log",
            dir.path().join("actions.jsonl").to_str().unwrap(),
        ],
    );
    assert!(
        agent.log().iter().any(|l| l.contains(&format!(
            "without a token, on http://0.0.0.0:{metrics_port}/metrics"
        ))),
        "{:?}",
        agent.log()
    );
    let m = get(metrics_port, "/metrics");
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(
        m.body.contains("driftwatch_containers_watched"),
        "{}",
        m.body
    );
    assert_eq!(get(metrics_port, "/healthz").status, 200);
    // The token file our config names (the agent created it).
    let token = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    for path in ["/", "/api/v1/alerts", "/api/v1/containers"] {
        let r = http(metrics_port, "GET", path, &[("Authorization", &auth)], "");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    let r = http(
        metrics_port,
        "POST",
        "/api/v1/containers/any/isolate",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("X-Driftwatch-Request", "1"),
        ],
        r#"{"confirm": true}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // The API itself keeps its rules: reads need the token there.
    assert_eq!(get(port, "/metrics").status, 401);
    assert_eq!(
        http(port, "GET", "/metrics", &[("Authorization", &auth)], "").status,
        200
    );
}
