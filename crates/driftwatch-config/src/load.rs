//! Reading the file: YAML (positioned tree) → the key table → [`Config`], then the checks
//! across keys. No I/O but reading the one file; every problem is collected (unknown keys,
//! wrong types, invalid values), each with `FILE:LINE:COL`, not only the first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use driftwatch_yaml::{Diagnostic, LoadError, Node, NodeKind, ParseLimits};

use crate::keys::{Access, HTTP_KEYS, KEYS, Key};
use crate::schema::{Config, HttpOutput, SyslogTransport};
use crate::units::{parse_duration, parse_size};

/// Where a key was written: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub col: u64,
}

impl Pos {
    pub(crate) fn of(n: &Node) -> Pos {
        Pos {
            line: n.line,
            col: n.col,
        }
    }
}

/// A configuration read from a file (or the embedded defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// The file it was read from; `None`: no file, embedded defaults.
    pub file: Option<PathBuf>,
    /// The keys the file set (`sensor.ring_mib`, `outputs.http[0].url`) and where.
    pub set: BTreeMap<String, Pos>,
    /// The keys command-line flags set over the file, each with the flag and its value
    /// (`--ring-mib 16`); see [`crate::with_flags`].
    pub flags: BTreeMap<String, String>,
}

impl Loaded {
    pub fn defaults() -> Loaded {
        Loaded {
            config: Config::default(),
            file: None,
            set: BTreeMap::new(),
            flags: BTreeMap::new(),
        }
    }

    /// Whether the file or a flag chose `key` (rather than its default).
    pub fn is_set(&self, key: &str) -> bool {
        self.set.contains_key(key) || self.flags.contains_key(key)
    }
}

/// Reads the configuration. `Some(path)`: that file, which must exist. `None`: the default
/// file ([`crate::DEFAULT_CONFIG_FILE`]) when it exists, else the embedded defaults.
pub fn load(path: Option<&Path>) -> Result<Loaded, LoadError> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(crate::DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded::defaults());
        }
        Err(error) => {
            return Err(LoadError::Unreadable {
                what: "the configuration",
                path,
                error,
            });
        }
    };
    let base = path.parent().map(Path::to_path_buf);
    match parse_str(&text, &path.display().to_string(), base.as_deref()) {
        Ok(mut l) => {
            l.file = Some(path);
            Ok(l)
        }
        Err(diagnostics) => Err(LoadError::Invalid { path, diagnostics }),
    }
}

/// Parses a configuration's text; `file` names it in messages, relative paths in it are
/// resolved against `base` (the file's directory). An empty text is the defaults.
pub fn parse_str(text: &str, file: &str, base: Option<&Path>) -> Result<Loaded, Vec<Diagnostic>> {
    let mut cx = Cx {
        file,
        base,
        diags: Vec::new(),
        set: BTreeMap::new(),
        flags: BTreeMap::new(),
        flag_errors: Vec::new(),
    };
    let mut config = Config::default();
    match driftwatch_yaml::parse(text, ParseLimits::CONFIG) {
        Err(e) => cx
            .diags
            .push(Diagnostic::error(file, e.line, e.col, e.to_string())),
        Ok(None) => {}
        Ok(Some(root)) => {
            if root.is_map() {
                cx.walk(KEYS, &root, "", "", &mut config);
                check(&config, &mut cx);
            } else {
                let sections: Vec<&str> = top_sections();
                cx.error(
                    &root,
                    format!(
                        "expected a mapping of sections ({}), found {}",
                        sections.join(", "),
                        root.type_name()
                    ),
                );
            }
        }
    }
    if cx.diags.is_empty() {
        Ok(Loaded {
            config,
            file: None,
            set: cx.set,
            flags: BTreeMap::new(),
        })
    } else {
        cx.diags.sort_by_key(|d| (d.line, d.col));
        for d in &mut cx.diags {
            d.set_source(text);
        }
        Err(cx.diags)
    }
}

