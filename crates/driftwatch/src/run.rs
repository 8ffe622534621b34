//! `driftwatch run`: the agent in the foreground until SIGINT or SIGTERM; SIGHUP reloads
//! its configuration file.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use driftwatch_agent::Agent;

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
    /// file's rules.files.
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
    /// `driftwatch.repeats` (e.g. `10s`; default 0: every alert is sent).
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
    /// namespace) and an allowlist of permitted drift (path, sha256, image). See README
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
    /// and JSON alerts file are protected already).
    #[arg(long, value_name = "PATH")]
    pub(crate) protect: Vec<PathBuf>,
    /// Turn tamper protection off (signals from containers, ptrace hardening, file guard).
    #[arg(long)]
    pub(crate) no_tamper_protection: bool,
    #[command(flatten)]
    pub(crate) kube: crate::respond_cmd::KubeArgs,
    #[command(flatten)]
    pub(crate) image_verify: crate::verify_cmd::AgentVerifyArgs,
    #[command(flatten)]
    pub(crate) api: crate::serve::ApiArgs,
}

fn parse_mode(s: &str) -> Result<driftwatch_model::EnforcementMode, String> {
    match s {
        "detect" => Ok(driftwatch_model::EnforcementMode::Detect),
        "prevent" => Ok(driftwatch_model::EnforcementMode::Prevent),
        _ => Err(format!("`{s}`: the mode is `detect` or `prevent`")),
    }
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

    /// Runs until SIGINT, SIGTERM or `duration`; calls `on_hangup` at each SIGHUP. A signal
    /// for which `ignored` says true (tamper protection saw a container send it, or could not
    /// tell who did) is ignored: a container cannot stop or reload the agent.
    fn wait(
        self,
        duration: Option<u64>,
        mut on_hangup: impl FnMut(),
        ignored: impl Fn(i32) -> bool,
    ) -> anyhow::Result<()> {
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
                    _ = tokio::signal::ctrl_c() => if !ignored(libc::SIGINT) { break },
                    _ = term.recv() => if !ignored(libc::SIGTERM) { break },
                    _ = &mut timeout => break,
                    _ = hup.recv() => if !ignored(libc::SIGHUP) { on_hangup() },
                }
            }
        });
        Ok(())
    }
}

/// Tamper protection's paths: the binary, the directories of the files the agent uses, and
/// `--protect`.
fn tamper_config(
    c: &driftwatch_config::Config,
    config_file: Option<&std::path::Path>,
    args: &RunArgs,
) -> driftwatch_agent::TamperConfig {
    let mut files: Vec<&std::path::Path> = vec![&c.network.baseline_file, &c.response.actions_log];
    if c.store.enabled {
        files.push(&c.store.path);
    }
    if let Some(f) = config_file {
        files.push(f);
    }
    if c.outputs.json_file.enabled {
        files.push(&c.outputs.json_file.path);
    }
    let unguarded = if c.store.enabled {
        ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| {
                let mut p = c.store.path.clone().into_os_string();
                p.push(suffix);
                std::path::PathBuf::from(p)
            })
            .collect()
    } else {
        Vec::new()
    };
    driftwatch_agent::TamperConfig {
        enabled: !args.no_tamper_protection,
        protect: driftwatch_agent::default_protected(&files, &args.protect),
        unguarded,
        answer_deadline: c.enforcement.answer_deadline,
    }
}

