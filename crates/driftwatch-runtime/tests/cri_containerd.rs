//! The CRI client against the real thing: a containerd of the test's own (Debian's build, with
//! its CRI plugin; its own root, state, socket and config under a temp dir, never the host's
//! or dockerd's), asked `Version`, `ListPodSandbox` and `PodSandboxStatus` of a sandbox it
//! does not have.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use driftwatch_model::Engine;
use driftwatch_runtime::{
    ContainerdConfig, ContainerdSource, CriClient, EngineSource, RuntimeError, wait_for_socket,
};
use driftwatch_testkit::require;

/// A containerd of the test's own; killed and its directory removed on drop, even when the
/// test fails.
struct OwnContainerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl OwnContainerd {
    fn start() -> OwnContainerd {
        let dir = tempfile::Builder::new()
            .prefix("dw-cri-containerd")
            .tempdir()
            .unwrap();
        let d = dir.path().display();
        // The CRI plugin loads without CNI (it says so and serves); the snapshotters that
        // cannot work here are left out so the log stays readable.
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd");
        OwnContainerd { child, dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for OwnContainerd {
    fn drop(&mut self) {
        // It never ran a task: nothing of it outlives the process but its directory, which
        // the temp dir removes, so no graceful stop is needed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn debians_containerd_answers_the_cri() {
    require!(Root("starts a containerd of its own"), Tool("containerd"));
    let ctd = OwnContainerd::start();
    let socket = ctd.socket();
    wait_for_socket(Engine::Containerd, &socket, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ctd.log()));
    let cri = CriClient::new(Engine::Containerd, socket.clone(), Duration::from_secs(5));
    let v = cri
        .version()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ctd.log()));
    assert_eq!(v.runtime_name, "containerd");
    assert_eq!(v.runtime_api_version, "v1");
    assert!(!v.runtime_version.is_empty());
    assert!(cri.list_pod_sandbox_ids().await.unwrap().is_empty());
    let missing = "0".repeat(64);
    let e = cri.pod_sandbox(&missing).await.unwrap_err();
    assert!(matches!(e, RuntimeError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
    // The containerd API on the same socket: no container in any namespace yet.
    let src = ContainerdSource::new(ContainerdConfig {
        socket: socket.clone(),
        ..ContainerdConfig::default()
    });
    src.ping().await.unwrap();
    assert!(src.list_running().await.unwrap().is_empty());
}
