//! What `driftwatch run` runs with: the configuration file with the run flags over it
//! (flags > file > embedded defaults), the files it names read and checked, turned into the
//! agent's configuration at start, and applied to the running agent on SIGHUP.

use std::path::PathBuf;
use std::sync::Arc;

use driftwatch_agent::{Agent, AgentConfig, EnforcementPolicy};
use driftwatch_config::{Config, EnforcementModeSetting, KEYS, LoadError, Loaded, Reload};
use driftwatch_model::EnforcementMode;
use driftwatch_response::{PlaybookSet, Responder};
use driftwatch_rules::{RuleSet, Source};
use driftwatch_runtime::{ContainerdConfig, DockerConfig};
use driftwatch_verify::ApprovedList;

use crate::run::RunArgs;

/// The file the agent reads: `--config`, else the default path (which may not exist).
pub fn config_path(args: &RunArgs) -> PathBuf {
    args.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(driftwatch_config::DEFAULT_CONFIG_FILE))
}

/// Reads the configuration `driftwatch run` would use (`--config` must exist; the default
/// file may not).
pub fn load(args: &RunArgs) -> Result<Loaded, LoadError> {
    driftwatch_config::load(args.config.as_deref())
}

/// The run flags over the file: a flag given wins over the key it names.
pub fn effective(loaded: &Loaded, args: &RunArgs) -> Config {
    let mut c = loaded.config.clone();
    if let Some(p) = &args.json_out {
        c.outputs.json_file.enabled = true;
        c.outputs.json_file.path = p.clone();
    }
    if args.no_stdout {
        c.outputs.stdout.enabled = false;
    }
    if let Some(p) = &args.store {
        c.store.enabled = true;
        c.store.path = p.clone();
    }
    if args.no_store {
        c.store.enabled = false;
    }
    c.outputs.http.extend(
        args.http_out
            .iter()
            .map(|url| driftwatch_config::HttpOutput {
                url: url.clone(),
                ..driftwatch_config::HttpOutput::default()
            }),
    );
    c.rules.files.extend(args.rules.iter().cloned());
    if args.no_engine {
        c.engines.disabled = true;
    }
    if let Some(s) = &args.docker_socket {
        c.engines.docker_socket = s.clone();
    }
    if let Some(s) = &args.containerd_socket {
        c.engines.containerd_socket = Some(s.clone());
    }
    if !args.containerd_namespaces.is_empty() {
        c.engines.containerd_namespaces = args.containerd_namespaces.clone();
    }
    if let Some(s) = &args.podman_socket {
        c.engines.podman_socket = Some(s.clone());
    }
    if let Some(m) = args.ring_mib {
        c.sensor.ring_mib = m;
    }
    if let Some(f) = &args.baseline_file {
        c.network.baseline_file = f.clone();
    }
    if let Some(w) = args.learning_window {
        c.network.learning_window = w;
    }
    if let Some(m) = args.enforce {
        c.enforcement.mode = match m {
            EnforcementMode::Detect => EnforcementModeSetting::Detect,
            EnforcementMode::Prevent => EnforcementModeSetting::Prevent,
        };
    }
    if let Some(p) = &args.enforcement_policy {
        c.enforcement.policy = Some(p.clone());
    }
    if let Some(p) = &args.playbook {
        c.response.playbook = Some(p.clone());
    }
    if let Some(p) = &args.actions_log {
        c.response.actions_log = p.clone();
    }
    args.image_verify.apply(&mut c.verify);
    c
}

/// The files the configuration names, read and checked.
pub struct Resolved {
    pub rule_sources: Vec<Source>,
    pub rules: RuleSet,
    pub rule_warnings: Vec<String>,
    pub enforcement: EnforcementPolicy,
    pub playbooks: Option<PlaybookSet>,
    pub approved: Option<ApprovedList>,
}

fn mode(m: EnforcementModeSetting) -> EnforcementMode {
    match m {
        EnforcementModeSetting::Detect => EnforcementMode::Detect,
        EnforcementModeSetting::Prevent => EnforcementMode::Prevent,
    }
}

/// A problem with a file the configuration names: the key that names it (`None`: the
/// message carries its own position, e.g. a rule file's) and what is wrong.
pub struct NamedError {
    pub key: Option<&'static str>,
    pub message: String,
}

impl NamedError {
    fn at(key: &'static str, message: String) -> NamedError {
        NamedError {
            key: Some(key),
            message,
        }
    }

