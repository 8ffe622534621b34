//! The same container seen through Docker's API and through containerd's (dockerd's own
//! containerd, `moby` namespace, only read): the runtime config containerd's OCI spec amounts
//! to must be what Docker says it was asked, so config drift judges both alike.

use std::path::PathBuf;

use driftwatch_model::ContainerId;
use driftwatch_runtime::{
    ContainerdConfig, ContainerdSource, DockerConfig, DockerSource, EngineSource, RuntimeConfig,
};
use driftwatch_testkit::{BUSYBOX, TestContainer, require};

/// dockerd 20.10's managed containerd.
const DOCKERD_CONTAINERD: &str = "/run/docker/containerd/containerd.sock";

/// The runtime config of `c` from Docker and from containerd (the testkit runs every container
/// with `--network none`).
async fn both(c: &TestContainer) -> (RuntimeConfig, RuntimeConfig) {
    let id = ContainerId::new(&c.id).unwrap();
    let docker = DockerSource::new(DockerConfig::default())
        .inspect(&id)
        .await
        .unwrap()
        .runtime_config;
    let containerd = ContainerdSource::new(ContainerdConfig {
        socket: PathBuf::from(DOCKERD_CONTAINERD),
        namespaces: vec!["moby".into()],
        ..ContainerdConfig::default()
    })
    .inspect(&id)
    .await
    .unwrap()
    .runtime_config;
    (docker, containerd)
}

/// What config drift reads, side by side.
#[derive(Debug, PartialEq)]
struct Judged {
    privileged: bool,
    added_capabilities: Vec<String>,
    host_namespaces: Vec<&'static str>,
    /// Source, destination, writable; sorted.
    mounts: Vec<(String, String, bool)>,
    readonly_rootfs: bool,
}

fn judged(c: &RuntimeConfig) -> Judged {
    let mut mounts: Vec<(String, String, bool)> = c
        .mounts
        .iter()
        .map(|m| {
            (
                m.source.display().to_string(),
                m.destination.display().to_string(),
                m.rw,
            )
        })
        .collect();
    mounts.sort();
    Judged {
        privileged: c.privileged,
        added_capabilities: c.added_capabilities(),
        host_namespaces: c.host_namespaces(),
        mounts,
        readonly_rootfs: c.readonly_rootfs,
    }
}

#[tokio::test]
async fn docker_and_containerd_agree_on_a_container_asking_for_much() {
    require!(
        Root("reads dockerd's containerd socket"),
        Docker,
        Image(BUSYBOX),
        File(
            DOCKERD_CONTAINERD,
            "dockerd 20.10 with its managed containerd"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/data", dir.path().display());
    let caps = TestContainer::run(&[
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "NET_ADMIN",
        "--pid",
        "host",
        "--ipc",
        "host",
        "--read-only",
        "-v",
        &vol,
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let (docker, containerd) = both(&caps).await;
    assert_eq!(
        judged(&containerd),
        judged(&docker),
        "{containerd:#?}\n{docker:#?}"
    );
    assert_eq!(
        containerd.added_capabilities(),
        ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    );
    assert_eq!(containerd.host_namespaces(), ["pid", "ipc"]);

    let privileged =
        TestContainer::run(&["--privileged", "--user", "1000", BUSYBOX, "sleep", "300"]);
    let (docker, containerd) = both(&privileged).await;
    assert!(containerd.privileged);
    assert_eq!(
        judged(&containerd),
        judged(&docker),
        "{containerd:#?}\n{docker:#?}"
    );
    assert_eq!(
        (containerd.user.as_str(), docker.user.as_str()),
        ("1000", "1000")
    );
    // Docker records no seccomp option for --privileged; its spec has no profile.
    assert_eq!(containerd.security_opt("seccomp"), Some("unconfined"));

    let plain = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    let (docker, containerd) = both(&plain).await;
    assert_eq!(
        judged(&containerd),
        judged(&docker),
        "{containerd:#?}\n{docker:#?}"
    );
    assert!(
        containerd.security_opt.is_empty(),
        "{:?}",
        containerd.security_opt
    );
}
