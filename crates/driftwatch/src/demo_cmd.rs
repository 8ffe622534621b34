//! `driftwatch demo`: drift detection shown end to end in about a minute, offline. Builds a
//! throwaway busybox image from the host's static busybox (no registry), starts the agent as
//! a child with every piece of state in a temporary directory, drifts in a throwaway container
//! in each way the image allows, shows the alerts as they arrive and a summary, and removes
//! the container on every exit path (normal, error, panic, Ctrl-C).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

const DOCKER_CANDIDATES: &[&str] = &["/usr/bin/docker", "/usr/local/bin/docker"];
/// Every container the demo starts carries this label (the test looks for leftovers by it).
pub const DEMO_LABEL: &str = "io.driftwatch.demo";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The throwaway image: reused when present, else built from the host's static busybox.
    #[arg(
        long,
        value_name = "NAME:TAG",
        default_value = "driftwatch-demo/busybox:1"
    )]
    image: String,
    /// The static busybox the image is built from.
    #[arg(long, value_name = "PATH", default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Seconds to wait for each drift's alert.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    timeout: u64,
    /// Keep the image afterwards (it is removed when the demo built it).
    #[arg(long)]
    keep_image: bool,
    /// Docker's API socket (the agent asks it for container names and images).
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// Print the summary as JSON on stdout (the narration goes to stderr).
    #[arg(long)]
    json: bool,
}

/// One way of drifting, what it means, and how its alert is recognised.
struct Drift {
    key: &'static str,
    title: &'static str,
    why: &'static str,
    /// Shell run in the container (`None`: the drift is how the container was started).
    script: Option<&'static str>,
    /// File drift is sensed once the agent watches the container's layers; the script is
    /// repeated (it is idempotent) until the alert arrives.
    repeat: bool,
    rule: &'static str,
    matches: fn(&Value) -> bool,
}

fn f<'a>(a: &'a Value, name: &str) -> &'a Value {
    &a["output_fields"][name]
}

