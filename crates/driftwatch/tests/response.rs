//! Response playbooks, end to end: a real `driftwatch run --playbook`, real containers and
//! real drift (a copied binary executed); each test asserts what the action did to the
//! container (traffic cut, processes frozen, container stopped or gone, process killed, a
//! bundle that verifies, a webhook body) and what the actions log says.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);

/// A unique container name for this test.
fn name(test: &str) -> String {
    format!("dw-resp-{test}-{}", std::process::id())
}

/// An agent responding with `playbook`; its actions log is in its own tempdir.
struct Responding {
    agent: AgentProcess,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Responding {
    fn start(playbook: &str) -> Responding {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("playbook.yaml");
        std::fs::write(&pb, playbook).unwrap();
        let log = dir.path().join("actions.jsonl");
        let agent = AgentProcess::start(
            DRIFTWATCH,
            &[
                "--playbook",
                pb.to_str().unwrap(),
                "--actions-log",
                log.to_str().unwrap(),
            ],
        );
        Responding {
            agent,
            log,
            _dir: dir,
        }
    }

    fn records(&self) -> Vec<Value> {
        read_alerts(&self.log)
    }

    /// Waits for the record of `action` on container `c`.
    fn wait_record(&self, c: &TestContainer, action: &str) -> Value {
        let start = Instant::now();
        loop {
            if let Some(r) = self.records().into_iter().find(|r| {
                r["action"] == action
                    && r["container"]["id"]
                        .as_str()
                        .is_some_and(|i| i.starts_with(c.short()))
            }) {
                return r;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "no `{action}` record for {} within {WAIT:?}; records:\n{}\nalerts:\n{}",
                    c.short(),
                    self.records()
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.agent
                        .alerts()
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn records_for(&self, c: &TestContainer) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| {
                r["container"]["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with(c.short()))
            })
            .collect()
    }
}

/// Drops a copy of busybox as `/tmp/miner/sleep` and starts `sleep 300` from it in the
/// background (a drifted process that stays).
fn start_miner(c: &TestContainer) {
    let (code, out) = c.sh("mkdir -p /tmp/miner && cp /bin/busybox /tmp/miner/sleep");
    assert_eq!(code, 0, "{out}");
    let ok = Command::new(DOCKER)
        .args(["exec", "-d", &c.id, "/tmp/miner/sleep", "300"])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn inspect(c: &TestContainer, format: &str) -> Option<String> {
    let out = docker(&["inspect", "-f", format, &c.id]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn host_ruleset() -> String {
    let out = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn isolate_cuts_the_containers_traffic_and_release_restores_it() {
    // `ip` has no --version; `-V` is checked below.
    if !ready() || !require_tools(&["nft", "nsenter"]) {
        return;
    }
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "needs the ip command (iproute2, scripts/deps test installs it)"
    );
    let n = name("isolate");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: isolate\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [isolate]\n"
    ));
    let c = TestContainer::httpd(&n);
    let outside = TestNetns::link_to(&c, 77);
    let url = "169.254.77.2:8080";
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable before"
    );
    // Outbound from the container reaches the test's namespace (nothing listens: refused).
    let out = c.get_inside("169.254.77.1:9");
    assert!(out.contains("refused"), "{out}");
    let host_before = host_ruleset();

    drop_and_run(&c, "x");
    let rec = r.wait_record(&c, "isolate");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["playbook"], "isolate", "{rec}");
    assert_eq!(
        rec["alert"]["rule"], "Drop and execute new binary in container",
        "{rec}"
    );
    assert_eq!(rec["alert"]["exepath"], "/tmp/x/true", "{rec}");
    assert_eq!(rec["container"]["name"], n.as_str(), "{rec}");
    assert_eq!(rec["container"]["id"], c.id.as_str(), "{rec}");

    let e = outside
        .fetch(url)
        .expect_err("the container must be unreachable once isolated");
    assert!(!e.contains("hello"), "{e}");
    // Loopback inside the container still works.
    assert!(c.get_inside("127.0.0.1:8080").contains("hello"));
    // Outbound from the container is cut too: no answer at all now, not even a refusal.
    let out = c.get_inside("169.254.77.1:9");
    assert!(!out.contains("refused") && !out.contains("hello"), "{out}");
    assert_eq!(
        host_ruleset(),
        host_before,
        "the host's ruleset must not change"
    );

    let out = Command::new(DRIFTWATCH)
        .args(["release", &n, "--actions-log", r.log.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("network isolation removed"), "{text}");
    assert_eq!(
        outside.fetch(url).unwrap().trim(),
        "hello",
        "reachable after release"
    );
    assert_eq!(host_ruleset(), host_before);
    let rel = r.wait_record(&c, "release");
    assert_eq!(rel["result"], "ok", "{rel}");
    assert!(rel["playbook"].is_null(), "{rel}");
}

#[test]
fn freeze_stops_the_container_and_release_thaws_it() {
    if !ready() {
        return;
    }
    let n = name("freeze");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: freeze\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [freeze]\n"
    ));
    let c = TestContainer::counter(&n);
    let thaw = Thaw::of(&c);
    let count = || c.count();
    drop_and_run_detached(&c, "x");
    let rec = r.wait_record(&c, "freeze");
    assert_eq!(rec["result"], "ok", "{rec}");
    let a = count();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(count(), a, "frozen: the counter must not advance");
    let state = std::fs::read_to_string(&thaw.0).unwrap();
    assert!(matches!(state.trim(), "FROZEN" | "1"), "{state}");

    let out = Command::new(DRIFTWATCH)
        .args([
            "release",
            c.short(),
            "--actions-log",
            r.log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("thawed"), "{text}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(count() > a, "thawed: the counter resumes");
}

#[test]
fn kill_kills_the_drifted_process_only() {
    if !ready() {
        return;
    }
    let n = name("kill");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: kill\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [kill]\n"
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    start_miner(&c);
    let rec = r.wait_record(&c, "kill");
    assert_eq!(rec["result"], "ok", "{rec}");
    let pid = rec["alert"]["pid"].as_u64().unwrap();
    assert_eq!(
        rec["detail"],
        format!("SIGKILL sent to pid {pid} (/tmp/miner/sleep)"),
        "{rec}"
    );
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, ps) = c.sh("ps -o pid,args");
    assert!(!ps.contains("/tmp/miner/sleep"), "{ps}");
    assert_eq!(
        inspect(&c, "{{.State.Running}}").as_deref(),
        Some("true"),
        "only the process dies"
    );
}

#[test]
fn stop_and_evict_through_dockerd() {
    if !ready() {
        return;
    }
    let (ns, ne) = (name("stop"), name("evict"));
    let r = Responding::start(&format!(
        "playbooks:
  - name: stop
    match: {{tags: [binary_drift], containers: [{ns}]}}
    actions: [{{action: stop, params: {{timeout: 1s}}}}]
  - name: evict
    match: {{tags: [binary_drift], containers: [{ne}]}}
    actions: [{{action: evict, params: {{grace_period: 1s}}}}]
"
    ));
    let s = TestContainer::run(&["--name", &ns, BUSYBOX, "sleep", "300"]);
    let e = TestContainer::run(&["--name", &ne, BUSYBOX, "sleep", "300"]);
    drop_and_run(&s, "x");
    drop_and_run(&e, "x");
    let rs = r.wait_record(&s, "stop");
    let re = r.wait_record(&e, "evict");
    assert_eq!(rs["result"], "ok", "{rs}");
    assert_eq!(re["result"], "ok", "{re}");
    assert_eq!(
        inspect(&s, "{{.State.Running}}").as_deref(),
        Some("false"),
        "stopped, kept"
    );
    assert_eq!(inspect(&e, "{{.State.Running}}"), None, "evicted: removed");
    assert!(
        re["detail"]
            .as_str()
            .unwrap()
            .ends_with("stopped (timeout 1s), removed"),
        "{re}"
    );
}

#[test]
fn capture_from_a_playbook_writes_a_bundle_that_verifies() {
    if !ready() {
        return;
    }
    let n = name("capture");
    let dir = tempfile::tempdir().unwrap();
    let r = Responding::start(&format!(
        "playbooks:\n  - name: capture\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [{{action: capture, params: {{dir: {}}}}}]\n",
        dir.path().display()
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    drop_and_run(&c, "dropper");
    let rec = r.wait_record(&c, "capture");
    assert_eq!(rec["result"], "ok", "{rec}");
    let b = &only_bundle(dir.path());
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .starts_with(&b.display().to_string()),
        "{rec}"
    );
    assert!(
        b.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("{n}-{}-", c.short()))
    );
    let out = Command::new(DRIFTWATCH)
        .args(["capture", "--verify", b.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("container {}", c.id)), "{text}");
    // The dropped binary is in it.
    let list = Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar -t", b.display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("files/tmp/dropper/true"));
}

/// Accepts one HTTP POST and returns its JSON body.
fn receive_one(l: TcpListener) -> std::thread::JoinHandle<Value> {
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let body_start = loop {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some(i) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if got.len() >= i + 4 + len {
                    assert!(text.starts_with("POST /hook HTTP/1.1\r\n"), "{text}");
                    break i + 4;
                }
            }
        };
        c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        serde_json::from_slice(&got[body_start..]).unwrap()
    })
}

