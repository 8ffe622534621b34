//! Every response action on pods made the way a kubelet makes them: a containerd of the
//! test's own driven through CRI (`CriNode`), a real agent given its socket and a playbook,
//! real drift in the pod. dockerd runs on the same host all along, and does not know the
//! pods' containers: the actions must find them through containerd. Each test asserts what
//! the action did to the pod (a process gone, the cgroup frozen then thawed, traffic cut as
//! seen from inside the pods, a bundle holding the dropped binary, the container stopped or
//! removed through CRI) and, for the Kubernetes API actions, the requests the fake API server
//! received (pod name, namespace, uid precondition).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_kube::fake::{FakeApi, RecordedRequest};
use driftwatch_testkit::*;
use serde_json::{Value, json};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);

fn ready_for(images: &[&'static str]) -> bool {
    require(&[Requirement::Bpf]) && require_that(CriNode::check(images))
}

/// An agent watching `node`'s containerd (and the host's dockerd, as on a node running both)
/// and responding with `playbook`.
struct PodResponder {
    agent: AgentProcess,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PodResponder {
    /// With `api`, the fake API server is its Kubernetes API (a kubeconfig in its directory:
    /// [`PodResponder::kubeconfig`]). The shipped rules: every pod alert carries the pod's
    /// uid, which `evict` checks.
    fn start(node: &CriNode, playbook: &str, api: Option<&FakeApi>) -> Self {
        Self::start_with(node, playbook, api, &[])
    }

    /// [`PodResponder::start`] with `extra` flags.
    fn start_with(node: &CriNode, playbook: &str, api: Option<&FakeApi>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("playbook.yaml");
        std::fs::write(&pb, playbook).unwrap();
        let log = dir.path().join("actions.jsonl");
        let kc = api.map(|a| kubeconfig(dir.path(), a));
        let mut args = vec![
            "--playbook",
            pb.to_str().unwrap(),
            "--actions-log",
            log.to_str().unwrap(),
        ];
        if let Some(kc) = &kc {
            args.extend(["--kubeconfig", kc.to_str().unwrap()]);
        }
        args.extend_from_slice(extra);
        let agent = agent_on_node(DRIFTWATCH, node, &args);
        PodResponder {
            agent,
            log,
            _dir: dir,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self._dir.path().join("kubeconfig")
    }

    fn records(&self) -> Vec<Value> {
        read_alerts(&self.log)
    }

    /// The record of `action` on container `c`.
    fn wait_record(&self, c: &PodContainer, action: &str) -> Value {
        let start = Instant::now();
        loop {
            if let Some(r) = self
                .records()
                .into_iter()
                // The full id once the action resolved the container; the alert's short id
                // for one that only spoke to the API server.
                .find(|r| {
                    r["action"] == action
                        && r["container"]["id"]
                            .as_str()
                            .is_some_and(|i| i.len() >= 12 && c.id.starts_with(i))
                })
            {
                return r;
            }
            assert!(
                start.elapsed() < WAIT,
                "no `{action}` record for {} within {WAIT:?}; records:\n{}\nalerts:\n{}",
                c.short(),
                lines(&self.records()),
                lines(&self.agent.alerts()),
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn lines(v: &[Value]) -> String {
    v.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A pod of one Debian container that sleeps, in namespace `shop`.
fn debian_pod(node: &CriNode, name: &str) -> Pod {
    node.run_pod(
        PodSpec::new(name, "shop")
            .label("app", "web")
            .container(ContainerSpec::debian("app")),
    )
}

/// Copies `sleep` to `/tmp/<dir>/sleep` and starts it for 300 s in the background: a drifted
/// process that stays. Returns at once (its output goes nowhere, so `ExecSync` does not wait).
fn start_drifted_sleep(c: &PodContainer, dir: &str) {
    let (code, out) = c.sh(&format!(
        "mkdir -p /tmp/{dir} && cp /bin/sleep /tmp/{dir}/sleep && (/tmp/{dir}/sleep 300 </dev/null >/dev/null 2>&1 &)"
    ));
    assert_eq!(code, 0, "{out}");
}

/// Host pids of the processes of the container whose executable is `exe` (as the container
/// sees it), found through the container's cgroup.
fn pids_running(c: &PodContainer, exe: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !cgroup.contains(&c.id) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.split(|b| *b == 0).next() == Some(exe.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A kubeconfig naming the fake API server, in `dir`.
fn kubeconfig(dir: &Path, fake: &FakeApi) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{token: t0k3n}}\n",
            fake.url()
        ),
    )
    .unwrap();
    p
}

/// The pod as the API server would hold it: the CRI pod's name, namespace, uid and labels.
fn register(fake: &FakeApi, pod: &Pod) {
    fake.insert_pod(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
            "labels": {"app": "web"},
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": DEBIAN}]},
        "status": {"phase": "Running"},
    }));
}

/// The `method` request the fake API server received about `pod` (its path or below it).
fn request_to(fake: &FakeApi, pod: &Pod, method: &str) -> RecordedRequest {
    let path = format!("/api/v1/namespaces/{}/pods/{}", pod.namespace, pod.name);
    let all = fake.requests();
    all.iter()
        .find(|r| r.method == method && r.path.starts_with(&path))
        .cloned()
        .unwrap_or_else(|| panic!("no {method} about pod {}: {all:?}", pod.name))
}

#[test]
fn kill_and_capture_in_a_pod() {
    if !ready_for(&[DEBIAN]) || !require_tools(&["zstd", "tar"]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let evidence = tempfile::tempdir().unwrap();
    let r = PodResponder::start(
        &node,
        &format!(
            "playbooks:\n  - name: contain\n    match: {{tags: [binary_drift], namespaces: [shop]}}\n    actions:\n      - {{action: capture, params: {{dir: {}}}}}\n      - kill\n",
            evidence.path().display()
        ),
        None,
    );
    let pod = debian_pod(&node, "miner-0");
    let c = pod.first();
    start_drifted_sleep(c, "miner");
    let cap = r.wait_record(c, "capture");
    assert_eq!(cap["result"], "ok", "{cap}");
    assert_eq!(cap["container"]["k8s_namespace"], "shop", "{cap}");
    assert_eq!(cap["container"]["k8s_pod"], "miner-0", "{cap}");
    let kill = r.wait_record(c, "kill");
    assert_eq!(kill["result"], "ok", "{kill}");
    assert_eq!(kill["alert"]["exepath"], "/tmp/miner/sleep", "{kill}");
    wait_until("the drifted sleep killed", || {
        pids_running(c, "/tmp/miner/sleep").is_empty()
    });
    // Only the drifted process: the pod's own keeps running.
    assert_eq!(c.state().as_deref(), Some("CONTAINER_RUNNING"));
    let (code, out) = c.sh("echo alive");
    assert_eq!((code, out.trim()), (0, "alive"));

    // The bundle: named after the pod's container, verifies, and holds the dropped binary,
    // the container's processes and the alert.
    let b = &only_bundle(evidence.path());
    assert!(
        cap["detail"]
            .as_str()
            .unwrap()
            .starts_with(&b.display().to_string()),
        "{cap}"
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
    let entries = bundle(b, "-t");
    assert!(entries.contains("files/tmp/miner/sleep"), "{entries}");
    let procs = bundle(b, "-xO --wildcards '*processes*'");
    assert!(procs.contains("/tmp/miner/sleep"), "{entries}\n{procs}");
    let alerts = bundle(b, "-xO --wildcards '*alerts.jsonl'");
    assert!(alerts.contains("miner-0"), "{entries}\n{alerts}");
}

/// `tar ARGS` on the decompressed bundle `b`: its listing, or members' contents.
fn bundle(b: &Path, tar_args: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar {tar_args}", b.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// freeze, then a notify the receiver holds (the test looks at the frozen pod meanwhile),
/// then unfreeze once it answers.
#[test]
fn freeze_notify_unfreeze_in_a_pod() {
    if !ready_for(&[DEBIAN]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let hook = HttpReceiver::start(&[ReceiverReply::Hang]);
    let r = PodResponder::start(
        &node,
        &format!(
            "playbooks:\n  - name: hold\n    match: {{tags: [binary_drift], namespaces: [shop]}}\n    actions:\n      - freeze\n      - {{action: notify, params: {{url: \"{}\", timeout: 60s}}}}\n      - unfreeze\n",
            hook.url("/hook")
        ),
        None,
    );
    let pod = debian_pod(&node, "frozen-0");
    let c = pod.first();
    // A counter the host reads through the container's root, never by entering it (an exec
    // into a frozen cgroup would hang).
    let (code, out) =
        c.sh("(while :; do echo . >> /tmp/count; sleep 0.1; done </dev/null >/dev/null 2>&1 &)");
    assert_eq!(code, 0, "{out}");
    let count_file = format!("/proc/{}/root/tmp/count", c.pid());
    let count = || {
        std::fs::read_to_string(&count_file)
            .map(|s| s.len())
            .unwrap_or(0)
    };
    start_drifted_sleep(c, "freeze");
    let frozen = r.wait_record(c, "freeze");
    assert_eq!(frozen["result"], "ok", "{frozen}");
    assert_eq!(frozen["container"]["k8s_pod"], "frozen-0", "{frozen}");
    // The freezer of the pod's container, under the kubelet's cgroup parent.
    let detail = frozen["detail"].as_str().unwrap();
    let dir = PathBuf::from(detail.trim_start_matches("frozen: "));
    assert!(
        dir.ends_with(format!(
            "{}/{}",
            pod.cgroup_parent.trim_start_matches('/'),
            c.id
        )),
        "{frozen}"
    );
    let requests = hook.wait_requests(1);
    let body: Value = serde_json::from_str(&requests[0].body).unwrap();
    let fields = &body["alert"]["output_fields"];
    assert_eq!(fields["container.id"], c.short(), "{body}");
    assert_eq!(fields["k8s.pod.name"], "frozen-0", "{body}");
    assert_eq!(fields["k8s.ns.name"], "shop", "{body}");
    assert_eq!(fields["k8s.pod.uid"], pod.uid.as_str(), "{body}");
    assert_eq!(body["actions"][0]["action"], "freeze", "{body}");
    assert_eq!(body["actions"][0]["result"], "ok", "{body}");
    // Frozen while the hook holds the playbook: the kernel says so and the counter stands.
    let state = match std::fs::read_to_string(dir.join("freezer.state")) {
        Ok(v1) => v1,
        Err(_) => std::fs::read_to_string(dir.join("cgroup.events")).unwrap(),
    };
    assert!(
        state.trim() == "FROZEN" || state.contains("frozen 1"),
        "{state}"
    );
    let a = count();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(count(), a, "frozen: the counter must not advance");
    assert!(
        r.records().iter().all(|r| r["action"] != "unfreeze"),
        "unfreeze ran before the notify answered"
    );

    hook.release();
    let thawed = r.wait_record(c, "unfreeze");
    assert_eq!(thawed["result"], "ok", "{thawed}");
    let told = r.wait_record(c, "notify");
    assert_eq!(told["result"], "ok", "{told}");
    wait_until("the counter resumes", || count() > a);
    let (code, out) = c.sh("echo thawed");
    assert_eq!((code, out.trim()), (0, "thawed"));
}

/// Whether the pod container's network namespace holds the isolation table (`nft` entered
/// into it from the host).
fn isolation_table_in(c: &PodContainer) -> bool {
    Command::new("nsenter")
        .args([
            "-t",
            &c.pid().to_string(),
            "-n",
            "nft",
            "list",
            "table",
            "inet",
        ])
        .arg("driftwatch_isolate")
        .output()
        .unwrap()
        .status
        .success()
}

/// Inside the pod: connects to `addr` and prints what it reads, or the error.
fn connect_from(c: &PodContainer, addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "import socket\ntry:\n  s = socket.create_connection(('{host}', {port}), timeout=2)\n  print(s.recv(16).decode())\nexcept Exception as e:\n  print('error', type(e).__name__)\n"
    );
    c.exec(&["python3", "-c", &script]).1.trim().to_string()
}

/// Serves `hello` on 0.0.0.0:8080 in the pod's container.
fn serve_hello(c: &PodContainer) {
    let server = "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 8080))\ns.listen()\nwhile True:\n  c, _ = s.accept()\n  c.sendall(b'hello')\n  c.close()\n";
    let (code, out) = c.sh(&format!(
        "(python3 -c \"{server}\" </dev/null >/dev/null 2>&1 &) ; sleep 0.5"
    ));
    assert_eq!(code, 0, "{out}");
}

fn pod_ip(c: &PodContainer) -> String {
    let (code, out) = c.exec(&["hostname", "-I"]);
    assert_eq!(code, 0, "{out}");
    out.split_whitespace()
        .next()
        .expect("an address")
        .to_string()
}

/// The pod's own network namespace gets the isolation table (checked from inside the pods:
/// a neighbour pod no longer reaches it, it no longer reaches the neighbour, its loopback
/// still works), and the API server a deny-all NetworkPolicy selecting it.
#[test]
fn isolate_a_pod_in_its_network_namespace_and_through_a_network_policy() {
    if !ready_for(&[DEBIAN]) || !require_tools(&["nft", "nsenter"]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let fake = FakeApi::start();
    let r = PodResponder::start(
        &node,
        "playbooks:\n  - name: cut\n    match: {tags: [binary_drift], exepaths: ['/tmp/cut/*']}\n    actions: [isolate]\n",
        Some(&fake),
    );
    let kc = r.kubeconfig();
    let target = debian_pod(&node, "web-0");
    let neighbour = debian_pod(&node, "client-0");
    register(&fake, &target);
    let (t, n) = (target.first(), neighbour.first());
    serve_hello(t);
    serve_hello(n);
    let (t_addr, n_addr) = (format!("{}:8080", pod_ip(t)), format!("{}:8080", pod_ip(n)));
    assert_eq!(connect_from(n, &t_addr), "hello", "reachable before");
    assert_eq!(connect_from(t, &n_addr), "hello", "reaches out before");
    let host_before = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap()
        .stdout;

    start_drifted_sleep(t, "cut");
    let rec = r.wait_record(t, "isolate");
    assert_eq!(rec["result"], "ok", "{rec}");
    let detail = rec["detail"].as_str().unwrap();
    assert!(
        detail.contains("nft table inet driftwatch_isolate"),
        "{rec}"
    );
    assert!(
        detail.contains("NetworkPolicy shop/") && detail.contains("selects pod web-0"),
        "{rec}"
    );

    assert!(
        connect_from(n, &t_addr).starts_with("error"),
        "the neighbour still reaches the isolated pod"
    );
    assert!(
        connect_from(t, &n_addr).starts_with("error"),
        "the isolated pod still reaches out"
    );
    assert_eq!(connect_from(t, "127.0.0.1:8080"), "hello", "loopback stays");
    assert_eq!(
        connect_from(n, &n_addr),
        "hello",
        "the neighbour is not isolated"
    );
    // The table is in the pod's namespace, and the host's ruleset is as it was.
    assert!(
        isolation_table_in(t),
        "no table in the pod's network namespace"
    );
    let host_after = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        host_after, host_before,
        "the host's ruleset must not change"
    );

    // The API server: the pod read by name, then a deny-all policy selecting its uid.
    let reqs = fake.requests();
    let get = reqs
        .iter()
        .find(|q| q.method == "GET" && q.path == "/api/v1/namespaces/shop/pods/web-0")
        .unwrap_or_else(|| panic!("no GET of the pod: {reqs:?}"));
    assert_eq!(get.authorization.as_deref(), Some("Bearer t0k3n"));
    let policies = fake.network_policies("shop");
    assert_eq!(policies.len(), 1, "{policies:?}");
    let spec = &policies[0]["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]), "{spec}");
    let selector = spec["podSelector"]["matchLabels"].to_string();
    assert!(selector.contains(&target.uid), "{selector}");
    let labels = &fake.pod("shop", "web-0").unwrap()["metadata"]["labels"];
    assert!(labels.to_string().contains(&target.uid), "{labels}");

    // `driftwatch release` finds the pod's container through containerd too, and undoes
    // both halves.
    let out = Command::new(DRIFTWATCH)
        .args([
            "release",
            t.short(),
            "--containerd-socket",
            node.socket_arg(),
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--actions-log",
            r.log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("network isolation removed"), "{text}");
    assert!(
        text.contains("NetworkPolicy of pod shop/web-0 removed"),
        "{text}"
    );
    assert!(fake.network_policies("shop").is_empty());
    assert_eq!(connect_from(n, &t_addr), "hello", "reachable again");
}

/// `stop` through CRI `StopContainer` (the kubelet would restart it by the pod's
/// restartPolicy), and `evict` without a Kubernetes API: stopped, then removed through CRI
/// `RemoveContainer`; the other pods of the node untouched.
#[test]
fn stop_and_evict_a_pods_container_through_cri() {
    if !ready_for(&[DEBIAN]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let r = PodResponder::start(
        &node,
        "playbooks:\n  - name: stop\n    match: {tags: [binary_drift], exepaths: ['/tmp/stop/*']}\n    actions: [{action: stop, params: {timeout: 2s}}]\n  - name: evict\n    match: {tags: [binary_drift], exepaths: ['/tmp/evict/*']}\n    actions: [{action: evict, params: {grace_period: 2s}}]\n",
        None,
    );
    let stopped = debian_pod(&node, "stop-0");
    let evicted = debian_pod(&node, "evict-0");
    let bystander = debian_pod(&node, "bystander-0");
    let (s, e) = (stopped.first(), evicted.first());
    start_drifted_sleep(s, "stop");
    let rec = r.wait_record(s, "stop");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .contains("stopped (timeout 2s)"),
        "{rec}"
    );
    assert_eq!(s.state().as_deref(), Some("CONTAINER_EXITED"), "{rec}");

    start_drifted_sleep(e, "evict");
    let rec = r.wait_record(e, "evict");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .ends_with("stopped (timeout 2s), removed"),
        "{rec}"
    );
    assert_eq!(e.state(), None, "removed: CRI no longer knows it");
    assert_eq!(
        bystander.first().state().as_deref(),
        Some("CONTAINER_RUNNING")
    );
}

/// `curl` of the agent's API: `POST /api/v1/containers/CONTAINER/ACTION` confirmed, as the
/// web UI sends it; the JSON answer.
fn api_action(agent: &AgentProcess, port: u16, container: &str, action: &str) -> Value {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {}", agent.api_token()),
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Driftwatch-Request: 1",
            "-H",
            &format!("Origin: http://127.0.0.1:{port}"),
            "--data",
            r#"{"confirm": true}"#,
            &format!("http://127.0.0.1:{port}/api/v1/containers/{container}/{action}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{action}: {e}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The API's manual isolate and release reach a pod's container too (through containerd).
#[test]
fn the_apis_manual_isolate_and_release_on_a_pod() {
    if !ready_for(&[DEBIAN]) || !require_tools(&["curl", "nsenter", "nft"]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A playbook that never matches: the API's actions are manual ones.
    let r = PodResponder::start_with(
        &node,
        "playbooks:\n  - name: none\n    match: {exepaths: ['/nowhere/*']}\n    actions: [kill]\n",
        None,
        &["--api-listen", &listen],
    );
    let pod = debian_pod(&node, "manual-0");
    let c = pod.first();
    until_pod_watched(&r.agent, c);
    let table = || isolation_table_in(c);
    assert!(!table(), "isolated before");
    let rec = api_action(&r.agent, port, c.short(), "isolate");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["container"]["id"], c.id.as_str(), "{rec}");
    assert_eq!(rec["container"]["k8s_pod"], "manual-0", "{rec}");
    assert!(table(), "no table in the pod's network namespace: {rec}");
    let rec = api_action(&r.agent, port, c.short(), "release");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert!(!table(), "still isolated after release: {rec}");
}

/// A containerd container the CRI plugin did not make (`ctr run`, a named id): `evict` (not a
/// pod) stops it through its task (SIGTERM, here ignored by the shell as pid 1, then SIGKILL
/// after the timeout) and deletes the task, the container and its snapshot.
#[test]
fn evict_a_plain_containerd_container_through_its_task() {
    if !ready_for(&[BUSYBOX]) || !require_tools(&["ctr"]) {
        return;
    }
    let node = CriNode::start(&[]);
    // The helpers take the socket for the test's life; the node outlives every use here.
    let socket: &'static str = Box::leak(node.socket_arg().to_string().into_boxed_str());
    let r = PodResponder::start(
        &node,
        "playbooks:\n  - name: evict\n    match: {tags: [binary_drift], exepaths: ['/tmp/plain/*']}\n    actions: [{action: evict, params: {grace_period: 1s}}]\n",
        None,
    );
    let image = CtrImage::import(socket, "default", BUSYBOX);
    let name = format!("dw-plain-{}", std::process::id());
    let c = CtrContainer::run(
        socket,
        "default",
        &image.name,
        &name,
        &[],
        &[],
        &["sh", "-c", "sleep 300"],
    );
    let (ok, out) = c.sh(
        "mkdir -p /tmp/plain && cp /bin/busybox /tmp/plain/sleep && (/tmp/plain/sleep 300 </dev/null >/dev/null 2>&1 &)",
    );
    assert!(ok, "{out}");
    let start = Instant::now();
    let rec = loop {
        if let Some(rec) = r
            .records()
            .into_iter()
            .find(|x| x["action"] == "evict" && x["container"]["id"] == name.as_str())
        {
            break rec;
        }
        assert!(
            start.elapsed() < WAIT,
            "no evict record; records:\n{}\nalerts:\n{}",
            lines(&r.records()),
            lines(&r.agent.alerts())
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(rec["result"], "ok", "{rec}");
    assert!(
        rec["detail"]
            .as_str()
            .unwrap()
            .ends_with("stopped (timeout 1s), removed"),
        "{rec}"
    );
    let (ok, list) = ctr_in(socket, "default", &["containers", "ls", "-q"]);
    assert!(ok, "{list}");
    assert!(!list.lines().any(|l| l.trim() == name), "{list}");
    let (ok, tasks) = ctr_in(socket, "default", &["tasks", "ls"]);
    assert!(ok && !tasks.contains(&name), "{tasks}");
    let (ok, snaps) = ctr_in(socket, "default", &["snapshots", "ls"]);
    assert!(ok && !snaps.contains(&name), "{snaps}");
}

/// The pod actions through the API server, with the shipped rules: every alert about a pod
/// carries its uid in `output_fields` whatever the rule prints, and that uid is the
/// precondition of the delete and the eviction.
#[test]
fn evict_delete_and_label_pods_through_the_api_server() {
    if !ready_for(&[DEBIAN]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let fake = FakeApi::start();
    let r = PodResponder::start(
        &node,
        "playbooks:\n  - name: delete\n    match: {tags: [binary_drift], exepaths: ['/tmp/delete/*']}\n    actions: [{action: evict, params: {grace_period: 5s}}]\n  - name: evict\n    match: {tags: [binary_drift], exepaths: ['/tmp/evict/*']}\n    actions: [{action: evict, params: {eviction_api: true}}]\n  - name: label\n    match: {tags: [binary_drift], exepaths: ['/tmp/label/*']}\n    actions: [{action: label, params: {labels: {quarantined: \"true\"}}}]\n",
        Some(&fake),
    );
    let deleted = debian_pod(&node, "delete-0");
    let evicted = debian_pod(&node, "evict-0");
    let labelled = debian_pod(&node, "label-0");
    for p in [&deleted, &evicted, &labelled] {
        register(&fake, p);
    }

    start_drifted_sleep(deleted.first(), "delete");
    let rec = r.wait_record(deleted.first(), "evict");
    assert_eq!(rec["result"], "ok", "{rec}");
    assert_eq!(rec["detail"], "pod shop/delete-0 deleted (grace period 5s)");
    let alert = r
        .agent
        .alerts()
        .into_iter()
        .find(|a| field(a, "container.id") == deleted.first().short())
        .unwrap();
    assert_eq!(
        field(&alert, "k8s.pod.uid"),
        deleted.uid.as_str(),
        "{alert}"
    );
    let del = request_to(&fake, &deleted, "DELETE");
    assert_eq!(del.path, "/api/v1/namespaces/shop/pods/delete-0");
    let body = del.body.as_ref().unwrap();
    assert_eq!(body["gracePeriodSeconds"], 5, "{body}");
    assert_eq!(body["preconditions"]["uid"], deleted.uid.as_str(), "{body}");
    assert!(fake.pod("shop", "delete-0").is_none());

    start_drifted_sleep(evicted.first(), "evict");
    let rec = r.wait_record(evicted.first(), "evict");
    assert_eq!(rec["result"], "ok", "{rec}");
    let post = request_to(&fake, &evicted, "POST");
    assert_eq!(post.path, "/api/v1/namespaces/shop/pods/evict-0/eviction");
    let body = post.body.as_ref().unwrap();
    assert_eq!(body["kind"], "Eviction", "{body}");
    assert_eq!(body["metadata"]["name"], "evict-0", "{body}");
    assert_eq!(body["metadata"]["namespace"], "shop", "{body}");
    assert_eq!(
        body["deleteOptions"]["preconditions"]["uid"],
        evicted.uid.as_str(),
        "{body}"
    );
    assert!(fake.pod("shop", "evict-0").is_none());

    start_drifted_sleep(labelled.first(), "label");
    let rec = r.wait_record(labelled.first(), "label");
    assert_eq!(rec["result"], "ok", "{rec}");
    let patch = request_to(&fake, &labelled, "PATCH");
    assert_eq!(patch.path, "/api/v1/namespaces/shop/pods/label-0");
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    let labels = &fake.pod("shop", "label-0").unwrap()["metadata"]["labels"];
    assert_eq!(
        labels,
        &json!({"app": "web", "quarantined": "true"}),
        "{labels}"
    );
    // The pods themselves stay on the node: removing them is the kubelet's part once the
    // API server has deleted them.
    for p in [&deleted, &evicted, &labelled] {
        assert_eq!(p.first().state().as_deref(), Some("CONTAINER_RUNNING"));
    }
}
