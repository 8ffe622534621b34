//! Engines other than Docker, end to end: a real agent, real BPF programs, containers run
//! by containerd through `ctr` (ids that are names, not hex) on the offline test image, and
//! Docker containers carrying the CRI labels the kubelet sets. Each case drifts and asserts
//! the alert's container identity, image, Kubernetes pod and verdict.

use std::process::{Command, Stdio};
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);
const CTR: &str = "/usr/bin/ctr";
/// containerd's own socket, then the one dockerd 20.10 starts for its containerd.
const SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
];
/// How containerd names the busybox image once imported from `docker save`.
const CTR_IMAGE: &str = "docker.io/driftwatch-test/busybox:1";
const CTR_NS: &str = "default";

fn ctr_socket() -> Result<&'static str, String> {
    if !std::path::Path::new(CTR).exists() {
        return Err(format!(
            "needs {CTR} (Debian's containerd or docker.io package)"
        ));
    }
    for s in SOCKETS {
        let ok = Command::new(CTR)
            .args(["-a", s, "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if ok {
            return Ok(s);
        }
    }
    Err(format!(
        "needs a containerd answering on one of {SOCKETS:?}"
    ))
}

fn ctr(socket: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(CTR)
        .args(["-a", socket, "-n", CTR_NS])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running ctr");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `docker save BUSYBOX | CMD`, both checked.
fn docker_save_into(cmd: &mut Command) {
    let mut save = Command::new(DOCKER)
        .args(["save", BUSYBOX])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let out = cmd
        .stdin(save.stdout.take().expect("docker save stdout"))
        .output()
        .expect("running the image import");
    let saved = save.wait().expect("docker save");
    assert!(
        saved.success() && out.status.success(),
        "docker save | {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The busybox image imported into containerd's `default` namespace; removed on drop.
struct CtrImage {
    socket: &'static str,
}

impl CtrImage {
    fn import(socket: &'static str) -> CtrImage {
        docker_save_into(
            Command::new(CTR).args(["-a", socket, "-n", CTR_NS, "images", "import", "-"]),
        );
        CtrImage { socket }
    }

    /// The image record's target digest, as `ctr images ls` prints it.
    fn digest(&self) -> String {
        let (ok, text) = ctr(self.socket, &["images", "ls"]);
        assert!(ok, "{text}");
        text.lines()
            .find(|l| l.starts_with(&format!("{CTR_IMAGE} ")))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("sha256:")))
            .unwrap_or_else(|| panic!("{CTR_IMAGE} not in:\n{text}"))
            .to_string()
    }
}

impl Drop for CtrImage {
    fn drop(&mut self) {
        // Containers hold a lease on the image; they are dropped before it.
        let _ = ctr(self.socket, &["images", "rm", CTR_IMAGE]);
    }
}

/// A `ctr run -d` container (task and container removed on drop, even when a test fails).
struct CtrContainer {
    socket: &'static str,
    name: String,
}

impl CtrContainer {
    /// `annotations`: OCI spec annotations (the CRI plugin's `io.kubernetes.cri.*` are what
    /// makes a container a pod's; labels alone are not).
    fn run(
        socket: &'static str,
        name: &str,
        labels: &[&str],
        annotations: &[&str],
    ) -> CtrContainer {
        // A leftover of an earlier, killed run.
        let _ = ctr(socket, &["task", "kill", "-s", "SIGKILL", name]);
        let _ = ctr(socket, &["task", "rm", "-f", name]);
        let _ = ctr(socket, &["containers", "rm", name]);
        let mut args = vec!["run", "-d"];
        for l in labels {
            args.extend(["--label", l]);
        }
        for a in annotations {
            args.extend(["--annotation", a]);
        }
        args.extend([CTR_IMAGE, name, "sleep", "120"]);
        let (ok, text) = ctr(socket, &args);
        assert!(ok, "ctr {args:?}: {text}");
        CtrContainer {
            socket,
            name: name.to_string(),
        }
    }

    fn sh(&self, script: &str) -> (bool, String) {
        ctr(
            self.socket,
            &[
                "task",
                "exec",
                "--exec-id",
                "dw-exec",
                &self.name,
                "sh",
                "-c",
                script,
            ],
        )
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let _ = ctr(self.socket, &["task", "kill", "-s", "SIGKILL", &self.name]);
        for _ in 0..50 {
            if ctr(self.socket, &["task", "rm", "-f", &self.name]).0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = ctr(self.socket, &["containers", "rm", &self.name]);
    }
}

/// The ctr tests share the imported image (each removes it at the end): one at a time.
static CTR_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ctr_lock() -> std::sync::MutexGuard<'static, ()> {
    CTR_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn ready_for_ctr() -> Option<&'static str> {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return None;
    }
    let socket = ctr_socket();
    let ok = require_that(socket.clone().map(drop));
    ok.then(|| socket.ok()).flatten()
}

