//! The server over a real listening socket: routing, token, CSRF, Host, limits, headers,
//! health, metrics and the live stream. The agent side is a fixed [`AgentView`] here (the
//! real agent's view is tested in crates/driftwatch/tests/api.rs).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftwatch_api::view::DriftStatus;
use driftwatch_api::*;
use driftwatch_model::{Alert, Priority};
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef-token";

#[derive(Default)]
struct Fixed {
    acted: Mutex<Vec<(String, ManualAction)>>,
    sensor_down: bool,
}

fn summary() -> ContainerSummary {
    ContainerSummary {
        id: "abcdef123456".repeat(5) + "abcd",
        short_id: "abcdef123456".into(),
        name: "web".into(),
        image: "nginx:1".into(),
        engine: "docker".into(),
        enforcement: "prevent".into(),
        running: true,
        drift: DriftStatus::default(),
        ..ContainerSummary::default()
    }
}

impl AgentView for Fixed {
    fn containers(&self) -> Vec<ContainerSummary> {
        vec![summary()]
    }
    fn container(&self, c: &str) -> Result<ContainerDetail, ApiError> {
        if c == "web" || c.starts_with("abcd") {
            Ok(ContainerDetail {
                summary: summary(),
                processes: vec![ProcessNode {
                    pid: 42,
                    ppid: 1,
                    name: "x".into(),
                    exe: "/tmp/x".into(),
                    ..ProcessNode::default()
                }],
                ..ContainerDetail::default()
            })
        } else {
            Err(ApiError::not_found(format!("container {c}: unknown")))
        }
    }
    fn diff(&self, c: &str, limit: usize) -> Result<Value, ApiError> {
        self.container(c)?;
        Ok(json!({"drifted": true, "limit": limit}))
    }
    fn rules(&self) -> Vec<RuleSummary> {
        vec![RuleSummary {
            name: "r".into(),
            desc: "d".into(),
            priority: "Critical".into(),
            tags: vec!["binary_drift".into()],
            enabled: true,
            active: true,
            inactive_reason: None,
            source_file: "f.yaml".into(),
        }]
    }
    fn actions(&self, _: Option<&str>, _: usize) -> Vec<Value> {
        Vec::new()
    }
    fn act(&self, c: &str, a: ManualAction) -> Result<Value, ApiError> {
        self.container(c)?;
        self.acted.lock().unwrap().push((c.to_string(), a));
        Ok(json!({"result": "ok", "action": a}))
    }
    fn metrics(&self, out: &mut MetricsWriter) {
        out.counter1("driftwatch_test_total", "A test counter.", 7);
    }
    fn health(&self) -> Health {
        let mut h = Health::default();
        h.components.insert(
            "exec_sensor".into(),
            if self.sensor_down {
                ComponentHealth::down("not attached")
            } else {
                ComponentHealth::ok("attached")
            },
        );
        h
    }
}

fn alert(pid: u32) -> Alert {
    let mut f = BTreeMap::new();
    f.insert("container.id".to_string(), json!("abcdef123456"));
    f.insert("container.name".to_string(), json!("web"));
    f.insert("proc.pid".to_string(), json!(pid));
    f.insert("drift.verdict".to_string(), json!("added"));
    Alert {
        time: Alert::format_time(0),
        rule: "Drop and execute".into(),
        priority: Priority::Critical,
        source: "syscall".into(),
        hostname: "h".into(),
        output: "<b>o</b>".into(),
        tags: vec!["binary_drift".into()],
        output_fields: f.into_iter().collect(),
    }
}

struct Srv {
    server: ApiServer,
    view: Arc<Fixed>,
    ring: Arc<AlertRing>,
}

/// A loopback server with [`TOKEN`] for actions; `token_for_reads`: for reads too.
fn serve(token_for_reads: bool, view: Fixed) -> Srv {
    serve_with(Some(TOKEN), token_for_reads, view)
}