    /// `FILE:LINE:COL: key: message` when the file set the key, else `key: message`.
    pub fn render(&self, loaded: &Loaded) -> String {
        match self.key {
            None => self.message.clone(),
            Some(k) => match (loaded.set.get(k), &loaded.file) {
                (Some(p), Some(f)) => {
                    format!(
                        "{}:{}:{}: {k}: {}",
                        f.display(),
                        p.line,
                        p.col,
                        self.message
                    )
                }
                _ => format!("{k}: {}", self.message),
            },
        }
    }
}

/// Every `*.yaml`/`*.yml` of the rules directory in name order (a missing directory is
/// none), then the listed files.
fn rule_sources(c: &Config) -> Result<Vec<Source>, NamedError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&c.rules.directory) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(NamedError::at(
                "rules.directory",
                format!("{}: {e}", c.rules.directory.display()),
            ));
        }
    };
    files.sort();
    files.extend(c.rules.files.iter().cloned());
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|text| Source::new(p.display().to_string(), text))
                .map_err(|e| NamedError::at("rules.files", format!("reading {}: {e}", p.display())))
        })
        .collect()
}

/// Reads the rules, the enforcement policy, the playbooks and the approved list the
/// configuration names; every problem, not the first. `mode_set`: the file (or a flag) set
/// `enforcement.mode`, which then overrides the policy's `default`; `--enforce` overrides
/// the policy's scopes too.
pub fn resolve(
    c: &Config,
    mode_set: bool,
    enforce_flag: Option<EnforcementMode>,
) -> Result<Resolved, Vec<NamedError>> {
    let mut errors: Vec<NamedError> = Vec::new();
    let (rule_sources, rules, rule_warnings) = match rule_sources(c) {
        Ok(sources) => match RuleSet::load_with_defaults(&sources) {
            Ok(l) => {
                let w = l.warnings.iter().map(|w| w.render()).collect();
                (sources, Some(l.ruleset), w)
            }
            Err(diags) => {
                errors.extend(diags.iter().map(|d| NamedError {
                    key: None,
                    message: d.render(),
                }));
                (sources, None, Vec::new())
            }
        },
        Err(e) => {
            errors.push(e);
            (Vec::new(), None, Vec::new())
        }
    };
    let enforcement = match &c.enforcement.policy {
        Some(p) => EnforcementPolicy::load(p)
            .map_err(|e| errors.push(NamedError::at("enforcement.policy", e)))
            .ok(),
        None => {
            let mut p = EnforcementPolicy::everywhere(mode(c.enforcement.mode));
            p.source = "enforcement.mode".into();
            Some(p)
        }
    }
    .map(|mut p| {
        if mode_set {
            p.default = mode(c.enforcement.mode);
        }
        if let Some(m) = enforce_flag {
            p.default = m;
            p.scopes.clear();
        }
        p
    });
    let playbooks = match &c.response.playbook {
        Some(p) => crate::respond_cmd::load_playbooks(p)
            .map(Some)
            .map_err(|e| errors.push(NamedError::at("response.playbook", format!("{e:#}"))))
            .ok(),
        None => Some(None),
    };
    let approved = crate::verify_cmd::AgentVerifyArgs::approved_list(&c.verify)
        .map_err(|e| errors.push(NamedError::at("verify.approved", format!("{e:#}"))))
        .ok();
    match (rules, enforcement, playbooks, approved) {
        (Some(rules), Some(enforcement), Some(playbooks), Some(approved)) if errors.is_empty() => {
            Ok(Resolved {
                rule_sources,
                rules,
                rule_warnings,
                enforcement,
                playbooks,
                approved,
            })
        }
        _ => Err(errors),
    }
}

/// Whether `enforcement.mode` was chosen (by the file or `--enforce`) rather than defaulted.
pub fn mode_set(loaded: &Loaded, args: &RunArgs) -> bool {
    loaded.set.contains_key("enforcement.mode") || args.enforce.is_some()
}