fn top_sections() -> Vec<&'static str> {
    let mut v: Vec<&str> = KEYS
        .iter()
        .map(|k| k.path.split('.').next().unwrap_or(k.path))
        .collect();
    v.dedup();
    v
}

/// A problem of the configuration once the flags are applied: at the flag that set the key
/// (`--ring-mib 3`), or, for a check across keys, where the file set the other one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError {
    /// `--flag value`, or `FILE:LINE:COL`.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

pub(crate) struct Cx<'a> {
    pub(crate) file: &'a str,
    pub(crate) base: Option<&'a Path>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) set: BTreeMap<String, Pos>,
    /// The keys command-line flags set, each with the flag and value that set it
    /// (`--ring-mib 3`): a problem with one of them is told at the flag.
    pub(crate) flags: BTreeMap<String, String>,
    pub(crate) flag_errors: Vec<FlagError>,
}

impl Cx<'_> {
    fn is_set(&self, key: &str) -> bool {
        self.set.contains_key(key) || self.flags.contains_key(key)
    }

    /// A problem with `key`'s value: at the flag that set it, else where the file set it
    /// (the file's start for a default).
    fn error_key(&mut self, key: &str, message: String) {
        match self.flags.get(key) {
            Some(flag) => self.flag_errors.push(FlagError {
                at: flag.clone(),
                message,
            }),
            None => {
                let p = self
                    .set
                    .get(key)
                    .copied()
                    .unwrap_or(Pos { line: 1, col: 1 });
                self.error_at(p, message);
            }
        }
    }

    pub(crate) fn error(&mut self, at: &Node, message: String) {
        self.error_at(Pos::of(at), message);
    }

    fn error_at(&mut self, at: Pos, message: String) {
        self.diags
            .push(Diagnostic::error(self.file, at.line, at.col, message));
    }

    /// The keys of a mapping at `prefix` (`""`, `outputs.`) of `keys`; `shown` is how the
    /// mapping is named in messages and in [`Loaded::set`] (`outputs.http[0].`).
    fn walk<T>(
        &mut self,
        keys: &'static [Key<T>],
        node: &Node,
        prefix: &str,
        shown: &str,
        target: &mut T,
    ) {
        let entries = match &node.kind {
            // `sensor:` with nothing under it: the section's defaults.
            NodeKind::Null => return,
            NodeKind::Map(kv) => kv,
            _ => {
                let section = shown.trim_end_matches('.');
                self.error(
                    node,
                    format!(
                        "{section}: expected a mapping (the keys of {section}), found {}",
                        node.describe()
                    ),
                );
                return;
            }
        };
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.error(
                    k,
                    format!(
                        "a key must be a name, found {} in {}",
                        k.describe(),
                        section_name(shown)
                    ),
                );
                continue;
            };
            let path = format!("{prefix}{name}");
            let here = format!("{shown}{name}");
            if let Some(key) = keys.iter().find(|key| key.path == path) {
                match self.value(&key.access, v, &here, target) {
                    Ok(()) => {
                        self.set.insert(here, Pos::of(v));
                    }
                    Err(m) => self.error(v, format!("{here}: {m}")),
                }
            } else if keys
                .iter()
                .any(|key| key.path.starts_with(&format!("{path}.")))
            {
                self.walk(keys, v, &format!("{path}."), &format!("{here}."), target);
            } else {
                let message = unknown_key(keys, prefix, name, shown);
                self.error(k, message);
            }
        }
    }

    fn path(&self, s: &str) -> Result<PathBuf, String> {
        if s.is_empty() {
            return Err("expected a path, found an empty string".into());
        }
        let p = PathBuf::from(s);
        Ok(match self.base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        })
    }

    pub(crate) fn value<T>(
        &mut self,
        access: &Access<T>,
        v: &Node,
        here: &str,
        target: &mut T,
    ) -> Result<(), String> {
        let found = || v.describe();
        match access {
            Access::Bool(_, set) => match v.kind {
                NodeKind::Bool(b) => *set(target) = b,
                _ => return Err(format!("expected true or false, found {}", found())),
            },
            Access::U32(_, set) => {
                *set(target) = whole(v)?
                    .try_into()
                    .map_err(|_| format!("{} is too large (at most {})", found(), u32::MAX))?;
            }
            Access::Count(_, set) => {
                *set(target) = whole(v)?
                    .try_into()
                    .map_err(|_| format!("{} is too large", found()))?;
            }
            Access::Size(_, set) => {
                *set(target) = match &v.kind {
                    NodeKind::Int(i) if *i >= 0 => *i as u64,
                    NodeKind::Str(s) => parse_size(s)?,
                    _ => {
                        return Err(format!(
                            "expected a size like 512KiB, 100MiB, 1GiB or a number of bytes, found {}",
                            found()
                        ));
                    }
                }
            }
            Access::Duration(_, set) => {
                *set(target) = match &v.kind {
                    NodeKind::Str(s) => parse_duration(s)?,
                    NodeKind::Int(0) => std::time::Duration::ZERO,
                    NodeKind::Int(i) => {
                        return Err(format!(
                            "expected a duration like 90s, 5m, 1h, 30d, found {i} (add a unit: {i}s)"
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "expected a duration like 90s, 5m, 1h, 30d, found {}",
                            found()
                        ));
                    }
                }
            }
            Access::Str(_, set) => match &v.kind {
                NodeKind::Str(s) => *set(target) = s.clone(),
                _ => return Err(format!("expected a string, found {}", found())),
            },
            Access::Path(_, set) => match &v.kind {
                NodeKind::Str(s) => *set(target) = self.path(s)?,
                _ => return Err(format!("expected a path, found {}", found())),
            },
            Access::OptPath(_, set) => match &v.kind {
                NodeKind::Null => *set(target) = None,
                NodeKind::Str(s) => *set(target) = Some(self.path(s)?),
                _ => return Err(format!("expected a path or null, found {}", found())),
            },
            Access::StrList(_, set) => {
                *set(target) = strings(v)?;
            }
            Access::PathList(_, set) => {
                let list = strings(v)?
                    .iter()
                    .map(|s| self.path(s))
                    .collect::<Result<_, _>>()?;
                *set(target) = list;
            }
            Access::StrMap(_, set) => {
                let NodeKind::Map(kv) = &v.kind else {
                    return Err(format!(
                        "expected a mapping of names to strings, found {}",
                        found()
                    ));
                };
                let mut m = BTreeMap::new();
                for (k, val) in kv {
                    let (Some(k), Some(val)) = (k.as_str(), val.scalar(None)) else {
                        return Err(format!(
                            "expected a mapping of names to strings, found {} for {}",
                            val.describe(),
                            k.describe()
                        ));
                    };
                    m.insert(k.to_string(), val);
                }
                *set(target) = m;
            }
            Access::Choice { set, names, .. } => {
                let ok = v.as_str().is_some_and(|s| set(target, s));
                if !ok {
                    let hint = v
                        .as_str()
                        .and_then(|s| closest(s, names.iter().copied()))
                        .map(|n| format!(" (did you mean {n:?}?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "expected one of {}, found {}{hint}",
                        names.join(", "),
                        found()
                    ));
                }
            }
            Access::HttpList(_, set) => {
                let Some(items) = v.as_seq() else {
                    return Err(format!(
                        "expected a list of receivers (each a mapping with url, format, ...), found {}",
                        found()
                    ));
                };
                let mut list = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let shown = format!("{here}[{i}].");
                    let mut out = HttpOutput::default();
                    if !item.is_map() {
                        self.error(
                            item,
                            format!("{here}[{i}]: expected a mapping, found {}", item.describe()),
                        );
                        continue;
                    }
                    self.walk(HTTP_KEYS, item, "", &shown, &mut out);
                    if item.get("url").is_none() {
                        self.error(item, format!("{here}[{i}]: url is required"));
                    }
                    list.push(out);
                }
                *set(target) = list;
            }
            Access::AppendOutputList(_, set) => {
                *set(target) = self.append_output(v, here)?;
            }
        }
        Ok(())
    }
}