fn serve_with(token: Option<&str>, token_for_reads: bool, view: Fixed) -> Srv {
    let view = Arc::new(view);
    let ring = Arc::new(AlertRing::new(100));
    let server = ApiServer::start(
        ApiServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: token.map(String::from),
            token_for_reads,
            ui: true,
            metrics_listen: None,
        },
        view.clone(),
        ring.clone(),
        ring.clone(),
    )
    .unwrap();
    Srv { server, view, ring }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn has_header(&self, line: &str) -> bool {
        self.head.lines().any(|l| l.eq_ignore_ascii_case(line))
    }
}

fn raw(srv: &Srv, request: &[u8]) -> Reply {
    raw_to(srv.server.local_addr(), request)
}

fn raw_to(addr: std::net::SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn req(srv: &Srv, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
    let port = srv.server.local_addr().port();
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    raw(srv, r.as_bytes())
}

fn get(srv: &Srv, path: &str) -> Reply {
    req(srv, "GET", path, &[], "")
}

const JSON: &str = "Content-Type: application/json";
const CSRF: &str = "X-Driftwatch-Request: 1";
const AUTH: &str = "Authorization: Bearer 0123456789abcdef-token";

#[test]
fn ui_and_api_routes_answer_with_security_headers() {
    let srv = serve(false, Fixed::default());
    for (path, ct) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let r = get(&srv, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains(&format!("content-type: {ct}")),
            "{}",
            r.head
        );
        assert!(r.head.contains("frame-ancestors 'none'"), "{}", r.head);
        assert!(!r.head.contains("unsafe-inline"), "{}", r.head);
        assert!(
            r.has_header("x-content-type-options: nosniff"),
            "{}",
            r.head
        );
    }
    // The page's script never builds markup from strings.
    let js = get(&srv, "/app.js").body;
    assert!(
        !js.contains("innerHTML")
            && !js.contains("outerHTML")
            && !js.contains("insertAdjacentHTML")
    );
    let r = get(&srv, "/api/v1/rules");
    assert_eq!(r.json()["rules"][0]["tags"], json!(["binary_drift"]));
    let r = get(&srv, "/api/v1/nope");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("/api/v1/nope"));
    // Any method but GET needs the token first; with it, the method is refused.
    let r = req(&srv, "DELETE", "/api/v1/containers", &[], "");
    assert_eq!(r.status, 401);
    let r = req(&srv, "DELETE", "/api/v1/containers", &[AUTH], "");
    assert_eq!(r.status, 405);
    let r = get(&srv, "/api/v1/containers/nothere");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nothere"));
    let r = get(&srv, "/api/v1/containers/web/diff?limit=999999");
    assert_eq!(r.json()["limit"], 2000);
    let r = get(&srv, "/api/v1/alerts?limit=x");
    assert_eq!(r.status, 400);
}

