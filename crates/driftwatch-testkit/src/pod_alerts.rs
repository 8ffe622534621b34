//! What tests of a [`CriNode`]'s pods say about the agent's alerts: an agent watching the
//! node, and the pod identity every alert of a pod's container must carry from the first.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::agent::{AgentProcess, field};
use crate::cri_node::{CriNode, cri_image};
use crate::cri_pod::{Pod, PodContainer};

/// `BIN run` with the shipped rules, watching the node's containerd, with `extra` flags.
pub fn agent_on_node(bin: impl AsRef<Path>, node: &CriNode, extra: &[&str]) -> AgentProcess {
    let mut args = vec!["--containerd-socket", node.socket_arg()];
    args.extend_from_slice(extra);
    AgentProcess::start(bin, &args)
}

/// True for an alert of container `c` tagged `tag`.
pub fn pod_alert<'a>(c: &'a PodContainer, tag: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| crate::agent::has_tag(a, tag) && field(a, "container.id") == c.short()
}

/// Asserts the pod's identity, the container's name and the image (a name of the host's
/// dockerd, as given to the pod) in alert `a`.
pub fn assert_pod_alert(a: &Value, pod: &Pod, container: &str, image: &str) {
    assert_eq!(field(a, "k8s.ns.name"), pod.namespace.as_str(), "{a}");
    assert_eq!(field(a, "k8s.pod.name"), pod.name.as_str(), "{a}");
    assert_eq!(field(a, "k8s.pod.uid"), pod.uid.as_str(), "{a}");
    assert_eq!(field(a, "container.name"), container, "{a}");
    let repository = cri_image(image.split(':').next().unwrap_or(image));
    assert_eq!(
        field(a, "container.image.repository"),
        repository.as_str(),
        "{a}"
    );
}

/// Asserts that every alert of container `c` so far names its pod (there is at least one):
/// none came before the agent knew the pod.
pub fn assert_every_alert_names_the_pod(agent: &AgentProcess, pod: &Pod, c: &PodContainer) {
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

/// Writes a marker below /etc in `c` until the agent reports it: from then on the agent
/// watches the container's layers. The marker's alert is the container's first.
pub fn until_pod_watched(agent: &AgentProcess, c: &PodContainer) {
    for _ in 0..100 {
        let (code, out) = c.sh("echo . >> /etc/dw-ready");
        assert_eq!(code, 0, "{out}");
        if agent.alerts().iter().any(|a| {
            field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-ready"
        }) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the agent never reported the marker write in {}", c.name);
}
