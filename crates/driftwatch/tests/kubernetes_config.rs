//! Config drift of pods made the way a kubelet makes them (`CriNode`): what the pod spec
//! asks for (a privileged container, added capabilities, a hostPath of the engine's socket,
//! the host's namespaces, a writable root) is judged as Docker's `config_drift.rs` judges
//! the same settings, read from the CRI runtime; a hardened pod (read-only root, non-root
//! user, the runtime's seccomp profile) raises nothing; declared container ports are
//! declared listeners; the pod's labels are in its alerts; writes on a pod's volumes are
//! file drift. All of it needs the container's runtime config, read through CRI or from
//! containerd's OCI spec.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(15);

fn ready(images: &[&'static str]) -> bool {
    require(&[Requirement::Bpf]) && require_that(CriNode::check(images))
}

/// A config-drift alert of container `c` about `subject` (and `path`, when given).
fn config_drift_in<'a>(
    c: &'a PodContainer,
    subject: &'a str,
    path: Option<&'a str>,
) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        pod_alert(c, "config_drift")(a)
            && field(a, "drift.subject") == subject
            && path.is_none_or(|p| field(a, "drift.path") == p)
    }
}

fn config_alerts_of(agent: &AgentProcess, c: &PodContainer) -> Vec<Value> {
    agent
        .alerts()
        .into_iter()
        .filter(pod_alert(c, "config_drift"))
        .collect()
}

