//! Playbook files: what they say ([`PlaybookSet`], [`Playbook`], [`ActionSpec`]) and loading
//! them from YAML with every problem reported as FILE:LINE:COL (all of them, not the first).
//! Parsing and validation do no I/O besides reading the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use driftwatch_model::Priority;
use driftwatch_rules::Glob;
use serde::Serialize;

use crate::yaml::{self, Node, NodeKind};

/// Where captured evidence bundles go unless a `capture` action says otherwise.
pub const DEFAULT_EVIDENCE_DIR: &str = "/var/lib/driftwatch/evidence";

/// Why a playbook file cannot be used: the workspace's one positioned diagnostic and load
/// error, shared with the configuration and rule loaders.
pub use driftwatch_yaml::{Diagnostic, LoadError};

/// A glob pattern and its text (for records and messages).
#[derive(Clone, Debug)]
pub struct Pattern {
    pub text: String,
    glob: Glob,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, driftwatch_rules::GlobError> {
        Ok(Pattern {
            text: text.to_string(),
            glob: Glob::new(text, false)?,
        })
    }

    pub fn matches(&self, s: &str) -> bool {
        self.glob.is_match(s)
    }
}

/// Which alerts a playbook (or an exception) is about. Every key given must match; within a
/// list, any item. An empty selector matches every alert.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// Rule names (globs).
    pub rules: Vec<Pattern>,
    /// The alert carries at least one of these tags.
    pub tags: Vec<String>,
    /// The alert is at least this severe.
    pub priority: Option<Priority>,
    /// Container name or short id (globs).
    pub containers: Vec<Pattern>,
    /// `repository:tag` or `repository` (globs).
    pub images: Vec<Pattern>,
    /// Kubernetes namespace (globs); a container outside Kubernetes has the namespace "",
    /// which only `*` matches.
    pub namespaces: Vec<Pattern>,
    /// `proc.exepath` (globs): for exceptions such as an approved reload script.
    pub exepaths: Vec<Pattern>,
}

/// What to do when an action fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Go on with the next action (the default).
    #[default]
    Continue,
    /// Skip the remaining actions of this playbook run (recorded as skipped).
    Abort,
}

/// What a rate or blast-radius limit counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookScope {
    /// The Kubernetes namespace ("" outside Kubernetes: all such containers share one budget).
    Namespace,
    Container,
    Image,
    /// This host: one budget for everything.
    Host,
}

impl PlaybookScope {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybookScope::Namespace => "namespace",
            PlaybookScope::Container => "container",
            PlaybookScope::Image => "image",
            PlaybookScope::Host => "host",
        }
    }
}

/// At most `max` runs of an action per `per` in any sliding `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ActionLimit {
    pub max: u32,
    pub per: PlaybookScope,
    #[serde(serialize_with = "ser_duration")]
    pub window: Duration,
}

/// An action and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL the alert's process, if it still is that process (see `actions::kill`).
    Kill,
    /// Freeze every process of the container (cgroup freezer).
    Freeze,
    Unfreeze,
    /// Deny all traffic but loopback in the container's network namespace; for a pod, also a
    /// deny-all NetworkPolicy.
    Isolate,
    /// Write an evidence bundle into `dir`.
    Capture {
        dir: String,
        max_file_size: u64,
    },
    /// Stop the container through its engine (SIGTERM, then SIGKILL after `timeout`).
    Stop {
        #[serde(serialize_with = "ser_duration")]
        timeout: Duration,
    },
    /// Docker: stop and remove the container. Kubernetes: delete the pod with a grace period
    /// (or ask the eviction API), so its controller recreates it from the clean image.
    Evict {
        #[serde(serialize_with = "ser_duration")]
        grace_period: Duration,
        eviction_api: bool,
    },
    /// Set (or, with `null`, remove) labels on the pod.
    Label {
        labels: BTreeMap<String, Option<String>>,
    },
    /// POST the alert and the actions taken so far to a webhook.
    Notify {
        url: String,
        #[serde(serialize_with = "ser_duration")]
        timeout: Duration,
    },
}

/// A duration in records as the playbook and the configuration spell it (`5m`, `1d`), so that
/// it parses back.
fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&driftwatch_config::format_duration(*d))
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Freeze => "freeze",
            Action::Unfreeze => "unfreeze",
            Action::Isolate => "isolate",
            Action::Capture { .. } => "capture",
            Action::Stop { .. } => "stop",
            Action::Evict { .. } => "evict",
            Action::Label { .. } => "label",
            Action::Notify { .. } => "notify",
        }
    }

    /// The parameters as recorded (the action's name left out).
    pub fn params(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.remove("action");
        }
        v
    }
}

