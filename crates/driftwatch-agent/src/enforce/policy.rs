//! The enforcement policy: which containers run in which mode and which drift users permit,
//! parsed from its YAML with every problem at FILE:LINE:COL. Pure: no I/O but reading the
//! one file in [`EnforcementPolicy::load`].

use std::collections::BTreeMap;
use std::path::Path;

use driftwatch_model::{ContainerMeta, EnforcementMode};
use driftwatch_rules::Glob;
use driftwatch_yaml::{Diagnostic, LoadError, Node, NodeKind, ParseLimits};

/// The enforcement policy: a mode per scope and the drift users permit.
#[derive(Clone, Debug, Default)]
pub struct EnforcementPolicy {
    /// The mode of containers no scope matches.
    pub default: EnforcementMode,
    /// The first scope that matches a container gives its mode.
    pub scopes: Vec<Scope>,
    /// Drift that is neither blocked nor alerted.
    pub allow: Vec<AllowEntry>,
    /// Hold the execs of containers whose scope is not decided yet (their first
    /// milliseconds), so that nothing runs unjudged in a prevent scope. Default true.
    pub hold_new_containers: bool,
    /// When the agent dies: `false` (default) fails open (the kernel's behaviour for
    /// fanotify); `true` keeps the exec program pinned, and once the agent's heartbeat is
    /// 3 s old, execs in prevent scopes of files not provably the image's are held until an
    /// agent runs again and judges them.
    pub hold_on_agent_death: bool,
    /// Where the policy came from, for messages.
    pub source: String,
}

/// Which containers a scope covers: every given criterion must match (lists: any of).
#[derive(Clone, Debug, Default)]
pub struct ScopeMatch {
    pub images: Vec<Glob>,
    pub containers: Vec<Glob>,
    pub labels: BTreeMap<String, String>,
    pub namespaces: Vec<Glob>,
}

#[derive(Clone, Debug)]
pub struct Scope {
    pub matcher: ScopeMatch,
    pub mode: EnforcementMode,
}

/// Permitted drift: every given field must match.
#[derive(Clone, Debug, Default)]
pub struct AllowEntry {
    /// The drifted file's path inside the container.
    pub path: Option<Glob>,
    /// sha256 (hex) of the drifted file's content.
    pub sha256: Option<String>,
    pub images: Vec<Glob>,
    pub reason: Option<String>,
}

const TOP_KEYS: &[&str] = &[
    "default",
    "scopes",
    "allow",
    "hold_new_containers",
    "on_agent_death",
];
const SCOPE_KEYS: &[&str] = &["match", "mode"];
const MATCH_KEYS: &[&str] = &["images", "containers", "labels", "namespaces"];
const ALLOW_KEYS: &[&str] = &["path", "sha256", "images", "reason"];

impl EnforcementPolicy {
    /// Every container in one mode, nothing allowlisted.
    pub fn everywhere(mode: EnforcementMode) -> Self {
        EnforcementPolicy {
            default: mode,
            hold_new_containers: true,
            source: "--enforce".into(),
            ..Default::default()
        }
    }

    /// Parses a policy file's text; `source` names it in messages. Every problem is
    /// reported, each at its FILE:LINE:COL.
    pub fn parse(text: &str, source: &str) -> Result<Self, Vec<Diagnostic>> {
        let mut policy = EnforcementPolicy {
            hold_new_containers: true,
            source: source.to_string(),
            ..Default::default()
        };
        let mut cx = Cx {
            file: source,
            diags: Vec::new(),
        };
        match driftwatch_yaml::parse(text, ParseLimits::CONFIG) {
            Err(e) => cx
                .diags
                .push(Diagnostic::error(source, e.line, e.col, e.to_string())),
            Ok(None) => {}
            Ok(Some(root)) => cx.policy(&root, &mut policy),
        }
        if cx.diags.is_empty() {
            Ok(policy)
        } else {
            cx.diags.sort_by_key(|d| (d.line, d.col));
            for d in &mut cx.diags {
                d.set_source(text);
            }
            Err(cx.diags)
        }
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the policy file the operator names, not a container's file"
        )]
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Unreadable {
            what: "the enforcement policy",
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string()).map_err(|diagnostics| LoadError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    }

    /// Does any container possibly run in prevent mode?
    pub fn any_prevent(&self) -> bool {
        self.default == EnforcementMode::Prevent
            || self
                .scopes
                .iter()
                .any(|s| s.mode == EnforcementMode::Prevent)
    }

    /// The mode of a container.
    pub fn mode_for(&self, meta: &ContainerMeta) -> EnforcementMode {
        self.scopes
            .iter()
            .find(|s| s.matcher.matches(meta))
            .map_or(self.default, |s| s.mode)
    }

    /// Is this drift permitted? `sha256` is computed only if an entry asks for it.
    pub fn permits(
        &self,
        path: &str,
        meta: &ContainerMeta,
        sha256: &mut dyn FnMut() -> Option<String>,
    ) -> bool {
        let mut hash: Option<Option<String>> = None;
        self.allow.iter().any(|a| {
            if a.path.as_ref().is_some_and(|g| !g.is_match(path)) {
                return false;
            }
            if !a.images.is_empty() && !image_matches(&a.images, meta) {
                return false;
            }
            match &a.sha256 {
                None => true,
                Some(want) => hash.get_or_insert_with(&mut *sha256).as_deref() == Some(want),
            }
        })
    }
}