const DRIFTS: &[Drift] = &[
    Drift {
        key: "config",
        title: "container started with an added dangerous capability (--cap-add SYS_PTRACE)",
        why: "config drift: the container runs with more privilege than the engine's default set",
        script: None,
        repeat: false,
        rule: "Launch Excessively Capable Container",
        matches: |a| {
            a["rule"] == "Launch Excessively Capable Container"
                && f(a, "drift.path") == "CAP_SYS_PTRACE"
        },
    },
    Drift {
        key: "config_file",
        title: "a config file edited: a user appended to /etc/passwd",
        why: "file drift: the image's configuration changed at runtime (persistence)",
        script: Some("echo 'demo:x:0:0::/root:/bin/sh' >> /etc/passwd"),
        repeat: true,
        rule: "Write below etc",
        matches: |a| a["rule"] == "Write below etc" && f(a, "fd.name") == "/etc/passwd",
    },
    Drift {
        key: "dropped_binary",
        title: "a dropped binary executed: /tmp/ls (a copy written at runtime)",
        why: "binary drift: code that is not in the image ran (verdict added)",
        script: Some("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null"),
        repeat: false,
        rule: "Drop and execute new binary in container",
        matches: |a| {
            a["rule"] == "Drop and execute new binary in container"
                && f(a, "drift.path") == "/tmp/ls"
                && f(a, "drift.verdict") == "added"
        },
    },
    Drift {
        key: "tmpfs_binary",
        title: "a binary executed from a tmpfs: /scratch/ls",
        why: "binary drift: memory-backed filesystems leave nothing in the writable layer",
        script: Some("cp /bin/busybox /scratch/ls && /scratch/ls / >/dev/null"),
        repeat: false,
        rule: "Execute binary from non-image filesystem in container",
        matches: |a| {
            a["rule"] == "Execute binary from non-image filesystem in container"
                && f(a, "drift.path") == "/scratch/ls"
        },
    },
    Drift {
        key: "script",
        title: "a script written at runtime run through its interpreter: /tmp/payload.sh",
        why: "binary drift: the interpreter is the image's, the code it runs is not",
        script: Some(
            "printf '#!/bin/sh\\necho payload\\n' > /tmp/payload.sh && chmod +x /tmp/payload.sh && /tmp/payload.sh >/dev/null",
        ),
        repeat: false,
        rule: "Run runtime-written script in container",
        matches: |a| {
            a["rule"] == "Run runtime-written script in container"
                && f(a, "drift.path") == "/tmp/payload.sh"
        },
    },
    Drift {
        key: "modified_binary",
        title: "an image binary modified in place, then run: /usr/bin/true",
        why: "binary drift: same path as in the image, different content (verdict modified)",
        script: Some("echo >> /usr/bin/true && /usr/bin/true"),
        repeat: false,
        rule: "Drop and execute new binary in container",
        matches: |a| {
            a["rule"] == "Drop and execute new binary in container"
                && f(a, "drift.path") == "/usr/bin/true"
                && f(a, "drift.verdict") == "modified"
        },
    },
    Drift {
        key: "listener",
        title: "a new listening port: nc -l -p 4444",
        why: "network drift: a port the image does not declare (a bind shell, a backdoor)",
        script: Some("nc -l -p 4444 </dev/null >/dev/null 2>&1 & sleep 0.3"),
        repeat: false,
        rule: "Network drift detected in container",
        matches: |a| {
            a["rule"] == "Network drift detected in container"
                && f(a, "drift.verdict") == "undeclared_port"
                && f(a, "fd.lport") == 4444
        },
    },
    Drift {
        key: "package",
        title: "a package slipped into the package database (/lib/apk/db/installed)",
        why: "package drift: software installed at runtime, compared with the image's own database",
        script: Some(
            "printf '\\nC:Q1demo=\\nP:demo-backdoor\\nV:6.6.6-r0\\nA:x86_64\\n' >> /lib/apk/db/installed",
        ),
        // Once: repeated writes would keep postponing the settled re-read of the database.
        repeat: false,
        rule: "Package drift in container",
        matches: |a| {
            a["rule"] == "Package drift in container"
                && a["output"]
                    .as_str()
                    .is_some_and(|o| o.contains("demo-backdoor"))
        },
    },
];

/// Where the narration goes: stdout, or stderr when stdout carries the JSON summary.
struct Say {
    to_stderr: bool,
    start: Instant,
}