/// The alert store, unless `--no-store`. The default path failing (a read-only /var, a
/// foreign file) is a warning: detection and the other outputs matter more than local
/// history. A path the user named must work: that is an error.
fn open_store(
    config: &driftwatch_config::Store,
    explicit: bool,
) -> anyhow::Result<Option<std::sync::Arc<driftwatch_store::Store>>> {
    if !config.enabled {
        return Ok(None);
    }
    match driftwatch_store::Store::open(config) {
        Ok(s) => {
            tracing::info!(
                "storing alerts in {} (driftwatch alerts)",
                config.path.display()
            );
            Ok(Some(std::sync::Arc::new(s)))
        }
        Err(e) if explicit => Err(anyhow::anyhow!(
            "the alert store (--store or store.path): {e}"
        )),
        Err(e) => {
            tracing::warn!(
                "alerts are not stored: {e}; running without the store (--no-store silences this)"
            );
            Ok(None)
        }
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
    // flags > file > embedded defaults (crate::settings).
    let loaded = crate::settings::load(&args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = crate::settings::effective(&loaded, &args);
    if !config.sensor.ring_mib.is_power_of_two() {
        anyhow::bail!(
            "--ring-mib {}: must be a power of two",
            config.sensor.ring_mib
        );
    }
    if let Err(e) = crate::logging::set_level(&config.logging.level) {
        tracing::warn!("{e}");
    }
    match &loaded.file {
        Some(f) => tracing::info!("configuration: {}", f.display()),
        None => tracing::info!(
            "configuration: embedded defaults ({} absent)",
            driftwatch_config::DEFAULT_CONFIG_FILE
        ),
    }
    let resolved = crate::settings::resolve(
        &config,
        crate::settings::mode_set(&loaded, &args),
        args.enforce,
    )
    .map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.render(&loaded)).collect();
        anyhow::anyhow!("{}", text.join("\n"))
    })?;
    let store = open_store(
        &config.store,
        loaded.set.contains_key("store.path") || args.store.is_some(),
    )?;
    let mirror = store.as_ref().map(crate::alerts_cmd::action_mirror);
    let responder = crate::settings::start_responder(
        &config,
        resolved.playbooks.clone(),
        &args,
        mirror.clone(),
    )?;
    // Seam for the API: it takes `config.api` here.
    let mut agent_config = crate::settings::agent_config(&config, &resolved, &args);
    let baseline_file_named =
        args.baseline_file.is_some() || loaded.set.contains_key("network.baseline_file");
    if let Some(s) = store.as_ref().filter(|_| !baseline_file_named) {
        // Baselines live in the store (unless a baseline file was named); a baseline file
        // from before is taken in once.
        match s.migrate_baseline_file(&config.network.baseline_file) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "network baselines: {n} images taken over from {} into the store",
                config.network.baseline_file.display()
            ),
            Err(e) => tracing::warn!("network baselines: {e}"),
        }
        agent_config.baseline_backend = Some(std::sync::Arc::new(
            crate::baseline_cmd::StoreBaselines(s.clone()),
        ));
    }
    let api_plan = args.api.plan(
        &config.api,
        loaded.set.contains_key("api.listen"),
        loaded.set.contains_key("api.token_for_reads"),
    )?;
    let mut api_ctx = crate::serve::ApiContext {
        ring: std::sync::Arc::new(driftwatch_api::AlertRing::new(
            driftwatch_api::AlertRing::DEFAULT_CAPACITY,
        )),
        responder: responder.clone(),
        actions_log: config.response.actions_log.clone(),
        docker_socket: (!config.engines.disabled).then(|| config.engines.docker_socket.clone()),
        kube: args.kube.client()?,
        alerts_file: config
            .outputs
            .json_file
            .enabled
            .then(|| config.outputs.json_file.path.clone()),
        metric_sources: Vec::new(),
        store: store.clone(),
    };
    agent_config.tamper = tamper_config(&config, loaded.file.as_deref(), &args);
    let mut sinks: Vec<Box<dyn driftwatch_agent::AlertSink>> = match &responder {
        Some(r) => vec![Box::new(crate::respond_cmd::ResponseSink(r.clone()))],
        None => Vec::new(),
    };
    if let Some(s) = &store {
        sinks.push(Box::new(crate::alerts_cmd::StoreSink(s.clone())));
    }
    sinks.push(api_ctx.sink());
    let agent = std::sync::Arc::new(Agent::start_with_sinks(agent_config, sinks)?);
    api_ctx
        .metric_sources
        .push(std::sync::Arc::new(crate::serve::OutputsMetrics(
            agent.outputs().clone(),
        )));
    if let Some(s) = &store {
        api_ctx
            .metric_sources
            .push(std::sync::Arc::new(crate::serve::StoreMetrics(s.clone())));
    }
    let api = crate::serve::start(api_plan, &agent, api_ctx)?;
    let mut reloader =
        crate::settings::Reloader::new(&args, config, responder, &resolved.enforcement, mirror);
    tracing::info!("watching every container on this host for drift (Ctrl-C to stop)");
    crate::sd_notify::notify("READY=1");
    // Lost events are logged and alerted by the agent (its loss watch: "Driftwatch events lost").
    signals.wait(
        args.duration,
        || reloader.reload(&agent, &args),
        |sig| {
            let Some(t) = agent.tamper() else {
                return false;
            };
            match t.origin_of(sig, Duration::from_secs(1)) {
                driftwatch_agent::SignalOrigin::Host => false,
                driftwatch_agent::SignalOrigin::Container => {
                    tracing::warn!(
                        "signal {sig} came from a container: ignored (tamper protection)"
                    );
                    true
                }
                driftwatch_agent::SignalOrigin::Unknown if t.watches_signals() => {
                    tracing::warn!(
                        "signal {sig}: its sender is unknown (the kernel's record did not come within 1 s: a flood of signals from a container?): ignored, tamper protection fails closed; send it again from the host, or SIGKILL (systemctl stop escalates to it)"
                    );
                    true
                }
                driftwatch_agent::SignalOrigin::Unknown => false,
            }
        },
    )?;
    crate::sd_notify::notify("STOPPING=1");
    let responder = reloader.responder().cloned();
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
            "maps_restored": e.maps_restored.load(Ordering::Relaxed),
            "answers": e.answers.to_json(agent.answer_deadline()),
            "kernel_killed": k.as_ref().map_or(0, |k| k.killed.load(Ordering::Relaxed)),
            "kernel_held": k.as_ref().map_or(0, |k| k.held.load(Ordering::Relaxed)),
            "kernel_orphaned": k.as_ref().map_or(0, |k| k.orphaned.load(Ordering::Relaxed)),
        })
    };
    let outputs = agent.outputs().clone();
    let mut stats_json = serde_json::json!({
        "execs_processed": s.processed.load(Ordering::Relaxed),
        "not_container": s.not_container.load(Ordering::Relaxed),
        "alerts": s.alerts.load(Ordering::Relaxed),
        "alerts_suppressed": s.alerts_suppressed.load(Ordering::Relaxed),
        "alerts_throttled": s.alerts_throttled.load(Ordering::Relaxed),
        "loss_alerts": s.loss_alerts.load(Ordering::Relaxed),
        "output_errors": s.output_errors.load(Ordering::Relaxed),
        "lost": lost,
        "kernel_sent": k.as_ref().map_or(0, |k| k.sent.load(Ordering::Relaxed)),
        "host_execs_skipped_in_kernel": k.as_ref().map_or(0, |k| k.host_skipped.load(Ordering::Relaxed)),
        "malformed": k.as_ref().map_or(0, |k| k.malformed.load(Ordering::Relaxed)),
        "alert_latency_p50_us": s.latency_quantile_us(0.5),
        "alert_latency_p99_us": s.latency_quantile_us(0.99),
        "alert_latency_samples": s.alert_latency_us.lock().map(|v| v.len()).unwrap_or(0),
        "containers_known": agent.registry().len(),
        // Exec'd container processes remembered (live ones, and exits of the last seconds).
        "processes_known": agent.procs().lock().map_or(0, |p| p.len()),
        "containers_live": agent.registry().live_entries().len(),
        "engine_disconnects": agent.registry().stats.engine_disconnects.load(Ordering::Relaxed),
        "open_fds": std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        "bpf_map_entries": agent
            .bpf_map_entries()
            .iter()
            .map(|m| (m.name.to_string(), serde_json::json!(m.entries)))
            .collect::<serde_json::Map<_, _>>(),
        "files": agent.file_stats().map(|f| serde_json::json!({
            "notices": f.notices.load(Ordering::Relaxed),
            "events": f.events.load(Ordering::Relaxed),
            "dirs_watched": f.dirs_watched.load(Ordering::Relaxed),
            "dirs_skipped": f.dirs_skipped.load(Ordering::Relaxed),
            "dirs_skipped_container_share": f.dirs_skipped_container_share.load(Ordering::Relaxed),
            "budget_alerts": f.budget_alerts.load(Ordering::Relaxed),
            "dirs_too_deep": f.dirs_too_deep.load(Ordering::Relaxed),
            "scans_truncated": f.scans_truncated.load(Ordering::Relaxed),
            "queue_overflows": f.overflows.load(Ordering::Relaxed),
            "unresolved": f.unresolved.load(Ordering::Relaxed),
        })),
        "enforcement": enforcement_json,
        "tamper": agent.tamper().map(|t| {
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            serde_json::json!({
                "signals": n(&t.stats.signals),
                "signals_from_containers": n(&t.stats.signals_from_containers),
                "stops_ignored": n(&t.stats.stops_ignored),
                "stops_of_unknown_origin_ignored": n(&t.stats.unknown_origins),
                "open_requests": n(&t.stats.open_requests),
                "opens_denied": n(&t.stats.opens_denied),
                "traced": n(&t.stats.traced),
                "integrity_failures": n(&t.stats.integrity_failures),
                "open_answers": t.stats.answers.to_json(agent.answer_deadline()),
            })
        }),
        "config": agent.reload_stats().to_json(),
        "rss_kib": rss_kib,
        "peak_rss_kib": peak_kib,
        "net": agent.net_drift().map(|n| {
            let d = &n.drift.stats;
            let (remembered_findings, budgeted_containers) = n.drift.remembered();
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
                "recent_swept": kv(|k| &k.swept),
                "kernel_host_skipped": kv(|k| &k.host_skipped),
                "lost": kv(|k| &k.lost),
                // Per-container state: back to the live containers' share after removals.
                "remembered_findings": remembered_findings,
                "budgeted_containers": budgeted_containers,
            })
        }),
    });
    crate::serve::stop(api, agent);
    // After the shutdown: the outputs' final counts, queues flushed.
    stats_json["outputs"] = outputs
        .stats()
        .iter()
        .map(|o| {
            serde_json::json!({
                "name": o.name,
                "kind": o.kind.as_str(),
                "queued": o.queued,
                "sent": o.sent,
                "dropped": o.dropped,
                "failed": o.failed,
                "retries": o.retries,
            })
        })
        .collect();
    tracing::info!("stopped: {summary}");
    if let Some(r) = &responder {
        let s = r.stats();
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        tracing::info!(
            "response: {} alerts queued, {} dropped (queue full, {} of them over their container's share), {} playbook runs ({} kill-only), {} duplicates, {} over a container's budget, {} excepted; actions {} ok, {} failed, {} skipped, {} dry-run",
            n(&s.queued),
            n(&s.dropped),
            n(&s.dropped_container_share),
            n(&s.runs),
            n(&s.kill_only),
            n(&s.duplicates),
            n(&s.over_budget),
            n(&s.excepted),
            n(&s.ok),
            n(&s.failed),
            n(&s.skipped),
            n(&s.dry_run)
        );
    }
    if let Some(s) = store {
        let snap = s.snapshot();
        stats_json["store"] = serde_json::json!({
            "written": snap.written,
            "dropped": snap.dropped,
            "write_errors": snap.write_errors,
            "queue_depth": snap.queue_depth,
            "degraded": snap.degraded,
        });
        crate::alerts_cmd::close_store(s);
    }
    if let Some(p) = &args.stats_json {
        std::fs::write(p, format!("{stats_json:#}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(0)
}
