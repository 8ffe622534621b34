//! Drift in pods made the way a kubelet makes them: a containerd of the test's own driven
//! through CRI (`CriNode`), a real agent given its socket. Every drift kind runs in such a
//! pod, and every alert of the pod's container names the pod (`k8s.ns.name`,
//! `k8s.pod.name`, `k8s.pod.uid`) from the first one on: the agent learns of the container
//! from its first event, with nothing earlier to warm a cache.
//! The agent runs the shipped rules: the pod's fields are in every pod alert whatever a
//! rule's output prints.

use std::time::Duration;

use driftwatch_testkit::*;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);

fn ready(images: &[&'static str]) -> bool {
    require(&[Requirement::Bpf]) && require_that(CriNode::check(images))
}

/// A node, an agent watching it and a Debian pod on it (`shop/NAME`, container `app`),
/// dropped in that order: the pod first, the node last.
struct DebianPod {
    pod: Pod,
    agent: AgentProcess,
    _node: CriNode,
}

impl DebianPod {
    /// `None` (the test skips) when the host cannot run a node.
    fn start(name: &str, agent_flags: &[&str]) -> Option<DebianPod> {
        if !ready(&[DEBIAN]) {
            return None;
        }
        let node = CriNode::start(&[DEBIAN]);
        let agent = agent_on_node(DRIFTWATCH, &node, agent_flags);
        let pod = node.run_pod(
            PodSpec::new(name, "shop")
                .label("app", "web")
                .container(ContainerSpec::debian("app")),
        );
        Some(DebianPod {
            pod,
            agent,
            _node: node,
        })
    }
}

#[test]
fn binary_drift_in_a_pod_names_the_pod_from_the_first_event() {
    let Some(scene) = DebianPod::start("web-0", &[]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    // In the cgroup a kubelet with the cgroupfs driver gives a BestEffort pod's container.
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    let want = format!("/kubepods/besteffort/pod{}/{}", pod.uid, c.id);
    assert!(
        cgroup.lines().any(|l| l.ends_with(&want)),
        "{want} not in:\n{cgroup}"
    );
    // The first thing run in the container after its entrypoint: the alert is the agent's
    // first sight of it.
    let (code, out) = c.sh("cp /bin/true /tmp/dropped && /tmp/dropped");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the dropped binary", WAIT, |a| {
        pod_alert(c, "binary_drift")(a) && field(a, "drift.path") == "/tmp/dropped"
    });
    assert_eq!(a["rule"], "Drop and execute new binary in container", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(&a, "proc.pname"), "sh", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
}

#[test]
fn file_drift_in_a_pod() {
    let Some(scene) = DebianPod::start("files-0", &[]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    until_pod_watched(agent, c);
    let (code, out) = c.sh("echo 'evil:x:0:0::/root:/bin/sh' >> /etc/passwd");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the write to /etc/passwd", WAIT, |a| {
        pod_alert(c, "file_drift")(a) && field(a, "fd.name") == "/etc/passwd"
    });
    assert_eq!(a["rule"], "Write below etc", "{a}");
    assert_eq!(field(&a, "proc.name"), "sh", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
}

#[test]
fn package_drift_in_a_pod() {
    let Some(scene) = DebianPod::start("pkg-0", &[]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    until_pod_watched(agent, c);
    let (code, out) = c.sh(&dpkg_install_script("dw-pod-pkg", "2.0.1"));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("dpkg -i", WAIT, |a| {
        field(a, "container.id") == c.short() && a["rule"] == "Package drift in container"
    });
    assert!(has_tag(&a, "package_drift"), "{a}");
    let output = a["output"].as_str().unwrap();
    assert!(output.contains("added dw-pod-pkg 2.0.1"), "{output}");
    assert_eq!(field(&a, "fd.name"), "/var/lib/dpkg/status", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
}

#[test]
fn a_new_loopback_listener_in_a_pod_is_network_drift() {
    let Some(scene) = DebianPod::start("net-0", &[]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    // On the pod's loopback only; ExecSync returns once the listener is up (its output
    // goes nowhere, so the exec does not wait for it).
    let listen = "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 8081))\ns.listen()\ntime.sleep(60)\n";
    let (code, out) = c.sh(&format!(
        "python3 -c \"{listen}\" </dev/null >/dev/null 2>&1 & sleep 0.5"
    ));
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the undeclared listener", WAIT, |a| {
        pod_alert(c, "network_drift")(a)
            && field(a, "drift.verdict") == "undeclared_port"
            && field(a, "drift.path") == "8081/tcp"
    });
    assert_eq!(a["rule"], "Network drift detected in container", "{a}");
    assert_eq!(field(&a, "drift.subject"), "listener", "{a}");
    assert_eq!(field(&a, "fd.name"), "127.0.0.1:8081", "{a}");
    assert_eq!(field(&a, "proc.name"), "python3", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
}

#[test]
fn a_shell_started_by_a_program_in_a_pod_is_reported() {
    let Some(scene) = DebianPod::start("shell-0", &[]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    // The exec'd `sh` is the runtime's (not reported); the one it starts is a program's.
    let (code, out) = c.exec(&["sh", "-c", "sh -c 'echo nested'; true"]);
    assert_eq!((code, out.trim()), (0, "nested"));
    let a = agent.wait_for("the nested shell", WAIT, |a| {
        pod_alert(c, "shell")(a) && field(a, "proc.pname") == "sh"
    });
    assert_eq!(a["rule"], "Terminal shell in container", "{a}");
    assert_eq!(field(&a, "proc.name"), "sh", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
}

#[test]
fn prevention_stops_a_dropped_binary_in_a_pod_before_it_runs() {
    let Some(scene) = DebianPod::start("prevent-0", &["--enforce", "prevent"]) else {
        return;
    };
    let (pod, agent) = (&scene.pod, &scene.agent);
    let c = pod.first();
    until_pod_watched(agent, c);
    // Added to the writable layer: denied, the shell gets EPERM (126) and the program never
    // creates its marker.
    let (code, out) = c.sh("cp /usr/bin/touch /tmp/t && /tmp/t /tmp/ran-added");
    assert_eq!(code, 126, "{out}");
    let (found, _) = c.sh("test -e /tmp/ran-added");
    assert_ne!(found, 0, "the dropped binary ran ({out})");
    let a = agent.wait_for("the blocked binary", WAIT, |a| {
        pod_alert(c, "binary_drift")(a) && field(a, "drift.path") == "/tmp/t"
    });
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(&a, "drift.enforcement"), "prevent", "{a}");
    assert_eq!(field(&a, "drift.action"), "blocked", "{a}");
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_pod_alert(&a, pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(agent, pod, c);
    // The image's own binaries keep working.
    let (code, out) = c.sh("/usr/bin/touch /tmp/ran-image && test -e /tmp/ran-image");
    assert_eq!(code, 0, "{out}");
}

/// Issue 10 on a real node: an image whose labels name another pod runs in a pod; the
/// alert names the pod the kubelet made, never the image's.
#[test]
fn an_image_claiming_another_pod_gets_the_real_pods_identity() {
    if !ready(&[BUSYBOX]) {
        return;
    }
    let base = TestContainer::create(&[BUSYBOX, "true"]);
    let image = TestImage(format!("driftwatch-test/forged-pod:{}", std::process::id()));
    docker_ok(&[
        "commit",
        "-c",
        "LABEL io.kubernetes.pod.name=payments",
        "-c",
        "LABEL io.kubernetes.pod.namespace=prod",
        "-c",
        "LABEL io.kubernetes.pod.uid=11111111-2222-3333-4444-555555555555",
        "-c",
        "LABEL io.kubernetes.container.name=api",
        &base.id,
        &image.0,
    ]);
    drop(base);
    let node = CriNode::start(&[]);
    node.import(&image.0);
    let agent = agent_on_node(DRIFTWATCH, &node, &[]);
    let pod = node.run_pod(
        PodSpec::new("real-0", "shop")
            .container(ContainerSpec::new("app", &image.0).command(&["sleep", "3600"])),
    );
    let c = pod.first();
    let (code, out) =
        c.sh("mkdir /tmp/forged && cp /bin/busybox /tmp/forged/true && /tmp/forged/true");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the forged image's drift", WAIT, |a| {
        pod_alert(c, "binary_drift")(a) && field(a, "drift.path") == "/tmp/forged/true"
    });
    assert_pod_alert(&a, &pod, "app", &image.0);
    assert_every_alert_names_the_pod(&agent, &pod, c);
}
