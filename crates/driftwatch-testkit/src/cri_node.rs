//! A Kubernetes node without Kubernetes: a containerd of the test's own, driven through the
//! CRI gRPC API with what a kubelet sends, so that tests see pods exactly as a node makes them.
//!
//! [`CriNode::start`] runs Debian's containerd (1.6, CRI plugin built in) with its own root,
//! state, socket and version-2 config in a directory of its own, imports the sandbox image
//! and the test images, and waits until the CRI runtime and its network are ready.
//! [`CriNode::run_pod`] then does what the kubelet does for a pod (`pkg/kubelet/kuberuntime`:
//! `generatePodSandboxConfig`, `generateContainerConfig`): `RunPodSandbox` with the pod's
//! metadata, labels, annotations, cgroup parent (`/kubepods/besteffort/pod<uid>`, cgroupfs),
//! DNS, port mappings, log directory and security context; then per container
//! `CreateContainer` with the kubelet's labels, annotations, mounts (`/etc/hosts`, the
//! termination log, hostPath and emptyDir volumes), security context and log path, and
//! `StartContainer`. Commands run in a container through `ExecSync`.
//!
//! # Network
//!
//! The 1.6 CRI plugin insists on an `eth0` with an address in every pod that does not use
//! the host's network (`failed to find network info for sandbox`), and Debian's CNI plugins
//! (1.1) have no `dummy`. So each pod gets a veth on a bridge of the node's own with no
//! address on the host side (`isGateway: false`), no masquerading and no route but the
//! pod's own /24 of 198.18.0.0/15 (the benchmarking range): no packet can leave the pod for
//! anywhere else. Tests use loopback inside the pod; port mappings are given to the CRI
//! plugin (they are pod metadata) but no `portmap` plugin acts on them.
//!
//! # Cleaning up
//!
//! Dropping a [`Pod`] stops and removes its sandbox (and so its containers). Dropping the
//! node removes every pod left, stops containerd, then sweeps what may remain: runc
//! containers under the node's runc root, shims serving its socket, mounts below its
//! directory, the pods' cgroups, the bridge, and the directory. A node left by a test
//! process that died (SIGKILL, abort) is swept the same way when the next node starts: each
//! node directory names the process that owns it.
//!
//! containerd 1.6's runc shim puts its socket under `/run/containerd/s/` whatever the
//! config says (a hash of our socket's address, so it never meets another containerd's);
//! the shim removes it when it exits.
//!
//! One node at a time per process (a lock held by [`CriNode`]): the `kubepods` cgroup tree
//! is the host's, and two nodes on two cores would only be slower.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use crate::cri_client::CriClient;
use crate::cri_pod::{Pod, PodContainer, PodSpec};
use crate::require::{Requirement, is_root};

/// The pod sandbox ("pause") image (tests/images/build.sh): busybox's `sleep infinity`.
pub const PAUSE: &str = "driftwatch-test/pause:1";
const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const RUNC: &str = "/usr/sbin/runc";
const CNI_BIN: &str = "/usr/lib/cni";
/// The containerd namespace of the CRI plugin.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The pods' addresses: a /24 of the benchmarking range, reachable from nowhere else.
const POD_SUBNET: &str = "198.18.0.0/24";
const CGROUPFS: &str = "/sys/fs/cgroup";
/// The name containerd gives an image imported from `docker save` of `image`.
pub fn cri_image(image: &str) -> String {
    format!("docker.io/{image}")
}

static ONE_NODE: Mutex<()> = Mutex::new(());
static NODE_SEQ: AtomicU32 = AtomicU32::new(0);

/// A containerd of the test's own with the CRI plugin, as on a Kubernetes node; stopped and
/// removed when dropped (see the module's documentation).
pub struct CriNode {
    dir: PathBuf,
    socket: PathBuf,
    containerd: std::process::Child,
    cri: Arc<CriClient>,
    _one_node: MutexGuard<'static, ()>,
}