impl Say {
    fn line(&self, s: &str) {
        if self.to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
            let _ = std::io::stdout().flush();
        }
    }
    fn step(&self, s: &str) {
        self.line(&format!(
            "[{:>5.1}s] {s}",
            self.start.elapsed().as_secs_f64()
        ));
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`driftwatch demo` needs root: its agent loads BPF programs (sudo driftwatch demo)");
    }
    let docker = DOCKER_CANDIDATES
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
        .context("no docker client (/usr/bin/docker): the demo needs Docker")?;
    let pinned = Path::new(driftwatch_sensor::PIN_DIR).join("exec_link");
    if pinned.exists() {
        bail!(
            "an agent in prevent mode keeps its exec program pinned at {}: the demo's agent would \
             retire it. Stop that agent first (systemctl stop driftwatch) or run the demo on another host.",
            pinned.display()
        );
    }
    let say = Say {
        to_stderr: args.json,
        start: Instant::now(),
    };
    let out = Command::new(&docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .with_context(|| format!("running {docker}"))?;
    if !out.status.success() {
        bail!(
            "Docker is not answering ({docker} version): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    // Ctrl-C from here on removes what was created (the container by its name, the agent).
    let name = format!("driftwatch-demo-{}", std::process::id());
    let cleanup = Arc::new(Cleanup {
        docker: docker.clone(),
        container: name.clone(),
        agent_pid: AtomicU32::new(0),
        done: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
        image: Mutex::new(None),
        state: Mutex::new(None),
    });
    let _on_signal = cleanup.clone().watch_signals();
    say.line("driftwatch demo: drift in a throwaway container, detected live (Ctrl-C stops and cleans up)");
    say.step("preparing: the image");
    let built = ensure_image(&docker, &args, &say)?;
    let _image = ImageGuard {
        docker: docker.clone(),
        name: built.then(|| args.image.clone()),
    };
    if built {
        *lock(&cleanup.image) = Some(args.image.clone());
    }
    // Declared after the image guard, so dropped before it: the container goes first.
    let _container_guard = ContainerGuard(cleanup.clone());

    let state = tempfile::Builder::new()
        .prefix("driftwatch-demo-")
        .tempdir()
        .context("creating the demo's temporary state directory")?;
    *lock(&cleanup.state) = Some(state.path().to_path_buf());
    say.step(&format!(
        "preparing: starting the agent (state in {}, not /var/lib/driftwatch)",
        state.path().display()
    ));
    let agent = DemoAgent::start(state.path(), &args.docker_socket, &cleanup)?;
    say.step(&format!(
        "preparing: starting container {name} ({}, --tmpfs /scratch, --cap-add SYS_PTRACE)",
        args.image
    ));
    let out = Command::new(&docker)
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &format!("{DEMO_LABEL}=1"),
            "--network",
            "none",
            "--tmpfs",
            "/scratch:exec",
            "--cap-add",
            "SYS_PTRACE",
            &args.image,
            "sleep",
            "600",
        ])
        .output()
        .context("docker run")?;
    if !out.status.success() {
        bail!(
            "docker run {}: {}",
            args.image,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let short: String = id.chars().take(12).collect();

    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut shown = 0usize;
    let mut results = Vec::new();
    for d in DRIFTS {
        say.line("");
        say.step(&format!("drift: {}", d.title));
        say.line(&format!("         {}", d.why));
        if let Some(script) = d.script {
            say.line(&format!("         $ docker exec {name} sh -c \"{script}\""));
        }
        let begun = Instant::now();
        let mut last_try: Option<Instant> = None;
        let mut failed_run = None;
        let seen = loop {
            if let Some(script) = d.script
                && (last_try.is_none()
                    || (d.repeat
                        && last_try.is_some_and(|t| t.elapsed() > Duration::from_millis(700))))
            {
                last_try = Some(Instant::now());
                let r = Command::new(&docker)
                    .args(["exec", &id, "sh", "-c", script])
                    .output()
                    .context("docker exec")?;
                if !r.status.success() {
                    failed_run = Some(format!(
                        "exit {}: {}",
                        r.status.code().unwrap_or(-1),
                        String::from_utf8_lossy(&r.stderr).trim()
                    ));
                }
            }
            let alerts = agent.alerts_for(&short);
            for a in &alerts[shown.min(alerts.len())..] {
                say.line(&format!("         alert: {}", describe(a)));
            }
            shown = alerts.len();
            if let Some(a) = alerts.iter().find(|a| (d.matches)(a)) {
                break Some((a.clone(), begun.elapsed()));
            }
            if begun.elapsed() > timeout {
                break None;
            }
            if let Some(status) = agent.exited() {
                cleanup.wait_if_interrupted();
                bail!(
                    "the demo's agent exited ({status}); its last words:\n{}",
                    agent.last_stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        match &seen {
            Some((_, after)) => say.step(&format!(
                "detected: \"{}\" ({:.1}s after the drift)",
                d.rule,
                after.as_secs_f64()
            )),
            None => say.step(&format!(
                "NOT detected within {}s: expected \"{}\"{}",
                timeout.as_secs(),
                d.rule,
                failed_run
                    .as_deref()
                    .map(|e| format!(" (the drift command failed: {e})"))
                    .unwrap_or_default()
            )),
        }
        results.push((d, seen));
    }
    // Alerts that arrived after the last step are still worth showing.
    std::thread::sleep(Duration::from_millis(300));
    let alerts = agent.alerts_for(&short);
    for a in &alerts[shown.min(alerts.len())..] {
        say.line(&format!("         alert: {}", describe(a)));
    }

    say.line("");
    say.line("summary (expected vs seen):");
    say.line(&format!(
        "  {:<16} {:<56} {}",
        "drift", "expected rule", "seen"
    ));
    for (d, seen) in &results {
        let s = match seen {
            Some((_, after)) => format!("yes ({:.1}s)", after.as_secs_f64()),
            None => "NO".into(),
        };
        say.line(&format!("  {:<16} {:<56} {s}", d.key, d.rule));
    }
    let detected = results.iter().filter(|(_, s)| s.is_some()).count();
    say.line(&format!(
        "{detected}/{} drifts detected; {} alerts in all for {name}",
        results.len(),
        alerts.len()
    ));
    say.step(&format!("removing container {name}"));
    cleanup.remove_container();
    if args.json {
        let summary = serde_json::json!({
            "container": {"id": id, "name": name, "image": args.image},
            "drifts": results.iter().map(|(d, s)| serde_json::json!({
                "drift": d.key,
                "rule": d.rule,
                "seen": s.is_some(),
                "after_ms": s.as_ref().map(|(_, t)| t.as_millis() as u64),
                "alert": s.as_ref().map(|(a, _)| a.clone()),
            })).collect::<Vec<_>>(),
            "alerts": alerts.len(),
        });
        println!("{summary}");
    }
    Ok(if detected == results.len() { 0 } else { 1 })
}

/// `Critical Drop and execute new binary in container [binary_drift] /tmp/ls`.
fn describe(a: &Value) -> String {
    let category = a["tags"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .find(|t| t.ends_with("_drift") || *t == "shell")
        })
        .unwrap_or("drift");
    let what = ["drift.path", "fd.name"]
        .iter()
        .find_map(|k| f(a, k).as_str().filter(|s| !s.is_empty() && *s != "<NA>"))
        .unwrap_or("");
    format!(
        "{} {} [{category}] {what}",
        a["priority"].as_str().unwrap_or("?"),
        a["rule"].as_str().unwrap_or("?")
    )
}

/// Reuses the image, or builds it from the host's busybox; true when built (so ours to remove).
fn ensure_image(docker: &str, args: &DemoArgs, say: &Say) -> anyhow::Result<bool> {
    let exists = Command::new(docker)
        .args(["image", "inspect", &args.image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        say.step(&format!("preparing: reusing image {}", args.image));
        return Ok(false);
    }
    let busybox = std::fs::read(&args.busybox).with_context(|| {
        format!(
            "reading {} (the demo builds its image from a static busybox: apt-get install busybox-static)",
            args.busybox.display()
        )
    })?;
    if elf_interpreter(&busybox) {
        bail!(
            "{} is dynamically linked: the image needs a static busybox (apt-get install busybox-static, or --busybox PATH)",
            args.busybox.display()
        );
    }
    say.step(&format!(
        "preparing: building image {} from {} (offline, docker import)",
        args.image,
        args.busybox.display()
    ));
    let root = tempfile::tempdir().context("creating the image's root directory")?;
    let r = root.path();
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "tmp",
        "etc",
        "root",
        "proc",
        "sys",
        "dev",
        "scratch",
        "lib/apk/db",
    ] {
        std::fs::create_dir_all(r.join(d))
            .with_context(|| format!("creating {d} in the image root"))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    let bb = r.join("bin/busybox");
    std::fs::write(&bb, &busybox).with_context(|| format!("writing {}", bb.display()))?;
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755))?;
    let list = Command::new(&args.busybox)
        .arg("--list-full")
        .output()
        .with_context(|| format!("{} --list-full", args.busybox.display()))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let p = r.join(applet);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink("/bin/busybox", &p)
            .with_context(|| format!("linking {}", p.display()))?;
    }
    // A real file (not a link) the demo can modify in place.
    let t = r.join("usr/bin/true");
    let _ = std::fs::remove_file(&t);
    std::fs::write(&t, &busybox)?;
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(r.join("etc/group"), "root:x:0:\n")?;
    // The image's own package database, so adding to it is package drift.
    std::fs::write(
        r.join("lib/apk/db/installed"),
        "C:Q1busybox=\nP:busybox\nV:1.36.1-r0\nA:x86_64\n",
    )?;
    let mut tar = Command::new("tar")
        .args(["-C"])
        .arg(r)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar (the image is built with tar | docker import)")?;
    let tar_out = tar.stdout.take().context("tar's stdout")?;
    let import = Command::new(docker)
        .args([
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            "-c",
            &format!("LABEL {DEMO_LABEL}=1"),
            "-",
            &args.image,
        ])
        .stdin(tar_out)
        .stdout(Stdio::null())
        .output()
        .context("docker import")?;
    let tar_status = tar.wait()?;
    if !tar_status.success() || !import.status.success() {
        bail!(
            "building {} failed (tar {tar_status}): {}",
            args.image,
            String::from_utf8_lossy(&import.stderr).trim()
        );
    }
    Ok(!args.keep_image)
}

/// True when the ELF file has a PT_INTERP program header (dynamically linked).
fn elf_interpreter(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    // ELF64, little endian only (x86_64, aarch64): what busybox-static is here.
    if bytes.get(0..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).any(|i| u32_at(phoff as usize + i * phentsize as usize) == Some(3))
}

struct ImageGuard {
    docker: String,
    name: Option<String>,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if let Some(n) = &self.name {
            let _ = Command::new(&self.docker)
                .args(["image", "rm", "-f", n])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What must go on every exit path: the container and the agent child.
struct Cleanup {
    docker: String,
    container: String,
    /// 0 until the agent runs.
    agent_pid: AtomicU32,
    done: AtomicBool,
    interrupted: AtomicBool,
    /// The image when the demo built it, and the state directory: removed on a signal too
    /// (`process::exit` runs no destructors).
    image: Mutex<Option<String>>,
    state: Mutex<Option<PathBuf>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cleanup {
    fn remove_container(&self) {
        let _ = Command::new(&self.docker)
            .args(["rm", "-f", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.done.store(true, Ordering::SeqCst);
    }

    /// After the signal thread stopped the agent, the main thread waits for it to exit 130
    /// instead of reporting the agent's exit as an error.
    fn wait_if_interrupted(&self) {
        if self.interrupted.load(Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
    }

    /// On SIGINT or SIGTERM: remove the container, stop the agent, exit 130.
    fn watch_signals(self: Arc<Self>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            self.interrupted.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: removing container {}", self.container);
            let pid = self.agent_pid.load(Ordering::SeqCst);
            if pid != 0 {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            self.remove_container();
            // A `docker run` in flight may create it just after: look once more.
            std::thread::sleep(Duration::from_millis(500));
            self.remove_container();
            if let Some(image) = lock(&self.image).take() {
                let _ = Command::new(&self.docker)
                    .args(["image", "rm", "-f", &image])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            if let Some(dir) = lock(&self.state).take() {
                // The agent writes its state there until it has stopped (its store, its
                // baselines): wait for it (bounded), then remove, once more if it raced.
                if pid != 0 {
                    wait_exited(pid, Duration::from_secs(10));
                }
                if std::fs::remove_dir_all(&dir).is_err() {
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            std::process::exit(130);
        })
    }
}

/// Waits until process `pid` has exited (gone, or a zombie not reaped yet), at most `limit`.
fn wait_exited(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct ContainerGuard(Arc<Cleanup>);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.0.done.load(Ordering::SeqCst) {
            self.0.remove_container();
        }
    }
}

/// The agent as a child process (`driftwatch run`) with its state in the demo's temp dir.
struct DemoAgent {
    child: Child,
    json_out: PathBuf,
    stderr_tail: Arc<Mutex<Vec<String>>>,
    offset: Mutex<(u64, Vec<Value>)>,
}

impl DemoAgent {
    fn start(dir: &Path, docker_socket: &Path, cleanup: &Cleanup) -> anyhow::Result<DemoAgent> {
        let exe = std::env::current_exe().context("finding the driftwatch binary")?;
        let json_out = dir.join("alerts.json");
        let mut cmd = Command::new(exe);
        cmd.arg("run");
        // With the configuration file support, the store and API go to the temp dir / off
        // too, so the demo never touches a production agent's state or port.
        if run_takes_config() {
            let config = dir.join("config.yaml");
            std::fs::write(
                &config,
                format!(
                    "store:\n  path: {}\napi:\n  enabled: false\n",
                    dir.join("driftwatch.db").display()
                ),
            )
            .with_context(|| format!("writing {}", config.display()))?;
            cmd.arg("--config").arg(&config);
        }
        cmd.arg("--no-stdout")
            .arg("--json-out")
            .arg(&json_out)
            .arg("--baseline-file")
            .arg(dir.join("baselines.json"))
            .arg("--actions-log")
            .arg(dir.join("actions.jsonl"))
            .arg("--no-layer-check")
            .arg("--docker-socket")
            .arg(docker_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting the agent (driftwatch run)")?;
        cleanup.agent_pid.store(child.id(), Ordering::SeqCst);
        let stderr = child.stderr.take().context("the agent's stderr")?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let tail = tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("watching every container") {
                        let _ = tx.send(());
                    }
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.push(line);
                    if t.len() > 30 {
                        t.remove(0);
                    }
                }
            });
        }
        let mut agent = DemoAgent {
            child,
            json_out,
            stderr_tail: tail,
            offset: Mutex::new((0, Vec::new())),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return Ok(agent);
            }
            if let Some(status) = agent.exited() {
                cleanup.wait_if_interrupted();
                bail!(
                    "the agent exited ({status}) before it was ready:\n{}",
                    agent.last_stderr()
                );
            }
            if Instant::now() > deadline {
                let _ = agent.child.kill();
                bail!(
                    "the agent was not ready within 90 s:\n{}",
                    agent.last_stderr()
                );
            }
        }
    }

    fn exited(&self) -> Option<String> {
        // try_wait needs &mut; the pid is ours, so ask waitid without reaping.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a zeroed siginfo_t; WNOWAIT leaves the child reapable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is valid to read after a successful waitid.
        (r == 0 && unsafe { info.si_pid() } != 0).then(|| {
            // SAFETY: as above.
            format!("status {}", unsafe { info.si_status() })
        })
    }

    fn last_stderr(&self) -> String {
        self.stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Every alert so far about the container with this short id, in arrival order.
    fn alerts_for(&self, short: &str) -> Vec<Value> {
        let mut st = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut file) = std::fs::File::open(&self.json_out) {
            use std::io::Seek;
            if file.seek(std::io::SeekFrom::Start(st.0)).is_ok() {
                let mut buf = String::new();
                let _ = file.read_to_string(&mut buf);
                // Only whole lines: the agent may be mid-write.
                let complete = buf.rfind('\n').map_or(0, |i| i + 1);
                for line in buf[..complete].lines() {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        st.1.push(v);
                    }
                }
                st.0 += complete as u64;
            }
        }
        st.1.iter()
            .filter(|a| f(a, "container.id") == short)
            .cloned()
            .collect()
    }
}

impl Drop for DemoAgent {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
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
}

/// Whether `driftwatch run` accepts `--config` (the configuration file support).
fn run_takes_config() -> bool {
    use clap::CommandFactory;
    crate::Cli::command()
        .find_subcommand("run")
        .is_some_and(|r| r.get_arguments().any(|a| a.get_long() == Some("config")))
}