#[test]
fn containers_carry_drift_counts_and_processes_their_verdicts() {
    let srv = serve(false, Fixed::default());
    srv.ring.push(&alert(42));
    srv.ring.push(&alert(43));
    let c = get(&srv, "/api/v1/containers").json();
    let d = &c["containers"][0]["drift"];
    assert_eq!(d["alerts"], 2, "{c}");
    assert_eq!(d["by_verdict"]["added"], 2, "{c}");
    assert_eq!(d["last_alert"]["id"], 2, "{c}");
    let one = get(&srv, "/api/v1/containers/web").json();
    assert_eq!(one["processes"][0]["verdicts"], json!(["added"]), "{one}");
    assert_eq!(
        one["processes"][0]["rules"],
        json!(["Drop and execute"]),
        "{one}"
    );
    let a = get(&srv, "/api/v1/alerts?after_id=1").json();
    assert_eq!(a["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(a["last_id"], 2);
}

#[test]
fn health_is_503_when_a_component_is_down() {
    let srv = serve(false, Fixed::default());
    let r = get(&srv, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["healthy"], true);
    let down = serve(
        false,
        Fixed {
            sensor_down: true,
            ..Fixed::default()
        },
    );
    let r = get(&down, "/healthz");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["components"]["exec_sensor"]["status"], "down");
}

#[test]
fn metrics_are_valid_exposition_with_the_views_lines() {
    let srv = serve(false, Fixed::default());
    srv.ring.push(&alert(1));
    let r = get(&srv, "/metrics");
    assert_eq!(r.status, 200);
    for l in r.body.lines() {
        metrics::check_line(l).unwrap();
    }
    assert!(r.body.contains("driftwatch_test_total 7\n"), "{}", r.body);
    assert!(
        r.body.contains(
            "driftwatch_alerts_by_rule_total{rule=\"Drop and execute\",priority=\"Critical\"} 1\n"
        ),
        "{}",
        r.body
    );
}

#[test]
fn the_token_is_required_everywhere_but_health_and_the_static_page() {
    let srv = serve(true, Fixed::default());
    for path in [
        "/api/v1/containers",
        "/api/v1/alerts",
        "/metrics",
        "/api/v1/alerts/stream",
    ] {
        assert_eq!(get(&srv, path).status, 401, "{path}");
        let wrong = req(
            &srv,
            "GET",
            path,
            &["Authorization: Bearer 0123456789abcdef-tokeX"],
            "",
        );
        assert_eq!(wrong.status, 401, "{path}");
        let basic = req(
            &srv,
            "GET",
            path,
            &[&format!("Authorization: Basic {TOKEN}")],
            "",
        );
        assert_eq!(basic.status, 401, "{path}");
    }
    let ok = req(
        &srv,
        "GET",
        "/api/v1/containers",
        &[&format!("Authorization: Bearer {TOKEN}")],
        "",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(get(&srv, "/healthz").status, 200);
    assert_eq!(get(&srv, "/").status, 200);
    let m = req(
        &srv,
        "GET",
        "/metrics",
        &[&format!("Authorization: Bearer {TOKEN}")],
        "",
    );
    assert!(
        m.body.contains("driftwatch_api_unauthorized_total 12\n"),
        "{}",
        m.body
    );
}

/// `request` sent to the metrics-only listener of `srv`.
fn to_metrics(srv: &Srv, request: &str) -> Reply {
    raw_to(
        srv.server.metrics_addr().expect("a metrics listener"),
        request.as_bytes(),
    )
}

/// The DaemonSet's setting: Prometheus scrapes the pod IP, which reaches only `/metrics` and
/// `/healthz`; reads and state changes stay behind loopback and the token.
#[test]
fn the_metrics_listener_serves_metrics_without_a_token_and_nothing_else() {
    let view = Arc::new(Fixed::default());
    let ring = Arc::new(AlertRing::new(100));
    let server = ApiServer::start(
        ApiServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Some(TOKEN.into()),
            token_for_reads: true,
            ui: true,
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        },
        view.clone(),
        ring.clone(),
        ring.clone(),
    )
    .unwrap();
    let srv = Srv { server, view, ring };
    assert_ne!(srv.server.metrics_addr(), Some(srv.server.local_addr()));
    // A scraper names the pod's IP and sends no token.
    let scrape = |path: &str| {
        to_metrics(
            &srv,
            &format!("GET {path} HTTP/1.1\r\nHost: 10.42.0.7:9879\r\nConnection: close\r\n\r\n"),
        )
    };
    let m = scrape("/metrics");
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(
        m.body.contains("driftwatch_api_requests_total"),
        "{}",
        m.body
    );
    assert_eq!(scrape("/healthz").status, 200);
    for path in [
        "/",
        "/app.js",
        "/api/v1/alerts",
        "/api/v1/containers",
        "/api/v1/rules",
    ] {
        assert_eq!(scrape(path).status, 404, "{path}");
    }
    // Even with the token and the CSRF header, no state-changing request gets through.
    let body = r#"{"confirm":true}"#;
    let post = to_metrics(
        &srv,
        &format!(
            "POST /api/v1/containers/abcdef123456/release HTTP/1.1\r\nHost: 10.42.0.7:9879\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n{JSON}\r\n{CSRF}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(post.status, 404, "{}", post.body);
    assert!(
        srv.view.acted.lock().unwrap().is_empty(),
        "nothing was called"
    );
    let post_metrics = to_metrics(
        &srv,
        "POST /metrics HTTP/1.1\r\nHost: 10.42.0.7:9879\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post_metrics.status, 405);
    // The full listener keeps its rules: reads need the token there.
    assert_eq!(get(&srv, "/metrics").status, 401);
}

#[test]
fn no_token_no_listening_beyond_loopback() {
    let ring = Arc::new(AlertRing::new(1));
    let r = ApiServer::start(
        ApiServerConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            token: None,
            token_for_reads: false,
            ui: true,
            metrics_listen: None,
        },
        Arc::new(Fixed::default()),
        ring.clone(),
        ring.clone(),
    );
    match r {
        Err(e @ BindError::NeedsToken(_)) => assert!(e.to_string().contains("0.0.0.0:0")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("served on 0.0.0.0 without a token"),
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t");
    std::fs::write(&f, "short\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = driftwatch_api::token::read_token_file(&f)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(f.to_str().unwrap()) && !e.contains("short\n"),
        "{e}"
    );
    std::fs::write(&f, format!("{TOKEN}\nignored\n")).unwrap();
    assert_eq!(driftwatch_api::token::read_token_file(&f).unwrap(), TOKEN);
}

#[test]
fn every_state_changing_request_needs_the_token_on_loopback_too() {
    let srv = serve(false, Fixed::default());
    let body = r#"{"confirm": true}"#;
    for action in ["isolate", "release", "capture"] {
        let p = format!("/api/v1/containers/web/{action}");
        // A local process (or a host-network container) with everything but the token.
        let r = req(&srv, "POST", &p, &[JSON, CSRF], body);
        assert_eq!(r.status, 401, "{action}: {}", r.body);
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{}",
            r.head
        );
        let wrong = "Authorization: Bearer 0123456789abcdef-tokeX";
        assert_eq!(
            req(&srv, "POST", &p, &[wrong, JSON, CSRF], body).status,
            401
        );
    }
    assert!(srv.view.acted.lock().unwrap().is_empty());
    // Reads stay open on loopback unless configured.
    assert_eq!(get(&srv, "/api/v1/containers").status, 200);
    assert_eq!(get(&srv, "/metrics").status, 200);
    // Other methods than GET are state-changing as far as the token goes.
    assert_eq!(
        req(&srv, "DELETE", "/api/v1/containers/web", &[], "").status,
        401
    );
    let r = req(
        &srv,
        "POST",
        "/api/v1/containers/web/isolate",
        &[AUTH, JSON, CSRF],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(srv.view.acted.lock().unwrap().len(), 1);
    // A server without any token refuses every action, even with a header.
    let none = serve_with(None, false, Fixed::default());
    let r = req(
        &none,
        "POST",
        "/api/v1/containers/web/isolate",
        &[AUTH, JSON, CSRF],
        body,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("none configured"), "{}", r.body);
    assert!(none.view.acted.lock().unwrap().is_empty());
}

#[test]
fn actions_need_confirmation_the_header_json_and_our_origin() {
    let srv = serve(false, Fixed::default());
    let port = srv.server.local_addr().port();
    let ok_origin = format!("Origin: http://127.0.0.1:{port}");
    let p = "/api/v1/containers/web/isolate";
    let body = r#"{"confirm": true}"#;
    assert_eq!(req(&srv, "POST", p, &[AUTH, JSON], body).status, 403);
    assert_eq!(req(&srv, "POST", p, &[AUTH, CSRF], body).status, 415);
    assert_eq!(
        req(
            &srv,
            "POST",
            p,
            &[AUTH, JSON, CSRF, "Origin: http://evil.example"],
            body
        )
        .status,
        403
    );
    assert_eq!(
        req(&srv, "POST", p, &[AUTH, JSON, CSRF, "Origin: null"], body).status,
        403
    );
    let r = req(
        &srv,
        "POST",
        p,
        &[AUTH, JSON, CSRF],
        r#"{"confirm": "yes"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("isolate on container web"),
        "{}",
        r.body
    );
    assert_eq!(
        req(&srv, "POST", p, &[AUTH, JSON, CSRF], "not json").status,
        400
    );
    assert_eq!(
        req(
            &srv,
            "POST",
            "/api/v1/containers/web/explode",
            &[AUTH, JSON, CSRF],
            body
        )
        .status,
        404
    );
    assert_eq!(
        req(
            &srv,
            "POST",
            "/api/v1/containers/ghost/release",
            &[AUTH, JSON, CSRF],
            body
        )
        .status,
        404
    );
    assert!(srv.view.acted.lock().unwrap().is_empty());
    let r = req(&srv, "POST", p, &[AUTH, JSON, CSRF, &ok_origin], body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["action"], "isolate");
    let r = req(
        &srv,
        "POST",
        "/api/v1/containers/web/capture",
        &[AUTH, JSON, CSRF],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        *srv.view.acted.lock().unwrap(),
        [
            ("web".to_string(), ManualAction::Isolate),
            ("web".to_string(), ManualAction::Capture)
        ]
    );
}

#[test]
fn bodies_over_the_limit_and_foreign_hosts_are_refused() {
    let srv = serve(false, Fixed::default());
    let big = format!(r#"{{"confirm": true, "pad": "{}"}}"#, "x".repeat(5000));
    let r = req(
        &srv,
        "POST",
        "/api/v1/containers/web/isolate",
        &[AUTH, JSON, CSRF],
        &big,
    );
    assert_eq!(r.status, 413, "{}", r.body);
    // Chunked, with no length announced: cut at the limit as it streams.
    let chunk = "y".repeat(3000);
    let mut raw_req = String::from(
        "POST /api/v1/containers/web/isolate HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nX-Driftwatch-Request: 1\r\nAuthorization: Bearer 0123456789abcdef-token\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..2 {
        raw_req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    raw_req.push_str("0\r\n\r\n");
    assert_eq!(raw(&srv, raw_req.as_bytes()).status, 413);
    assert!(srv.view.acted.lock().unwrap().is_empty());
    let r = raw(&srv, b"GET /api/v1/containers HTTP/1.1\r\nHost: attacker.example:7878\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = raw(
        &srv,
        b"GET /healthz HTTP/1.1\r\nHost: localhost:7878\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn the_stream_sends_new_alerts_as_they_come() {
    let srv = serve(false, Fixed::default());
    srv.ring.push(&alert(1));
    let mut s = TcpStream::connect(srv.server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /api/v1/alerts/stream?after_id=0&container=web HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut read_until = |want: &str, r: &mut BufReader<TcpStream>| -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed; saw {seen:?}");
            seen.push(line.trim_end().to_string());
            if line.starts_with(want) {
                return seen;
            }
        }
    };
    let head = read_until("data: {\"last_id\"", &mut r);
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("content-type: text/event-stream")),
        "{head:?}"
    );
    // The backlog after after_id, then a new one.
    let first = read_until("data: {", &mut r);
    assert!(first.iter().any(|l| l == "id: 1"), "{first:?}");
    srv.ring.push(&alert(2));
    let second = read_until("data: {", &mut r);
    assert!(second.iter().any(|l| l == "id: 2"), "{second:?}");
    let data: Value =
        serde_json::from_str(second.last().unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["output_fields"]["proc.pid"], 2);
    assert_eq!(data["output"], "<b>o</b>");
}
