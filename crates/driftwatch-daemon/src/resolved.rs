//! What the daemon runs with: the configuration file with the flags over it (flags > file >
//! embedded defaults, [`driftwatch_config::with_flags`]), the files it names read and
//! checked, turned into the agent's configuration at start, and applied to the running agent
//! on SIGHUP.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use driftwatch_agent::{Agent, AgentConfig, EnforcementPolicy};
use driftwatch_config::{
    Config, EnforcementModeSetting, FlagError, FlagSetting, KEYS, LoadError, Loaded, Reload,
};
use driftwatch_model::EnforcementMode;
use driftwatch_response::{PlaybookSet, Responder};
use driftwatch_rules::{RuleSet, Source};
use driftwatch_runtime::{ContainerdConfig, CrioConfig, DockerConfig};
use driftwatch_verify::ApprovedList;

/// Everything the daemon starts from: the configuration with the flags applied and checked,
/// and the files it names read and checked. [`ResolvedConfig::resolve`] reports every
/// problem before anything is started.
pub struct ResolvedConfig {
    /// The configuration (`loaded.config`), where each key was set (file or flag).
    pub loaded: Loaded,
    pub files: NamedFiles,
    /// `--config`, else the default path (read again on SIGHUP).
    pub config_file: Option<PathBuf>,
    /// The flags, applied again over the file at each reload.
    pub flags: Vec<FlagSetting>,
    /// Append every container event (JSON lines) here, for `driftwatch rules test`.
    pub record: Option<PathBuf>,
}

/// Why the daemon cannot start from this configuration: every problem, each at its file
/// position, flag or key.
#[derive(Debug)]
pub enum ResolveError {
    Load(LoadError),
    Flags(Vec<FlagError>),
    Files(Vec<String>),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Load(e) => write!(f, "{e}"),
            ResolveError::Flags(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                write!(f, "{}", text.join("\n"))
            }
            ResolveError::Files(errors) => write!(f, "{}", errors.join("\n")),
        }
    }
}

impl std::error::Error for ResolveError {}

impl ResolvedConfig {
    /// Reads the file (`config_file`, else the default path, which may not exist), applies
    /// the flags over it, and reads the files the result names.
    pub fn resolve(
        config_file: Option<&Path>,
        flags: Vec<FlagSetting>,
        record: Option<PathBuf>,
    ) -> Result<ResolvedConfig, ResolveError> {
        let loaded = load_with_flags(config_file, &flags)?;
        let files = resolve(&loaded).map_err(|errors| {
            ResolveError::Files(errors.iter().map(|e| e.render(&loaded)).collect())
        })?;
        Ok(ResolvedConfig {
            loaded,
            files,
            config_file: config_file.map(Path::to_path_buf),
            flags,
            record,
        })
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// The file a reload reads.
    pub fn config_path(&self) -> PathBuf {
        self.config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(driftwatch_config::DEFAULT_CONFIG_FILE))
    }
}

/// The file (`--config` must exist; the default file may not), then the flags over it.
fn load_with_flags(
    config_file: Option<&Path>,
    flags: &[FlagSetting],
) -> Result<Loaded, ResolveError> {
    let file = driftwatch_config::load(config_file).map_err(ResolveError::Load)?;
    driftwatch_config::with_flags(&file, flags).map_err(ResolveError::Flags)
}

/// The files the configuration names, read and checked.
pub struct NamedFiles {
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

