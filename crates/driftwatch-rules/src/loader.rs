//! Rule files read into definitions: the Falco schema checked key by key (unknown keys are
//! errors), then files merged in order: later definitions replace earlier ones, and
//! `override` / `append: true` extend them.

use std::collections::HashMap;

use driftwatch_model::Priority;

use crate::diag::{Diagnostics, Warning};
use crate::schema_error::{ENGINE_VERSION, SchemaError};
use crate::source::{At, SourceFile, Text};
use crate::yaml::{Node, NodeAt, NodeKind};

/// A string from the YAML and where it was.
#[derive(Clone, Debug)]
pub(crate) struct Str {
    pub(crate) value: String,
    pub(crate) at: At,
}

#[derive(Clone, Debug)]
pub(crate) struct ListDef {
    pub(crate) items: Vec<Str>,
}

#[derive(Clone, Debug)]
pub(crate) struct MacroDef {
    pub(crate) name: Str,
    pub(crate) condition: Text,
}

/// One or several, as exception `fields` and `comps` may be written.
#[derive(Clone, Debug)]
pub(crate) enum Shape<T> {
    One(T),
    Many(Vec<T>, At),
}

/// One entry of an exception's value tuple: a scalar or a list.
#[derive(Clone, Debug)]
pub(crate) enum ExcEntry {
    One(Str),
    Many(Vec<Str>, At),
}

#[derive(Clone, Debug)]
pub(crate) struct ExcRow {
    pub(crate) entries: Vec<ExcEntry>,
    pub(crate) at: At,
    /// Written as a YAML list (a tuple), not a bare scalar.
    pub(crate) is_tuple: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ExceptionDef {
    pub(crate) name: Str,
    pub(crate) fields: Option<Shape<Str>>,
    pub(crate) comps: Option<Shape<Str>>,
    pub(crate) values: Vec<ExcRow>,
}

#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub(crate) name: Str,
    pub(crate) desc: Text,
    pub(crate) condition: Text,
    pub(crate) output: Text,
    pub(crate) priority: Priority,
    pub(crate) tags: Vec<String>,
    pub(crate) enabled: bool,
    pub(crate) source: Option<Str>,
    pub(crate) exceptions: Vec<ExceptionDef>,
    pub(crate) warn_evttypes: bool,
    pub(crate) skip_if_unknown_filter: bool,
    /// Index of the file that first defined the rule.
    pub(crate) file: usize,
}

/// Everything the files define, merged, in definition order.
#[derive(Default)]
pub(crate) struct Definitions {
    pub(crate) lists: Vec<ListDef>,
    pub(crate) macros: Vec<MacroDef>,
    pub(crate) rules: Vec<RuleDef>,
    list_idx: HashMap<String, usize>,
    macro_idx: HashMap<String, usize>,
    rule_idx: HashMap<String, usize>,
}

impl Definitions {
    pub(crate) fn list(&self, name: &str) -> Option<&ListDef> {
        self.list_idx.get(name).map(|&i| &self.lists[i])
    }
    pub(crate) fn macro_index(&self, name: &str) -> Option<usize> {
        self.macro_idx.get(name).copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Append,
    Replace,
}

const LIST_KEYS: &str = "list, items, append, override";
const MACRO_KEYS: &str = "macro, condition, append, override";
const RULE_KEYS: &str = "rule, desc, condition, output, priority, tags, enabled, source, exceptions, append, override, warn_evttypes, skip-if-unknown-filter, capture, capture_duration";
const EXCEPTION_KEYS: &str = "name, fields, comps, values";

struct Reader<'a> {
    file_idx: usize,
    file: &'a SourceFile,
    diags: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn at(&self, n: &Node) -> At {
        n.at(self.file_idx, self.file)
    }

    fn err(&mut self, n: &Node, e: SchemaError) {
        let off = self.at(n).offset;
        self.diags.add(self.file, off, e);
    }

