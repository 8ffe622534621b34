//! containerd through `ctr`, for tests: the socket that answers, Docker images imported into
//! a namespace (`docker save | ctr images import`) and `ctr run -d` containers, each removed
//! on drop even when the test fails.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::docker::{BUSYBOX, DOCKER};
use crate::require::{Requirement, require, require_that};

pub const CTR: &str = "/usr/bin/ctr";
/// containerd's own socket, then the one dockerd 20.10 starts for its containerd.
pub const CTR_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
];

/// The first of [`CTR_SOCKETS`] that exists and where `ctr version` answers.
pub fn ctr_socket() -> Result<&'static str, String> {
    if !std::path::Path::new(CTR).exists() {
        return Err(format!(
            "needs {CTR} (Debian's containerd or docker.io package)"
        ));
    }
    // `ctr` waits 10 s for a socket that is not there: only the ones that are are asked.
    for s in CTR_SOCKETS
        .iter()
        .filter(|s| std::path::Path::new(s).exists())
    {
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
        "needs a containerd answering on one of {CTR_SOCKETS:?}"
    ))
}

/// What a test of an agent watching `ctr` containers of the busybox image needs (BPF,
/// dockerd, the image, a containerd answering): its socket, or `None` after saying why (or a
/// panic in CI, see [`require`]).
pub fn ctr_ready() -> Option<&'static str> {
    if !require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
    ]) {
        return None;
    }
    let socket = ctr_socket();
    require_that(socket.clone().map(drop)).then(|| socket.ok())?
}

/// `ctr -a SOCKET -n NS ARGS`: success, and stdout then stderr.
pub fn ctr_in(socket: &str, ns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(CTR)
        .args(["-a", socket, "-n", ns])
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

/// `docker save IMAGE | ctr -a SOCKET -n NS images import -`, both checked: the host
/// dockerd's image in a containerd namespace (there is no registry to pull from).
pub fn docker_save_into(socket: &std::path::Path, ns: &str, image: &str) {
    let mut save = Command::new(DOCKER)
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let out = Command::new(CTR)
        .arg("-a")
        .arg(socket)
        .args(["-n", ns, "images", "import", "-"])
        .stdin(save.stdout.take().expect("docker save's stdout"))
        .output()
        .expect("ctr images import");
    let saved = save.wait().expect("docker save");
    assert!(
        saved.success() && out.status.success(),
        "docker save {image} | ctr images import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Docker image imported into a containerd namespace; removed from it on drop.
pub struct CtrImage {
    pub socket: &'static str,
    pub ns: &'static str,
    /// How containerd names it: `docker.io/<repo>:<tag>`.
    pub name: String,
}

impl CtrImage {
    /// `docker save IMAGE | ctr images import -`, both checked.
    pub fn import(socket: &'static str, ns: &'static str, image: &str) -> CtrImage {
        docker_save_into(socket.as_ref(), ns, image);
        let name = if image.split('/').next().is_some_and(|h| h.contains('.')) {
            image.to_string()
        } else {
            format!("docker.io/{image}")
        };
        CtrImage { socket, ns, name }
    }

    /// The image record's target digest, as `ctr images ls` prints it.
    pub fn digest(&self) -> String {
        let (ok, text) = ctr_in(self.socket, self.ns, &["images", "ls"]);
        assert!(ok, "{text}");
        text.lines()
            .find(|l| l.starts_with(&format!("{} ", self.name)))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("sha256:")))
            .unwrap_or_else(|| panic!("{} not in:\n{text}", self.name))
            .to_string()
    }

    /// A blob of the content store (`ctr content get`).
    pub fn content(&self, digest: &str) -> String {
        let (ok, text) = ctr_in(self.socket, self.ns, &["content", "get", digest]);
        assert!(ok, "ctr content get {digest}: {text}");
        text
    }
}

impl Drop for CtrImage {
    fn drop(&mut self) {
        // Containers hold a lease on the image; they are dropped before it.
        let _ = ctr_in(self.socket, self.ns, &["images", "rm", &self.name]);
    }
}

/// A `ctr run -d` container (task and container removed on drop, even when a test fails).
pub struct CtrContainer {
    pub socket: &'static str,
    pub ns: &'static str,
    pub name: String,
}

impl CtrContainer {
    /// `ctr run -d [--label L]... [--annotation A]... IMAGE NAME ARGV...`. `annotations`:
    /// OCI spec annotations (the CRI plugin's `io.kubernetes.cri.*` are what makes a
    /// container a pod's; labels alone are not).
    pub fn run(
        socket: &'static str,
        ns: &'static str,
        image: &str,
        name: &str,
        labels: &[&str],
        annotations: &[&str],
        argv: &[&str],
    ) -> CtrContainer {
        let c = CtrContainer {
            socket,
            ns,
            name: name.to_string(),
        };
        // A leftover of an earlier, killed run.
        c.remove();
        let mut args = vec!["run", "-d"];
        for l in labels {
            args.extend(["--label", l]);
        }
        for a in annotations {
            args.extend(["--annotation", a]);
        }
        args.extend([image, name]);
        args.extend(argv);
        let (ok, text) = ctr_in(socket, ns, &args);
        assert!(ok, "ctr {args:?}: {text}");
        c
    }

    /// `sh -c SCRIPT` in the container (`ctr task exec`).
    pub fn sh(&self, script: &str) -> (bool, String) {
        ctr_in(
            self.socket,
            self.ns,
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

    fn remove(&self) {
        let _ = ctr_in(
            self.socket,
            self.ns,
            &["task", "kill", "-s", "SIGKILL", &self.name],
        );
        for _ in 0..50 {
            let (ok, text) = ctr_in(self.socket, self.ns, &["task", "rm", "-f", &self.name]);
            if ok || text.contains("not found") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = ctr_in(self.socket, self.ns, &["containers", "rm", &self.name]);
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        self.remove();
    }
}