/// The agent's configuration at start.
pub fn agent_config(c: &Config, r: &Resolved, args: &RunArgs) -> AgentConfig {
    let engines = !c.engines.disabled;
    AgentConfig {
        enforcement: r.enforcement.clone(),
        outputs: c.outputs.clone(),
        record: args.record.clone(),
        rule_sources: r.rule_sources.clone(),
        docker: engines.then(|| DockerConfig {
            socket: c.engines.docker_socket.clone(),
            ..DockerConfig::default()
        }),
        containerd: engines
            .then(|| {
                c.engines
                    .containerd_socket
                    .clone()
                    .or_else(ContainerdConfig::find_socket)
            })
            .flatten()
            .map(|socket| ContainerdConfig {
                socket,
                namespaces: c.engines.containerd_namespaces.clone(),
                ..ContainerdConfig::default()
            }),
        podman: c
            .engines
            .podman_socket
            .clone()
            .filter(|_| engines)
            .map(|socket| DockerConfig {
                socket,
                engine: driftwatch_model::Engine::Podman,
                ..DockerConfig::default()
            }),
        ring_bytes: c.sensor.ring_mib * 1024 * 1024,
        baseline_file: Some(c.network.baseline_file.clone()),
        learning_window: c.network.learning_window,
        learn_alerted: c.network.learn_alerted,
        answer_deadline: c.enforcement.answer_deadline,
        limits: driftwatch_agent::Limits::from_config(&c.limits),
        image_verify: args.image_verify.config(&c.verify, r.approved.clone()),
        dedup_window: args.dedup_window.unwrap_or_default(),
        ..AgentConfig::default()
    }
}

/// Starts the responder when a playbook is configured.
pub fn start_responder(
    c: &Config,
    playbooks: Option<PlaybookSet>,
    args: &RunArgs,
    action_mirror: Option<driftwatch_response::ActionMirror>,
) -> anyhow::Result<Option<Arc<Responder>>> {
    let (Some(set), Some(path)) = (playbooks, &c.response.playbook) else {
        return Ok(None);
    };
    crate::respond_cmd::start_responder_with(
        set,
        path,
        &c.response.actions_log,
        (!c.engines.disabled).then(|| c.engines.docker_socket.clone()),
        c.outputs
            .json_file
            .enabled
            .then(|| c.outputs.json_file.path.clone()),
        &args.kube,
        action_mirror,
    )
    .map(Some)
}

/// The keys whose value differs between two configurations.
fn changed(old: &Config, new: &Config) -> Vec<&'static driftwatch_config::Key<Config>> {
    let a = driftwatch_config::show_json(&Loaded {
        config: old.clone(),
        ..Loaded::defaults()
    });
    let b = driftwatch_config::show_json(&Loaded {
        config: new.clone(),
        ..Loaded::defaults()
    });
    KEYS.iter()
        .filter(|k| {
            let ptr = format!("/config/{}", k.path.replace('.', "/"));
            a.pointer(&ptr) != b.pointer(&ptr)
        })
        .collect()
}

/// Applies a changed configuration file to the running agent (SIGHUP).
pub struct Reloader {
    path: PathBuf,
    current: Config,
    responder: Option<Arc<Responder>>,
    /// Mirrors action records into the alert store (for a responder a reload starts).
    mirror: Option<driftwatch_response::ActionMirror>,
    /// The exec program was pinned at start (`on_agent_death: hold` in a prevent scope):
    /// pinning cannot be added later.
    pinned: bool,
}

impl Reloader {
    pub fn new(
        args: &RunArgs,
        current: Config,
        responder: Option<Arc<Responder>>,
        started_with: &EnforcementPolicy,
        mirror: Option<driftwatch_response::ActionMirror>,
    ) -> Reloader {
        Reloader {
            path: config_path(args),
            current,
            responder,
            mirror,
            pinned: started_with.hold_on_agent_death && started_with.any_prevent(),
        }
    }

    pub fn responder(&self) -> Option<&Arc<Responder>> {
        self.responder.as_ref()
    }