    fn warn(&mut self, n: &Node, w: Warning) {
        let off = self.at(n).offset;
        self.diags.add(self.file, off, w);
    }

    fn wrong(&mut self, key: &str, n: &Node, expected: &'static str) {
        self.err(
            n,
            SchemaError::WrongType {
                key: key.to_string(),
                expected,
                found: n.type_name(),
            },
        );
    }

    fn string(&mut self, key: &str, n: &Node) -> Option<Str> {
        match &n.kind {
            NodeKind::Str(_) | NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_)
                if key != "condition" && key != "output" =>
            {
                Some(Str {
                    value: n.scalar_text(self.file).unwrap_or_default(),
                    at: self.at(n),
                })
            }
            NodeKind::Str(s) => Some(Str {
                value: s.clone(),
                at: self.at(n),
            }),
            _ => {
                self.wrong(key, n, "a string");
                None
            }
        }
    }

    fn text(&mut self, key: &str, n: &Node) -> Option<Text> {
        self.string(key, n).map(|s| Text::new(&s.value, s.at))
    }

    fn bool(&mut self, key: &str, n: &Node) -> Option<bool> {
        match &n.kind {
            NodeKind::Bool(b) => Some(*b),
            NodeKind::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            NodeKind::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.wrong(key, n, "true or false");
                None
            }
        }
    }

    fn scalar_list(&mut self, key: &str, n: &Node) -> Option<Vec<Str>> {
        match &n.kind {
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    match it.scalar_text(self.file) {
                        Some(v) => out.push(Str {
                            value: v,
                            at: self.at(it),
                        }),
                        None => self.wrong(key, it, "a list of strings"),
                    }
                }
                Some(out)
            }
            NodeKind::Null => Some(Vec::new()),
            _ => {
                self.wrong(key, n, "a list");
                None
            }
        }
    }

    fn shape(&mut self, key: &str, n: &Node) -> Option<Shape<Str>> {
        match &n.kind {
            NodeKind::Seq(_) => self.scalar_list(key, n).map(|v| Shape::Many(v, self.at(n))),
            _ => match n.scalar_text(self.file) {
                Some(v) => Some(Shape::One(Str {
                    value: v,
                    at: self.at(n),
                })),
                None => {
                    self.wrong(key, n, "a string or a list of strings");
                    None
                }
            },
        }
    }

    fn entry(&mut self, n: &Node) -> Option<ExcEntry> {
        match &n.kind {
            NodeKind::Seq(_) => self
                .scalar_list("values", n)
                .map(|v| ExcEntry::Many(v, self.at(n))),
            _ => match n.scalar_text(self.file) {
                Some(v) => Some(ExcEntry::One(Str {
                    value: v,
                    at: self.at(n),
                })),
                None => {
                    self.wrong("values", n, "strings or lists of strings");
                    None
                }
            },
        }
    }

    fn exceptions(&mut self, n: &Node) -> Option<Vec<ExceptionDef>> {
        let NodeKind::Seq(items) = &n.kind else {
            self.wrong("exceptions", n, "a list");
            return None;
        };
        let mut out: Vec<ExceptionDef> = Vec::new();
        for it in items {
            let NodeKind::Map(kv) = &it.kind else {
                self.wrong("exceptions", it, "a list of mappings");
                continue;
            };
            let mut name = None;
            let mut fields = None;
            let mut comps = None;
            let mut values = Vec::new();
            for (k, v) in kv {
                match k.scalar_text(self.file).as_deref() {
                    Some("name") => name = self.string("name", v),
                    Some("fields") => fields = self.shape("fields", v),
                    Some("comps") => comps = self.shape("comps", v),
                    Some("values") => match &v.kind {
                        NodeKind::Seq(rows) => {
                            for r in rows {
                                let at = self.at(r);
                                match &r.kind {
                                    NodeKind::Seq(es) => {
                                        let entries =
                                            es.iter().filter_map(|e| self.entry(e)).collect();
                                        values.push(ExcRow {
                                            entries,
                                            at,
                                            is_tuple: true,
                                        });
                                    }
                                    _ => {
                                        if let Some(e) = self.entry(r) {
                                            values.push(ExcRow {
                                                entries: vec![e],
                                                at,
                                                is_tuple: false,
                                            });
                                        }
                                    }
                                }
                            }
                        }
                        NodeKind::Null => {}
                        _ => self.wrong("values", v, "a list"),
                    },
                    other => self.err(
                        k,
                        SchemaError::UnknownKey {
                            key: other.unwrap_or("?").to_string(),
                            kind: "exception",
                            allowed: EXCEPTION_KEYS,
                        },
                    ),
                }
            }
            let Some(name) = name else {
                self.err(it, SchemaError::ExceptionWithoutName);
                continue;
            };
            if out.iter().any(|e| e.name.value == name.value) {
                self.err(it, SchemaError::DuplicateException(name.value.clone()));
                continue;
            }
            out.push(ExceptionDef {
                name,
                fields,
                comps,
                values,
            });
        }
        Some(out)
    }
}