/// Drift in a `ctr` container: `true` copied into a new directory and run.
fn drift_and_wait(agent: &AgentProcess, c: &CtrContainer) -> Value {
    let (ok, out) = c.sh("mkdir -p /tmp/t && cp /bin/busybox /tmp/t/true && /tmp/t/true");
    assert!(ok, "{out}");
    agent.wait_for("/tmp/t/true in a ctr container", WAIT, |a| {
        // Every agent sees every container: only this one's alert counts.
        has_tag(a, "binary_drift")
            && field(a, "drift.path") == "/tmp/t/true"
            && field(a, "container.id") == c.name.as_str()
    })
}

fn assert_ctr_alert(a: &Value, name: &str, digest: &str) {
    assert_eq!(a["rule"], "Drop and execute new binary in container", "{a}");
    assert_eq!(field(a, "drift.verdict"), "added", "{a}");
    assert_eq!(field(a, "container.id"), name, "{a}");
    assert_eq!(field(a, "container.name"), name, "{a}");
    assert_eq!(
        field(a, "container.image.repository"),
        "docker.io/driftwatch-test/busybox",
        "{a}"
    );
    assert_eq!(field(a, "container.image.tag"), "1", "{a}");
    assert_eq!(field(a, "container.image.digest"), digest, "{a}");
}

#[test]
fn ctr_container_with_a_name_for_id_is_identified() {
    let Some(socket) = ready_for_ctr() else {
        return;
    };
    let _one_at_a_time = ctr_lock();
    let image = CtrImage::import(socket);
    let digest = image.digest();
    let agent = AgentProcess::start(DRIFTWATCH, &["--containerd-socket", socket]);
    let c = CtrContainer::run(socket, "dw-ctr-plain", &[], &[]);
    let a = drift_and_wait(&agent, &c);
    assert_ctr_alert(&a, "dw-ctr-plain", &digest);
    let pod = field(&a, "k8s.pod.name").as_str();
    assert!(pod.is_none_or(|p| p.is_empty() || p == "<NA>"), "{a}");
}

#[test]
fn ctr_container_with_cri_labels_names_its_pod_from_the_first_event() {
    let Some(socket) = ready_for_ctr() else {
        return;
    };
    let _one_at_a_time = ctr_lock();
    let image = CtrImage::import(socket);
    let digest = image.digest();
    let agent = AgentProcess::start(DRIFTWATCH, &["--containerd-socket", socket]);
    let c = CtrContainer::run(
        socket,
        "dw-ctr-web-0",
        &[
            "io.kubernetes.pod.namespace=shop",
            "io.kubernetes.pod.name=web-0",
            "io.kubernetes.pod.uid=5f1c2a3b-0000-4000-8000-000000000001",
        ],
        // As the CRI plugin writes them for a pod's container.
        &[
            "io.kubernetes.cri.sandbox-namespace=shop",
            "io.kubernetes.cri.sandbox-name=web-0",
        ],
    );
    let a = drift_and_wait(&agent, &c);
    assert_ctr_alert(&a, "dw-ctr-web-0", &digest);
    assert_eq!(field(&a, "k8s.ns.name"), "shop", "{a}");
    assert_eq!(field(&a, "k8s.pod.name"), "web-0", "{a}");
    // The first event of the container is this exec: it already carried the pod.
    let first = agent
        .alerts()
        .into_iter()
        .find(|x| field(x, "container.id") == "dw-ctr-web-0")
        .expect("an alert");
    assert_eq!(field(&first, "k8s.pod.name"), "web-0", "{first}");
}

