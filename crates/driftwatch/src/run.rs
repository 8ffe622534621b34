//! `driftwatch run`: the agent in the foreground until SIGINT or SIGTERM; SIGHUP reloads
//! its configuration file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use driftwatch_config::{FlagSetting, FlagValue};

use crate::flag_layer::{append, path_text, set, switch};
use driftwatch_daemon::{Daemon, ResolvedConfig};

/// Flags override the configuration file's keys (named in brackets), which override the
/// embedded defaults.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file [default: /etc/driftwatch/config.yaml when it exists, else
    /// the embedded defaults]. SIGHUP re-reads it. See `driftwatch config`.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Append each alert as one Falco JSON object per line to FILE (flushed at once)
    /// [config: outputs.json_file].
    #[arg(long, value_name = "FILE")]
    pub(crate) json_out: Option<PathBuf>,
    /// Append every container event as a JSON line to FILE, for `driftwatch rules test`.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    /// Extra rule files, loaded after the embedded defaults, the rules directory and the
    /// file's rules.files [config: rules.files, added to the file's].
    #[arg(long = "rules", value_name = "FILE")]
    pub(crate) rules: Vec<PathBuf>,
    /// Do not print alerts on stdout [config: outputs.stdout.enabled].
    #[arg(long)]
    pub(crate) no_stdout: bool,
    /// POST each alert as Falco JSON to URL (Falcosidekick, Falco Talon, a webhook); repeat
    /// for several receivers. Queued and retried without ever slowing detection [config:
    /// outputs.http, added to the file's].
    #[arg(long = "http-out", value_name = "URL")]
    pub(crate) http_out: Vec<String>,
    /// Docker's (or podman's) API socket [config: engines.docker_socket, default
    /// /var/run/docker.sock].
    #[arg(long, value_name = "PATH")]
    pub(crate) docker_socket: Option<PathBuf>,
    /// containerd's API socket [config: engines.containerd_socket; default:
    /// /run/containerd/containerd.sock, else dockerd's /run/docker/containerd/containerd.sock,
    /// when present].
    #[arg(long, value_name = "PATH")]
    pub(crate) containerd_socket: Option<PathBuf>,
    /// containerd namespaces to ask, comma-separated (`moby` is left to Docker when both are
    /// asked) [config: engines.containerd_namespaces, default k8s.io,moby,default].
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub(crate) containerd_namespaces: Vec<String>,
    /// podman's Docker-compatible API socket (`podman system service`), e.g.
    /// /run/podman/podman.sock; asked next to Docker and containerd [config:
    /// engines.podman_socket].
    #[arg(long, value_name = "PATH")]
    pub(crate) podman_socket: Option<PathBuf>,
    /// CRI-O's CRI socket [config: engines.crio_socket; default: /var/run/crio/crio.sock, else
    /// /run/crio/crio.sock, when present].
    #[arg(long, value_name = "PATH")]
    pub(crate) crio_socket: Option<PathBuf>,
    /// Do not ask any container engine (alerts then name containers by id only) [config:
    /// engines.disabled].
    #[arg(long)]
    pub(crate) no_engine: bool,
    /// Ring buffer between the kernel and the agent, in MiB (a power of two) [config:
    /// sensor.ring_mib, default 8].
    #[arg(long, value_name = "MIB")]
    pub(crate) ring_mib: Option<u32>,
    /// Stop after this many seconds (for scripts and benchmarks).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<u64>,
    /// Send one alert per (rule, container, executable, file) per window; repeats within
    /// it are counted, and the next window's first alert carries the number in
    /// `driftwatch.repeats` (e.g. `10s`) [config: limits.dedup_window, default 0: every
    /// alert is sent].
    #[arg(long, value_name = "DURATION", value_parser = driftwatch_config::parse_duration)]
    pub(crate) dedup_window: Option<Duration>,
    /// At exit, write the agent's counters (events, losses, alert latency, memory) as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) stats_json: Option<PathBuf>,
    /// Keep the per-image network baselines in this JSON file (see `driftwatch baseline`)
    /// instead of the alert store's database, where they live by default [config:
    /// network.baseline_file].
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline_file: Option<PathBuf>,
    /// How long each image learns its outbound destinations and extra listeners after its
    /// first container is seen (`90s`, `5m`, `1h`, `1d`) [config:
    /// network.learning_window, default 5m].
    #[arg(long, value_name = "DURATION", value_parser = driftwatch_config::parse_duration)]
    pub(crate) learning_window: Option<Duration>,
    /// Enforcement for every container: `detect` (alert only) or `prevent` (stop drifted
    /// code before its first instruction: exec denied with EPERM, or killed at exec).
    /// Overrides the modes of the enforcement policy; its allowlist still applies [config:
    /// enforcement.mode].
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub(crate) enforce: Option<driftwatch_model::EnforcementMode>,
    /// Enforcement policy file: a mode per scope (image, container name, label, Kubernetes
    /// namespace) and an allowlist of permitted drift (path, sha256, image). See docs/prevention.md
    /// [config: enforcement.policy].
    #[arg(long, value_name = "FILE")]
    pub(crate) enforcement_policy: Option<PathBuf>,
    /// Respond to alerts with the playbooks in FILE (kill, freeze, isolate, capture, stop,
    /// evict, label, notify; see `driftwatch playbook validate`) [config: response.playbook].
    #[arg(long, value_name = "FILE")]
    pub(crate) playbook: Option<PathBuf>,
    /// Where every action taken is recorded (JSON lines, mode 0600; `driftwatch actions`)
    /// [config: response.actions_log].
    #[arg(long, value_name = "FILE")]
    pub(crate) actions_log: Option<PathBuf>,
    /// Store alerts in this SQLite database (`driftwatch alerts` reads it) [config:
    /// store.path, default /var/lib/driftwatch/driftwatch.db; when the default cannot be
    /// opened the agent warns and runs without it; a path given here or in the file must
    /// open].
    #[arg(long, value_name = "PATH", conflicts_with = "no_store")]
    pub(crate) store: Option<PathBuf>,
    /// Do not store alerts [config: store.enabled].
    #[arg(long)]
    pub(crate) no_store: bool,
    /// Tamper protection: also deny containers opening this file or directory (repeatable;
    /// the agent's binary and the directories of its config, store, baselines, actions log
    /// and JSON alerts file are protected already) [config: tamper.protect, added to the
    /// file's].
    #[arg(long, value_name = "PATH")]
    pub(crate) protect: Vec<PathBuf>,
    /// Turn tamper protection off (signals from containers, ptrace hardening, file guard)
    /// [config: tamper.enabled].
    #[arg(long)]
    pub(crate) no_tamper_protection: bool,
    #[command(flatten)]
    pub(crate) kube: crate::respond_cmd::KubeArgs,
    #[command(flatten)]
    pub(crate) image_verify: crate::verify_cmd::AgentVerifyArgs,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