/// What one item of a file says.
enum Item {
    List {
        name: Str,
        items: Option<Vec<Str>>,
        change: Change,
    },
    Macro {
        name: Str,
        condition: Option<Text>,
        change: Change,
    },
    Rule(Box<RuleItem>),
}

#[derive(Default)]
enum Change {
    #[default]
    Define,
    Append,
    Override(Vec<(String, Mode)>),
}

#[derive(Default)]
struct RuleItem {
    name: Option<Str>,
    desc: Option<Text>,
    condition: Option<Text>,
    output: Option<Text>,
    priority: Option<Priority>,
    tags: Option<Vec<String>>,
    enabled: Option<bool>,
    source: Option<Str>,
    exceptions: Option<Vec<ExceptionDef>>,
    warn_evttypes: Option<bool>,
    skip_if_unknown_filter: Option<bool>,
    change: Change,
    /// Keys given, other than `rule`, `append` and `override`.
    keys: Vec<String>,
}

fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let parts: Vec<&str> = s.trim().split('.').collect();
    let num = |p: &str| p.parse::<u64>().ok();
    match parts.as_slice() {
        [minor] => Some((0, num(minor)?, 0)),
        [a, b] => Some((num(a)?, num(b)?, 0)),
        [a, b, c] => Some((num(a)?, num(b)?, num(c)?)),
        _ => None,
    }
}

/// The valid override modes, and every key the `override` mapping names (valid or not).
type OverrideSpec = (Vec<(String, Mode)>, Vec<String>);

/// The override modes, and every key the `override` mapping names (valid or not).
fn read_override(r: &mut Reader<'_>, n: &Node, kind: &'static str) -> Option<OverrideSpec> {
    let NodeKind::Map(kv) = &n.kind else {
        r.wrong("override", n, "a mapping of key: append|replace");
        return None;
    };
    let mut out = Vec::new();
    let mut named = Vec::new();
    for (k, v) in kv {
        let key = k.scalar_text(r.file).unwrap_or_default();
        named.push(key.clone());
        let mode_s = v.scalar_text(r.file).unwrap_or_default();
        let (appendable, replaceable, allowed): (&[&str], &[&str], &'static str) = match kind {
            "list" => (&["items"], &["items"], "items: append|replace"),
            "macro" => (&["condition"], &["condition"], "condition: append|replace"),
            _ => (
                &["condition", "output", "desc", "tags", "exceptions"],
                &[
                    "condition",
                    "output",
                    "desc",
                    "priority",
                    "tags",
                    "exceptions",
                    "enabled",
                    "warn_evttypes",
                    "skip-if-unknown-filter",
                ],
                "append: condition, output, desc, tags, exceptions; replace: those and priority, enabled, warn_evttypes, skip-if-unknown-filter",
            ),
        };
        let mode = match mode_s.as_str() {
            "append" if appendable.contains(&key.as_str()) => Mode::Append,
            "replace" if replaceable.contains(&key.as_str()) => Mode::Replace,
            _ => {
                r.err(
                    v,
                    SchemaError::BadOverride {
                        kind,
                        key,
                        mode: mode_s,
                        allowed,
                    },
                );
                continue;
            }
        };
        out.push((key, mode));
    }
    Some((out, named))
}