#[test]
fn docker_container_with_cri_labels_names_its_pod() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = TestContainer::run(&[
        "--label",
        "io.kubernetes.pod.namespace=shop",
        "--label",
        "io.kubernetes.pod.name=api-1",
        "--label",
        "io.kubernetes.pod.uid=5f1c2a3b-0000-4000-8000-000000000002",
        BUSYBOX,
        "sleep",
        "60",
    ]);
    let (code, out) = c.sh("mkdir -p /tmp/t && cp /bin/busybox /tmp/t/true && /tmp/t/true");
    assert_eq!(code, 0, "{out}");
    let a = agent.wait_for("/tmp/t/true in a labelled Docker container", WAIT, |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "drift.path") == "/tmp/t/true"
    });
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(
        field(&a, "container.image.repository"),
        "driftwatch-test/busybox",
        "{a}"
    );
    assert_eq!(field(&a, "k8s.ns.name"), "shop", "{a}");
    assert_eq!(field(&a, "k8s.pod.name"), "api-1", "{a}");
}

const PODMAN: &str = "/usr/bin/podman";
const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// podman is required (in CI) only once scripts/deps installs it; until then the test says
/// why it skips, in CI too.
fn podman_ready() -> bool {
    let deps = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/deps"))
        .unwrap_or_default();
    let installed_by_deps = deps
        .split_whitespace()
        .any(|w| w.trim_matches(['(', ')']) == "podman");
    if !std::path::Path::new(PODMAN).exists() {
        let why =
            format!("needs {PODMAN} (apt-get install podman); scripts/deps does not install it");
        if installed_by_deps {
            return require_that(Err(why));
        }
        return optional(Err(why));
    }
    true
}

/// `podman system service` on its own socket, stopped on drop.
struct PodmanService(std::process::Child);

impl PodmanService {
    fn start() -> PodmanService {
        std::fs::create_dir_all("/run/podman").expect("/run/podman");
        let child = Command::new(PODMAN)
            .args([
                "system",
                "service",
                "--time=0",
                &format!("unix://{PODMAN_SOCKET}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service");
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(PODMAN_SOCKET).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        PodmanService(child)
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn podman(args: &[&str]) -> (bool, String) {
    let out = Command::new(PODMAN)
        .args(args)
        .output()
        .expect("running podman");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The busybox image loaded into podman's store, removed on drop.
struct PodmanImage;

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "-f", "localhost/driftwatch-test/busybox:1"]);
    }
}

/// A podman container, removed on drop.
struct PodmanContainer(String);

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

#[test]
fn podman_container_is_identified_through_its_docker_compatible_socket() {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) || !podman_ready()
    {
        return;
    }
    docker_save_into(Command::new(PODMAN).arg("load"));
    let _image = PodmanImage;
    let _service = PodmanService::start();
    let agent = AgentProcess::start(DRIFTWATCH, &["--podman-socket", PODMAN_SOCKET]);
    // podman's default RLIMIT_NOFILE hard limit (1048576) is above what a root without
    // CAP_SYS_RESOURCE (as in some sandboxes) may set: ask for modest limits.
    let (ok, out) = podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "localhost/driftwatch-test/busybox:1",
        "sleep",
        "60",
    ]);
    assert!(ok, "podman run: {out}");
    let c = PodmanContainer(out.trim().to_string());
    let (ok, out) = podman(&[
        "exec",
        &c.0,
        "sh",
        "-c",
        "mkdir -p /tmp/t && cp /bin/busybox /tmp/t/true && /tmp/t/true",
    ]);
    assert!(ok, "{out}");
    let a = agent.wait_for("/tmp/t/true in a podman container", WAIT, |a| {
        has_tag(a, "binary_drift")
            && field(a, "drift.path") == "/tmp/t/true"
            && field(a, "container.id") == &c.0[..12]
    });
    assert_eq!(field(&a, "drift.verdict"), "added", "{a}");
    assert_eq!(
        field(&a, "container.image.repository"),
        "localhost/driftwatch-test/busybox",
        "{a}"
    );
    assert_eq!(field(&a, "container.image.tag"), "1", "{a}");
    let name = field(&a, "container.name").as_str().unwrap_or_default();
    assert!(!name.is_empty() && name != "<NA>", "{a}");
}
