//! [`Daemon`]: the one place the running agent is assembled from a [`ResolvedConfig`]: the
//! pipeline with its sinks (responder, store, API ring), the store-backed baselines, tamper
//! protection's paths, the API with its metrics, and the reloader.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_agent::{Agent, AlertSink, SignalOrigin};
use driftwatch_config::Config;
use driftwatch_response::Responder;
use driftwatch_store::Store;

use crate::resolved::{Reloader, ResolvedConfig};
use crate::snapshot::{ApiActions, DaemonSnapshot, Parts};

/// The running agent and everything around it. [`Daemon::stop`] to stop.
pub struct Daemon {
    agent: Arc<Agent>,
    api: Option<driftwatch_api::ApiServer>,
    store: Option<Arc<Store>>,
    reloader: Reloader,
    api_actions: Arc<ApiActions>,
    started: Instant,
}

/// Tamper protection's paths: the binary, the directories of the files the agent uses, and
/// `tamper.protect`.
fn tamper_config(c: &Config, config_file: Option<&Path>) -> driftwatch_agent::TamperGuardConfig {
    let mut files: Vec<&Path> = vec![&c.network.baseline_file, &c.response.actions_log];
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
                PathBuf::from(p)
            })
            .collect()
    } else {
        Vec::new()
    };
    driftwatch_agent::TamperGuardConfig {
        enabled: c.tamper.enabled,
        protect: driftwatch_agent::default_protected(&files, &c.tamper.protect),
        unguarded,
        answer_deadline: c.enforcement.answer_deadline,
    }
}