#[test]
fn notify_posts_the_alert_and_the_actions_so_far() {
    if !ready() {
        return;
    }
    let n = name("notify");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = receive_one(l);
    let r = Responding::start(&format!(
        "playbooks:\n  - name: tell\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions:\n      - {{action: stop, dry_run: true}}\n      - {{action: notify, params: {{url: \"{url}\"}}}}\n"
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    drop_and_run(&c, "x");
    let rec = r.wait_record(&c, "notify");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["detail"], format!("POST {url}: HTTP/1.1 200 OK"));
    let body = got.join().unwrap();
    assert_eq!(body["playbook"], "tell");
    assert_eq!(
        body["alert"]["rule"], "Drop and execute new binary in container",
        "{body}"
    );
    assert_eq!(
        body["alert"]["output_fields"]["container.id"],
        c.short(),
        "{body}"
    );
    assert_eq!(
        body["alert"]["output_fields"]["proc.exepath"], "/tmp/x/true",
        "{body}"
    );
    let actions = body["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{body}");
    assert_eq!(actions[0]["action"], "stop");
    assert_eq!(actions[0]["result"], "dry_run");
}

#[test]
fn dry_run_does_nothing_but_records() {
    if !ready() {
        return;
    }
    let n = name("dryrun");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: rehearse\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions:\n      - {{action: kill, dry_run: true}}\n      - {{action: isolate, dry_run: true}}\n      - {{action: evict, dry_run: true}}\n"
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    start_miner(&c);
    let rec = r.wait_record(&c, "evict");
    let recs = r.records_for(&c);
    let got: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("kill", "dry_run"),
            ("isolate", "dry_run"),
            ("evict", "dry_run")
        ]
    );
    assert!(recs.iter().all(|r| r["dry_run"] == true));
    let pid = recs[0]["alert"]["pid"].as_u64().unwrap();
    assert_eq!(
        recs[0]["detail"],
        format!(
            "would SIGKILL pid {pid} (/tmp/miner/sleep) in container {n} ({})",
            c.short()
        )
    );
    assert!(
        rec["detail"].as_str().unwrap().starts_with("would stop"),
        "{rec}"
    );
    // Nothing happened.
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the process lives"
    );
    assert_eq!(inspect(&c, "{{.State.Running}}").as_deref(), Some("true"));
    let out = Command::new("nsenter")
        .args([
            &format!("--net=/proc/{}/ns/net", c.pid()),
            "nft",
            "list",
            "tables",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("driftwatch_isolate"));
}

