//! Response and control turned against the host or a neighbour: a container named like
//! another's short id, pod labels forged in an image, a payload run again after its kill, a
//! flood of distinct alerts filling the responder, an unauthenticated action from a
//! host-network container, a signal flood from a `--pid host` container, and the files that
//! hold the containers' environments.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Aftermath, DRIFTWATCH};
use driftwatch_testkit::*;

/// Generous: a capture of a container full of files takes seconds, and the machine is shared.
const WAIT: Duration = Duration::from_secs(60);

fn name(test: &str) -> String {
    format!("dw-adv-resp-{test}-{}", std::process::id())
}

/// An agent responding with `playbook` (its actions log in its own directory).
struct Responding {
    agent: AgentProcess,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Responding {
    fn start(playbook: &str, extra: &[&str]) -> Responding {
        Self::start_via(&[], playbook, extra)
    }

    /// Like [`Responding::start`], the agent run through `wrapper` (see
    /// [`AgentProcess::start_via`]).
    fn start_via(wrapper: &[&str], playbook: &str, extra: &[&str]) -> Responding {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("playbook.yaml");
        std::fs::write(&pb, playbook).unwrap();
        let log = dir.path().join("actions.jsonl");
        let mut args = vec![
            "--playbook",
            pb.to_str().unwrap(),
            "--actions-log",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let agent = AgentProcess::start_via(wrapper, DRIFTWATCH, &args);
        Responding { agent, log, dir }
    }

    fn records(&self) -> Vec<Value> {
        read_alerts(&self.log)
    }

    /// Waits until `count` records satisfy `pred`; returns them.
    fn wait_records(&self, what: &str, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let hits: Vec<Value> = self.records().into_iter().filter(|r| pred(r)).collect();
            if hits.len() >= count {
                return hits;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {count} records of {what} within {WAIT:?}; records:\n{}",
                self.records()
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn about(r: &Value, c: &TestContainer) -> bool {
    r["container"]["id"]
        .as_str()
        .is_some_and(|i| i.starts_with(c.short()))
}

fn running(c: &TestContainer) -> bool {
    let out = docker(&["inspect", "-f", "{{.State.Running}}", &c.id]);
    String::from_utf8_lossy(&out.stdout).trim() == "true"
}

/// `docker exec -d`: runs `script` in the background of the container.
fn sh_detached(c: &TestContainer, script: &str) {
    let ok = Command::new(DOCKER)
        .args(["exec", "-d", &c.id, "sh", "-c", script])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn a_container_named_like_a_neighbours_short_id_does_not_steal_its_action() {
    if !ready() {
        return;
    }
    let n = name("shortid");
    let r = Responding::start(
        &format!(
            "playbooks:\n  - name: stop\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [{{action: stop, params: {{timeout: 1s}}}}]\n"
        ),
        &[],
    );
    let attacker = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    // The neighbour's name is the attacker's short id: Docker's own lookup of that id
    // answers with the neighbour (names are matched before id prefixes).
    let decoy = TestContainer::run(&["--name", attacker.short(), BUSYBOX, "sleep", "300"]);
    drop_and_run(&attacker, "shortid");
    let rec = r
        .wait_records("the stop", 1, |r| r["action"] == "stop")
        .remove(0);
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["container"]["id"], attacker.id.as_str(), "{rec}");
    let start = Instant::now();
    while running(&attacker) && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!running(&attacker), "the drifting container is stopped");
    assert!(
        running(&decoy),
        "the container named like its id is left alone"
    );
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn pod_labels_forged_in_an_image_are_no_pod_identity() {
    if !ready() {
        return;
    }
    let fake = driftwatch_kube::fake::FakeApi::start();
    let uid = fake.add_pod("prod", "payments-0", &[("app", "payments")]);
    // An image whose config claims that pod (labels, as `LABEL` in a Dockerfile would).
    let base = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    let image = TestImage(format!("dw-adv-forged-pod:{}", std::process::id()));
    let out = docker(&[
        "commit",
        "-c",
        "LABEL io.kubernetes.pod.name=payments-0",
        "-c",
        "LABEL io.kubernetes.pod.namespace=prod",
        "-c",
        &format!("LABEL io.kubernetes.pod.uid={uid}"),
        "-c",
        "LABEL io.kubernetes.container.name=app",
        &base.id,
        &image.0,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(base);
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{token: t0k3n}}\n",
            fake.url()
        ),
    )
    .unwrap();
    let n = name("forged");
    let r = Responding::start(
        &format!(
            "playbooks:\n  - name: pods\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions:\n      - {{action: label, params: {{labels: {{quarantined: \"true\"}}}}}}\n"
        ),
        &["--kubeconfig", kubeconfig.path().to_str().unwrap()],
    );
    let c = TestContainer::run(&["--name", &n, &image.0, "sleep", "300"]);
    drop_and_run(&c, "forged");
    let a = r.agent.wait_for("the forged container's drift", WAIT, |a| {
        has_tag(a, "binary_drift") && field(a, "container.id") == c.short()
    });
    for f in ["k8s.pod.name", "k8s.ns.name", "k8s.pod.uid"] {
        let v = field(&a, f).as_str().unwrap_or_default();
        assert!(
            v.is_empty() || v == "<NA>",
            "{f} taken from the image's labels: {a}"
        );
    }
    let rec = r
        .wait_records("the label step", 1, |r| r["action"] == "label")
        .remove(0);
    assert_eq!(rec["result"], "skipped", "{rec}");
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("is not a Kubernetes pod"),
        "{rec}"
    );
    assert!(
        fake.requests().is_empty(),
        "the API server was asked about the forged pod: {:?}",
        fake.requests()
    );
    let pod = fake.pod("prod", "payments-0").unwrap();
    assert!(pod["metadata"]["labels"].get("quarantined").is_none());
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn an_image_naming_a_pod_sandbox_it_did_not_join_gets_no_pod_identity() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    // A pod as cri-dockerd makes it: the sandbox, and a container in its network namespace.
    let sandbox = TestContainer::run_on_any_network(&[
        "--network",
        "none",
        "--label",
        "io.kubernetes.docker.type=podsandbox",
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        "io.kubernetes.pod.namespace=shop",
        "--label",
        "io.kubernetes.pod.uid=5f1c2a3b-0000-4000-8000-00000000aaaa",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let joined = TestContainer::run_on_any_network(&[
        "--network",
        &format!("container:{}", sandbox.id),
        "--label",
        &format!("io.kubernetes.sandbox.id={}", sandbox.id),
        "--label",
        "io.kubernetes.docker.type=container",
        "--label",
        "io.kubernetes.container.name=app",
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        "io.kubernetes.pod.namespace=shop",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    // An image that names that sandbox (and its pod) in its labels, run as a plain container.
    let base = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    let image = TestImage(format!("dw-adv-forged-sandbox:{}", std::process::id()));
    let out = docker(&[
        "commit",
        "-c",
        &format!("LABEL io.kubernetes.sandbox.id={}", sandbox.id),
        "-c",
        "LABEL io.kubernetes.docker.type=container",
        &base.id,
        &image.0,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(base);
    let forged = TestContainer::run(&[
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        "io.kubernetes.pod.namespace=shop",
        &image.0,
        "sleep",
        "300",
    ]);
    for (c, dir) in [(&joined, "joined"), (&forged, "forged")] {
        drop_and_run(c, dir);
    }
    let alert_of = |c: &TestContainer| {
        agent.wait_for("a drift", WAIT, |a| {
            has_tag(a, "binary_drift") && field(a, "container.id") == c.short()
        })
    };
    let a = alert_of(&joined);
    assert_eq!(field(&a, "k8s.pod.name"), "web-0", "{a}");
    assert_eq!(field(&a, "k8s.ns.name"), "shop", "{a}");
    let a = alert_of(&forged);
    let pod = field(&a, "k8s.pod.name").as_str().unwrap_or_default();
    assert!(pod.is_empty() || pod == "<NA>", "{a}");
    Aftermath { agent: &agent }.assert_all();
}

#[test]
fn a_host_network_container_is_never_isolated() {
    if !ready() || !require_tools(&["nft"]) {
        return;
    }
    let n = name("hostnet");
    // Should a regression isolate the host after all, its table is removed at once.
    struct Unisolate;
    impl Drop for Unisolate {
        fn drop(&mut self) {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", "driftwatch_isolate"])
                .output();
        }
    }
    let _unisolate = Unisolate;
    // The agent in a network namespace of its own, as in the DaemonSet (hostPID, not
    // hostNetwork): "not the agent's namespace" no longer means "not the host's".
    let r = Responding::start_via(
        &["unshare", "--net", "--"],
        &format!(
            "playbooks:\n  - name: isolate\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [isolate]\n"
        ),
        &["--no-api"],
    );
    // Drift in a container sharing the host's network namespace: isolating "its" namespace
    // would cut the host off.
    let c = TestContainer::run_on_any_network(&[
        "--name",
        &n,
        "--network",
        "host",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    drop_and_run(&c, "hostnet");
    let rec = r
        .wait_records("the isolate step", 1, |r| r["action"] == "isolate")
        .remove(0);
    assert_eq!(rec["result"], "failed", "{rec}");
    let why = rec["reason"].as_str().unwrap();
    assert!(
        why.contains("is in the host's network namespace") && why.ends_with("refused"),
        "{rec}"
    );
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("driftwatch_isolate"),
        "the host's ruleset was touched"
    );
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn a_payload_run_again_within_the_dedupe_window_is_killed_again() {
    if !ready() {
        return;
    }
    let n = name("killtwice");
    let r = Responding::start(
        &format!(
            "playbooks:\n  - name: kill\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    dedupe_window: 5m\n    actions: [kill, {{action: capture, dry_run: true, params: {{dir: /nonexistent}}}}]\n"
        ),
        &[],
    );
    let c = TestContainer::run(&["--name", &n, BUSYBOX, "sleep", "300"]);
    let (code, out) = c.sh("mkdir -p /tmp/miner && cp /bin/busybox /tmp/miner/sleep");
    assert_eq!(code, 0, "{out}");
    let mut pids = Vec::new();
    for round in 1..=2 {
        let ok = Command::new(DOCKER)
            .args(["exec", "-d", &c.id, "/tmp/miner/sleep", "300"])
            .status()
            .unwrap();
        assert!(ok.success());
        let kills = r.wait_records("a kill", round, |r| {
            r["action"] == "kill"
                && about(r, &c)
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("SIGKILL sent to pid"))
        });
        let pid = kills[round - 1]["alert"]["pid"].as_u64().unwrap();
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, ps) = c.sh("ps -o pid,args");
        assert!(!ps.contains("/tmp/miner/sleep"), "round {round}: {ps}");
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
    // The capture of the second run was collapsed by the dedupe window; its kill was not.
    let captures = r
        .records()
        .into_iter()
        .filter(|r| r["action"] == "capture")
        .count();
    assert_eq!(captures, 1);
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn a_flood_of_distinct_alerts_from_one_container_does_not_starve_a_neighbours_action() {
    if !ready() {
        return;
    }
    let flood = name("flood");
    let quiet = name("quiet");
    let evidence = tempfile::tempdir().unwrap();
    let r = Responding::start(
        &format!(
            "playbooks:\n  - name: contain\n    match: {{tags: [binary_drift], containers: [{flood}, {quiet}]}}\n    actions: [kill, {{action: capture, params: {{dir: {}, max_file_size: 4KiB}}}}]\n",
            evidence.path().display()
        ),
        &[],
    );
    let attacker = TestContainer::run(&["--name", &flood, BUSYBOX, "sleep", "300"]);
    let neighbour = TestContainer::run(&["--name", &quiet, BUSYBOX, "sleep", "300"]);
    // A new executable path each time (hard links of one dropped copy): no dedupe collapses
    // them, and each would start a capture of the whole container.
    sh_detached(
        &attacker,
        "mkdir -p /tmp/f && cp /bin/busybox /tmp/f/p && i=0; while [ $i -lt 200 ]; do mkdir -p /tmp/f/$i && ln /tmp/f/p /tmp/f/$i/true && /tmp/f/$i/true; i=$((i+1)); done",
    );
    r.wait_records("the flood's first capture", 1, |r| {
        r["action"] == "capture" && about(r, &attacker)
    });
    drop_and_run(&neighbour, "neighbour");
    // The neighbour's alert waits for the capture in progress at most, not for the flood.
    let rec = r
        .wait_records("the neighbour's capture", 1, |r| {
            r["action"] == "capture" && about(r, &neighbour)
        })
        .remove(0);
    assert_eq!(rec["result"], "ok", "{rec}");
    // The attacker's own captures stopped at its budget of runs.
    let flood_captures = r
        .records()
        .into_iter()
        .filter(|r| r["action"] == "capture" && about(r, &attacker))
        .count();
    assert!(
        flood_captures <= 20,
        "{flood_captures} captures for one container within a minute"
    );
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn an_action_posted_without_the_token_from_a_host_network_container_is_refused() {
    if !ready() || !require_tools(&["nft"]) {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let r = Responding::start("playbooks: []\n", &["--api-listen", &listen]);
    let victim = TestContainer::run(&["--name", &name("victim"), BUSYBOX, "sleep", "300"]);
    // A container in the host's network namespace reaches the agent's loopback listener.
    let out = docker(&["run", "-d", "--network", "host", BUSYBOX, "sleep", "300"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attacker = TestContainer {
        id: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    };
    let post = |who: &TestContainer, auth: &str| {
        who.sh(&format!(
            "wget -q -O- {auth} --header 'Content-Type: application/json' --header 'X-Driftwatch-Request: 1' --post-data '{{\"confirm\": true}}' http://127.0.0.1:{port}/api/v1/containers/{}/isolate 2>&1",
            victim.short()
        ))
    };
    let (code, out) = post(&attacker, "");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("401"), "{out}");
    let (_, out) = post(
        &attacker,
        "--header 'Authorization: Bearer 0000000000000000000000000000000000000000000000000000000000000000'",
    );
    assert!(out.contains("401"), "a guessed token: {out}");
    assert!(
        r.records().is_empty(),
        "an action was taken: {:?}",
        r.records()
    );
    // The operator, with the token from the file the agent created (0600).
    let mode = std::fs::metadata(&r.agent.token_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // (Retried until the agent has seen the victim start.)
    let auth = format!("--header 'Authorization: Bearer {}'", r.agent.api_token());
    let start = Instant::now();
    let out = loop {
        let (code, out) = post(&attacker, &auth);
        if code == 0 {
            break out;
        }
        assert!(
            out.contains("404") && start.elapsed() < WAIT,
            "the operator's action with the token: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let rec: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(rec["action"], "isolate", "{rec}");
    assert_eq!(rec["result"], "ok", "{rec}");
    // Released again (the victim's namespace is its own; nothing else to undo).
    let out = Command::new(DRIFTWATCH)
        .args([
            "release",
            victim.short(),
            "--actions-log",
            r.log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Aftermath { agent: &r.agent }.assert_all();
}

#[test]
fn a_signal_flood_from_a_host_pid_container_does_not_stop_the_agent() {
    if !ready() {
        return;
    }
    let mut agent = AgentProcess::start(DRIFTWATCH, &["--no-store"]);
    let pid = agent.pid();
    let c = TestContainer::run(&["--pid", "host", BUSYBOX, "sleep", "300"]);
    // Each stop or reload request buried under harmless signals (SIGWINCH is ignored by
    // default) sent as fast as a shell can, so that the record naming its sender is pushed out
    // or late when the agent asks who sent it.
    let (code, out) = c.sh(&format!(
        "i=0; while [ $i -lt 200 ]; do kill -TERM {pid}; kill -HUP {pid}; j=0; while [ $j -lt 80 ]; do kill -WINCH {pid}; j=$((j+1)); done; i=$((i+1)); done"
    ));
    assert_eq!(code, 0, "{out}");
    agent.wait_for("the flood's signals", WAIT, |a| {
        a["rule"] == "Signal sent to driftwatch from a container"
            && field(a, "container.id") == c.short()
    });
    Aftermath { agent: &agent }.assert_all();
    // A stop from the host is still honoured: a clean shutdown (its summary is logged).
    agent.stop();
    agent.wait_for_log("the agent's clean shutdown", 1, WAIT, |l| {
        l.contains("execs seen in containers")
    });
}

#[test]
fn evidence_bundles_and_the_record_file_are_private() {
    if !ready() {
        return;
    }
    let n = name("modes");
    let evidence = tempfile::tempdir().unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("events.jsonl");
    let r = Responding::start(
        &format!(
            "playbooks:\n  - name: capture\n    match: {{tags: [binary_drift], containers: [{n}]}}\n    actions: [{{action: capture, params: {{dir: {}}}}}]\n",
            evidence.path().display()
        ),
        &["--record", record.to_str().unwrap()],
    );
    let c = TestContainer::run(&[
        "--name",
        &n,
        "-e",
        "DB_PASSWORD=hunter2",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    drop_and_run(&c, "modes");
    let rec = r
        .wait_records("the capture", 1, |r| r["action"] == "capture")
        .remove(0);
    assert_eq!(rec["result"], "ok", "{rec}");
    for f in [&only_bundle(evidence.path()), &record, &r.log] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is mode {mode:04o}", f.display());
    }
    assert!(r.dir.path().exists());
    Aftermath { agent: &r.agent }.assert_all();
}
