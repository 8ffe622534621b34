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
/// How containerd names the busybox image once imported from `docker save`.
const CTR_IMAGE: &str = "docker.io/driftwatch-test/busybox:1";
const CTR_NS: &str = "default";
const SLEEP: &[&str] = &["sleep", "120"];

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

/// The ctr tests share the imported image (each removes it at the end): one at a time.
static CTR_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ctr_lock() -> std::sync::MutexGuard<'static, ()> {
    CTR_LOCK.lock().unwrap_or_else(|e| e.into_inner())
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
    let Some(socket) = ctr_ready() else {
        return;
    };
    let _one_at_a_time = ctr_lock();
    let image = CtrImage::import(socket, CTR_NS, BUSYBOX);
    let digest = image.digest();
    let agent = AgentProcess::start(DRIFTWATCH, &["--containerd-socket", socket]);
    let c = CtrContainer::run(socket, CTR_NS, CTR_IMAGE, "dw-ctr-plain", &[], &[], SLEEP);
    let a = drift_and_wait(&agent, &c);
    assert_ctr_alert(&a, "dw-ctr-plain", &digest);
    let pod = field(&a, "k8s.pod.name").as_str();
    assert!(pod.is_none_or(|p| p.is_empty() || p == "<NA>"), "{a}");
}

#[test]
fn ctr_container_with_cri_labels_names_its_pod_from_the_first_event() {
    let Some(socket) = ctr_ready() else {
        return;
    };
    let _one_at_a_time = ctr_lock();
    let image = CtrImage::import(socket, CTR_NS, BUSYBOX);
    let digest = image.digest();
    let agent = AgentProcess::start(DRIFTWATCH, &["--containerd-socket", socket]);
    let c = CtrContainer::run(
        socket,
        CTR_NS,
        CTR_IMAGE,
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
        SLEEP,
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