/// Image globs match the repository, `repository:tag` or `repository@digest`.
fn image_matches(globs: &[Glob], meta: &ContainerMeta) -> bool {
    let repo = &meta.image.repository;
    let with_tag = format!("{repo}:{}", meta.image.tag);
    let with_digest = meta
        .image
        .digest
        .as_ref()
        .map(|d| format!("{repo}@{d}"))
        .unwrap_or_default();
    globs
        .iter()
        .any(|g| g.is_match(repo) || g.is_match(&with_tag) || g.is_match(&with_digest))
}

impl ScopeMatch {
    pub fn matches(&self, meta: &ContainerMeta) -> bool {
        (self.images.is_empty() || image_matches(&self.images, meta))
            && (self.containers.is_empty()
                || self.containers.iter().any(|g| g.is_match(&meta.name)))
            && self
                .labels
                .iter()
                .all(|(k, v)| meta.labels.get(k).is_some_and(|have| have == v))
            && (self.namespaces.is_empty()
                || meta
                    .k8s
                    .as_ref()
                    .is_some_and(|k| self.namespaces.iter().any(|g| g.is_match(&k.namespace))))
    }
}

/// The parser's context: the file and the problems found so far.
struct Cx<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn error(&mut self, at: &Node, message: String) {
        self.diags.push(Diagnostic::at_node(self.file, at, message));
    }

    fn policy(&mut self, root: &Node, policy: &mut EnforcementPolicy) {
        for (key, v) in root.known_entries(self.file, "the policy", TOP_KEYS, &mut self.diags) {
            match key {
                "default" => {
                    if let Some(m) = self.mode(v, "default") {
                        policy.default = m;
                    }
                }
                "scopes" => {
                    for (i, s) in self.seq(v, "scopes").iter().enumerate() {
                        if let Some(scope) = self.scope(s, &format!("scopes[{i}]")) {
                            policy.scopes.push(scope);
                        }
                    }
                }
                "allow" => {
                    for (i, a) in self.seq(v, "allow").iter().enumerate() {
                        if let Some(entry) = self.allow(a, &format!("allow[{i}]")) {
                            policy.allow.push(entry);
                        }
                    }
                }
                "hold_new_containers" => match v.kind {
                    NodeKind::Bool(b) => policy.hold_new_containers = b,
                    _ => self.error(
                        v,
                        format!(
                            "hold_new_containers: expected true or false, found {}",
                            v.describe()
                        ),
                    ),
                },
                "on_agent_death" => match v.as_str() {
                    Some("allow") => policy.hold_on_agent_death = false,
                    Some("hold") => policy.hold_on_agent_death = true,
                    _ => self.error(
                        v,
                        format!(
                            "on_agent_death: expected one of allow, hold, found {}",
                            v.describe()
                        ),
                    ),
                },
                _ => unreachable!("keys checked by map()"),
            }
        }
    }

    fn scope(&mut self, node: &Node, at: &str) -> Option<Scope> {
        let mut matcher = Some(ScopeMatch::default());
        let mut mode = None;
        let mut mode_given = false;
        for (key, v) in node.known_entries(self.file, at, SCOPE_KEYS, &mut self.diags) {
            match key {
                "match" => matcher = self.matcher(v, &format!("{at}.match")),
                _ => {
                    mode_given = true;
                    mode = self.mode(v, &format!("{at}.mode"));
                }
            }
        }
        if !mode_given && node.is_map() {
            self.error(
                node,
                format!("{at}: a scope needs `mode` (detect or prevent)"),
            );
        }
        Some(Scope {
            matcher: matcher?,
            mode: mode?,
        })
    }

    fn matcher(&mut self, node: &Node, at: &str) -> Option<ScopeMatch> {
        let before = self.diags.len();
        let mut m = ScopeMatch::default();
        for (key, v) in node.known_entries(self.file, at, MATCH_KEYS, &mut self.diags) {
            let what = format!("{at}.{key}");
            match key {
                "images" => m.images = self.globs(v, &what),
                "containers" => m.containers = self.globs(v, &what),
                "namespaces" => m.namespaces = self.globs(v, &what),
                _ => m.labels = self.labels(v, &what),
            }
        }
        (self.diags.len() == before).then_some(m)
    }

    fn allow(&mut self, node: &Node, at: &str) -> Option<AllowEntry> {
        let before = self.diags.len();
        let mut a = AllowEntry::default();
        for (key, v) in node.known_entries(self.file, at, ALLOW_KEYS, &mut self.diags) {
            let what = format!("{at}.{key}");
            match key {
                "path" => {
                    let Some(p) = self.string(v, &what) else {
                        continue;
                    };
                    if !p.starts_with('/') {
                        self.error(
                            v,
                            format!("{what}: {p:?} must be absolute (a path inside the container)"),
                        );
                        continue;
                    }
                    match Glob::new(&p, false) {
                        Ok(g) => a.path = Some(g),
                        Err(e) => self.error(v, format!("{what}: {p:?}: {e}")),
                    }
                }
                "sha256" => {
                    let Some(h) = self.string(v, &what) else {
                        continue;
                    };
                    let h = h.trim().to_ascii_lowercase();
                    let h = h.strip_prefix("sha256:").unwrap_or(&h).to_string();
                    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        self.error(v, format!("{what}: {h:?} is not a sha256 (64 hex digits)"));
                        continue;
                    }
                    a.sha256 = Some(h);
                }
                "images" => a.images = self.globs(v, &what),
                _ => a.reason = self.string(v, &what),
            }
        }
        if self.diags.len() != before {
            return None;
        }
        if a.path.is_none() && a.sha256.is_none() && a.images.is_empty() {
            self.error(
                node,
                format!(
                    "{at}: an allow entry needs at least one of path, sha256, images (an empty one would permit all drift)"
                ),
            );
            return None;
        }
        Some(a)
    }

    fn mode(&mut self, node: &Node, what: &str) -> Option<EnforcementMode> {
        match node.as_str() {
            Some("detect") => Some(EnforcementMode::Detect),
            Some("prevent") => Some(EnforcementMode::Prevent),
            _ => {
                self.error(
                    node,
                    format!(
                        "{what}: expected one of detect, prevent, found {}",
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    fn seq<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => &[],
            _ => {
                self.error(
                    node,
                    format!("{what}: expected a list, found {}", node.type_name()),
                );
                &[]
            }
        }
    }

    /// A scalar as written (`1.10` stays `1.10`).
    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.kind {
            NodeKind::Str(_) | NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                node.scalar(None)
            }
            _ => {
                self.error(
                    node,
                    format!("{what}: expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn globs(&mut self, node: &Node, what: &str) -> Vec<Glob> {
        let mut out = Vec::new();
        for (i, item) in self.seq(node, what).iter().enumerate() {
            let at = format!("{what}[{i}]");
            let Some(p) = self.string(item, &at) else {
                continue;
            };
            match Glob::new(&p, false) {
                Ok(g) => out.push(g),
                Err(e) => self.error(item, format!("{at} {p:?}: {e}")),
            }
        }
        out
    }

    fn labels(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let NodeKind::Map(kv) = &node.kind else {
            if !matches!(node.kind, NodeKind::Null) {
                self.error(
                    node,
                    format!("{what}: expected a mapping, found {}", node.type_name()),
                );
            }
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in kv {
            let Some(key) = self.string(k, what) else {
                continue;
            };
            if let Some(value) = self.string(v, &format!("{what}.{key}")) {
                out.insert(key, value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::{ContainerId, ImageRef, KubernetesMeta};

    fn meta(name: &str, image: &str, ns: Option<&str>) -> ContainerMeta {
        let mut m = ContainerMeta::unknown(ContainerId::new(&"a".repeat(64)).unwrap());
        m.name = name.into();
        m.image = ImageRef::parse(image);
        m.labels.insert("tier".into(), "web".into());
        m.k8s = ns.map(|n| KubernetesMeta {
            namespace: n.into(),
            ..Default::default()
        });
        m
    }

    const POLICY: &str = r#"
default: detect
scopes:
  - match: {namespaces: ["prod*"]}
    mode: prevent
  - match: {images: ["nginx"], labels: {tier: web}}
    mode: prevent
  - match: {containers: ["debug-*"]}
    mode: detect
allow:
  - path: /docker-entrypoint.d/*.sh
    images: ["nginx:1.*"]
  - sha256: "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    reason: empty file
"#;

    #[test]
    fn scopes_first_match_wins() {
        let p = EnforcementPolicy::parse(POLICY, "policy.yaml").unwrap();
        assert!(p.any_prevent());
        assert_eq!(
            p.mode_for(&meta("x", "redis:7", Some("prod-eu"))),
            EnforcementMode::Prevent
        );
        assert_eq!(
            p.mode_for(&meta("x", "redis:7", Some("dev"))),
            EnforcementMode::Detect
        );
        assert_eq!(
            p.mode_for(&meta("web", "nginx:1.27", None)),
            EnforcementMode::Prevent
        );
        assert_eq!(
            p.mode_for(&meta("debug-1", "busybox", None)),
            EnforcementMode::Detect
        );
        let mut other_label = meta("web", "nginx:1.27", None);
        other_label.labels.insert("tier".into(), "db".into());
        assert_eq!(p.mode_for(&other_label), EnforcementMode::Detect);
    }

    #[test]
    fn allowlist_by_path_image_and_sha256() {
        let p = EnforcementPolicy::parse(POLICY, "policy.yaml").unwrap();
        let nginx = meta("web", "nginx:1.27", None);
        let mut no_hash = || None;
        assert!(p.permits("/docker-entrypoint.d/10-listen.sh", &nginx, &mut no_hash));
        assert!(!p.permits("/tmp/x.sh", &nginx, &mut no_hash));
        let other = meta("web", "nginx:2", None);
        assert!(!p.permits("/docker-entrypoint.d/10-listen.sh", &other, &mut no_hash));
        let mut calls = 0;
        let mut empty = || {
            calls += 1;
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string())
        };
        assert!(p.permits("/tmp/anything", &other, &mut empty));
        assert_eq!(calls, 1);
    }

    fn errors(text: &str) -> Vec<String> {
        EnforcementPolicy::parse(text, "p.yaml")
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn errors_name_file_line_and_column_every_one() {
        let text = "default: prevent\nscopes:\n  - mode: prevent\n    imagez: [x]\n";
        let e = EnforcementPolicy::parse(text, "p.yaml").unwrap_err();
        assert_eq!(
            e[0].render(),
            "p.yaml:4:5: error: unknown key `imagez` in scopes[0] (expected one of: match, mode)\n4 |     imagez: [x]\n  |     ^"
        );
        assert_eq!(
            errors("default: block\n"),
            ["p.yaml:1:10: default: expected one of detect, prevent, found the string \"block\""]
        );
        assert_eq!(
            errors("allow:\n  - reason: everything\n"),
            [
                "p.yaml:2:5: allow[0]: an allow entry needs at least one of path, sha256, images (an empty one would permit all drift)"
            ]
        );
        // Every problem, not the first, in file order.
        assert_eq!(
            errors(
                "allow:\n  - sha256: abc\n  - path: tmp/x\nscopes:\n  - match: {images: [\"[\"]}\n"
            ),
            [
                "p.yaml:2:13: allow[0].sha256: \"abc\" is not a sha256 (64 hex digits)",
                "p.yaml:3:11: allow[1].path: \"tmp/x\" must be absolute (a path inside the container)",
                "p.yaml:5:5: scopes[0]: a scope needs `mode` (detect or prevent)",
                "p.yaml:5:22: scopes[0].match.images[0] \"[\": unclosed `[` in glob pattern",
            ]
        );
        assert!(
            errors("default: [\n")[0].starts_with("p.yaml:"),
            "a syntax error is positioned"
        );
        assert_eq!(
            errors("on_agent_death: sometimes\nhold_new_containers: 1\n"),
            [
                "p.yaml:1:17: on_agent_death: expected one of allow, hold, found the string \"sometimes\"",
                "p.yaml:2:22: hold_new_containers: expected true or false, found 1",
            ]
        );
    }

    #[test]
    fn everywhere_and_defaults() {
        let p = EnforcementPolicy::parse("", "empty.yaml").unwrap();
        assert!(!p.any_prevent());
        assert!(p.hold_new_containers);
        let p = EnforcementPolicy::parse("# nothing\n", "empty.yaml").unwrap();
        assert!(p.hold_new_containers);
        let p = EnforcementPolicy::parse("on_agent_death: hold\nhold_new_containers: false\n", "p")
            .unwrap();
        assert!(p.hold_on_agent_death && !p.hold_new_containers);
        let p = EnforcementPolicy::everywhere(EnforcementMode::Prevent);
        assert_eq!(p.mode_for(&meta("a", "b", None)), EnforcementMode::Prevent);
    }
}
