//! What every benchmark binary shares: docker containers removed on drop, a cpuacct cgroup
//! for the agent (CPU of all its threads, in ns), a real `driftwatch run` process whose
//! counters are read at exit, medians.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

pub mod bpf_stats;
pub mod flamegraph;

pub const DOCKER: &str = "/usr/bin/docker";
pub const BUSYBOX: &str = "driftwatch-test/busybox:1";
pub const DEBIAN: &str = "driftwatch-test/debian:12";
/// cgroup v1 cpuacct hierarchy (hybrid hosts such as this one mount it on its own).
pub const CPUACCT: &str = "/sys/fs/cgroup/cpuacct";

pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(DOCKER)
        .args(args)
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A `--network none` container removed on drop.
pub struct Container(pub String);

impl Container {
    pub fn start(extra: &[&str]) -> anyhow::Result<Container> {
        Self::start_image(BUSYBOX, extra)
    }

    pub fn start_image(image: &str, extra: &[&str]) -> anyhow::Result<Container> {
        let mut a = vec!["run", "-d", "--network", "none"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[image, "sleep", "3600"]);
        Ok(Container(docker(&a)?))
    }

    pub fn cpu_ns(&self) -> anyhow::Result<u64> {
        read_u64(
            &Path::new(CPUACCT)
                .join("docker")
                .join(&self.0)
                .join("cpuacct.usage"),
        )
    }

    pub fn sh(&self, script: &str) -> anyhow::Result<String> {
        docker(&["exec", &self.0, "sh", "-c", script])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER)
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn read_u64(p: &Path) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing {}", p.display()))
}

/// A cpuacct cgroup of its own for the agent, so all its threads' CPU is counted in ns.
pub struct AgentCgroup(pub PathBuf);

impl AgentCgroup {
    pub fn new() -> anyhow::Result<AgentCgroup> {
        Self::new_named("dw-bench")
    }

    pub fn new_named(prefix: &str) -> anyhow::Result<AgentCgroup> {
        let p = Path::new(CPUACCT).join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(AgentCgroup(p))
    }
    pub fn cpu_ns(&self) -> anyhow::Result<u64> {
        read_u64(&self.0.join("cpuacct.usage"))
    }
}

impl Drop for AgentCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub struct BenchAgent {
    child: Child,
    stats: PathBuf,
    _dir: tempfile::TempDir,
}

impl BenchAgent {
    /// `driftwatch run --no-stdout` with its alerts and stats in a temp dir, moved into `cg`,
    /// once it says it is watching. `extra` arguments are added to `run`'s; `{dir}` in one is
    /// replaced by the temp dir.
    pub fn start(bin: &Path, cg: &AgentCgroup, extra: &[&str]) -> anyhow::Result<BenchAgent> {
        let dir = tempfile::tempdir()?;
        let stats = dir.path().join("stats.json");
        let mut child = Command::new(bin)
            .args(["run", "--no-stdout", "--json-out"])
            .arg(dir.path().join("alerts.json"))
            .arg("--stats-json")
            .arg(&stats)
            .args(
                extra
                    .iter()
                    .map(|a| a.replace("{dir}", &dir.path().display().to_string())),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        std::fs::write(cg.0.join("cgroup.procs"), child.id().to_string())
            .context("moving the agent to its cgroup")?;
        let stderr = child.stderr.take().context("agent stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("watching every container") {
                    let _ = tx.send(());
                }
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("  [agent] {line}");
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            bail!("the agent did not start within 60 s");
        }
        Ok(BenchAgent {
            child,
            stats,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's JSON alerts file.
    pub fn alerts_path(&self) -> PathBuf {
        self._dir.path().join("alerts.json")
    }

    pub fn stop(mut self) -> anyhow::Result<serde_json::Value> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        let text = std::fs::read_to_string(&self.stats).context("reading the agent's stats")?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// A run that fails half way (a docker error) stops its agent too.
impl Drop for BenchAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

/// The median (upper middle for an even count) of a non-empty sample.
pub fn median<T: PartialOrd + Copy>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Resident memory of `pid` in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A loopback port free at the time of the call (for `--api-listen`).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The agent's `/metrics` on loopback `port`: (series with labels, value) pairs.
pub fn scrape_metrics(port: u16) -> anyhow::Result<Vec<(String, f64)>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the agent's API on port {port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP reply from /metrics on port {port}");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "/metrics on port {port}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect())
}
