//! Containers and images of the host's dockerd for tests: the offline test images, and RAII
//! guards that remove what a test created even when it panics.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use driftwatch_model::OverlayLayers;

pub const DOCKER: &str = "/usr/bin/docker";
/// The offline test images (tests/images/build.sh): busybox, and Debian minbase with python3
/// and procps.
pub const BUSYBOX: &str = "driftwatch-test/busybox:1";
pub const DEBIAN: &str = "driftwatch-test/debian:12";

/// A shell script for [`DEBIAN`] that builds a one-file `.deb` named `package` at `version`
/// and installs it with `dpkg -i`: package drift without a repository to install from.
pub fn dpkg_install_script(package: &str, version: &str) -> String {
    format!(
        "mkdir -p /tmp/pkg/DEBIAN /tmp/pkg/usr/share/dwtest && echo hi > /tmp/pkg/usr/share/dwtest/hi \
        && printf 'Package: {package}\\nVersion: {version}\\nArchitecture: all\\nMaintainer: t <t@t>\\nDescription: t\\n' > /tmp/pkg/DEBIAN/control \
        && dpkg-deb --build /tmp/pkg /tmp/dw.deb >/dev/null && dpkg -i /tmp/dw.deb"
    )
}

/// `docker ARGS`, whatever its exit status.
pub fn docker(args: &[&str]) -> Output {
    Command::new(DOCKER)
        .args(args)
        .output()
        .expect("running docker")
}

/// `docker ARGS`, asserted to succeed: its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    String::from_utf8_lossy(&docker_bytes(args))
        .trim()
        .to_string()
}