/// One step of a playbook.
#[derive(Clone, Debug)]
pub struct ActionSpec {
    pub action: Action,
    /// Record what would be done, do nothing.
    pub dry_run: bool,
    pub on_failure: OnFailure,
    pub limit: Option<ActionLimit>,
    /// Where the step is written (for messages).
    pub line: u32,
}

/// Alerts it matches, and what to do about them, in order.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub name: String,
    pub selector: Selector,
    /// Alerts matching any of these are left alone (approved processes, debug images).
    pub except: Vec<Selector>,
    /// The same rule, container and executable again within this window runs nothing.
    pub dedupe_window: Duration,
    pub actions: Vec<ActionSpec>,
}

/// A loaded playbook file.
#[derive(Clone, Debug, Default)]
pub struct PlaybookSet {
    /// The file's name, for records and messages.
    pub file: String,
    /// Alerts matching any of these are never acted on, by any playbook.
    pub exceptions: Vec<Selector>,
    pub playbooks: Vec<Playbook>,
}

pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(300);

impl PlaybookSet {
    /// Reads and loads a file.
    pub fn load_file(path: &Path) -> Result<PlaybookSet, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Unreadable {
            what: "playbook file",
            path: path.to_path_buf(),
            error,
        })?;
        PlaybookSet::parse(&path.display().to_string(), &text).map_err(|diagnostics| {
            LoadError::Invalid {
                path: path.to_path_buf(),
                diagnostics,
            }
        })
    }

    /// Loads a playbook file's text; `name` is used in messages.
    pub fn parse(name: &str, text: &str) -> Result<PlaybookSet, Vec<Diagnostic>> {
        let mut cx = Cx {
            file: name,
            text,
            errors: Vec::new(),
        };
        let root = match yaml::parse(text) {
            Ok(n) => n,
            Err((line, col, message)) => {
                cx.error_at(line, col, message);
                return Err(cx.finish());
            }
        };
        let set = cx.set(&root);
        if cx.errors.is_empty() {
            Ok(set)
        } else {
            Err(cx.finish())
        }
    }
}

/// The loader's context: the file and the problems found so far.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<Diagnostic>,
}

const TOP_KEYS: &[&str] = &["playbooks", "exceptions"];
const PLAYBOOK_KEYS: &[&str] = &["name", "match", "except", "dedupe_window", "actions"];
const SELECTOR_KEYS: &[&str] = &[
    "rules",
    "tags",
    "priority",
    "containers",
    "images",
    "namespaces",
    "exepaths",
];
const STEP_KEYS: &[&str] = &["action", "params", "dry_run", "on_failure", "limits"];
const LIMIT_KEYS: &[&str] = &["max", "per", "window"];
const ACTIONS: &[&str] = &[
    "kill", "freeze", "unfreeze", "isolate", "capture", "stop", "evict", "label", "notify",
];

