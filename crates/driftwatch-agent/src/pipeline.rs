//! The agent's pipeline: exec sensor → container registry → exec verdict → event → rules →
//! alert sinks. The sensor's thread does the per-event work in order; engines are followed
//! on a small tokio runtime.

use std::io::LineWriter;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use driftwatch_image::Judge;
use driftwatch_model::{Event, EventKind, Process};
use driftwatch_rules::{RuleSet, Source};
use driftwatch_runtime::{
    ContainerdConfig, ContainerdSource, CrioConfig, CrioSource, DockerConfig, DockerSource,
    EngineSource,
};
use driftwatch_sensor::{
    ExecRecord, ExecSensor, ExecSensorConfig, SensorStats, boot_to_wall_offset_ns,
};

use crate::config_drift::ConfigDrift;
use crate::container_lookup::ContainerLookup;
use crate::containers::ContainerRegistry;
use crate::emitter::{Emitter, SharedEmitter};
use crate::enforce::Enforcer;
use crate::exec_verdict::analyze_exec;
use crate::file_drift::{FileDrift, FileDriftConfig, FileStats};
use crate::outputs::AlertSink;
use crate::proctable::{ExecFacts, ProcInfo, ProcTable};
use crate::stats::AgentStats;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Where alerts go (stdout, JSON lines file, syslog, HTTP, Defender documents).
    pub outputs: driftwatch_config::OutputsConfig,
    /// Append every container event (JSON lines) here, for `driftwatch rules test`.
    pub record: Option<PathBuf>,
    /// Rule files loaded after the embedded defaults.
    pub rule_sources: Vec<Source>,
    /// Falco's `append_output` entries applied to the rules' outputs (`rules.append_output`).
    pub append_output: Vec<driftwatch_rules::AppendOutput>,
    pub docker: Option<DockerConfig>,
    /// containerd's own API, asked after Docker. With Docker configured too, its `moby`
    /// namespace is left to Docker (whose records name the container and its image).
    pub containerd: Option<ContainerdConfig>,
    /// podman's Docker-compatible API service (`podman system service`), asked like Docker.
    pub podman: Option<DockerConfig>,
    /// CRI-O's CRI socket, asked after containerd.
    pub crio: Option<CrioConfig>,
    pub hostname: String,
    pub ring_bytes: u32,
    /// How often the exec sensor drains its ring buffer while records flow
    /// (`sensor.drain_interval`; zero: a wakeup per record).
    pub drain_interval: Duration,
    /// Network baselines file (`None`: in memory only).
    pub baseline_file: Option<PathBuf>,
    /// Persist the network baselines here instead of `baseline_file` (the alert store).
    pub baseline_backend: Option<Arc<dyn crate::baseline::BaselineBackend>>,
    /// How long each image learns its network baseline after its first container is seen.
    pub learning_window: Duration,
    /// Enforcement modes per scope and permitted drift (default: detect everywhere).
    pub enforcement: crate::enforce::EnforcementPolicy,
    /// Image drift: the approved list, layer integrity checks.
    pub image_verify: crate::image_verify::ImageVerifyConfig,
    /// One alert per (rule, container, executable, file) per window, the repeats counted in
    /// the next one's `driftwatch.repeats` (zero: every alert is sent).
    pub dedup_window: Duration,
    /// Tamper protection: signals from containers, ptrace, the agent's files.
    pub tamper: crate::tamper::TamperGuardConfig,
    /// Every exec permission request is answered within this (`enforcement.answer_deadline`).
    pub answer_deadline: Duration,
    /// Per-container budgets: watched directories, alert rate (`limits.*`).
    pub limits: crate::fairness::Limits,
    /// Learn listeners alerted during the learning window (`network.learn_alerted`).
    pub learn_alerted: bool,
    /// Which executables are interpreters whose script argument is judged like a shebang
    /// script (`detection.interpreters`).
    pub interpreters: driftwatch_model::Interpreters,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            outputs: driftwatch_config::OutputsConfig::default(),
            record: None,
            rule_sources: Vec::new(),
            append_output: driftwatch_rules::AppendOutput::falco_default(),
            docker: Some(DockerConfig::default()),
            containerd: ContainerdConfig::find_socket().map(|socket| ContainerdConfig {
                socket,
                ..ContainerdConfig::default()
            }),
            podman: None,
            crio: CrioConfig::find_socket().map(|socket| CrioConfig {
                socket,
                ..CrioConfig::default()
            }),
            hostname: hostname(),
            ring_bytes: 8 * 1024 * 1024,
            drain_interval: driftwatch_sensor::DEFAULT_DRAIN_INTERVAL,
            baseline_file: Some(PathBuf::from(crate::baseline::DEFAULT_BASELINE_FILE)),
            baseline_backend: None,
            learning_window: crate::baseline::DEFAULT_LEARNING_WINDOW,
            enforcement: crate::enforce::EnforcementPolicy::default(),
            image_verify: crate::image_verify::ImageVerifyConfig::default(),
            dedup_window: Duration::ZERO,
            tamper: crate::tamper::TamperGuardConfig::default(),
            answer_deadline: crate::deadline::DEFAULT_ANSWER_DEADLINE,
            limits: crate::fairness::Limits::default(),
            learn_alerted: false,
            interpreters: driftwatch_model::Interpreters::default(),
        }
    }
}

