//! Drift in pods made the way a kubelet makes them: a containerd of the test's own driven
//! through CRI (`CriNode`), a real agent given its socket. Every drift kind runs in such a
//! pod, and every alert of the pod's container names the pod (`k8s.ns.name`,
//! `k8s.pod.name`, `k8s.pod.uid`) from the first one on: the agent learns of the container
//! from its first event, with nothing earlier to warm a cache.
//!
//! The shipped rules print the namespace and the pod's name but not its uid, so the agent
//! here also loads a rule file appending `%k8s.pod.uid` to every rule's output (what a
//! platform team whose log shipper keys on the uid would write).

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(30);

fn ready(images: &[&'static str]) -> bool {
    require(&[Requirement::Bpf]) && require_that(CriNode::check(images))
}

/// A rule file appending the pod's uid to the output of every rule of the default file.
fn uid_in_every_output(dir: &std::path::Path) -> std::path::PathBuf {
    let defaults = std::fs::read_to_string(repo_root().join("rules/driftwatch_rules.yaml"))
        .expect("rules/driftwatch_rules.yaml");
    let appends: String = defaults
        .lines()
        .filter_map(|l| l.strip_prefix("- rule: "))
        .map(|name| {
            format!(
                "- rule: {name}\n  output: \" k8s_pod_uid=%k8s.pod.uid\"\n  override:\n    output: append\n"
            )
        })
        .collect();
    let file = dir.join("pod-uid.yaml");
    std::fs::write(&file, appends).expect("writing the uid rule file");
    file
}

/// An agent watching the node's containerd, printing the pod uid in every alert.
fn agent_on(node: &CriNode, dir: &tempfile::TempDir, extra: &[&str]) -> AgentProcess {
    let rules = uid_in_every_output(dir.path());
    let mut args = vec![
        "--containerd-socket",
        node.socket_arg(),
        "--rules",
        rules.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    AgentProcess::start(DRIFTWATCH, &args)
}

/// An alert of the container `c` with `tag`.
fn of<'a>(c: &'a PodContainer, tag: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| has_tag(a, tag) && field(a, "container.id") == c.short()
}

/// The pod's identity, the container's name and the image, as every alert of a pod's
/// container carries them.
fn assert_pod(a: &Value, pod: &Pod, container: &str, image: &str) {
    assert_eq!(field(a, "k8s.ns.name"), pod.namespace.as_str(), "{a}");
    assert_eq!(field(a, "k8s.pod.name"), pod.name.as_str(), "{a}");
    assert_eq!(field(a, "k8s.pod.uid"), pod.uid.as_str(), "{a}");
    assert_eq!(field(a, "container.name"), container, "{a}");
    let repository = cri_image(image.split(':').next().unwrap());
    assert_eq!(
        field(a, "container.image.repository"),
        repository.as_str(),
        "{a}"
    );
}

/// Every alert of the container so far names its pod: none came before the identity.
fn assert_all_name_the_pod(agent: &AgentProcess, pod: &Pod, c: &PodContainer) {
    let alerts = agent.alerts();
    let mine: Vec<&Value> = alerts
        .iter()
        .filter(|a| field(a, "container.id") == c.short())
        .collect();
    assert!(!mine.is_empty(), "no alert of {}", c.name);
    for a in mine {
        assert_eq!(field(a, "k8s.ns.name"), pod.namespace.as_str(), "{a}");
        assert_eq!(field(a, "k8s.pod.name"), pod.name.as_str(), "{a}");
        assert_eq!(field(a, "k8s.pod.uid"), pod.uid.as_str(), "{a}");
    }
}

fn debian_pod(node: &CriNode, name: &str) -> Pod {
    node.run_pod(
        PodSpec::new(name, "shop")
            .label("app", "web")
            .container(ContainerSpec::debian("app")),
    )
}

#[test]
fn binary_drift_in_a_pod_names_the_pod_from_the_first_event() {
    if !ready(&[DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = CriNode::start(&[DEBIAN]);
    let agent = agent_on(&node, &dir, &[]);
    let pod = debian_pod(&node, "web-0");
    let c = pod.first();
    // The first thing run in the container after its entrypoint: the alert is the agent's
    // first sight of it.
    let (code, out) = c.sh("cp /bin/true /tmp/dropped && /tmp/dropped");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("the dropped binary", WAIT, |a| {
        of(c, "binary_drift")(a) && field(a, "drift.path") == "/tmp/dropped"
    });
    assert_eq!(a["rule"], "Drop and execute new binary in container", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(&a, "proc.pname"), "sh", "{a}");
    assert_pod(&a, &pod, "app", DEBIAN);
    assert_all_name_the_pod(&agent, &pod, c);
}
