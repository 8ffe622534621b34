//! `driftwatch run`: the agent in the foreground until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use driftwatch_agent::{Agent, AgentConfig};
use driftwatch_rules::Source;
use driftwatch_runtime::{ContainerdConfig, DockerConfig};

const RULES_DIR: &str = "/etc/driftwatch/rules.d";

#[derive(clap::Args)]
pub struct RunArgs {
    /// Append each alert as one Falco JSON object per line to FILE (flushed at once).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Append every container event as a JSON line to FILE, for `driftwatch rules test`.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Extra rule files, loaded after the embedded defaults and /etc/driftwatch/rules.d/*.yaml.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Do not print alerts on stdout.
    #[arg(long)]
    no_stdout: bool,
    /// Docker's (or podman's) API socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// containerd's API socket [default: /run/containerd/containerd.sock, else dockerd's
    /// /run/docker/containerd/containerd.sock, when present].
    #[arg(long, value_name = "PATH")]
    containerd_socket: Option<PathBuf>,
    /// containerd namespaces to ask, comma-separated (`moby` is left to Docker when both are
    /// asked).
    #[arg(
        long,
        value_name = "NS,...",
        value_delimiter = ',',
        default_value = "k8s.io,moby,default"
    )]
    containerd_namespaces: Vec<String>,
    /// podman's Docker-compatible API socket (`podman system service`), e.g.
    /// /run/podman/podman.sock; asked next to Docker and containerd.
    #[arg(long, value_name = "PATH")]
    podman_socket: Option<PathBuf>,
    /// Do not ask any container engine (alerts then name containers by id only).
    #[arg(long)]
    no_engine: bool,
    /// Ring buffer between the kernel and the agent, in MiB (a power of two).
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    ring_mib: u32,
    /// Stop after this many seconds (for scripts and benchmarks).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// At exit, write the agent's counters (events, losses, alert latency, memory) as JSON.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Where per-image network baselines persist across restarts (JSON; see `driftwatch
    /// baseline`).
    #[arg(long, value_name = "FILE", default_value = driftwatch_agent::DEFAULT_BASELINE_FILE)]
    baseline_file: PathBuf,
    /// How long each image learns its outbound destinations and extra listeners after its
    /// first container is seen: seconds, or with a unit (`90s`, `5m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    learning_window: Duration,
    /// Enforcement for every container: `detect` (alert only) or `prevent` (stop drifted
    /// code before its first instruction: exec denied with EPERM, or killed at exec).
    /// Overrides the modes of --enforcement-policy; its allowlist still applies.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    enforce: Option<driftwatch_model::EnforcementMode>,
    /// Enforcement policy file: a mode per scope (image, container name, label, Kubernetes
    /// namespace) and an allowlist of permitted drift (path, sha256, image). See README.
    #[arg(long, value_name = "FILE")]
    enforcement_policy: Option<PathBuf>,
    /// Respond to alerts with the playbooks in FILE (kill, freeze, isolate, capture, stop,
    /// evict, label, notify; see `driftwatch playbook validate`).
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Where every action taken is recorded (JSON lines, mode 0600; `driftwatch actions`).
    #[arg(long, value_name = "FILE", default_value = driftwatch_response::DEFAULT_ACTIONS_LOG)]
    actions_log: PathBuf,
    #[command(flatten)]
    kube: crate::respond_cmd::KubeArgs,
    #[command(flatten)]
    image_verify: crate::verify_cmd::AgentVerifyArgs,
    #[command(flatten)]
    api: crate::serve::ApiArgs,
}

fn parse_mode(s: &str) -> Result<driftwatch_model::EnforcementMode, String> {
    match s {
        "detect" => Ok(driftwatch_model::EnforcementMode::Detect),
        "prevent" => Ok(driftwatch_model::EnforcementMode::Prevent),
        _ => Err(format!("`{s}`: the mode is `detect` or `prevent`")),
    }
}

/// `300`, `300s`, `5m`, `1h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 300, 90s, 5m, 1h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}`: unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

/// Peak and current resident memory of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmHWM:"), get("VmRSS:"))
}

fn read_rule_file(path: &Path) -> anyhow::Result<Source> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading rule file {}", path.display()))?;
    Ok(Source::new(path.display().to_string(), text))
}

fn rule_sources(extra: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(RULES_DIR) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files.extend(extra.iter().cloned());
    files.iter().map(|p| read_rule_file(p)).collect()
}