impl CriNode {
    /// What starting a node needs of the host, `Err(why)` otherwise: root, containerd, ctr,
    /// runc, the CNI plugins, dockerd and the images to import.
    pub fn check(images: &[&'static str]) -> Result<(), String> {
        if !is_root() {
            return Err("needs root (runs a containerd and pods)".into());
        }
        for (path, package) in [
            (CONTAINERD, "containerd"),
            (CTR, "containerd"),
            (RUNC, "runc"),
            ("/usr/lib/cni/bridge", "containernetworking-plugins"),
            ("/usr/lib/cni/host-local", "containernetworking-plugins"),
        ] {
            if !Path::new(path).exists() {
                return Err(format!("needs {path} (apt-get install {package})"));
            }
        }
        Requirement::Docker.check()?;
        for image in [PAUSE].iter().chain(images) {
            Requirement::Image(image).check()?;
        }
        Ok(())
    }

    /// Starts a node and imports the sandbox image and `images` (names of the host's
    /// dockerd, e.g. [`DEBIAN`]) into it. Panics with containerd's log when it fails.
    pub fn start(images: &[&str]) -> CriNode {
        let one_node = ONE_NODE.lock().unwrap_or_else(|p| p.into_inner());
        let base = std::env::temp_dir().join("driftwatch-cri");
        sweep_orphans(&base);
        let seq = NODE_SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{}-{seq}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        write("owner", &std::process::id().to_string());
        // Interface names have 15 bytes at most.
        let bridge = format!("dwcri{}", std::process::id() % 10_000_000);
        write("bridge", &bridge);
        fs::create_dir_all(dir.join("cni")).expect("the CNI config directory");
        write(
            "cni/10-driftwatch-pods.conflist",
            &cni_config(&dir, &bridge),
        );
        write("config.toml", &containerd_config(&dir));
        let socket = dir.join("containerd.sock");
        let log = fs::File::create(dir.join("containerd.log")).expect("containerd.log");
        let mut containerd = Command::new(CONTAINERD)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("containerd.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{CONTAINERD}: {e}"));
        write("containerd.pid", &containerd.id().to_string());
        let cri = match wait_until_ready(&mut containerd, &socket) {
            Ok(cri) => cri,
            Err(why) => {
                let _ = containerd.kill();
                let _ = containerd.wait();
                let log = log_tail(&dir);
                sweep(&dir);
                panic!("{why}; containerd's log:\n{log}");
            }
        };
        let node = CriNode {
            cri: Arc::new(cri),
            dir,
            socket,
            containerd,
            _one_node: one_node,
        };
        for image in [PAUSE].iter().chain(images) {
            node.import(image);
        }
        node
    }

    /// containerd's socket: what the agent is given (`--containerd-socket`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// [`CriNode::socket`] as text, for the agent's command line.
    pub fn socket_arg(&self) -> &str {
        self.socket.to_str().expect("a UTF-8 socket path")
    }

    /// The node's own directory (containerd's root, state, logs, the pods' volumes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir)
    }

    /// Imports `image` of the host's dockerd (`docker save IMAGE | ctr -n k8s.io images
    /// import -`, both checked) and waits until CRI lists it: for an image a test built
    /// after the node started.
    pub fn import(&self, image: &str) {
        crate::ctr::docker_save_into(&self.socket, CRI_NAMESPACE, image);
        // The CRI plugin learns of the image from containerd's events.
        let name = cri_image(image);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cri.image_id(&name).is_none() {
            assert!(
                Instant::now() < deadline,
                "CRI never listed {name} after its import"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a pod as the kubelet would: its sandbox, then each container created and
    /// started in order. Panics with the CRI error (and containerd's log) when one fails.
    pub fn run_pod(&self, spec: PodSpec) -> Pod {
        let uid = fs::read_to_string("/proc/sys/kernel/random/uuid")
            .expect("a random uuid")
            .trim()
            .to_string();
        let cgroup_parent = format!("/kubepods/besteffort/pod{uid}");
        // Recorded before it exists, so that a sweep after a crash removes it.
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("cgroups"))
            .and_then(|mut f| writeln!(f, "{cgroup_parent}"))
            .expect("recording the pod's cgroup");
        let pod_dir = self.dir.join("kubelet/pods").join(&uid);
        let log_dir = self
            .dir
            .join("pods")
            .join(format!("{}_{}_{uid}", spec.namespace, spec.name));
        fs::create_dir_all(&log_dir).expect("the pod's log directory");
        fs::create_dir_all(&pod_dir).expect("the pod's directory");
        let hosts = pod_dir.join("etc-hosts");
        fs::write(
            &hosts,
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost\n198.18.0.2\t{}\n",
                spec.name
            ),
        )
        .expect("the pod's /etc/hosts");

        let sandbox_config = spec.sandbox_config(&uid, &cgroup_parent, &log_dir);
        let config = sandbox_config.clone();
        let sandbox_id = self
            .cri
            .try_call(|mut c| async move {
                c.run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                })
                .await
            })
            .unwrap_or_else(|s| {
                panic!(
                    "CRI RunPodSandbox {}/{}: {}; containerd's log:\n{}",
                    spec.namespace,
                    spec.name,
                    s.message(),
                    self.log_tail()
                )
            })
            .pod_sandbox_id;
        let mut pod = Pod {
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            uid: uid.clone(),
            sandbox_id,
            cgroup_parent,
            containers: Vec::new(),
            cri: self.cri.clone(),
        };
        for c in &spec.containers {
            let image = cri_image(&c.image);
            let image_id = self
                .cri
                .image_id(&image)
                .unwrap_or_else(|| panic!("{image} is not on the node: CriNode::start(&[...])"));
            let config = c.config(&spec, &uid, &pod_dir, &hosts, &image, &image_id);
            fs::create_dir_all(log_dir.join(&c.name)).expect("the container's log directory");
            let (sandbox, sandbox_config) = (pod.sandbox_id.clone(), sandbox_config.clone());
            let id = self
                .cri
                .try_call(|mut cl| async move {
                    cl.create_container(cri::CreateContainerRequest {
                        pod_sandbox_id: sandbox,
                        config: Some(config),
                        sandbox_config: Some(sandbox_config),
                    })
                    .await
                })
                .unwrap_or_else(|s| {
                    panic!(
                        "CRI CreateContainer {}: {}; containerd's log:\n{}",
                        c.name,
                        s.message(),
                        self.log_tail()
                    )
                })
                .container_id;
            let start = id.clone();
            self.cri
                .try_call(|mut cl| async move {
                    cl.start_container(cri::StartContainerRequest {
                        container_id: start,
                    })
                    .await
                })
                .unwrap_or_else(|s| {
                    panic!(
                        "CRI StartContainer {}: {}; containerd's log:\n{}",
                        c.name,
                        s.message(),
                        self.log_tail()
                    )
                });
            pod.containers.push(PodContainer {
                name: c.name.clone(),
                id,
                started: std::time::SystemTime::now(),
                cri: self.cri.clone(),
            });
        }
        pod
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        // Every pod left (a Pod outliving the node, or one a crashed test never removed).
        if let Ok(list) = self.cri.try_call(|mut c| async move {
            c.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                .await
        }) {
            for s in list.items {
                self.cri.remove_sandbox(&s.id);
            }
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.containerd.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.containerd.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.containerd.kill();
        let _ = self.containerd.wait();
        sweep(&self.dir);
        // The base directory too, when no other node (of another process) is in it.
        if let Some(base) = self.dir.parent() {
            let _ = fs::remove_dir(base);
        }
    }
}