/// How long a stopping agent waits for its outputs to deliver what they hold.
const OUTPUTS_FLUSH: Duration = Duration::from_secs(5);

/// This machine's host name, as Falco puts it in alerts.
pub fn hostname() -> String {
    driftwatch_fs::host::kernel_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A running agent. Drop or [`Agent::shutdown`] to stop.
pub struct Agent {
    sensor: Option<ExecSensor>,
    stats: Arc<AgentStats>,
    runtime: Option<tokio::runtime::Runtime>,
    registry: Arc<ContainerRegistry>,
    /// Where every sensor's events end: rules, then sinks.
    emitter: SharedEmitter,
    /// Processes seen at exec, for the acting process of other sensors' events.
    procs: Arc<Mutex<ProcTable>>,
    /// Network drift: TCP sensor, UDP scan, baselines.
    net: Option<crate::net_drift::NetDriftRuntime>,
    /// Config drift: posture at create/start, mounted secrets/config (inotify).
    config_drift: Arc<ConfigDrift>,
    /// File and package drift (fanotify on the containers' upper dirs).
    files: Option<FileDrift>,
    /// Prevention: modes per scope, fanotify exec permission, the kernel's kill/hold.
    enforcer: Arc<Enforcer>,
    /// Image drift: approval at start, layers in the background.
    image_verify: Arc<crate::image_verify::ImageVerifier>,
    /// The configured alert outputs (stats, reload).
    outputs: Arc<driftwatch_outputs::Outputs>,
    /// Configuration reloads (SIGHUP).
    reloads: Arc<crate::reload::ReloadStats>,
    /// Lost kernel events → "Driftwatch events lost" alerts.
    loss: Option<crate::loss::LossWatch>,
    /// Tamper protection (signals, ptrace, the agent's files).
    tamper: Option<crate::tamper::TamperGuard>,
}

struct Worker {
    registry: Arc<ContainerRegistry>,
    /// The registry's entries by the cgroup the kernel reported.
    containers: ContainerLookup,
    judge: Judge,
    emitter: SharedEmitter,
    config_drift: Arc<ConfigDrift>,
    procs: Arc<Mutex<ProcTable>>,
    stats: Arc<AgentStats>,
    wall_offset_ns: i128,
    enforcer: Arc<Enforcer>,
    /// Which executables are interpreters (`detection.interpreters`): their script argument
    /// is judged, and their inline code told.
    interpreters: driftwatch_model::Interpreters,
    /// The per-image baselines, shared with network drift: inline code is learned there.
    baselines: Arc<Mutex<crate::baseline::BaselineStore>>,
}

impl Agent {
    /// Loads rules, opens outputs, connects engines, then loads and attaches the sensor.
    /// Errors name what failed; engine trouble is not an error (the agent runs without).
    pub fn start(config: AgentConfig) -> anyhow::Result<Agent> {
        Agent::start_with_sinks(config, Vec::new())
    }

    /// [`Agent::start`], with more alert sinks after the configured ones (e.g. the response
    /// playbooks). Sinks run on the sensors' threads: they must not block.
    pub fn start_with_sinks(
        config: AgentConfig,
        extra_sinks: Vec<Box<dyn AlertSink>>,
    ) -> anyhow::Result<Agent> {
        let loaded =
            RuleSet::load_with_defaults_appending(&config.rule_sources, &config.append_output)
                .map_err(|diags| {
                    let text: Vec<String> = diags.iter().map(|d| d.render()).collect();
                    anyhow::anyhow!("the rules do not load:\n{}", text.join("\n"))
                })?;
        for w in &loaded.warnings {
            tracing::warn!("{}", w.render());
        }
        let outputs = Arc::new(
            driftwatch_outputs::Outputs::start(&config.outputs, &config.hostname)
                .context("starting the alert outputs")?,
        );
        let record = match &config.record {
            Some(p) => Some(LineWriter::new(crate::record_file::open_private_append(p)?)),
            None => None,
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dw-engines")
            .enable_all()
            .build()
            .context("starting the agent's async runtime")?;
        let mut engines: Vec<Arc<dyn EngineSource>> = Vec::new();
        for d in config.docker.iter().chain(&config.podman) {
            let source = DockerSource::new(d.clone());
            match runtime.block_on(source.ping()) {
                Ok(()) => {
                    tracing::info!("{}: connected at {}", d.engine.as_str(), d.socket.display())
                }
                Err(e) => tracing::warn!(
                    "{e}; watching anyway: containers are identified from the kernel and named once the engine answers"
                ),
            }
            engines.push(Arc::new(source));
        }
        let mut containerd_source = None;
        if let Some(c) = &config.containerd {
            let mut c = c.clone();
            if config.docker.is_some() {
                c.namespaces.retain(|n| n != "moby");
            }
            let source = ContainerdSource::new(c.clone());
            match runtime.block_on(source.ping()) {
                Ok(()) => tracing::info!(
                    "containerd: connected at {} (namespaces {})",
                    c.socket.display(),
                    c.namespaces.join(", ")
                ),
                Err(e) => tracing::warn!("{e}; watching anyway"),
            }
            containerd_source = Some(source.clone());
            engines.push(Arc::new(source));
        }
        if let Some(c) = &config.crio {
            let source = CrioSource::new(c.clone());
            match runtime.block_on(source.ping()) {
                Ok(()) => tracing::info!("cri-o: connected at {}", c.socket.display()),
                Err(e) => tracing::warn!("{e}; watching anyway"),
            }
            engines.push(Arc::new(source));
        }
        let registry = Arc::new(ContainerRegistry::new(engines, runtime.handle().clone()));

        let stats = Arc::new(AgentStats::default());
        let emitter = Emitter::new(
            loaded.ruleset,
            Some(outputs.clone()),
            extra_sinks,
            record,
            stats.clone(),
            config.hostname.clone(),
        )
        .shared();
        {
            let mut e = emitter.lock().unwrap_or_else(|p| p.into_inner());
            e.set_dedup_window(config.dedup_window);
            e.set_limits(&config.limits);
            e.set_provenance(Arc::new(crate::finding_provenance::ProvenanceFiller::new(
                registry.clone(),
            )));
        }
        crate::emitter::spawn_budget_reporter(Arc::downgrade(&emitter));
        let tamper = crate::tamper::TamperGuard::start(
            &config.tamper,
            emitter.clone(),
            registry.clone(),
            config.hostname.clone(),
        );
        // Observers first, so that containers already running are judged too.
        let config_drift = ConfigDrift::start(emitter.clone());
        registry.observe(config_drift.clone());
        let image_verify =
            crate::image_verify::ImageVerifier::start(config.image_verify.clone(), emitter.clone());
        if let Some(source) = containerd_source {
            image_verify.set_containerd(source, runtime.handle().clone());
        }
        registry.observe(image_verify.clone());
        let procs = Arc::new(Mutex::new(ProcTable::new(65536)));
        crate::proctable::spawn_pruner(
            Arc::downgrade(&procs),
            Duration::from_secs(5),
            crate::proctable::PRUNE_AFTER,
        );
        let enforcer = Enforcer::new(
            config.enforcement.clone(),
            registry.clone(),
            emitter.clone(),
            procs.clone(),
            config.answer_deadline,
        )?;
        registry.observe(enforcer.clone());
        let net_config = crate::net_drift::NetDriftConfig {
            baseline_file: config.baseline_file.clone(),
            baseline_backend: config.baseline_backend.clone(),
            learning_window: config.learning_window,
            learn_alerted: config.learn_alerted,
            scan_interval: Duration::from_secs(2),
        };
        let baselines = crate::net_drift::open_baselines(&net_config)?;
        let mut worker = Worker {
            baselines: baselines.clone(),
            registry: registry.clone(),
            containers: ContainerLookup::new(),
            judge: Judge::new(),
            emitter: emitter.clone(),
            config_drift: config_drift.clone(),
            procs: procs.clone(),
            stats: stats.clone(),
            wall_offset_ns: boot_to_wall_offset_ns(),
            enforcer: enforcer.clone(),
            interpreters: config.interpreters.clone(),
        };
        // Records are handled on the sensor's thread, in ring-buffer order: no hand-off, no
        // extra wakeup per exec. If handling falls behind, the ring buffer (sized by
        // `ring_bytes`) absorbs the burst; beyond it the kernel counts the losses.
        let sensor = ExecSensor::start(
            ExecSensorConfig {
                ring_bytes: config.ring_bytes,
                drain_interval: config.drain_interval,
                pin: config.enforcement.hold_on_agent_death && config.enforcement.any_prevent(),
                interpreter_names: crate::exec_verdict::held_interpreter_names(
                    &config.interpreters,
                ),
                ..ExecSensorConfig::default()
            },
            move |rec| worker.handle(rec),
        )
        .context("starting the exec sensor")?;
        enforcer
            .attach(sensor.enforce_maps().clone())
            .context("starting enforcement")?;
        // Engines are followed once every observer is in place, so that containers already
        // running are judged and placed in their enforcement scope too.
        runtime.spawn(registry.clone().watch());
        // Names the process of a file change made by a forked child that never exec'd.
        let forks = match driftwatch_sensor::host_mnt_ns()
            .and_then(driftwatch_sensor::ForkParents::start)
        {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                tracing::warn!(
                    "{e}; a file change by a forked child that never exec'd and exited at once names its pid only"
                );
                None
            }
        };
        let files = match FileDrift::start(
            registry.clone(),
            emitter.clone(),
            procs.clone(),
            FileDriftConfig {
                limits: config.limits.clone(),
                forks,
                ..FileDriftConfig::default()
            },
        ) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!("{e}; file and package drift are not sensed, binary drift still is");
                None
            }
        };
        let net = crate::net_drift::NetDriftRuntime::start(
            &net_config,
            baselines,
            registry.clone(),
            procs.clone(),
            emitter.clone(),
        );
        registry.observe(net.drift.clone());
        let loss = crate::loss::LossWatch::start(
            Some(sensor.stats().clone()),
            net.sensor_stats().cloned(),
            emitter.clone(),
            stats.clone(),
            config.hostname.clone(),
            config.ring_bytes / (1024 * 1024),
        );
        Ok(Agent {
            loss: Some(loss),
            outputs,
            config_drift,
            image_verify,
            sensor: Some(sensor),
            net: Some(net),
            stats,
            runtime: Some(runtime),
            registry,
            emitter,
            procs,
            files,
            enforcer,
            reloads: Arc::default(),
            tamper: Some(tamper),
        })
    }

    /// The running alert outputs: [`Outputs::stats`](driftwatch_outputs::Outputs::stats),
    /// [`Outputs::reconfigure`](driftwatch_outputs::Outputs::reconfigure) on reload.
    pub fn outputs(&self) -> &Arc<driftwatch_outputs::Outputs> {
        &self.outputs
    }

    /// Compiles `sources` after the embedded defaults, then swaps the rule set in under the
    /// emitter's lock: every event is evaluated against the old rules or the new, never a
    /// mix, and none is lost. On an error the old rules stay. Returns the number of rules
    /// and the warnings.
    pub fn reload_rules(&self, sources: &[Source]) -> Result<(usize, Vec<String>), Vec<String>> {
        let loaded = RuleSet::load_with_defaults(sources)
            .map_err(|diags| diags.iter().map(|d| d.render()).collect::<Vec<_>>())?;
        let warnings = loaded.warnings.iter().map(|w| w.render()).collect();
        let n = loaded.ruleset.len();
        self.emitter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_rules(loaded.ruleset);
        Ok((n, warnings))
    }

    /// Prevention (its policy can be replaced: [`Enforcer::set_policy`]).
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// Image drift (its approved list can be replaced).
    pub fn image_verifier(&self) -> &Arc<crate::image_verify::ImageVerifier> {
        &self.image_verify
    }

    /// Counters of configuration reloads.
    pub fn reload_stats(&self) -> &Arc<crate::reload::ReloadStats> {
        &self.reloads
    }

    /// The enforcement mode of a container's scope (`detect` or `prevent`).
    pub fn enforcement_mode(
        &self,
        meta: &driftwatch_model::ContainerMeta,
    ) -> driftwatch_model::EnforcementMode {
        self.enforcer.policy().mode_for(meta)
    }

    /// Prevention's counters.
    pub fn enforce_stats(&self) -> &crate::enforce::EnforceStats {
        &self.enforcer.stats
    }

    /// The deadline of every fanotify permission answer (`enforcement.answer_deadline`).
    pub fn answer_deadline(&self) -> Duration {
        self.enforcer.answer_deadline()
    }

    /// Tamper protection ([`TamperGuard::origin_of`](crate::TamperGuard::origin_of) tells
    /// who sent a stop signal).
    pub fn tamper(&self) -> Option<&crate::tamper::TamperGuard> {
        self.tamper.as_ref()
    }

    pub fn stats(&self) -> &Arc<AgentStats> {
        &self.stats
    }

    /// The network side (its sensor's and its own counters).
    pub fn net_drift(&self) -> Option<&crate::net_drift::NetDriftRuntime> {
        self.net.as_ref()
    }

    pub fn sensor_stats(&self) -> Option<&Arc<SensorStats>> {
        self.sensor.as_ref().map(|s| s.stats())
    }

    /// The entries of every BPF map keyed per container, namespace or process, counted now
    /// (a walk of each map from user space: call it when stats are written, not per event).
    pub fn bpf_map_entries(&self) -> Vec<driftwatch_sensor::MapEntries> {
        let exec = self.sensor.iter().flat_map(|s| s.counted_maps());
        exec.map(|m| m.entries()).collect()
    }

    pub fn registry(&self) -> &Arc<ContainerRegistry> {
        &self.registry
    }

    pub fn file_stats(&self) -> Option<&Arc<FileStats>> {
        self.files.as_ref().map(|f| &f.stats)
    }

    /// Where events of every sensor go (rules, then sinks).
    pub fn emitter(&self) -> &SharedEmitter {
        &self.emitter
    }

    /// Processes as the exec sensor saw them, by host pid.
    pub fn procs(&self) -> &Arc<Mutex<ProcTable>> {
        &self.procs
    }

    /// Events lost anywhere between the kernel and the rules.
    pub fn lost(&self) -> u64 {
        self.sensor_stats().map_or(0, |s| s.lost())
    }

    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        // Hold nothing new; the sensor then drains its ring buffer (deciding every exec it
        // held) before it stops, and fanotify lets everything run once its group closes.
        self.enforcer.shutdown();
        // Drains the signal records (a container's stop request is alerted on) first.
        drop(self.tamper.take());
        drop(self.sensor.take());
        // After the sensor's last read of the kernel's counters: the final losses alert.
        drop(self.loss.take());
        self.config_drift.shutdown();
        self.image_verify.shutdown();
        drop(self.net.take());
        drop(self.files.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
        // Every sensor has stopped: deliver what the outputs still hold.
        if !self.outputs.shutdown(OUTPUTS_FLUSH) {
            tracing::warn!("some alerts were not delivered within {OUTPUTS_FLUSH:?} of shutdown");
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Worker {
    /// A boot-time stamp of the kernel's as nanoseconds since the epoch.
    fn wall_ns(&self, boot_ns: u64) -> u64 {
        (i128::from(boot_ns) + self.wall_offset_ns).max(0) as u64
    }

    fn handle(&mut self, rec: ExecRecord) {
        self.stats.processed.fetch_add(1, Ordering::Relaxed);
        let Some(entry) = self.containers.lookup(
            &self.registry,
            rec.cgroup_id,
            &rec.cgroup,
            &rec.cgroup_parent,
            rec.pid,
        ) else {
            self.stats.not_container.fetch_add(1, Ordering::Relaxed);
            self.enforcer.release_unplaced(&rec);
            return;
        };
        let mut analysis = analyze_exec(&rec, &entry.fs, &self.judge, &self.interpreters);
        self.enforcer.settle(&rec, &entry, &mut analysis.finding);
        let config = self.config_drift.exec_findings(&rec.env, &entry);
        let interpreter = crate::inline_code::interpreter_run(
            &self.interpreters,
            &rec.path,
            &rec.argv,
            rec.flags.has(driftwatch_sensor::ExecFlags::ARGS_TRUNCATED),
            rec.pid,
        )
        .map(|mut run| {
            let parent = rec.ancestors.first().map_or("", String::as_str);
            let now = crate::baseline::unix_now();
            crate::inline_code::learn(&self.baselines, &entry, &mut run, parent, now);
            run
        });
        let time_ns = self.wall_ns(rec.boot_ns);
        let info = ProcInfo {
            exepath: rec.path.clone(),
            name: rec.comm.clone(),
            argv: rec.argv.clone(),
            ancestors: rec.ancestors.clone(),
            ppid: rec.ppid,
            uid: rec.uid,
            gid: rec.gid,
            cwd: rec.cwd.clone(),
            facts: ExecFacts {
                start_ns: self.wall_ns(rec.facts.start_boot_ns),
                exec_ns: time_ns,
                kernel: rec.facts.clone(),
                vpid: rec.ns_pid,
                exe_ino: rec.ino,
                exe_ctime_ns: rec.ctime_ns,
                exe_mtime_ns: rec.mtime_ns,
                ancestor_pids: rec.ancestor_pids.clone(),
            },
        };
        let mut process = Process {
            pid: rec.pid,
            ppid: rec.ppid,
            uid: rec.uid,
            gid: rec.gid,
            name: rec.comm,
            exepath: rec.path,
            argv: rec.argv,
            env: rec.env,
            cwd: rec.cwd,
            tty: rec.tty,
            ancestors: rec.ancestors,
            exe_upper_layer: analysis.exe_upper_layer,
            exe_from_memfd: analysis.exe_from_memfd,
            exe_writable: analysis.exe_writable,
            interpreter,
            ..Default::default()
        };
        {
            let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
            process.pexepath = procs.exepath(rec.ppid).unwrap_or_default().to_string();
            procs.fill(&mut process, &info);
            procs.insert(rec.pid, info);
        }
        crate::proctable::fill_unknown_relatives(&mut process, rec.facts.sid, rec.facts.pgid);
        entry.name_process(&mut process);
        let event = Event {
            num: 0,
            time_ns,
            kind: EventKind::Execve,
            process,
            container: Some(entry.meta.clone()),
            file: None,
            net: None,
            drift: analysis.finding,
        };
        crate::config_drift::emit_exec(&self.emitter, event, config);
    }
}