fn section_name(shown: &str) -> String {
    match shown.trim_end_matches('.') {
        "" => "the top level".into(),
        s => s.to_string(),
    }
}

fn whole(v: &Node) -> Result<u64, String> {
    match v.kind {
        NodeKind::Int(i) if i >= 0 => Ok(i as u64),
        _ => Err(format!("expected a whole number, found {}", v.describe())),
    }
}

fn strings(v: &Node) -> Result<Vec<String>, String> {
    let Some(items) = v.as_seq() else {
        return Err(format!(
            "expected a list of strings, found {}",
            v.describe()
        ));
    };
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("expected a list of strings, found {} in it", i.describe()))
        })
        .collect()
}

/// The candidate nearest to `name`: a few edits away, or sharing most of its start
/// (`retry`: `retries`).
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    let extends = |c: &str| {
        let common = name
            .chars()
            .zip(c.chars())
            .take_while(|(a, b)| a == b)
            .count();
        common >= 4 && common * 4 >= name.chars().count() * 3
    };
    candidates
        .map(|c| (driftwatch_yaml::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= limit || extends(c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "unknown key" with the closest key of the same mapping, else the same name in another
/// section (`ring_mib` at the top level: `sensor.ring_mib`), else the keys it has.
fn unknown_key<T>(keys: &'static [Key<T>], prefix: &str, name: &str, shown: &str) -> String {
    let mut here: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.path.strip_prefix(prefix))
        .map(|rest| rest.split('.').next().unwrap_or(rest))
        .collect();
    here.dedup();
    let within = section_name(shown);
    let head = if shown.is_empty() {
        format!("unknown key {name:?}")
    } else {
        format!("unknown key {name:?} in {within}")
    };
    if let Some(c) = closest(name, here.iter().copied()) {
        return format!("{head}; did you mean {c:?}?");
    }
    // The same name elsewhere: the path up to it (`stdout` → `outputs.stdout`).
    let elsewhere = keys.iter().find_map(|k| {
        let segs: Vec<&str> = k.path.split('.').collect();
        let i = segs.iter().position(|s| *s == name)?;
        Some(segs[..=i].join("."))
    });
    if let Some(path) = elsewhere {
        return format!("{head}; did you mean {path:?}?");
    }
    format!("{head} (known: {})", here.join(", "))
}

/// Checks across keys and of values a type cannot express.
pub(crate) fn check(c: &Config, cx: &mut Cx<'_>) {
    let mib = c.sensor.ring_mib;
    if !mib.is_power_of_two() || mib > 1024 {
        cx.error_key(
            "sensor.ring_mib",
            format!(
                "sensor.ring_mib: {mib} is not a power of two from 1 to 1024 (1, 2, 4, 8, ...)"
            ),
        );
    }
    let drain = c.sensor.drain_interval;
    if !drain.is_zero()
        && (drain < std::time::Duration::from_micros(500)
            || drain > std::time::Duration::from_millis(100))
    {
        cx.error_key(
            "sensor.drain_interval",
            format!(
                "sensor.drain_interval: {} is not 0 or from 500us to 100ms (alerts wait up to this long)",
                crate::units::format_duration(drain)
            ),
        );
    }
    for (key, v) in [
        (
            "limits.watched_dirs_container_percent",
            c.limits.watched_dirs_container_percent,
        ),
        ("store.container_percent", c.store.container_percent),
    ] {
        if !(1..=100).contains(&v) {
            cx.error_key(key, format!("{key}: {v} is not a percentage from 1 to 100"));
        }
    }
    let deadline = c.enforcement.answer_deadline;
    if deadline < std::time::Duration::from_millis(10)
        || deadline > std::time::Duration::from_secs(60)
    {
        cx.error_key(
            "enforcement.answer_deadline",
            format!(
                "enforcement.answer_deadline: {deadline:?} is not from 10ms to 60s (every exec in a prevent-mode container may wait this long)"
            ),
        );
    }
    if c.response.kubeconfig.is_some() && c.response.in_cluster {
        cx.error_key(
            "response.in_cluster",
            "response.in_cluster: pod actions go through either the service account or response.kubeconfig, not both".into(),
        );
    }
    match c.api.listen.parse::<SocketAddr>() {
        Err(_) => {
            cx.error_key(
                "api.listen",
                format!(
                    "api.listen: {:?} is not an address and port like 127.0.0.1:7878 or [::1]:7878",
                    c.api.listen
                ),
            );
        }
        Ok(addr) if c.api.enabled && !addr.ip().is_loopback() && c.api.token_file.is_none() => {
            cx.error_key(
                "api.listen",
                format!(
                    "api.listen: {addr} is reachable from other hosts: set api.token_file (a file holding the bearer token), or listen on 127.0.0.1"
                ),
            );
        }
        Ok(_) => {}
    }
    if !c.api.metrics_listen.is_empty() {
        match c.api.metrics_listen.parse::<SocketAddr>() {
            Err(_) => cx.error_key(
                "api.metrics_listen",
                format!(
                    "api.metrics_listen: {:?} is not an address and port like 0.0.0.0:9879 or [::]:9879",
                    c.api.metrics_listen
                ),
            ),
            Ok(m) if c.api.listen.parse::<SocketAddr>().is_ok_and(|a| a == m) => cx.error_key(
                "api.metrics_listen",
                format!("api.metrics_listen: {m} is api.listen too: choose another port"),
            ),
            Ok(_) => {}
        }
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&c.logging.level) {
        cx.error_key(
            "logging.level",
            format!(
                "logging.level: {:?} is not a level (error, warn, info, debug, trace) or a tracing filter: {e}",
                c.logging.level
            ),
        );
    }
    for (name, family) in &c.detection.interpreters {
        let k = "detection.interpreters.names";
        if name.is_empty() || name.contains('/') {
            cx.error_key(
                k,
                format!(
                    "{k}: {name:?} is not a file name (the executable's name, without a directory)"
                ),
            );
        }
        if family != "none" && driftwatch_model::InterpreterFamily::parse(family).is_none() {
            let names = driftwatch_model::InterpreterFamily::ALL.map(|f| f.as_str());
            let hint = closest(family, names.iter().copied())
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            cx.error_key(
                k,
                format!(
                    "{k}: {name:?}: {family:?} is not an interpreter family ({}, or none){hint}",
                    names.join(", ")
                ),
            );
        }
    }
    for k in KEYS {
        if let Access::Count(get, _) = k.access
            && *get(c) == 0
        {
            cx.error_key(k.path, format!("{}: must be at least 1", k.path));
        }
    }
    let s = &c.outputs.syslog;
    if s.transport != SyslogTransport::Unix && !is_host_port(&s.address) {
        cx.error_key(
            "outputs.syslog.address",
            format!(
                "outputs.syslog.address: {:?} is not host:port (needed for transport {})",
                s.address,
                crate::keys::Choice::name(s.transport)
            ),
        );
    }
    if !SYSLOG_FACILITIES.contains(&s.facility.as_str()) {
        let hint = closest(&s.facility, SYSLOG_FACILITIES.iter().copied())
            .map(|n| format!(" (did you mean {n:?}?)"))
            .unwrap_or_default();
        cx.error_key(
            "outputs.syslog.facility",
            format!(
                "outputs.syslog.facility: {:?} is not a syslog facility{hint}",
                s.facility
            ),
        );
    }
    for (i, h) in c.outputs.http.iter().enumerate() {
        let k = format!("outputs.http[{i}].url");
        if cx.is_set(&k) && !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
            cx.error_key(
                &k,
                format!("{k}: {:?} is not an http:// or https:// URL", h.url),
            );
        }
        for (name, value) in &h.headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                || value.contains(['\r', '\n'])
            {
                cx.error_key(
                    &format!("outputs.http[{i}].headers"),
                    format!("outputs.http[{i}].headers: {name:?} is not a valid header"),
                );
            }
        }
    }
}

const SYSLOG_FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}