/// The end of a node's containerd log, for a failure's message.
fn log_tail(dir: &Path) -> String {
    let text = fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Connects, then waits until CRI says both the runtime and its network are ready (the CNI
/// config is loaded): a pod started earlier would fail.
fn wait_until_ready(
    containerd: &mut std::process::Child,
    socket: &Path,
) -> Result<CriClient, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no socket yet");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = containerd.try_wait() {
            return Err(format!("containerd exited ({status}) while starting"));
        }
        if socket.exists() {
            match CriClient::connect(socket) {
                Ok(client) => {
                    let status = client.try_call(|mut c| async move {
                        c.status(cri::StatusRequest { verbose: false }).await
                    });
                    match status {
                        Ok(s) => {
                            let conditions = s.status.map(|s| s.conditions).unwrap_or_default();
                            if conditions.len() >= 2 && conditions.iter().all(|c| c.status) {
                                return Ok(client);
                            }
                            last = format!("{conditions:?}");
                        }
                        Err(e) => last = e.message().to_string(),
                    }
                }
                Err(e) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "containerd's CRI was not ready within 60 s ({last})"
    ))
}

/// The CNI network of a node: a bridge with no address on the host, host-local addresses
/// from [`POD_SUBNET`], no gateway, no masquerading, no routes.
fn cni_config(dir: &Path, bridge: &str) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "driftwatch-pods",
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": false,
            "isDefaultGateway": false,
            "ipMasq": false,
            "hairpinMode": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": POD_SUBNET }]],
                "dataDir": dir.join("cni-ipam"),
            },
        }],
    })
    .to_string()
}

/// containerd's config: everything it keeps in the node's directory, cgroupfs (so pod cgroups
/// are `/kubepods/...`), overlayfs, our sandbox image and CNI config.
fn containerd_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

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
  sandbox_image = "{sandbox}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {restrict_oom}
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d}/cni"
    max_conf_num = 1
"#,
        sandbox = cri_image(PAUSE),
        restrict_oom = !has_cap_sys_resource(),
    )
}

/// Whether this process may lower an OOM score (`CAP_SYS_RESOURCE`): without it (a
/// sandboxed CI runner) the CRI plugin must not give the sandbox the kubelet's -998, or runc
/// fails to start it (`can't get final child's PID from pipe`).
fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// Sweeps the node directories under `base` whose owning process is gone.
fn sweep_orphans(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let owner = fs::read_to_string(dir.join("owner")).unwrap_or_default();
        let alive = owner
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            eprintln!(
                "CriNode: sweeping {} left by a test that died",
                dir.display()
            );
            sweep(&dir);
        }
    }
}

