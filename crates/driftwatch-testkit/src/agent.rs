//! A real `driftwatch run` as a child process, in its own temporary directory, and the Falco
//! JSON alerts it writes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::docker::TestContainer;

/// A real `driftwatch run` process writing Falco JSON alerts to a file.
pub struct AgentProcess {
    child: Child,
    pub json_out: PathBuf,
    /// The API's bearer token file (the agent creates it, 0600): in the test's own directory
    /// unless the test names one (`--api-token-file`, its own `--config`).
    pub token_file: PathBuf,
    /// Every line the agent wrote on stderr so far.
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl AgentProcess {
    /// `BIN run` with `extra` flags: `BIN` is the driftwatch binary (the test's
    /// `env!("CARGO_BIN_EXE_driftwatch")`).
    pub fn start(bin: impl AsRef<Path>, extra: &[&str]) -> AgentProcess {
        Self::start_via(&[], bin, extra)
    }

    /// Like [`AgentProcess::start`], with the agent run through `wrapper` (e.g. `setpriv
    /// --bounding-set ... --`): `wrapper[0]` is executed with the rest, then the agent's argv.
    pub fn start_via(wrapper: &[&str], bin: impl AsRef<Path>, extra: &[&str]) -> AgentProcess {
        let bin = bin.as_ref();
        let dir = tempfile::tempdir().expect("tempdir");
        let json_out = dir.path().join("alerts.json");
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        // Hermetic: the agent's state lives in the test's own directory, and no file a
        // previous run or session left on the host (/etc/driftwatch/config.yaml, the store
        // and its learned baselines in /var/lib/driftwatch) changes what it does. A test that
        // names one of these itself keeps its own.
        let given = |flag: &str| {
            extra
                .iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        let mut own: Vec<std::ffi::OsString> = Vec::new();
        let mut token_file = PathBuf::from("/var/lib/driftwatch/api.token");
        if let Some(i) = extra.iter().position(|a| *a == "--api-token-file") {
            token_file = PathBuf::from(extra[i + 1]);
        }
        if !given("--config") {
            let config = dir.path().join("config.yaml");
            // The API token in the test's directory; reads stay open on loopback as with the
            // default token file.
            let text = if given("--api-token-file") {
                String::new()
            } else {
                token_file = dir.path().join("api.token");
                format!(
                    "api:\n  token_file: {}\n  token_for_reads: false\n",
                    token_file.display()
                )
            };
            std::fs::write(&config, text).expect("writing the test agent's config");
            own.extend(["--config".into(), config.into()]);
        }
        // A test that brings its own configuration file owns these settings too (flags
        // would override the file's).
        let own_config = given("--config");
        if !own_config && !given("--store") && !given("--no-store") {
            own.extend(["--store".into(), dir.path().join("driftwatch.db").into()]);
        }
        if !own_config && !given("--actions-log") {
            own.extend([
                "--actions-log".into(),
                dir.path().join("actions.jsonl").into(),
            ]);
        }
        let mut child = cmd
            .arg("run")
            .arg("--no-stdout")
            .arg("--json-out")
            .arg(&json_out)
            .args(own)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning driftwatch run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[agent] {line}");
                lines
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
                if line.contains("watching every container") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("driftwatch run did not become ready within 60 s");
        }
        AgentProcess {
            child,
            json_out,
            token_file,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The API's bearer token (from the file the agent created).
    pub fn api_token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .unwrap_or_else(|e| panic!("{}: {e}", self.token_file.display()))
            .trim()
            .to_string()
    }

    /// Sends `sig` (e.g. `libc::SIGHUP`) to the agent.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.child.id());
    }

    /// The agent's stderr lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `count` log lines satisfy `pred`; panics with the log otherwise.
    pub fn wait_for_log(
        &self,
        what: &str,
        count: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let start = Instant::now();
        loop {
            let hits: Vec<String> = self.log().into_iter().filter(|l| pred(l)).collect();
            if hits.len() >= count {
                return hits;
            }
            if start.elapsed() > timeout {
                panic!(
                    "no {count} log lines for {what} within {timeout:?}; log:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits for the agent to exit (SIGKILL after 10 s): a clean stop, after
    /// which `--stats-json` is written.
    pub fn stop(&mut self) {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alerts(&self) -> Vec<serde_json::Value> {
        read_alerts(&self.json_out)
    }

    /// SIGKILLs the agent (no clean shutdown) and waits for it to be gone.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until an alert satisfies `pred`; panics with every alert seen otherwise.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(a) = self.alerts().into_iter().find(|a| pred(a)) {
                return a;
            }
            if start.elapsed() > timeout {
                let all: Vec<String> = self.alerts().iter().map(|a| a.to_string()).collect();
                panic!(
                    "no alert for {what} within {timeout:?}; alerts seen:\n{}",
                    all.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.stop();
    }
}

pub fn read_alerts(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("invalid JSON line in {}: {e}: {l}", path.display()))
        })
        .collect()
}

/// The events a `--record` file holds so far: whole lines only (the agent may be writing the
/// last one).
pub fn recorded_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits (up to 20 s) until the agent's baselines file lists `item`; its text then.
pub fn wait_for_baseline(file: &Path, item: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(item) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never listed {item}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sleeps until one second after the latest `learn_until` (unix seconds) of a baselines file,
/// once the agent has written one (within 20 s): the window runs from the image's first
/// sighting by the agent, later than a test's own clock under load.
pub fn sleep_past_learning(file: &Path) {
    let start = Instant::now();
    let until = loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let latest = doc["images"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|i| i["learn_until"].as_u64())
            .max();
        if let Some(u) = latest {
            break u;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no learn_until in {}: {text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now > until + 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn field<'a>(alert: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &alert["output_fields"][name]
}

pub fn has_tag(alert: &serde_json::Value, tag: &str) -> bool {
    alert["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

/// The one evidence bundle a capture wrote into `dir` (panics unless exactly one is there).
pub fn only_bundle(dir: &Path) -> PathBuf {
    let bundles: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    bundles.into_iter().next().unwrap()
}

/// Copies busybox to `/tmp/DIR/true` in the container and runs it: a dropped binary's
/// drift (`drift.path` = `/tmp/DIR/true`).
pub fn drop_and_run(c: &TestContainer, dir: &str) {
    let (code, out) = c.sh(&format!(
        "mkdir -p /tmp/{dir} && cp /bin/busybox /tmp/{dir}/true && /tmp/{dir}/true"
    ));
    assert_eq!(code, 0, "{out}");
}

/// Like [`drop_and_run`], without waiting for it (`docker exec -d`): a container frozen
/// meanwhile would hold a waiting `docker exec` until thawed.
pub fn drop_and_run_detached(c: &TestContainer, dir: &str) {
    let ok = Command::new(crate::docker::DOCKER)
        .args([
            "exec",
            "-d",
            &c.id,
            "sh",
            "-c",
            &format!("mkdir -p /tmp/{dir} && cp /bin/busybox /tmp/{dir}/true && /tmp/{dir}/true"),
        ])
        .status()
        .expect("running docker exec");
    assert!(ok.success(), "docker exec -d in {}", c.short());
}

/// Starts a container of `image` (which has `sh`) and waits until the agent watches its
/// layers (a marker write to `/etc/dw-ready` is reported).
pub fn watched_container(agent: &AgentProcess, image: &str) -> TestContainer {
    let c = TestContainer::run(&[image, "sleep", "300"]);
    for _ in 0..50 {
        c.sh("echo . >> /etc/dw-ready");
        if agent.alerts().iter().any(|a| {
            field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-ready"
        }) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the agent never reported the marker write in {}", c.short());
}