/// `driftwatch run`'s API options.
#[derive(clap::Args)]
pub struct ApiArgs {
    /// Serve the JSON API, /metrics, /healthz and the web UI on ADDR [config: api.listen,
    /// default 127.0.0.1:7878, skipped with a warning when taken]. An address other than
    /// loopback needs --api-token-file.
    #[arg(long, value_name = "ADDR")]
    api_listen: Option<std::net::SocketAddr>,
    /// Do not serve the API, metrics or UI [config: api.enabled].
    #[arg(long, conflicts_with_all = ["api_listen", "api_token_file"])]
    no_api: bool,
    /// The bearer token's file (`Authorization: Bearer TOKEN`, TOKEN its first line, at
    /// least 16 characters, mode 0600: refused when group or others may read it). Created
    /// with a random token when missing. State-changing requests always need the token;
    /// with this flag (or api.token_file) reads of /api and /metrics need it too
    /// [config: api.token_file, default /var/lib/driftwatch/api.token, reads open on
    /// loopback].
    #[arg(long, value_name = "FILE")]
    api_token_file: Option<PathBuf>,
    /// Do not serve the web UI (the API and metrics still are) [config: api.ui].
    #[arg(long)]
    no_ui: bool,
}

impl RunArgs {
    /// The flags as the configuration's last layer: each flag given sets the key its help
    /// names (checked with the file, by the configuration crate).
    pub(crate) fn flag_settings(&self) -> Vec<FlagSetting> {
        let mut f = Vec::new();
        let duration = |d: Option<Duration>| d.map(driftwatch_config::format_duration);
        let path = |p: &Option<PathBuf>| p.as_deref().map(path_text);
        if self.json_out.is_some() {
            switch(
                &mut f,
                true,
                "--json-out",
                "outputs.json_file.enabled",
                true,
            );
        }
        set(
            &mut f,
            "--json-out",
            "outputs.json_file.path",
            path(&self.json_out),
        );
        switch(
            &mut f,
            self.no_stdout,
            "--no-stdout",
            "outputs.stdout.enabled",
            false,
        );
        append(&mut f, "--http-out", "outputs.http", self.http_out.clone());
        append(
            &mut f,
            "--rules",
            "rules.files",
            self.rules.iter().map(|p| path_text(p)).collect(),
        );
        switch(
            &mut f,
            self.no_engine,
            "--no-engine",
            "engines.disabled",
            true,
        );
        set(
            &mut f,
            "--docker-socket",
            "engines.docker_socket",
            path(&self.docker_socket),
        );
        set(
            &mut f,
            "--containerd-socket",
            "engines.containerd_socket",
            path(&self.containerd_socket),
        );
        if !self.containerd_namespaces.is_empty() {
            f.push(FlagSetting {
                flag: "--containerd-namespaces",
                key: "engines.containerd_namespaces",
                value: FlagValue::List(self.containerd_namespaces.clone()),
            });
        }
        set(
            &mut f,
            "--podman-socket",
            "engines.podman_socket",
            path(&self.podman_socket),
        );
        set(
            &mut f,
            "--crio-socket",
            "engines.crio_socket",
            path(&self.crio_socket),
        );
        set(
            &mut f,
            "--ring-mib",
            "sensor.ring_mib",
            self.ring_mib.map(|m| m.to_string()),
        );
        set(
            &mut f,
            "--dedup-window",
            "limits.dedup_window",
            duration(self.dedup_window),
        );
        set(
            &mut f,
            "--baseline-file",
            "network.baseline_file",
            path(&self.baseline_file),
        );
        set(
            &mut f,
            "--learning-window",
            "network.learning_window",
            duration(self.learning_window),
        );
        set(
            &mut f,
            "--enforce",
            "enforcement.mode",
            self.enforce.map(|m| m.as_str().to_string()),
        );
        set(
            &mut f,
            "--enforcement-policy",
            "enforcement.policy",
            path(&self.enforcement_policy),
        );
        set(
            &mut f,
            "--playbook",
            "response.playbook",
            path(&self.playbook),
        );
        set(
            &mut f,
            "--actions-log",
            "response.actions_log",
            path(&self.actions_log),
        );
        if self.store.is_some() {
            switch(&mut f, true, "--store", "store.enabled", true);
        }
        set(&mut f, "--store", "store.path", path(&self.store));
        switch(&mut f, self.no_store, "--no-store", "store.enabled", false);
        append(
            &mut f,
            "--protect",
            "tamper.protect",
            self.protect.iter().map(|p| path_text(p)).collect(),
        );
        switch(
            &mut f,
            self.no_tamper_protection,
            "--no-tamper-protection",
            "tamper.enabled",
            false,
        );
        f.extend(self.kube.flag_settings());
        f.extend(self.image_verify.flag_settings());
        let a = &self.api;
        set(
            &mut f,
            "--api-listen",
            "api.listen",
            a.api_listen.map(|l| l.to_string()),
        );
        switch(&mut f, a.no_api, "--no-api", "api.enabled", false);
        set(
            &mut f,
            "--api-token-file",
            "api.token_file",
            path(&a.api_token_file),
        );
        switch(&mut f, a.no_ui, "--no-ui", "api.ui", false);
        f
    }
}