fn wait_for_signal(duration: Option<u64>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let timeout = async {
            match duration {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = timeout => {}
        }
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "`driftwatch run` needs root: it loads BPF programs (CAP_BPF, CAP_PERFMON) and reads other processes' /proc entries. \
             `driftwatch rules validate` and `driftwatch doctor` work without it."
        );
    }
    if !args.ring_mib.is_power_of_two() {
        anyhow::bail!("--ring-mib {}: must be a power of two", args.ring_mib);
    }
    let mut enforcement = match &args.enforcement_policy {
        Some(p) => driftwatch_agent::EnforcementPolicy::load(p).map_err(anyhow::Error::msg)?,
        None => driftwatch_agent::EnforcementPolicy::everywhere(
            driftwatch_model::EnforcementMode::Detect,
        ),
    };
    if let Some(mode) = args.enforce {
        enforcement.default = mode;
        enforcement.scopes.clear();
    }
    let responder = match &args.playbook {
        Some(p) => Some(crate::respond_cmd::start_responder(
            p,
            &args.actions_log,
            (!args.no_engine).then(|| args.docker_socket.clone()),
            args.json_out.clone(),
            &args.kube,
        )?),
        None => None,
    };
    let api_plan = args.api.plan()?;
    let api_ctx = crate::serve::ApiContext {
        ring: std::sync::Arc::new(driftwatch_api::AlertRing::new(
            driftwatch_api::AlertRing::DEFAULT_CAPACITY,
        )),
        responder: responder.clone(),
        actions_log: args.actions_log.clone(),
        docker_socket: (!args.no_engine).then(|| args.docker_socket.clone()),
        kube: args.kube.client()?,
        alerts_file: args.json_out.clone(),
        metric_sources: Vec::new(),
    };
    let config = AgentConfig {
        enforcement,
        json_out: args.json_out,
        record: args.record,
        stdout: !args.no_stdout,
        rule_sources: rule_sources(&args.rules)?,
        docker: (!args.no_engine).then(|| DockerConfig {
            socket: args.docker_socket,
            ..DockerConfig::default()
        }),
        containerd: (!args.no_engine)
            .then(|| {
                args.containerd_socket
                    .or_else(ContainerdConfig::find_socket)
            })
            .flatten()
            .map(|socket| ContainerdConfig {
                socket,
                namespaces: args.containerd_namespaces,
                ..ContainerdConfig::default()
            }),
        podman: args
            .podman_socket
            .filter(|_| !args.no_engine)
            .map(|socket| DockerConfig {
                socket,
                engine: driftwatch_model::Engine::Podman,
                ..DockerConfig::default()
            }),
        ring_bytes: args.ring_mib * 1024 * 1024,
        baseline_file: Some(args.baseline_file),
        learning_window: args.learning_window,
        image_verify: args.image_verify.config()?,
        ..AgentConfig::default()
    };
    let mut sinks: Vec<Box<dyn driftwatch_agent::AlertSink>> = match &responder {
        Some(r) => vec![Box::new(crate::respond_cmd::ResponseSink(r.clone()))],
        None => Vec::new(),
    };
    sinks.push(api_ctx.sink());
    let agent = std::sync::Arc::new(Agent::start_with_sinks(config, sinks)?);
    let api = crate::serve::start(api_plan, &agent, api_ctx)?;
    tracing::info!("watching every container on this host for drift (Ctrl-C to stop)");
    let watcher = {
        let sensor = agent.sensor_stats().cloned();
        std::thread::spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(Duration::from_secs(2));
                let lost = sensor.as_ref().map_or(0, |s| s.lost());
                if lost > reported {
                    tracing::warn!(
                        "{} exec events lost (the ring buffer was full); {lost} in all since start",
                        lost - reported
                    );
                    reported = lost;
                }
            }
        })
    };
    drop(watcher);
    wait_for_signal(args.duration)?;
    let s = agent.stats();
    let k = agent.sensor_stats().cloned();
    let lost = agent.lost();
    let summary = format!(
        "execs seen in containers: {}, alerts: {}, events lost: {lost}, malformed records: {}",
        s.processed.load(Ordering::Relaxed),
        s.alerts.load(Ordering::Relaxed),
        k.as_ref()
            .map_or(0, |k| k.malformed.load(Ordering::Relaxed)),
    );
    let (peak_kib, rss_kib) = memory_kib();
    let enforcement_json = {
        let e = agent.enforce_stats();
        serde_json::json!({
            "exec_requests": e.requests.load(Ordering::Relaxed),
            "decision_p50_us": e.decision_quantile_us(0.5),
            "decision_p99_us": e.decision_quantile_us(0.99),
            "denied": e.denied.load(Ordering::Relaxed),
            "denials_collapsed": e.denials_collapsed.load(Ordering::Relaxed),
            "held_then_killed": e.hold_killed.load(Ordering::Relaxed),
            "held_then_released": e.hold_released.load(Ordering::Relaxed),
            "killed_after_start": e.killed_late.load(Ordering::Relaxed),
            "failed": e.failed.load(Ordering::Relaxed),
            "allowlisted": e.allowlisted.load(Ordering::Relaxed),
            "orphans_killed": e.orphans_killed.load(Ordering::Relaxed),
            "prevent_containers": e.prevent_containers.load(Ordering::Relaxed),
            "marked_mounts": e.marked_mounts.load(Ordering::Relaxed),
            "mark_errors": e.mark_errors.load(Ordering::Relaxed),
            "kernel_killed": k.as_ref().map_or(0, |k| k.killed.load(Ordering::Relaxed)),
            "kernel_held": k.as_ref().map_or(0, |k| k.held.load(Ordering::Relaxed)),
            "kernel_orphaned": k.as_ref().map_or(0, |k| k.orphaned.load(Ordering::Relaxed)),
        })
    };
    let stats_json = serde_json::json!({
        "execs_processed": s.processed.load(Ordering::Relaxed),
        "not_container": s.not_container.load(Ordering::Relaxed),
        "alerts": s.alerts.load(Ordering::Relaxed),
        "lost": lost,
        "kernel_sent": k.as_ref().map_or(0, |k| k.sent.load(Ordering::Relaxed)),
        "host_execs_skipped_in_kernel": k.as_ref().map_or(0, |k| k.host_skipped.load(Ordering::Relaxed)),
        "malformed": k.as_ref().map_or(0, |k| k.malformed.load(Ordering::Relaxed)),
        "alert_latency_p50_us": s.latency_quantile_us(0.5),
        "alert_latency_p99_us": s.latency_quantile_us(0.99),
        "alert_latency_samples": s.alert_latency_us.lock().map(|v| v.len()).unwrap_or(0),
        "containers_known": agent.registry().len(),
        "files": agent.file_stats().map(|f| serde_json::json!({
            "notices": f.notices.load(Ordering::Relaxed),
            "events": f.events.load(Ordering::Relaxed),
            "dirs_watched": f.dirs_watched.load(Ordering::Relaxed),
            "dirs_skipped": f.dirs_skipped.load(Ordering::Relaxed),
            "queue_overflows": f.overflows.load(Ordering::Relaxed),
            "unresolved": f.unresolved.load(Ordering::Relaxed),
        })),
        "enforcement": enforcement_json,
        "rss_kib": rss_kib,
        "peak_rss_kib": peak_kib,
        "net": agent.net_drift().map(|n| {
            let d = &n.drift.stats;
            let k = n.sensor_stats();
            let kv = |f: fn(&driftwatch_sensor::NetSensorStats) -> &std::sync::atomic::AtomicU64| {
                k.map_or(0, |k| f(k).load(Ordering::Relaxed))
            };
            serde_json::json!({
                "observed": d.observed.load(Ordering::Relaxed),
                "findings": d.findings.load(Ordering::Relaxed),
                "findings_suppressed": d.suppressed.load(Ordering::Relaxed),
                "udp_scans": d.udp_scans.load(Ordering::Relaxed),
                "kernel_sent": kv(|k| &k.sent),
                "kernel_deduped": kv(|k| &k.deduped),
                "kernel_host_skipped": kv(|k| &k.host_skipped),
                "lost": kv(|k| &k.lost),
            })
        }),
    });
    crate::serve::stop(api, agent);
    tracing::info!("stopped: {summary}");
    if let Some(r) = &responder {
        let s = r.stats();
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        tracing::info!(
            "response: {} alerts queued, {} dropped (queue full), {} playbook runs, {} duplicates, {} excepted; actions {} ok, {} failed, {} skipped, {} dry-run",
            n(&s.queued),
            n(&s.dropped),
            n(&s.runs),
            n(&s.duplicates),
            n(&s.excepted),
            n(&s.ok),
            n(&s.failed),
            n(&s.skipped),
            n(&s.dry_run)
        );
    }
    if let Some(p) = &args.stats_json {
        std::fs::write(p, format!("{stats_json:#}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(0)
}