    /// Re-reads and checks the file and every file it names; if anything is wrong, logs
    /// every error and keeps the configuration in force. Otherwise applies what can change
    /// live (rules compiled first, then swapped between two events) and says which changed
    /// keys need a restart.
    pub fn reload(&mut self, agent: &Agent, args: &RunArgs) {
        let started = std::time::Instant::now();
        let stats = agent.reload_stats();
        let refuse = |errors: Vec<String>| {
            stats.refused();
            for e in &errors {
                tracing::error!("reload: {e}");
            }
            tracing::warn!(
                "configuration reload refused ({} error{}): still running on the previous configuration ({} reload failures since start)",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                stats.failures.load(std::sync::atomic::Ordering::Relaxed)
            );
        };
        let loaded = match load(args) {
            Ok(l) => l,
            Err(LoadError::Invalid {
                diagnostics, text, ..
            }) => return refuse(diagnostics.iter().map(|d| d.render(&text)).collect()),
            Err(e) => return refuse(vec![e.to_string()]),
        };
        let new = effective(&loaded, args);
        let resolved = match resolve(&new, mode_set(&loaded, args), args.enforce) {
            Ok(r) => r,
            Err(errors) => return refuse(errors.iter().map(|e| e.render(&loaded)).collect()),
        };
        // Everything is read and valid: apply.
        let mut done: Vec<String> = Vec::new();
        for w in &resolved.rule_warnings {
            tracing::warn!("{w}");
        }
        let n_rules = resolved.rules.len();
        agent
            .emitter()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_rules(resolved.rules);
        done.push(format!("rules ({n_rules})"));
        if resolved.enforcement.hold_on_agent_death
            && resolved.enforcement.any_prevent()
            && !self.pinned
        {
            tracing::warn!(
                "reload: enforcement policy on_agent_death: hold takes effect after restart (the exec program is pinned at start)"
            );
        }
        match agent.enforcer().set_policy(resolved.enforcement) {
            Ok(n) => done.push(format!(
                "enforcement ({}{})",
                driftwatch_config::Choice::name(new.enforcement.mode),
                if n > 0 {
                    format!(
                        ", {n} running container{} changed mode",
                        if n == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            )),
            Err(e) => tracing::error!("reload: enforcement: {e:#}; the previous policy stays"),
        }
        match (&self.responder, resolved.playbooks) {
            (Some(r), Some(set)) => {
                done.push(format!("playbooks ({})", set.playbooks.len()));
                r.set_playbooks(set);
            }
            (Some(r), None) => {
                done.push("playbooks (none)".into());
                r.set_playbooks(PlaybookSet::default());
            }
            (None, Some(set)) => {
                match start_responder(&new, Some(set), args, self.mirror.clone()) {
                    Ok(Some(r)) => {
                        agent
                            .emitter()
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .add_sink(Box::new(crate::respond_cmd::ResponseSink(r.clone())));
                        done.push(format!("playbooks ({})", r.playbook_count()));
                        self.responder = Some(r);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!("reload: response: {e:#}"),
                }
            }
            (None, None) => {}
        }
        if let Some(net) = agent.net_drift() {
            net.drift.set_learning_window(new.network.learning_window);
            net.drift.set_learn_alerted(new.network.learn_alerted);
        }
        agent
            .image_verifier()
            .set_approved(resolved.approved, new.verify.allow_mutable);
        match crate::logging::set_level(&new.logging.level) {
            Ok(true) => done.push(format!("logging.level ({})", new.logging.level)),
            Ok(false) => {}
            Err(e) => tracing::error!("reload: {e}"),
        }
        if new.outputs != self.current.outputs {
            match agent.outputs().reconfigure(&new.outputs) {
                Ok(()) => done.push("outputs".into()),
                Err(e) => tracing::error!("reload: outputs unchanged: {e}"),
            }
        }
        // Seam: the store and API apply `new.store` (retention) and `new.api` here once they
        // can change live; their keys are `Reload::Restart` in the key table until then.
        let changed = changed(&self.current, &new);
        let live: Vec<&str> = changed
            .iter()
            .filter(|k| k.reload == Reload::Live)
            .map(|k| k.path)
            .collect();
        let restart: Vec<&str> = changed
            .iter()
            .filter(|k| k.reload == Reload::Restart)
            .map(|k| k.path)
            .collect();
        for k in &restart {
            tracing::warn!("reload: {k} changed, takes effect after restart");
        }
        stats.applied();
        tracing::info!(
            "configuration reloaded from {} in {} ms: {}{}{}",
            match &loaded.file {
                Some(f) => f.display().to_string(),
                None => format!("embedded defaults ({} absent)", self.path.display()),
            },
            started.elapsed().as_millis(),
            done.join(", "),
            if live.is_empty() {
                String::new()
            } else {
                format!("; changed: {}", live.join(", "))
            },
            if restart.is_empty() {
                String::new()
            } else {
                format!("; after restart: {}", restart.join(", "))
            }
        );
        self.current = new;
    }
}

/// `driftwatch config validate`'s second stage: the files the configuration names.
pub fn check_named_files(loaded: &Loaded) -> Vec<String> {
    let mode_set = loaded.set.contains_key("enforcement.mode");
    resolve(&loaded.config, mode_set, None)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|e| e.render(loaded))
        .collect()
}