/// The alert store, unless `store.enabled` is off. The default path failing (a read-only
/// /var, a foreign file) is a warning: detection and the other outputs matter more than
/// local history. A path the user named must work: that is an error.
fn open_store(
    config: &driftwatch_config::StoreConfig,
    explicit: bool,
) -> anyhow::Result<Option<Arc<Store>>> {
    if !config.enabled {
        return Ok(None);
    }
    match Store::open(config) {
        Ok(s) => {
            tracing::info!(
                "storing alerts in {} (driftwatch alerts)",
                config.path.display()
            );
            Ok(Some(Arc::new(s)))
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

impl Daemon {
    /// Starts everything `config` asks for. Errors name what failed; nothing is left
    /// running after one.
    pub fn start(resolved: ResolvedConfig) -> anyhow::Result<Daemon> {
        let started = Instant::now();
        let api_actions = Arc::new(ApiActions::default());
        let config = resolved.config().clone();
        let loaded = &resolved.loaded;
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
        let store = open_store(&config.store, loaded.is_set("store.path"))?;
        let mirror = store.as_ref().map(crate::sinks::action_mirror);
        let responder = crate::resolved::start_responder(
            &config,
            resolved.files.playbooks.clone(),
            mirror.clone(),
        )?;
        let mut agent_config =
            crate::resolved::agent_config(&config, &resolved.files, resolved.record.clone());
        if let Some(s) = store
            .as_ref()
            .filter(|_| !loaded.is_set("network.baseline_file"))
        {
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
            agent_config.baseline_backend = Some(Arc::new(crate::sinks::StoreBaselines(s.clone())));
        }
        let api_plan = crate::api_view::plan(
            &config.api,
            loaded.is_set("api.listen"),
            loaded.is_set("api.token_for_reads"),
        )?;
        let api_ctx = crate::api_view::ApiContext {
            ring: Arc::new(driftwatch_api::AlertRing::new(
                driftwatch_api::AlertRing::DEFAULT_CAPACITY,
            )),
            responder: responder.clone(),
            actions_log: config.response.actions_log.clone(),
            docker_socket: (!config.engines.disabled).then(|| config.engines.docker_socket.clone()),
            containerd: crate::resolved::node_containerd(&config),
            kube: crate::responder::kube_client(&config.response)?,
            alerts_file: config
                .outputs
                .json_file
                .enabled
                .then(|| config.outputs.json_file.path.clone()),
            api_actions: api_actions.clone(),
            started,
            store: store.clone(),
        };
        agent_config.tamper = tamper_config(&config, loaded.file.as_deref());
        let mut sinks: Vec<Box<dyn AlertSink>> = match &responder {
            Some(r) => vec![Box::new(crate::sinks::ResponseSink(r.clone()))],
            None => Vec::new(),
        };
        if let Some(s) = &store {
            sinks.push(Box::new(crate::sinks::StoreSink(s.clone())));
        }
        sinks.push(api_ctx.sink());
        let agent = Arc::new(Agent::start_with_sinks(agent_config, sinks)?);
        let api = crate::api_view::start(api_plan, &agent, api_ctx)?;
        let reloader = Reloader::new(
            &resolved,
            config,
            responder,
            &resolved.files.enforcement,
            mirror,
        );
        Ok(Daemon {
            agent,
            api,
            store,
            reloader,
            api_actions,
            started,
        })
    }

    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    /// Re-reads the configuration file, the flags over it, and the files it names; applies
    /// what can change live, or keeps everything when anything is wrong (SIGHUP).
    pub fn reload(&mut self) {
        self.reloader.reload(&self.agent);
    }

    /// Whether a stop or reload signal is to be ignored: tamper protection saw a container
    /// send it, or could not tell who did (it fails closed). A container cannot stop or
    /// reload the agent.
    pub fn ignores_signal(&self, sig: i32) -> bool {
        let Some(t) = self.agent.tamper() else {
            return false;
        };
        match t.origin_of(sig, Duration::from_secs(1)) {
            SignalOrigin::Host => false,
            SignalOrigin::Container => {
                tracing::warn!("signal {sig} came from a container: ignored (tamper protection)");
                true
            }
            SignalOrigin::Unknown if t.watches_signals() => {
                tracing::warn!(
                    "signal {sig}: its sender is unknown (the kernel's record did not come within 1 s: a flood of signals from a container?): ignored, tamper protection fails closed; send it again from the host, or SIGKILL (systemctl stop escalates to it)"
                );
                true
            }
            SignalOrigin::Unknown => false,
        }
    }

    /// Every counter, read now: what `/metrics` renders.
    pub fn snapshot(&self) -> DaemonSnapshot {
        let responder = self.reloader.responder().cloned();
        DaemonSnapshot::take(
            &self.agent,
            &Parts {
                store: self.store.as_deref(),
                responder: responder.as_deref(),
                api_actions: &self.api_actions,
                started: self.started,
            },
        )
    }

    /// Stops the API, then the agent (its outputs flushed), then the store; logs what was
    /// done and returns the last snapshot (`--stats-json`), with the outputs' and the store's
    /// counters read again after their final flush.
    pub fn stop(self) -> DaemonSnapshot {
        let mut snap = self.snapshot();
        let final_counts = self.agent.final_counts();
        let Daemon {
            agent,
            api,
            store,
            reloader,
            ..
        } = self;
        let outputs = agent.outputs().clone();
        crate::api_view::stop(api, agent);
        // The sensors have drained their rings and read the kernel's counters a last time.
        final_counts.apply(&mut snap.agent);
        snap.outputs = crate::snapshot::outputs(&outputs);
        snap.store = store.as_deref().map(crate::snapshot::store);
        tracing::info!(
            "stopped: execs seen in containers: {}, alerts: {}, events lost: {}, malformed records: {}",
            snap.agent.execs_processed,
            snap.agent.alerts,
            snap.agent.lost,
            snap.agent.malformed
        );
        if let Some(r) = reloader.responder() {
            log_response(r);
        }
        if let Some(s) = store {
            crate::sinks::close_store(s);
        }
        snap
    }
}

fn log_response(r: &Responder) {
    let s = r.stats();
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
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