/// Runs `true` in the container: the agent has seen it from then on, whether or not it
/// follows the runtime's events.
fn touch(c: &PodContainer) {
    let (code, out) = c.exec(&["true"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn risky_pod_settings_are_config_drift_at_start() {
    if !ready(&[BUSYBOX]) {
        return;
    }
    let node = CriNode::start(&[BUSYBOX]);
    let agent = agent_on_node(DRIFTWATCH, &node, &[]);
    let app = || ContainerSpec::busybox("app");
    let socket = std::path::Path::new("/var/run/docker.sock");
    let cases: [(PodSpec, &str, &str, &str, &str); 6] = [
        (
            PodSpec::new("privileged-0", "shop").container(app().privileged()),
            "privileged",
            "privileged",
            "Launch Privileged Container",
            "Critical",
        ),
        (
            PodSpec::new("caps-0", "shop").container(app().add_capability("SYS_ADMIN")),
            "cap_add",
            "CAP_SYS_ADMIN",
            "Launch Excessively Capable Container",
            "Error",
        ),
        (
            PodSpec::new("hostpath-0", "shop").container(app().host_path(
                socket,
                "/var/run/docker.sock",
                false,
            )),
            "sensitive_mount",
            "/var/run/docker.sock",
            "Container with host control mounted",
            "Critical",
        ),
        (
            PodSpec::new("hostpid-0", "shop")
                .host_pid()
                .container(app()),
            "host_namespace",
            "pid",
            "Container sharing host PID namespace",
            "Critical",
        ),
        (
            PodSpec::new("hostnet-0", "shop")
                .host_network()
                .container(app()),
            "host_namespace",
            "network",
            "Container sharing host namespace",
            "Warning",
        ),
        (
            PodSpec::new("hostipc-0", "shop")
                .host_ipc()
                .container(app()),
            "host_namespace",
            "ipc",
            "Container sharing host namespace",
            "Warning",
        ),
    ];
    let mut failures = Vec::new();
    for (spec, subject, path, rule, priority) in cases {
        let pod = node.run_pod(spec);
        let c = pod.first();
        touch(c);
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            agent.wait_for(rule, WAIT, config_drift_in(c, subject, Some(path)))
        }));
        let Ok(a) = found else {
            failures.push(format!("{}: no {subject} {path} alert", pod.name));
            continue;
        };
        assert_eq!(a["rule"], rule, "{a}");
        assert_eq!(a["priority"], priority, "{a}");
        assert_pod_alert(&a, &pod, "app", BUSYBOX);
        // Once per start.
        std::thread::sleep(Duration::from_millis(500));
        let same = config_alerts_of(&agent, c)
            .into_iter()
            .filter(|a| field(a, "drift.subject") == subject && field(a, "drift.path") == path)
            .count();
        assert_eq!(
            same, 1,
            "{}: {subject} {path} reported {same} times",
            pod.name
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_writable_root_is_drift_unless_the_pod_spec_says_read_only() {
    if !ready(&[BUSYBOX]) {
        return;
    }
    let node = CriNode::start(&[BUSYBOX]);
    let agent = agent_on_node(DRIFTWATCH, &node, &[]);
    // readOnlyRootFilesystem, runAsUser 1000, the runtime's seccomp profile: nothing to say.
    let quiet = node.run_pod(
        PodSpec::new("hardened-0", "shop").container(
            ContainerSpec::busybox("app")
                .readonly_rootfs()
                .run_as_user(1000)
                .seccomp_runtime_default(),
        ),
    );
    touch(quiet.first());
    let (code, out) = quiet.first().sh("touch /dw-written");
    assert_ne!(code, 0, "the root file system is read-only: {out}");
    // The pod spec's defaults: a writable root, run as the image's root.
    let open = node.run_pod(
        PodSpec::new("default-0", "shop")
            .container(ContainerSpec::busybox("app").seccomp_runtime_default()),
    );
    let c = open.first();
    touch(c);
    let a = agent.wait_for(
        "the writable root",
        WAIT,
        config_drift_in(c, "writable_rootfs", Some("/")),
    );
    assert_eq!(a["rule"], "Container with writable root filesystem", "{a}");
    assert_pod_alert(&a, &open, "app", BUSYBOX);
    let a = agent.wait_for("the root user", WAIT, config_drift_in(c, "root_user", None));
    assert_eq!(a["rule"], "Container Run as Root User", "{a}");
    // The hardened pod was judged before the default one (in the order they were seen), and
    // the kubelet's KUBERNETES_* variables are no environment drift.
    let alerts = config_alerts_of(&agent, quiet.first());
    assert!(alerts.is_empty(), "{alerts:#?}");
    // The pods' sandboxes (root, writable, the runtime's own settings) are no workloads.
    for sandbox in [&quiet.sandbox_id, &open.sandbox_id] {
        let about: Vec<Value> = agent
            .alerts()
            .into_iter()
            .filter(|a| {
                field(a, "container.id")
                    .as_str()
                    .is_some_and(|id| !id.is_empty() && sandbox.starts_with(id))
            })
            .collect();
        assert!(about.is_empty(), "the sandbox {sandbox}: {about:#?}");
    }
    let env: Vec<Value> = config_alerts_of(&agent, c)
        .into_iter()
        .filter(|a| field(a, "drift.subject") == "env")
        .collect();
    assert!(env.is_empty(), "{env:#?}");
}

#[test]
fn a_declared_container_port_is_a_declared_listener() {
    if !ready(&[DEBIAN]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let agent = agent_on_node(DRIFTWATCH, &node, &[]);
    let pod = node.run_pod(
        PodSpec::new("ports-0", "shop")
            .port(8080)
            .container(ContainerSpec::debian("app")),
    );
    let c = pod.first();
    let listen = |port: u16| {
        format!(
            "python3 -c \"import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen()\ntime.sleep(60)\n\" </dev/null >/dev/null 2>&1 & sleep 0.5"
        )
    };
    let (code, out) = c.sh(&listen(8080));
    assert_eq!(code, 0, "{out}");
    let (code, out) = c.sh(&listen(8081));
    assert_eq!(code, 0, "{out}");
    // The undeclared one proves the agent judged both listeners.
    let a = agent.wait_for("the undeclared listener", WAIT, |a| {
        pod_alert(c, "network_drift")(a) && field(a, "drift.path") == "8081/tcp"
    });
    assert_pod_alert(&a, &pod, "app", DEBIAN);
    let declared: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| pod_alert(c, "network_drift")(a) && field(a, "drift.path") == "8080/tcp")
        .collect();
    assert!(
        declared.is_empty(),
        "the pod declares containerPort 8080: {declared:#?}"
    );
}

#[test]
fn the_pods_labels_are_in_its_alerts() {
    if !ready(&[DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = CriNode::start(&[DEBIAN]);
    let labels = dir.path().join("pod-labels.yaml");
    std::fs::write(
        &labels,
        "- rule: Drop and execute new binary in container\n  output: \" k8s_pod_labels=%k8s.pod.labels\"\n  override:\n    output: append\n",
    )
    .unwrap();
    let (ok, out) = cli(
        DRIFTWATCH,
        &[
            "rules",
            "validate",
            "--no-rules-dir",
            labels.to_str().unwrap(),
        ],
    );
    assert!(ok, "a rule printing the pod's labels does not load: {out}");
    let agent = agent_on_node(DRIFTWATCH, &node, &["--rules", labels.to_str().unwrap()]);
    let pod = node.run_pod(
        PodSpec::new("labelled-0", "shop")
            .label("app", "web")
            .label("tier", "front")
            .container(ContainerSpec::debian("app")),
    );
    let c = pod.first();
    let (code, out) = c.sh("cp /bin/true /tmp/dropped && /tmp/dropped");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the dropped binary", WAIT, |a| {
        pod_alert(c, "binary_drift")(a) && field(a, "drift.path") == "/tmp/dropped"
    });
    assert_pod_alert(&a, &pod, "app", DEBIAN);
    let labels = field(&a, "k8s.pod.labels").to_string();
    for l in ["app", "web", "tier", "front"] {
        assert!(
            labels.contains(l),
            "{l} not in the pod's labels {labels}: {a}"
        );
    }
}

/// A pod's emptyDir is a directory of the kubelet's on the host, bind-mounted: writes there
/// are the container's drift as on its root. The agent learns a container's volumes from its
/// runtime config (`runtime_config.mounts`), which a CRI container has only once containerd's
/// OCI spec is translated.
#[test]
fn writes_on_a_pods_empty_dir_are_file_drift_too() {
    if !ready(&[DEBIAN]) {
        return;
    }
    let node = CriNode::start(&[DEBIAN]);
    let agent = agent_on_node(DRIFTWATCH, &node, &[]);
    let pod = node.run_pod(
        PodSpec::new("cron-0", "shop")
            .container(ContainerSpec::debian("app").empty_dir("cron", "/etc/cron.d")),
    );
    let c = pod.first();
    until_pod_watched(&agent, c);
    let (code, out) = c.sh("echo '* * * * * root /tmp/x' > /etc/cron.d/evil");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the write to the emptyDir", WAIT, |a| {
        pod_alert(c, "file_drift")(a) && field(a, "fd.name") == "/etc/cron.d/evil"
    });
    assert_eq!(a["rule"], "Schedule Cron Jobs", "{a}");
    assert_eq!(field(&a, "proc.name"), "sh", "{a}");
    assert_pod_alert(&a, &pod, "app", DEBIAN);
    assert_every_alert_names_the_pod(&agent, &pod, c);
}