fn read_item(r: &mut Reader<'_>, node: &Node) -> Option<Item> {
    let NodeKind::Map(kv) = &node.kind else {
        r.err(
            node,
            SchemaError::ItemNotAMapping {
                found: node.type_name(),
            },
        );
        return None;
    };
    let kind = kv.iter().find_map(|(k, _)| {
        let k = k.scalar_text(r.file)?;
        [
            "rule",
            "macro",
            "list",
            "required_engine_version",
            "required_plugin_versions",
        ]
        .into_iter()
        .find(|w| *w == k)
    });
    let Some(kind) = kind else {
        r.err(node, SchemaError::UnknownItem);
        return None;
    };
    match kind {
        "required_engine_version" => {
            for (k, v) in kv {
                let key = k.scalar_text(r.file).unwrap_or_default();
                if key != kind {
                    r.err(
                        k,
                        SchemaError::UnknownKey {
                            key,
                            kind: "required_engine_version",
                            allowed: "required_engine_version",
                        },
                    );
                    continue;
                }
                let s = v.scalar_text(r.file).unwrap_or_default();
                match parse_version(&s) {
                    Some(req) if req > ENGINE_VERSION => {
                        r.err(v, SchemaError::EngineTooOld { required: s })
                    }
                    Some(_) => {}
                    None => r.err(v, SchemaError::BadEngineVersion(s)),
                }
            }
            None
        }
        "required_plugin_versions" => {
            r.warn(
                node,
                Warning::IgnoredKey {
                    key: kind.to_string(),
                },
            );
            None
        }
        "list" | "macro" => read_list_or_macro(r, node, kv, kind),
        _ => read_rule(r, node, kv).map(|ri| Item::Rule(Box::new(ri))),
    }
}

fn read_change(
    r: &mut Reader<'_>,
    append: Option<(bool, &Node)>,
    over: Option<&Node>,
    kind: &'static str,
    given: &[(String, &Node)],
) -> Change {
    match (append, over) {
        (Some((true, n)), Some(_)) => {
            r.err(n, SchemaError::AppendAndOverride);
            Change::Define
        }
        (_, Some(o)) => {
            let Some((modes, named)) = read_override(r, o, kind) else {
                return Change::Define;
            };
            for (key, node) in given {
                if !named.iter().any(|k| k == key) {
                    r.err(node, SchemaError::NotInOverride { key: key.clone() });
                }
            }
            for (key, _) in &modes {
                if !given.iter().any(|(k, _)| k == key) {
                    r.err(o, SchemaError::OverrideWithoutKey { key: key.clone() });
                }
            }
            Change::Override(modes)
        }
        (Some((true, _)), None) => Change::Append,
        _ => Change::Define,
    }
}