impl Cx<'_> {
    fn error_at(&mut self, line: u64, col: u64, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(self.file, line, col, message.into()));
    }

    fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.error_at(node.line, node.col, message);
    }

    /// The problems in file order, each with its line.
    fn finish(mut self) -> Vec<Diagnostic> {
        self.errors.sort_by_key(|e| (e.line, e.col));
        for e in &mut self.errors {
            e.set_source(self.text);
        }
        self.errors
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) if !s.is_empty() => Some(s.clone()),
            NodeKind::Str(_) => {
                self.error(node, format!("{what} must not be empty"));
                None
            }
            _ => {
                self.error(
                    node,
                    format!("{what} must be a string, not {}", node.type_name()),
                );
                None
            }
        }
    }

    fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.error(
                    node,
                    format!("{what} must be true or false, not {}", node.type_name()),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let Some(text) = node.scalar(None) else {
            self.error(
                node,
                format!("{what} must be a duration such as 30s, 5m, 1h"),
            );
            return None;
        };
        match driftwatch_config::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                let mut d = Diagnostic::at_node(self.file, node, format!("{what}: {e}"));
                // A bare number was read as seconds before playbooks took the
                // configuration's grammar: say how to keep that meaning.
                if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    d = d.with_help(format!("write `{text}s` for {text} seconds"));
                }
                self.errors.push(d);
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Vec<(String, Node)> {
        let items: Vec<&Node> = match &node.kind {
            NodeKind::Seq(items) => items.iter().collect(),
            NodeKind::Str(_) => vec![node],
            _ => {
                self.error(
                    node,
                    format!("{what} must be a list of strings, not {}", node.type_name()),
                );
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|n| {
                self.string(n, &format!("an item of {what}"))
                    .map(|s| (s, n.clone()))
            })
            .collect()
    }

    fn patterns(&mut self, node: &Node, what: &str) -> Vec<Pattern> {
        let mut out = Vec::new();
        for (s, n) in self.strings(node, what) {
            match Pattern::new(&s) {
                Ok(p) => out.push(p),
                Err(e) => self.error(&n, format!("{what}: `{s}`: {e}")),
            }
        }
        out
    }

    fn set(&mut self, root: &Node) -> PlaybookSet {
        let mut set = PlaybookSet {
            file: self.file.to_string(),
            ..PlaybookSet::default()
        };
        if root.kind == NodeKind::Null {
            self.error(
                root,
                "the file is empty: expected `playbooks:` with a list of playbooks",
            );
            return set;
        }
        let mut saw_playbooks = false;
        for (key, v) in
            root.known_entries(self.file, "the playbook file", TOP_KEYS, &mut self.errors)
        {
            match key {
                "playbooks" => {
                    saw_playbooks = true;
                    let NodeKind::Seq(items) = &v.kind else {
                        self.error(
                            v,
                            format!("`playbooks` must be a list, not {}", v.type_name()),
                        );
                        continue;
                    };
                    for item in items {
                        if let Some(p) = self.playbook(item) {
                            if set.playbooks.iter().any(|q| q.name == p.name) {
                                self.error(item, format!("a second playbook named `{}`", p.name));
                            }
                            set.playbooks.push(p);
                        }
                    }
                }
                "exceptions" => set.exceptions = self.selectors(v, "`exceptions`"),
                _ => unreachable!("key checked by map()"),
            }
        }
        if !saw_playbooks && self.errors.is_empty() {
            self.error(root, "missing `playbooks:` (a list of playbooks)");
        }
        set
    }

    fn selectors(&mut self, node: &Node, what: &str) -> Vec<Selector> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(
                node,
                format!(
                    "{what} must be a list of selectors, not {}",
                    node.type_name()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .map(|n| self.selector(n, &format!("an item of {what}")))
            .collect()
    }

    fn selector(&mut self, node: &Node, what: &str) -> Selector {
        let mut s = Selector::default();
        for (key, v) in node.known_entries(self.file, what, SELECTOR_KEYS, &mut self.errors) {
            match key {
                "rules" => s.rules = self.patterns(v, "`rules`"),
                "tags" => {
                    s.tags = self
                        .strings(v, "`tags`")
                        .into_iter()
                        .map(|(t, _)| t)
                        .collect()
                }
                "priority" => {
                    if let Some(text) = self.string(v, "`priority`") {
                        match text.parse::<Priority>() {
                            Ok(p) => s.priority = Some(p),
                            Err(e) => self.error(v, format!("`priority`: {e}")),
                        }
                    }
                }
                "containers" => s.containers = self.patterns(v, "`containers`"),
                "images" => s.images = self.patterns(v, "`images`"),
                "namespaces" => s.namespaces = self.patterns(v, "`namespaces`"),
                "exepaths" => s.exepaths = self.patterns(v, "`exepaths`"),
                _ => unreachable!("key checked by map()"),
            }
        }
        s
    }

    fn playbook(&mut self, node: &Node) -> Option<Playbook> {
        let before = self.errors.len();
        let entries = node.known_entries(self.file, "a playbook", PLAYBOOK_KEYS, &mut self.errors);
        let mut name = None;
        let mut selector = None;
        let mut except = Vec::new();
        let mut dedupe_window = DEFAULT_DEDUPE_WINDOW;
        let mut actions = None;
        for (key, v) in entries {
            match key {
                "name" => name = self.string(v, "`name`"),
                "match" => selector = Some(self.selector(v, "`match`")),
                "except" => except = self.selectors(v, "`except`"),
                "dedupe_window" => {
                    if let Some(d) = self.duration(v, "`dedupe_window`") {
                        dedupe_window = d;
                    }
                }
                "actions" => actions = Some(self.steps(v)),
                _ => unreachable!("key checked by map()"),
            }
        }
        if matches!(node.kind, NodeKind::Map(_)) {
            if name.is_none() && self.errors.len() == before {
                self.error(node, "a playbook needs a `name`");
            }
            if selector.is_none() {
                self.error(
                    node,
                    "a playbook needs `match:` (use `match: {}` to act on every alert)",
                );
            }
            match &actions {
                None => self.error(node, "a playbook needs `actions:` (a list)"),
                Some(a) if a.is_empty() && self.errors.len() == before => {
                    self.error(node, "`actions` is empty: a playbook must do something")
                }
                _ => {}
            }
        }
        if self.errors.len() != before {
            return None;
        }
        Some(Playbook {
            name: name?,
            selector: selector?,
            except,
            dedupe_window,
            actions: actions?,
        })
    }

    fn steps(&mut self, node: &Node) -> Vec<ActionSpec> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(
                node,
                format!("`actions` must be a list, not {}", node.type_name()),
            );
            return Vec::new();
        };
        items.iter().filter_map(|n| self.step(n)).collect()
    }

    fn step(&mut self, node: &Node) -> Option<ActionSpec> {
        let before = self.errors.len();
        // `- kill` is `- {action: kill}`.
        if let NodeKind::Str(name) = &node.kind {
            let action = self.action(name, node, None)?;
            return Some(ActionSpec {
                action,
                dry_run: false,
                on_failure: OnFailure::Continue,
                limit: None,
                line: pos(node.line),
            });
        }
        let entries = node.known_entries(self.file, "an action", STEP_KEYS, &mut self.errors);
        if !matches!(node.kind, NodeKind::Map(_)) {
            return None;
        }
        let mut name: Option<(String, &Node)> = None;
        let mut params = None;
        let mut dry_run = false;
        let mut on_failure = OnFailure::Continue;
        let mut limit = None;
        for (key, v) in entries {
            match key {
                "action" => name = self.string(v, "`action`").map(|s| (s, v)),
                "params" => params = Some(v),
                "dry_run" => dry_run = self.bool(v, "`dry_run`").unwrap_or(false),
                "on_failure" => match self.string(v, "`on_failure`").as_deref() {
                    Some("continue") => on_failure = OnFailure::Continue,
                    Some("abort") => on_failure = OnFailure::Abort,
                    Some(other) => self.error(
                        v,
                        format!("`on_failure: {other}`: expected `continue` or `abort`"),
                    ),
                    None => {}
                },
                "limits" => limit = self.limit(v),
                _ => unreachable!("key checked by map()"),
            }
        }
        let Some((name, name_node)) = name else {
            if self.errors.len() == before {
                self.error(
                    node,
                    format!("an action needs `action:` (one of: {})", ACTIONS.join(", ")),
                );
            }
            return None;
        };
        let action = self.action(&name, name_node, params)?;
        if self.errors.len() != before {
            return None;
        }
        Some(ActionSpec {
            action,
            dry_run,
            on_failure,
            limit,
            line: pos(node.line),
        })
    }

    fn limit(&mut self, node: &Node) -> Option<ActionLimit> {
        let before = self.errors.len();
        let mut max = None;
        let mut per = None;
        let mut window = None;
        for (key, v) in node.known_entries(self.file, "`limits`", LIMIT_KEYS, &mut self.errors) {
            match key {
                "max" => match v.kind {
                    NodeKind::Int(n) if (1..=i64::from(u32::MAX)).contains(&n) => {
                        max = Some(n as u32)
                    }
                    _ => self.error(v, "`max` must be a whole number of at least 1"),
                },
                "per" => match self.string(v, "`per`").as_deref() {
                    Some("namespace") => per = Some(PlaybookScope::Namespace),
                    Some("container") => per = Some(PlaybookScope::Container),
                    Some("image") => per = Some(PlaybookScope::Image),
                    Some("host") => per = Some(PlaybookScope::Host),
                    Some(other) => self.error(
                        v,
                        format!("`per: {other}`: expected namespace, container, image or host"),
                    ),
                    None => {}
                },
                "window" => window = self.duration(v, "`window`"),
                _ => unreachable!("key checked by map()"),
            }
        }
        if self.errors.len() != before {
            return None;
        }
        match (max, window) {
            (Some(max), Some(window)) if !window.is_zero() => Some(ActionLimit {
                max,
                per: per.unwrap_or(PlaybookScope::Host),
                window,
            }),
            (Some(_), Some(_)) => {
                self.error(node, "`window` must be longer than 0");
                None
            }
            _ => {
                self.error(
                    node,
                    "`limits` needs `max` and `window` (`per` defaults to host)",
                );
                None
            }
        }
    }

    /// An action by name with its `params` (checked against what that action takes).
    fn action(&mut self, name: &str, at: &Node, params: Option<&Node>) -> Option<Action> {
        let allowed: &[&str] = match name {
            "kill" | "freeze" | "unfreeze" | "isolate" => &[],
            "capture" => &["dir", "max_file_size"],
            "stop" => &["timeout"],
            "evict" => &["grace_period", "eviction_api"],
            "label" => &["labels"],
            "notify" => &["url", "timeout"],
            other => {
                self.error(
                    at,
                    format!(
                        "unknown action `{other}` (expected one of: {})",
                        ACTIONS.join(", ")
                    ),
                );
                return None;
            }
        };
        let before = self.errors.len();
        let entries = match params {
            None => Vec::new(),
            Some(p) if allowed.is_empty() => {
                if p.kind != NodeKind::Null && p.kind != NodeKind::Map(Vec::new()) {
                    self.error(p, format!("`{name}` takes no params"));
                }
                Vec::new()
            }
            Some(p) => p.known_entries(
                self.file,
                &format!("the params of `{name}`"),
                allowed,
                &mut self.errors,
            ),
        };
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let action = match name {
            "kill" => Action::Kill,
            "freeze" => Action::Freeze,
            "unfreeze" => Action::Unfreeze,
            "isolate" => Action::Isolate,
            "capture" => {
                let dir = match get("dir") {
                    Some(v) => self.string(v, "`dir`").unwrap_or_default(),
                    None => DEFAULT_EVIDENCE_DIR.to_string(),
                };
                if !dir.is_empty() && !dir.starts_with('/') {
                    self.error(
                        get("dir").unwrap_or(at),
                        format!("`dir: {dir}` must be an absolute path"),
                    );
                }
                let max_file_size = match get("max_file_size") {
                    Some(v) => match v
                        .scalar(None)
                        .map(|s| (driftwatch_config::parse_size(&s), s))
                    {
                        Some((Ok(n), _)) => n,
                        Some((Err(e), text)) => {
                            let mut d =
                                Diagnostic::at_node(self.file, v, format!("`max_file_size`: {e}"));
                            // `1g`, `16mib`: playbooks took any case before they took the
                            // configuration's grammar.
                            let upper = text.to_ascii_uppercase().replace("IB", "iB");
                            if driftwatch_config::parse_size(&upper).is_ok() {
                                d = d.with_help(format!("write `{upper}`"));
                            }
                            self.errors.push(d);
                            0
                        }
                        None => {
                            self.error(v, "`max_file_size` must be a size such as 16MiB");
                            0
                        }
                    },
                    None => 16 << 20,
                };
                Action::Capture { dir, max_file_size }
            }
            "stop" => Action::Stop {
                timeout: get("timeout")
                    .and_then(|v| self.duration(v, "`timeout`"))
                    .unwrap_or(Duration::from_secs(10)),
            },
            "evict" => Action::Evict {
                grace_period: get("grace_period")
                    .and_then(|v| self.duration(v, "`grace_period`"))
                    .unwrap_or(Duration::from_secs(30)),
                eviction_api: get("eviction_api")
                    .and_then(|v| self.bool(v, "`eviction_api`"))
                    .unwrap_or(false),
            },
            "label" => {
                let mut labels = BTreeMap::new();
                match get("labels") {
                    None => self.error(
                        params.unwrap_or(at),
                        "`label` needs `params: {labels: {KEY: VALUE}}`",
                    ),
                    Some(v) => {
                        let NodeKind::Map(kv) = &v.kind else {
                            self.error(
                                v,
                                "`labels` must be a mapping of label to value (null removes it)",
                            );
                            return None;
                        };
                        for (k, val) in kv {
                            let Some(key) = k.scalar(None) else {
                                self.error(k, "a label name must be a string");
                                continue;
                            };
                            if !valid_label_key(&key) {
                                self.error(
                                    k,
                                    format!("`{key}` is not a valid Kubernetes label name"),
                                );
                                continue;
                            }
                            let value = match &val.kind {
                                NodeKind::Null => None,
                                _ => match val.scalar(None) {
                                    Some(s) if valid_label_value(&s) => Some(s),
                                    Some(s) => {
                                        self.error(val, format!("`{s}` is not a valid Kubernetes label value (63 characters at most: letters, digits, `-`, `_`, `.`)"));
                                        continue;
                                    }
                                    None => {
                                        self.error(val, "a label value must be a string or null");
                                        continue;
                                    }
                                },
                            };
                            labels.insert(key, value);
                        }
                        if labels.is_empty() && self.errors.len() == before {
                            self.error(v, "`labels` is empty");
                        }
                    }
                }
                Action::Label { labels }
            }
            "notify" => {
                let url = match get("url") {
                    Some(v) => self.string(v, "`url`").unwrap_or_default(),
                    None => {
                        self.error(
                            params.unwrap_or(at),
                            "`notify` needs `params: {url: http://...}`",
                        );
                        String::new()
                    }
                };
                if !url.is_empty()
                    && let Err(e) = crate::webhook_url::WebhookUrl::parse(&url)
                {
                    self.error(get("url").unwrap_or(at), format!("`url`: {e}"));
                }
                Action::Notify {
                    url,
                    timeout: get("timeout")
                        .and_then(|v| self.duration(v, "`timeout`"))
                        .unwrap_or(Duration::from_secs(5)),
                }
            }
            _ => unreachable!("names checked above"),
        };
        (self.errors.len() == before).then_some(action)
    }
}