/// Removes whatever of a node may be left in `dir` and on the host (see the module's
/// documentation), quietly: each step is best effort, and runs whatever failed before it.
fn sweep(dir: &Path) {
    let dir_text = dir.to_string_lossy().into_owned();
    let cmdline = |pid: &str| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    // containerd, only if the pid still is ours.
    if let Ok(pid) = fs::read_to_string(dir.join("containerd.pid")) {
        let pid = pid.trim();
        if cmdline(pid).contains(&dir_text)
            && let Ok(pid) = pid.parse::<i32>()
        {
            // SAFETY: kill(2); the pid was checked to be a containerd of this directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // The containers, through runc and the node's own runc root.
    let runc_root = dir.join("runc").join(CRI_NAMESPACE);
    if runc_root.exists() {
        let list = Command::new(RUNC)
            .arg("--root")
            .arg(&runc_root)
            .args(["list", "-q"])
            .output();
        if let Ok(list) = list {
            for id in String::from_utf8_lossy(&list.stdout).lines() {
                let _ = Command::new(RUNC)
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    // Shims serving this node's socket.
    let address = format!("{dir_text}/containerd.sock");
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let pid = p.file_name().to_string_lossy().into_owned();
            let cmd = cmdline(&pid);
            if cmd.contains("containerd-shim")
                && cmd.contains(&address)
                && let Ok(pid) = pid.parse::<i32>()
            {
                // SAFETY: kill(2) on a shim of this node's containerd.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    // Mounts below the directory (rootfs overlays, shm, netns pins), deepest first.
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: umount2(2) with a valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    // The pods' cgroups in every hierarchy, then their parents when empty.
    let parents = fs::read_to_string(dir.join("cgroups")).unwrap_or_default();
    let hierarchies: Vec<PathBuf> = fs::read_dir(CGROUPFS)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for parent in parents.lines().filter(|l| !l.is_empty()) {
        let relative = parent.trim_start_matches('/');
        for h in hierarchies.iter().chain([PathBuf::from(CGROUPFS)].iter()) {
            let mut path = h.join(relative);
            // pod<uid>, besteffort, kubepods: each only when empty (rmdir fails otherwise).
            for _ in 0..3 {
                if fs::remove_dir(&path).is_err() && path.exists() {
                    break;
                }
                if !path.pop() {
                    break;
                }
            }
        }
    }
    if let Ok(bridge) = fs::read_to_string(dir.join("bridge")) {
        let _ = Command::new("ip")
            .args(["link", "del", bridge.trim()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        eprintln!("CriNode: removing {}: {e}", dir.display());
    }
}

/// A mount point as `/proc/self/mountinfo` writes it: space, tab, newline and backslash
/// as octal escapes.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(byte) = u8::from_str_radix(&digits, 8) {
                out.push(char::from(byte));
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn the_directory_of_a_dead_test_is_swept_and_a_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let mut gone = Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        for (name, owner) in [("dead-0", dead), ("live-0", std::process::id())] {
            let dir = base.path().join(name);
            fs::create_dir_all(dir.join("root/io.containerd.content.v1.content")).unwrap();
            fs::write(dir.join("owner"), owner.to_string()).unwrap();
            // A pid that is not a containerd of this directory is left alone.
            fs::write(dir.join("containerd.pid"), std::process::id().to_string()).unwrap();
            fs::write(dir.join("cgroups"), "/kubepods/besteffort/pod-dw-none\n").unwrap();
        }
        sweep_orphans(base.path());
        assert!(
            !base.path().join("dead-0").exists(),
            "the dead test's node was kept"
        );
        assert!(
            base.path().join("live-0/owner").exists(),
            "a live test's node was swept"
        );
    }

    #[test]
    fn the_node_config_keeps_everything_in_its_directory() {
        let text = containerd_config(Path::new("/tmp/n"));
        for line in [
            "root = \"/tmp/n/root\"",
            "state = \"/tmp/n/state\"",
            "address = \"/tmp/n/containerd.sock\"",
            "Root = \"/tmp/n/runc\"",
            "SystemdCgroup = false",
            "conf_dir = \"/tmp/n/cni\"",
            "sandbox_image = \"docker.io/driftwatch-test/pause:1\"",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        let cni: serde_json::Value =
            serde_json::from_str(&cni_config(Path::new("/tmp/n"), "dwcri1")).unwrap();
        let bridge = &cni["plugins"][0];
        assert_eq!(bridge["isGateway"], false);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "198.18.0.0/24");
    }
}