fn read_list_or_macro(
    r: &mut Reader<'_>,
    node: &Node,
    kv: &[(Node, Node)],
    kind: &'static str,
) -> Option<Item> {
    let mut name = None;
    let mut items = None;
    let mut condition = None;
    let mut append = None;
    let mut over = None;
    let mut given = Vec::new();
    for (k, v) in kv {
        let key = k.scalar_text(r.file).unwrap_or_default();
        match (kind, key.as_str()) {
            (_, "list" | "macro") if key == kind => name = r.string(kind, v),
            ("list", "items") => {
                items = r.scalar_list("items", v);
                given.push((key, k));
            }
            ("macro", "condition") => {
                condition = r.text("condition", v);
                given.push((key, k));
            }
            (_, "append") => append = r.bool("append", v).map(|b| (b, k)),
            (_, "override") => over = Some(v),
            _ => r.err(
                k,
                SchemaError::UnknownKey {
                    key,
                    kind,
                    allowed: if kind == "list" {
                        LIST_KEYS
                    } else {
                        MACRO_KEYS
                    },
                },
            ),
        }
    }
    let change = read_change(r, append, over, kind, &given);
    let name = name?;
    let missing = if kind == "list" {
        items.is_none()
    } else {
        condition.is_none()
    };
    if missing && given.is_empty() {
        r.err(
            node,
            SchemaError::MissingKey {
                kind,
                name: name.value.clone(),
                key: if kind == "list" { "items" } else { "condition" },
            },
        );
        return None;
    }
    Some(if kind == "list" {
        Item::List {
            name,
            items,
            change,
        }
    } else {
        Item::Macro {
            name,
            condition,
            change,
        }
    })
}

fn read_rule(r: &mut Reader<'_>, node: &Node, kv: &[(Node, Node)]) -> Option<RuleItem> {
    let mut it = RuleItem::default();
    let mut append = None;
    let mut over = None;
    let mut given = Vec::new();
    for (k, v) in kv {
        let key = k.scalar_text(r.file).unwrap_or_default();
        match key.as_str() {
            "rule" => {
                it.name = r.string("rule", v);
                continue;
            }
            "append" => {
                append = r.bool("append", v).map(|b| (b, k));
                continue;
            }
            "override" => {
                over = Some(v);
                continue;
            }
            "desc" => it.desc = r.text("desc", v),
            "condition" => it.condition = r.text("condition", v),
            "output" => it.output = r.text("output", v),
            "priority" => {
                if let Some(s) = r.string("priority", v) {
                    match s.value.parse::<Priority>() {
                        Ok(p) => it.priority = Some(p),
                        Err(e) => r.err(v, SchemaError::BadPriority(e.to_string())),
                    }
                }
            }
            "tags" => {
                it.tags = r
                    .scalar_list("tags", v)
                    .map(|v| v.into_iter().map(|s| s.value).collect())
            }
            "enabled" => it.enabled = r.bool("enabled", v),
            "source" => it.source = r.string("source", v),
            "exceptions" => it.exceptions = r.exceptions(v),
            "warn_evttypes" => it.warn_evttypes = r.bool("warn_evttypes", v),
            "skip-if-unknown-filter" => {
                it.skip_if_unknown_filter = r.bool("skip-if-unknown-filter", v)
            }
            "capture" | "capture_duration" => r.warn(k, Warning::IgnoredKey { key: key.clone() }),
            _ => {
                r.err(
                    k,
                    SchemaError::UnknownKey {
                        key,
                        kind: "rule",
                        allowed: RULE_KEYS,
                    },
                );
                continue;
            }
        }
        it.keys.push(key.clone());
        given.push((key, k));
    }
    it.change = read_change(r, append, over, "rule", &given);
    let name = it.name.as_ref()?.value.clone();
    if matches!(it.change, Change::Define) && !(it.keys.len() == 1 && it.enabled.is_some()) {
        for (key, present) in [
            ("condition", it.condition.is_some()),
            ("output", it.output.is_some()),
            ("desc", it.desc.is_some()),
            ("priority", it.priority.is_some()),
        ] {
            if !present && !it.keys.iter().any(|k| k == key) {
                r.err(
                    node,
                    SchemaError::MissingKey {
                        kind: "rule",
                        name: name.clone(),
                        key,
                    },
                );
            }
        }
    }
    Some(it)
}