/// `docker ARGS`, asserted to succeed: its stdout, byte for byte.
pub fn docker_bytes(args: &[&str]) -> Vec<u8> {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A container that is removed when dropped, even when the test panics.
pub struct TestContainer {
    pub id: String,
}

impl TestContainer {
    /// `docker run -d --network none ARGS...`
    pub fn run(args: &[&str]) -> TestContainer {
        let mut all = vec!["--network", "none"];
        all.extend_from_slice(args);
        TestContainer::run_on_any_network(&all)
    }

    /// `docker run -d ARGS...`: ARGS choose the network (`--network host`, ...).
    pub fn run_on_any_network(args: &[&str]) -> TestContainer {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        TestContainer::from_stdout(&all)
    }

    /// `docker create --network none ARGS...`: not started.
    pub fn create(args: &[&str]) -> TestContainer {
        let mut all = vec!["create", "--network", "none"];
        all.extend_from_slice(args);
        TestContainer::from_stdout(&all)
    }

    fn from_stdout(args: &[&str]) -> TestContainer {
        TestContainer {
            id: docker_ok(args),
        }
    }

    /// A busybox container named `name` running the shell `script`.
    fn busybox_sh(name: &str, script: &str) -> TestContainer {
        TestContainer::run(&["--name", name, BUSYBOX, "sh", "-c", script])
    }

    /// A busybox container named `name` serving `hello` over HTTP on 8080 with busybox httpd
    /// (an image binary: not drift), once it answers.
    pub fn httpd(name: &str) -> TestContainer {
        let c = TestContainer::busybox_sh(
            name,
            "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www",
        );
        let start = Instant::now();
        while !c.get_inside("127.0.0.1:8080").contains("hello") {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "httpd in {} never answered",
                c.short()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// An HTTP GET from inside the container with busybox nc (its wget crashes in this image
    /// without a network); the answer or the error.
    pub fn get_inside(&self, host_port: &str) -> String {
        let (host, port) = host_port.split_once(':').unwrap();
        self.sh(&format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}"
        ))
        .1
    }

    pub fn short(&self) -> &str {
        &self.id[..12]
    }

    /// `docker exec` a shell snippet; returns (exit code, stdout+stderr).
    pub fn sh(&self, script: &str) -> (i32, String) {
        self.exec(&["sh", "-c", script])
    }

    /// `docker exec` ARGV; returns (exit code, stdout+stderr).
    pub fn exec(&self, argv: &[&str]) -> (i32, String) {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(argv);
        let out = docker(&all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// `docker exec CONTAINER sh -c SCRIPT`, asserted to succeed: its stdout, byte for byte.
    pub fn sh_ok(&self, script: &str) -> Vec<u8> {
        docker_bytes(&["exec", &self.id, "sh", "-c", script])
    }

    /// Like [`TestContainer::sh_ok`] with bash (for a script that rewrites `sh` itself).
    pub fn bash_ok(&self, script: &str) -> Vec<u8> {
        docker_bytes(&["exec", &self.id, "bash", "-c", script])
    }

    /// `docker inspect -f FORMAT`, trimmed.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.id])
    }

    /// The host pid of the container's first process.
    pub fn pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}").parse().unwrap()
    }

    /// A busybox container named `name` writing an ever-growing count to `/tmp/count` every
    /// 50 ms, once it counts: whether its processes run (a freeze) is read from the host with
    /// [`TestContainer::count`].
    pub fn counter(name: &str) -> TestContainer {
        let c = TestContainer::busybox_sh(
            name,
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
        );
        let start = Instant::now();
        while c.count() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} never counted",
                c.short()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// The count of a [`TestContainer::counter`], read from the host (0 before the first).
    pub fn count(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/root/tmp/count", self.pid()))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// The freezer control file of the container's cgroup as the host (the test) sees it:
    /// v1 `freezer.state`, else v2 `cgroup.freeze`.
    pub fn freezer_control(&self) -> PathBuf {
        let text = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid())).unwrap();
        if let Some(p) = text
            .lines()
            .find_map(|l| l.split_once(":freezer:").map(|(_, p)| p.to_string()))
        {
            return PathBuf::from(format!("/sys/fs/cgroup/freezer{p}/freezer.state"));
        }
        let p = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let unified = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "/sys/fs/cgroup"
        } else {
            "/sys/fs/cgroup/unified"
        };
        PathBuf::from(format!("{unified}{p}/cgroup.freeze"))
    }

    /// Overlay layers from `docker inspect` (LowerDir is colon-separated, top-most first).
    pub fn layers(&self) -> OverlayLayers {
        let out = docker_ok(&["inspect", "-f", "{{json .GraphDriver}}", &self.id]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Name"], "overlay2", "storage driver");
        let data = &v["Data"];
        let s = |k: &str| {
            data[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {v}"))
                .to_string()
        };
        OverlayLayers {
            upper: PathBuf::from(s("UpperDir")),
            lowers: s("LowerDir").split(':').map(PathBuf::from).collect(),
            merged: Some(PathBuf::from(s("MergedDir"))),
        }
    }

    /// `docker diff`: (kind, path) with kind `A`, `C` or `D`.
    pub fn docker_diff(&self) -> Vec<(char, String)> {
        let out = String::from_utf8(docker_bytes(&["diff", &self.id])).unwrap();
        out.lines()
            .map(|l| {
                let (k, p) = l.split_once(' ').unwrap();
                (k.chars().next().unwrap(), p.to_string())
            })
            .collect()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER)
            .args(["rm", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An image a test built (by name), removed when dropped, even when the test panics.
pub struct TestImage(pub String);

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", "-f", &self.0]);
    }
}

/// Thaws a container's cgroup (its [`TestContainer::freezer_control`]) when dropped: declared
/// after the container, so dropped before it, it keeps a failing freeze test from leaving
/// `docker rm -f` waiting on a frozen cgroup.
pub struct Thaw(pub PathBuf);

impl Thaw {
    pub fn of(c: &TestContainer) -> Thaw {
        Thaw(c.freezer_control())
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        let v = if self.0.ends_with("freezer.state") {
            "THAWED"
        } else {
            "0"
        };
        let _ = std::fs::write(&self.0, v);
    }
}