/// A line or column as this crate keeps it.
fn pos(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `[prefix/]name`: name 1-63 of alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric; prefix a DNS subdomain.
fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    });
    prefix_ok && !name.is_empty() && valid_label_value(name)
}

fn valid_label_value(v: &str) -> bool {
    v.len() <= 63
        && (v.is_empty()
            || (v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && v.as_bytes()[0].is_ascii_alphanumeric()
                && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"playbooks:
  - name: contain-binary-drift
    match: {tags: [binary_drift], priority: Critical, containers: ["*"], images: ["*"], namespaces: ["*"]}
    dedupe_window: 5m
    actions:
      - kill
      - {action: isolate, on_failure: abort}
      - {action: capture, params: {dir: /var/lib/driftwatch/evidence, max_file_size: 1MiB}}
      - {action: evict, params: {grace_period: 30s}, limits: {max: 3, per: namespace, window: 1h}, dry_run: true}
      - {action: label, params: {labels: {driftwatch.io/quarantined: "true", app: null}}}
      - {action: notify, params: {url: "http://127.0.0.1:9000/hook", timeout: 2s}}
"#;

    fn errors(text: &str) -> Vec<String> {
        PlaybookSet::parse("p.yaml", text)
            .err()
            .unwrap_or_else(|| panic!("loaded: {text}"))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn the_documented_shape_loads() {
        let set = PlaybookSet::parse("p.yaml", GOOD).unwrap_or_else(|e| panic!("{e:?}"));
        let p = &set.playbooks[0];
        assert_eq!(p.name, "contain-binary-drift");
        assert_eq!(p.dedupe_window, Duration::from_secs(300));
        let names: Vec<_> = p.actions.iter().map(|a| a.action.name()).collect();
        assert_eq!(
            names,
            ["kill", "isolate", "capture", "evict", "label", "notify"]
        );
        assert_eq!(p.actions[0].on_failure, OnFailure::Continue);
        assert_eq!(p.actions[1].on_failure, OnFailure::Abort);
        assert_eq!(
            p.actions[2].action,
            Action::Capture {
                dir: "/var/lib/driftwatch/evidence".into(),
                max_file_size: 1 << 20
            }
        );
        let evict = &p.actions[3];
        assert!(evict.dry_run);
        assert_eq!(
            evict.limit,
            Some(ActionLimit {
                max: 3,
                per: PlaybookScope::Namespace,
                window: Duration::from_secs(3600)
            })
        );
        assert_eq!(
            evict.action.params(),
            serde_json::json!({"grace_period": "30s", "eviction_api": false})
        );
        let Action::Label { labels } = &p.actions[4].action else {
            panic!()
        };
        assert_eq!(labels["driftwatch.io/quarantined"].as_deref(), Some("true"));
        assert_eq!(labels["app"], None);
        assert_eq!(p.actions[5].line, 11);
    }

    #[test]
    fn every_problem_is_positioned_and_sorted() {
        let text = "playbooks:\n  - name: p\n    match: {tags: [x], prio: High}\n    colour: blue\n    actions:\n      - explode\n      - {action: kill, params: {signal: 9}}\n      - {action: stop, on_failure: retry}\n";
        assert_eq!(
            errors(text),
            [
                "p.yaml:3:24: unknown key `prio` in `match` (expected one of: rules, tags, priority, containers, images, namespaces, exepaths)",
                "p.yaml:4:5: unknown key `colour` in a playbook (expected one of: name, match, except, dedupe_window, actions)",
                "p.yaml:6:9: unknown action `explode` (expected one of: kill, freeze, unfreeze, isolate, capture, stop, evict, label, notify)",
                "p.yaml:7:32: `kill` takes no params",
                "p.yaml:8:36: `on_failure: retry`: expected `continue` or `abort`",
            ]
        );
    }

    #[test]
    fn missing_pieces_and_bad_values() {
        assert_eq!(
            errors(""),
            ["p.yaml:1:1: the file is empty: expected `playbooks:` with a list of playbooks"]
        );
        assert_eq!(
            errors("playbooks:\n  - name: p\n    actions: [kill]\n"),
            ["p.yaml:2:5: a playbook needs `match:` (use `match: {}` to act on every alert)"]
        );
        assert_eq!(
            errors("playbooks:\n  - name: p\n    match: {}\n    actions: [label]\n"),
            ["p.yaml:4:15: `label` needs `params: {labels: {KEY: VALUE}}`"]
        );
        let e = errors(
            "playbooks:\n  - {name: p, match: {}, actions: [{action: evict, limits: {max: 2}}]}\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("p.yaml:2:60: `limits` needs `max` and `window`"),
            "{e:?}"
        );
        let e = errors(
            "playbooks:\n  - {name: p, match: {}, actions: [kill]}\n  - {name: p, match: {}, actions: [kill]}\n",
        );
        assert_eq!(e, ["p.yaml:3:5: a second playbook named `p`"]);
        let e = errors(
            "playbooks:\n  - {name: p, match: {}, actions: [{action: label, params: {labels: {\"Bad Key\": x}}}]}\n",
        );
        assert!(e[0].contains("not a valid Kubernetes label name"), "{e:?}");
        let e = errors("playbooks: [\n");
        assert!(
            e[0].starts_with("p.yaml:") && e[0].contains("invalid YAML"),
            "{e:?}"
        );
    }

    #[test]
    fn a_bare_number_is_not_a_duration_and_the_error_suggests_the_unit() {
        let text =
            "playbooks:\n  - name: p\n    match: {}\n    dedupe_window: 300\n    actions: [kill]\n";
        let e = PlaybookSet::parse("p.yaml", text).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            e[0].render(),
            "p.yaml:4:20: error: `dedupe_window`: 300 has no unit (write 300s, 300m, 300h or 300d)\n\
             4 |     dedupe_window: 300\n  |                    ^\n  = help: write `300s` for 300 seconds"
        );
        let ok = text.replace("300", "300s");
        let set = PlaybookSet::parse("p.yaml", &ok).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(set.playbooks[0].dedupe_window, Duration::from_secs(300));
    }

    #[test]
    fn sizes_are_the_configurations_and_the_old_spellings_get_a_hint() {
        let capture = |size: &str| {
            format!(
                "playbooks:\n  - name: p\n    match: {{}}\n    actions:\n      - {{action: capture, params: {{max_file_size: {size}}}}}\n"
            )
        };
        for (size, want) in [
            ("64K", 64 << 10),
            ("1MiB", 1 << 20),
            ("4096", 4096),
            ("10MB", 10_000_000),
        ] {
            let set = PlaybookSet::parse("p.yaml", &capture(size))
                .unwrap_or_else(|e| panic!("{size}: {e:?}"));
            match &set.playbooks[0].actions[0].action {
                Action::Capture { max_file_size, .. } => assert_eq!(*max_file_size, want, "{size}"),
                other => panic!("{other:?}"),
            }
        }
        for (size, help) in [
            ("1g", Some("write `1G`")),
            ("16mib", Some("write `16MiB`")),
            ("lots", None),
        ] {
            let e = PlaybookSet::parse("p.yaml", &capture(size)).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].message.starts_with("`max_file_size`: "), "{e:?}");
            assert_eq!(e[0].help.as_deref(), help, "{size}");
        }
    }
}