/// Reads every file and merges the definitions in order.
pub(crate) fn load(
    files: &[SourceFile],
    roots: &[Option<Node>],
    diags: &mut Diagnostics,
) -> Definitions {
    let mut defs = Definitions::default();
    for (file_idx, (file, root)) in files.iter().zip(roots).enumerate() {
        let Some(root) = root else { continue };
        let mut r = Reader {
            file_idx,
            file,
            diags,
        };
        let items = match &root.kind {
            NodeKind::Seq(items) => items.as_slice(),
            NodeKind::Null => &[],
            _ => {
                r.err(
                    root,
                    SchemaError::NotAList {
                        found: root.type_name(),
                    },
                );
                continue;
            }
        };
        for node in items {
            if let Some(item) = read_item(&mut r, node) {
                merge(&mut defs, &mut r, node, item);
            }
        }
    }
    defs
}

fn merge(defs: &mut Definitions, r: &mut Reader<'_>, node: &Node, item: Item) {
    match item {
        Item::List {
            name,
            items,
            change,
        } => {
            let existing = defs.list_idx.get(&name.value).copied();
            match (change, existing) {
                (Change::Define, Some(i)) => {
                    defs.lists[i] = ListDef {
                        items: items.unwrap_or_default(),
                    }
                }
                (Change::Define, None) => {
                    defs.list_idx.insert(name.value.clone(), defs.lists.len());
                    defs.lists.push(ListDef {
                        items: items.unwrap_or_default(),
                    });
                }
                (Change::Append, Some(i)) => defs.lists[i].items.extend(items.unwrap_or_default()),
                (Change::Override(modes), Some(i)) => {
                    if let Some(items) = items {
                        match modes.first().map(|m| m.1) {
                            Some(Mode::Append) => defs.lists[i].items.extend(items),
                            _ => defs.lists[i].items = items,
                        }
                    }
                }
                (_, None) => r.err(
                    node,
                    SchemaError::UndefinedBase {
                        kind: "list",
                        name: name.value,
                    },
                ),
            }
        }
        Item::Macro {
            name,
            condition,
            change,
        } => {
            let existing = defs.macro_idx.get(&name.value).copied();
            match (change, existing, condition) {
                (Change::Define, Some(i), Some(condition)) => {
                    defs.macros[i] = MacroDef { name, condition }
                }
                (Change::Define, None, Some(condition)) => {
                    defs.macro_idx.insert(name.value.clone(), defs.macros.len());
                    defs.macros.push(MacroDef { name, condition });
                }
                (Change::Append, Some(i), Some(c)) => {
                    defs.macros[i].condition.append(&c.text, c.first_at())
                }
                (Change::Override(modes), Some(i), Some(c)) => match modes.first().map(|m| m.1) {
                    Some(Mode::Append) => defs.macros[i].condition.append(&c.text, c.first_at()),
                    _ => defs.macros[i].condition = c,
                },
                (Change::Append | Change::Override(_), None, _) => {
                    r.err(
                        node,
                        SchemaError::UndefinedBase {
                            kind: "macro",
                            name: name.value,
                        },
                    );
                }
                _ => {}
            }
        }
        Item::Rule(it) => merge_rule(defs, r, node, *it),
    }
}