#[test]
fn the_fourth_eviction_within_the_window_is_refused() {
    if !ready() {
        return;
    }
    let n = name("limit");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: evict\n    match: {{tags: [binary_drift], containers: ['{n}-*']}}\n    actions:\n      - {{action: evict, params: {{grace_period: 1s}}, limits: {{max: 3, per: image, window: 1h}}}}\n"
    ));
    let cs: Vec<TestContainer> = (1..=4)
        .map(|i| TestContainer::run(&["--name", &format!("{n}-{i}"), BUSYBOX, "sleep", "300"]))
        .collect();
    for c in &cs {
        drop_and_run(c, "x");
        r.wait_record(c, "evict");
    }
    let results: Vec<String> = cs
        .iter()
        .map(|c| r.records_for(c)[0]["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(results, ["ok", "ok", "ok", "skipped"]);
    let last = &r.records_for(&cs[3])[0];
    assert_eq!(
        last["reason"],
        format!("limit reached: already 3 in the last 1h for image {BUSYBOX} (limits: max 3)"),
        "{last}"
    );
    for c in &cs[..3] {
        assert_eq!(
            inspect(c, "{{.State.Running}}"),
            None,
            "{} evicted",
            c.short()
        );
    }
    assert_eq!(
        inspect(&cs[3], "{{.State.Running}}").as_deref(),
        Some("true"),
        "the 4th is spared"
    );
}

#[test]
fn a_failed_action_with_on_failure_abort_skips_the_rest() {
    if !ready() {
        return;
    }
    let n = name("abort");
    // Port 1 on loopback: connection refused.
    let r = Responding::start(&format!(
        "playbooks:\n  - name: careful\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions:\n      - {{action: notify, params: {{url: \"http://127.0.0.1:1/\"}}, on_failure: abort}}\n      - stop\n"
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    drop_and_run(&c, "x");
    let stop = r.wait_record(&c, "stop");
    let notify = &r.records_for(&c)[0];
    assert_eq!(notify["result"], "failed", "{notify}");
    assert!(
        notify["reason"]
            .as_str()
            .unwrap()
            .contains("connecting to 127.0.0.1:1"),
        "{notify}"
    );
    assert_eq!(stop["result"], "skipped", "{stop}");
    assert_eq!(
        stop["reason"],
        "aborted: `notify` (step 1) failed and has on_failure: abort"
    );
    assert_eq!(inspect(&c, "{{.State.Running}}").as_deref(), Some("true"));
}

#[test]
fn actions_lists_the_records_and_the_log_is_private() {
    if !ready() {
        return;
    }
    let n = name("list");
    let r = Responding::start(&format!(
        "playbooks:\n  - name: note\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [{{action: freeze, dry_run: true}}]\n"
    ));
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    drop_and_run(&c, "x");
    r.wait_record(&c, "freeze");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&r.log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = Command::new(DRIFTWATCH)
        .args([
            "actions",
            "--container",
            &n,
            "--since",
            "10m",
            "--actions-log",
            r.log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("TIME (UTC)"), "{text}");
    for want in [
        n.as_str(),
        "freeze",
        "dry-run",
        "note (Drop and execute new binary in container)",
        "would freeze",
    ] {
        assert!(lines[1].contains(want), "{want} missing: {text}");
    }
    let out = Command::new(DRIFTWATCH)
        .args([
            "actions",
            "--container",
            "nope",
            "--json",
            "--actions-log",
            r.log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}
