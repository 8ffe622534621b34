//! The CRI client and `ContainerdSource` against the real thing: the testkit's kubelet-like
//! node (`CriNode`: a containerd of the test's own, Debian's build with its CRI plugin,
//! driven through CRI as a kubelet does). A pod's container is read back through the
//! containerd API as the agent reads it: the pod's identity and labels, its declared ports,
//! and the privileges its spec asked for.

use std::time::Duration;

use driftwatch_model::{ContainerId, Engine};
use driftwatch_runtime::{
    ContainerdConfig, ContainerdSource, CriClient, EngineSource, RuntimeError,
};
use driftwatch_testkit::{BUSYBOX, ContainerSpec, CriNode, PodSpec, require_that};

/// A runtime for the sources' calls: the node and its pods are driven synchronously (the
/// testkit's CRI client has a runtime of its own), outside it. One per test, as a source's
/// channel lives on the runtime that opened it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn debians_containerd_answers_the_cri() {
    if !require_that(CriNode::check(&[])) {
        return;
    }
    let node = CriNode::start(&[]);
    let cri = CriClient::new(
        Engine::Containerd,
        node.socket().to_path_buf(),
        Duration::from_secs(5),
    );
    runtime().block_on(async {
        let v = cri.version().await.unwrap();
        assert_eq!(v.runtime_name, "containerd");
        assert_eq!(v.runtime_api_version, "v1");
        assert!(!v.runtime_version.is_empty());
        assert!(cri.list_pod_sandbox_ids().await.unwrap().is_empty());
        let missing = "0".repeat(64);
        let e = cri.pod_sandbox(&missing).await.unwrap_err();
        assert!(matches!(e, RuntimeError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains(&missing), "{e}");
    });
}

#[test]
fn a_pods_containers_carry_its_labels_ports_and_privileges() {
    if !require_that(CriNode::check(&[BUSYBOX])) {
        return;
    }
    let node = CriNode::start(&[BUSYBOX]);
    let host = tempfile::tempdir().unwrap();
    let pod = node.run_pod(
        PodSpec::new("web-0", "shop")
            .label("app", "web")
            .label("app.kubernetes.io/part-of", "shop")
            .port(8080)
            .host_network()
            .container(
                ContainerSpec::busybox("app")
                    .add_capability("NET_ADMIN")
                    .readonly_rootfs()
                    .run_as_user(1000)
                    .host_path(host.path(), "/host/data", true),
            )
            .container(ContainerSpec::busybox("agent").privileged()),
    );
    let src = ContainerdSource::new(ContainerdConfig {
        socket: node.socket().to_path_buf(),
        ..ContainerdConfig::default()
    });
    let rt = runtime();
    let inspect = |id: &str| {
        rt.block_on(src.inspect(&ContainerId::new(id).unwrap()))
            .unwrap()
    };
    let app = inspect(&pod.container("app").id);
    let k = app.meta.k8s.as_ref().expect("a pod");
    assert_eq!(
        (
            k.namespace.as_str(),
            k.pod_name.as_str(),
            k.pod_uid.as_str(),
            k.container_name.as_str()
        ),
        ("shop", "web-0", pod.uid.as_str(), "app")
    );
    // The pod's labels, without the kubelet's own.
    assert_eq!(k.labels["app"], "web");
    assert_eq!(k.labels["app.kubernetes.io/part-of"], "shop");
    assert!(
        !k.labels.keys().any(|l| l.starts_with("io.kubernetes.")),
        "{:?}",
        k.labels
    );
    // The pod spec's containerPort is a declared listener.
    assert!(
        app.exposed_ports.contains(&"8080/tcp".to_string()),
        "{:?}",
        app.exposed_ports
    );
    let c = &app.runtime_config;
    assert!(!c.privileged);
    assert_eq!(c.added_capabilities(), ["CAP_NET_ADMIN"]);
    assert_eq!(c.network_mode, "host");
    assert!(c.host_namespaces().contains(&"network"), "{c:?}");
    assert!(c.readonly_rootfs);
    assert_eq!(c.user, "1000");
    let binds: Vec<_> = c.mounts.iter().filter(|m| m.kind == "bind").collect();
    assert_eq!(binds.len(), 1, "{:?}", c.mounts);
    assert_eq!(binds[0].source, host.path());
    assert!(!binds[0].rw);

    let agent = inspect(&pod.container("agent").id);
    assert!(
        agent.runtime_config.privileged,
        "{:?}",
        agent.runtime_config
    );
    assert_eq!(agent.meta.k8s.as_ref().unwrap().labels["app"], "web");
    drop(pod);
}