fn merge_rule(defs: &mut Definitions, r: &mut Reader<'_>, node: &Node, it: RuleItem) {
    let Some(name) = it.name else { return };
    let existing = defs.rule_idx.get(&name.value).copied();
    let enable_only = it.keys.len() == 1 && it.enabled.is_some();
    match (it.change, existing) {
        (Change::Define, Some(i)) if enable_only => {
            defs.rules[i].enabled = it.enabled.unwrap_or(true)
        }
        (Change::Define, None) if enable_only => {
            r.err(
                node,
                SchemaError::UndefinedBase {
                    kind: "rule",
                    name: name.value,
                },
            );
        }
        (Change::Define, existing) => {
            // A priority that was given but invalid has been reported; keep compiling the rule
            // with a placeholder so its condition's errors are reported too.
            let priority = it.priority.or_else(|| {
                it.keys
                    .iter()
                    .any(|k| k == "priority")
                    .then_some(Priority::Debug)
            });
            let (Some(condition), Some(output), Some(desc), Some(priority)) =
                (it.condition, it.output, it.desc, priority)
            else {
                return; // missing keys were reported when reading
            };
            let def = RuleDef {
                name,
                desc,
                condition,
                output,
                priority,
                tags: it.tags.unwrap_or_default(),
                enabled: it.enabled.unwrap_or(true),
                source: it.source,
                exceptions: it.exceptions.unwrap_or_default(),
                warn_evttypes: it.warn_evttypes.unwrap_or(true),
                skip_if_unknown_filter: it.skip_if_unknown_filter.unwrap_or(false),
                file: r.file_idx,
            };
            match existing {
                Some(i) => defs.rules[i] = def,
                None => {
                    defs.rule_idx
                        .insert(def.name.value.clone(), defs.rules.len());
                    defs.rules.push(def);
                }
            }
        }
        (Change::Append, Some(i)) => {
            let rule = &mut defs.rules[i];
            if let Some(c) = it.condition {
                rule.condition.append(&c.text, c.first_at());
            }
            if let Some(ex) = it.exceptions {
                append_exceptions(&mut rule.exceptions, ex);
            }
            for key in &it.keys {
                if key != "condition" && key != "exceptions" {
                    r.warn(node, Warning::IgnoredKey { key: format!("{key} (with append: true, only condition and exceptions are appended)") });
                }
            }
        }
        (Change::Override(modes), Some(i)) => {
            let rule = &mut defs.rules[i];
            for (key, mode) in modes {
                let append = mode == Mode::Append;
                match key.as_str() {
                    "condition" => apply_text(&mut rule.condition, it.condition.clone(), append),
                    "output" => apply_text(&mut rule.output, it.output.clone(), append),
                    "desc" => apply_text(&mut rule.desc, it.desc.clone(), append),
                    "priority" => rule.priority = it.priority.unwrap_or(rule.priority),
                    "enabled" => rule.enabled = it.enabled.unwrap_or(rule.enabled),
                    "warn_evttypes" => {
                        rule.warn_evttypes = it.warn_evttypes.unwrap_or(rule.warn_evttypes)
                    }
                    "skip-if-unknown-filter" => {
                        rule.skip_if_unknown_filter = it
                            .skip_if_unknown_filter
                            .unwrap_or(rule.skip_if_unknown_filter)
                    }
                    "tags" => {
                        let tags = it.tags.clone().unwrap_or_default();
                        if append {
                            rule.tags.extend(tags);
                        } else {
                            rule.tags = tags;
                        }
                    }
                    "exceptions" => {
                        let ex = it.exceptions.clone().unwrap_or_default();
                        if append {
                            append_exceptions(&mut rule.exceptions, ex);
                        } else {
                            rule.exceptions = ex;
                        }
                    }
                    _ => {}
                }
            }
        }
        (_, None) => r.err(
            node,
            SchemaError::UndefinedBase {
                kind: "rule",
                name: name.value,
            },
        ),
    }
}

fn apply_text(target: &mut Text, new: Option<Text>, append: bool) {
    let Some(new) = new else { return };
    if append {
        target.append(&new.text, new.first_at());
    } else {
        *target = new;
    }
}

fn append_exceptions(existing: &mut Vec<ExceptionDef>, new: Vec<ExceptionDef>) {
    for e in new {
        match existing.iter_mut().find(|x| x.name.value == e.name.value) {
            Some(x) => {
                if x.fields.is_none() {
                    x.fields = e.fields;
                }
                if x.comps.is_none() {
                    x.comps = e.comps;
                }
                x.values.extend(e.values);
            }
            None => existing.push(e),
        }
    }
}