    /// `--flag value: key: message` when a flag set the key, `FILE:LINE:COL: key: message`
    /// when the file did, else `key: message`.
    pub fn render(&self, loaded: &Loaded) -> String {
        match self.key {
            None => self.message.clone(),
            Some(k) if loaded.flags.contains_key(k) => {
                format!("{}: {k}: {}", loaded.flags[k], self.message)
            }
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
/// configuration names; every problem, not the first. `enforcement.mode`, when the file or a
/// flag set it, overrides the policy's `default`; set by `--enforce`, the policy's scopes too.
pub fn resolve(loaded: &Loaded) -> Result<NamedFiles, Vec<NamedError>> {
    let c = &loaded.config;
    let mode_set = loaded.is_set("enforcement.mode");
    let enforce_flag = loaded
        .flags
        .contains_key("enforcement.mode")
        .then(|| mode(c.enforcement.mode));
    let mut errors: Vec<NamedError> = Vec::new();
    let (rule_sources, rules, rule_warnings) = match rule_sources(c) {
        Ok(sources) => {
            match RuleSet::load_with_defaults_appending(&sources, &c.rules.append_output) {
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
            }
        }
        Err(e) => {
            errors.push(e);
            (Vec::new(), None, Vec::new())
        }
    };
    let enforcement = match &c.enforcement.policy {
        Some(p) => EnforcementPolicy::load(p)
            .map_err(|e| errors.push(NamedError::at("enforcement.policy", e.to_string())))
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
        Some(p) => crate::responder::load_playbooks(p)
            .map(Some)
            .map_err(|e| errors.push(NamedError::at("response.playbook", format!("{e:#}"))))
            .ok(),
        None => Some(None),
    };
    let approved = approved_list(&c.verify)
        .map_err(|e| errors.push(NamedError::at("verify.approved", format!("{e:#}"))))
        .ok();
    match (rules, enforcement, playbooks, approved) {
        (Some(rules), Some(enforcement), Some(playbooks), Some(approved)) if errors.is_empty() => {
            Ok(NamedFiles {
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

/// Reads the approved list `v` names, warning about entries that approve nothing.
pub fn approved_list(v: &driftwatch_config::VerifyConfig) -> anyhow::Result<Option<ApprovedList>> {
    let approved = v.approved.as_deref().map(ApprovedList::load).transpose()?;
    if let Some(l) = &approved {
        for u in &l.unpinned {
            tracing::warn!(
                "{}:{}: image `{}` is not pinned by digest and approves nothing",
                l.file.display(),
                u.line,
                u.value
            );
        }
    }
    Ok(approved)
}

/// Image drift's configuration from the `verify` section and the approved list it names.
fn image_verify_config(
    v: &driftwatch_config::VerifyConfig,
    approved: Option<ApprovedList>,
) -> driftwatch_agent::ImageVerifyConfig {
    driftwatch_agent::ImageVerifyConfig {
        approved,
        allow_mutable: v.allow_mutable,
        layers: v.layers,
        layer_check_interval: v.layer_check_interval.max(Duration::from_secs(1)),
        docker_root: v.docker_root.clone(),
        cache_file: Some(PathBuf::from(driftwatch_agent::DEFAULT_LAYER_CACHE)),
    }
}

/// The agent's configuration at start.
pub fn agent_config(c: &Config, r: &NamedFiles, record: Option<PathBuf>) -> AgentConfig {
    let engines = !c.engines.disabled;
    AgentConfig {
        enforcement: r.enforcement.clone(),
        outputs: c.outputs.clone(),
        record,
        rule_sources: r.rule_sources.clone(),
        append_output: c.rules.append_output.clone(),
        docker: engines.then(|| DockerConfig {
            socket: c.engines.docker_socket.clone(),
            ..DockerConfig::default()
        }),
        containerd: node_containerd(c),
        crio: engines
            .then(|| {
                c.engines
                    .crio_socket
                    .clone()
                    .or_else(CrioConfig::find_socket)
            })
            .flatten()
            .map(|socket| CrioConfig {
                socket,
                ..CrioConfig::default()
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
        drain_interval: c.sensor.drain_interval,
        baseline_file: Some(c.network.baseline_file.clone()),
        learning_window: c.network.learning_window,
        learn_alerted: c.network.learn_alerted,
        interpreters: c.detection.interpreters(),
        answer_deadline: c.enforcement.answer_deadline,
        limits: driftwatch_agent::Limits::from_config(&c.limits),
        image_verify: image_verify_config(&c.verify, r.approved.clone()),
        dedup_window: c.limits.dedup_window,
        ..AgentConfig::default()
    }
}

/// The containerd the agent asks for metadata and the responder acts through: the one
/// configured, else the first socket found; none when engines are off.
pub(crate) fn node_containerd(c: &Config) -> Option<ContainerdConfig> {
    if c.engines.disabled {
        return None;
    }
    let socket = c
        .engines
        .containerd_socket
        .clone()
        .or_else(ContainerdConfig::find_socket)?;
    Some(ContainerdConfig {
        socket,
        namespaces: c.engines.containerd_namespaces.clone(),
        ..ContainerdConfig::default()
    })
}

/// Starts the responder when a playbook is configured.
pub fn start_responder(
    c: &Config,
    playbooks: Option<PlaybookSet>,
    action_mirror: Option<driftwatch_response::ActionMirror>,
) -> anyhow::Result<Option<Arc<Responder>>> {
    let (Some(set), Some(path)) = (playbooks, &c.response.playbook) else {
        return Ok(None);
    };
    crate::responder::start_responder_with(
        set,
        path,
        &c.response.actions_log,
        (!c.engines.disabled).then(|| c.engines.docker_socket.clone()),
        node_containerd(c),
        c.outputs
            .json_file
            .enabled
            .then(|| c.outputs.json_file.path.clone()),
        crate::responder::kube_client(&c.response)?,
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
    config_file: Option<PathBuf>,
    flags: Vec<FlagSetting>,
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
        resolved: &ResolvedConfig,
        current: Config,
        responder: Option<Arc<Responder>>,
        started_with: &EnforcementPolicy,
        mirror: Option<driftwatch_response::ActionMirror>,
    ) -> Reloader {
        Reloader {
            path: resolved.config_path(),
            config_file: resolved.config_file.clone(),
            flags: resolved.flags.clone(),
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
    pub fn reload(&mut self, agent: &Agent) {
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
        let loaded = match load_with_flags(self.config_file.as_deref(), &self.flags) {
            Ok(l) => l,
            Err(ResolveError::Load(LoadError::Invalid { diagnostics, .. })) => {
                return refuse(diagnostics.iter().map(|d| d.render()).collect());
            }
            Err(ResolveError::Flags(errors)) => {
                return refuse(errors.iter().map(ToString::to_string).collect());
            }
            Err(e) => return refuse(vec![e.to_string()]),
        };
        let new = loaded.config.clone();
        let resolved = match resolve(&loaded) {
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
            (None, Some(set)) => match start_responder(&new, Some(set), self.mirror.clone()) {
                Ok(Some(r)) => {
                    agent
                        .emitter()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .add_sink(Box::new(crate::sinks::ResponseSink(r.clone())));
                    done.push(format!("playbooks ({})", r.playbook_count()));
                    self.responder = Some(r);
                }
                Ok(None) => {}
                Err(e) => tracing::error!("reload: response: {e:#}"),
            },
            (None, None) => {}
        }
        if let Some(net) = agent.net_drift() {
            net.drift.set_learning_window(new.network.learning_window);
            net.drift.set_learn_alerted(new.network.learn_alerted);
        }
        agent
            .image_verifier()
            .set_approved(resolved.approved, new.verify.allow_mutable);
        if new.limits.dedup_window != self.current.limits.dedup_window {
            agent
                .emitter()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_dedup_window(new.limits.dedup_window);
        }
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
    resolve(loaded)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|e| e.render(loaded))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use driftwatch_config::{FlagSetting, FlagValue};

    use super::*;

    fn config_file(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A file the configuration names is told at the flag that named it, or at the file's
    /// position; every problem at once.
    #[test]
    fn named_files_are_told_where_they_were_named() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.d");
        let file = config_file(
            dir.path(),
            &format!(
                "rules:\n  directory: {}\nverify:\n  approved: {}/missing-approved.txt\n",
                rules.display(),
                dir.path().display()
            ),
        );
        let missing = dir.path().join("missing-playbook.yaml");
        let err = ResolvedConfig::resolve(
            Some(&file),
            vec![FlagSetting::scalar(
                "--playbook",
                "response.playbook",
                missing.to_string_lossy(),
            )],
            None,
        )
        .err()
        .expect("both named files are missing")
        .to_string();
        assert!(
            err.contains(&format!(
                "--playbook {}: response.playbook: ",
                missing.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("{}:4:13: verify.approved: ", file.display())),
            "{err}"
        );
    }

    /// `--enforce` is `enforcement.mode` set by a flag: it overrides the policy's scopes
    /// too; the same key from the file only overrides the policy's default.
    #[test]
    fn enforce_flag_overrides_the_policy_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            "default: detect\nscopes:\n  - match: {images: [app]}\n    mode: prevent\n",
        )
        .unwrap();
        let file = config_file(
            dir.path(),
            &format!(
                "rules:\n  directory: {}\nenforcement:\n  mode: detect\n  policy: {}\n",
                dir.path().join("none").display(),
                policy.display()
            ),
        );
        let from_file = ResolvedConfig::resolve(Some(&file), Vec::new(), None).unwrap();
        assert_eq!(from_file.files.enforcement.scopes.len(), 1);
        let by_flag = ResolvedConfig::resolve(
            Some(&file),
            vec![
                FlagSetting::scalar("--enforce", "enforcement.mode", "prevent"),
                FlagSetting {
                    flag: "--rules",
                    key: "rules.files",
                    value: FlagValue::Append(Vec::new()),
                },
            ],
            None,
        )
        .unwrap();
        assert!(by_flag.files.enforcement.scopes.is_empty());
        assert_eq!(by_flag.files.enforcement.default, EnforcementMode::Prevent);
        assert_eq!(
            by_flag.loaded.flags["enforcement.mode"],
            "--enforce prevent"
        );
    }

    /// CRI-O's socket from the file or `--crio-socket` (the flag winning) reaches the agent;
    /// `engines.disabled` asks no engine at all.
    #[test]
    fn crio_socket_reaches_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let file = config_file(
            dir.path(),
            &format!(
                "rules:\n  directory: {}\nengines:\n  crio_socket: /run/x/crio.sock\n",
                dir.path().join("none").display()
            ),
        );
        let crio = |flags: Vec<FlagSetting>| {
            let r = ResolvedConfig::resolve(Some(&file), flags, None).unwrap();
            agent_config(&r.loaded.config, &r.files, None)
                .crio
                .map(|c| c.socket)
        };
        assert_eq!(crio(Vec::new()), Some(PathBuf::from("/run/x/crio.sock")));
        assert_eq!(
            crio(vec![FlagSetting::scalar(
                "--crio-socket",
                "engines.crio_socket",
                "/run/y/crio.sock"
            )]),
            Some(PathBuf::from("/run/y/crio.sock"))
        );
        assert_eq!(
            crio(vec![FlagSetting::scalar(
                "--no-engine",
                "engines.disabled",
                "true"
            )]),
            None
        );
    }
}