fn parse_mode(s: &str) -> Result<driftwatch_model::EnforcementMode, String> {
    match s {
        "detect" => Ok(driftwatch_model::EnforcementMode::Detect),
        "prevent" => Ok(driftwatch_model::EnforcementMode::Prevent),
        _ => Err(format!("`{s}`: the mode is `detect` or `prevent`")),
    }
}

/// SIGTERM and SIGHUP handlers, installed before the agent starts: a SIGHUP sent while it
/// starts (e.g. `systemctl reload` right after start) reloads instead of killing it.
struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (term, hup) = {
            let _in = rt.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            )
        };
        Ok(Signals { rt, term, hup })
    }

    /// Runs until SIGINT, SIGTERM or `duration`; reloads the daemon at each SIGHUP. A signal
    /// the daemon ignores (tamper protection saw a container send it, or could not tell who
    /// did) is ignored: a container cannot stop or reload the agent.
    fn wait(self, duration: Option<u64>, daemon: &mut Daemon) {
        let Signals {
            rt,
            mut term,
            mut hup,
        } = self;
        rt.block_on(async {
            let timeout = async {
                match duration {
                    Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(timeout);
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => if !daemon.ignores_signal(libc::SIGINT) { break },
                    _ = term.recv() => if !daemon.ignores_signal(libc::SIGTERM) { break },
                    _ = &mut timeout => break,
                    _ = hup.recv() => if !daemon.ignores_signal(libc::SIGHUP) { daemon.reload() },
                }
            }
        });
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "`driftwatch run` needs root: it loads BPF programs (CAP_BPF, CAP_PERFMON) and reads other processes' /proc entries. \
             `driftwatch rules validate` and `driftwatch doctor` work without it."
        );
    }
    let signals = Signals::install().context("installing signal handlers")?;
    let resolved = ResolvedConfig::resolve(
        args.config.as_deref(),
        args.flag_settings(),
        args.record.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut daemon = Daemon::start(resolved)?;
    tracing::info!("watching every container on this host for drift (Ctrl-C to stop)");
    crate::sd_notify::notify("READY=1");
    // Lost events are logged and alerted by the agent (its loss watch: "Driftwatch events lost").
    signals.wait(args.duration, &mut daemon);
    crate::sd_notify::notify("STOPPING=1");
    let stats = serde_json::to_value(daemon.stop()).context("the counters as JSON")?;
    if let Some(p) = &args.stats_json {
        std::fs::write(p, format!("{stats:#}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(0)
}
