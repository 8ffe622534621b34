//! YAML to a small positioned tree (serde-saphyr with spans), so that every later error
//! about a rule file, a playbook or a policy can point at the node it is about; and the one
//! positioned [`Diagnostic`] those errors (and the JSON files' and the approved list's) are
//! reported and rendered with.
//!
//! Parsing is bounded: a size cap checked before parsing, a nesting cap, duplicate keys
//! refused, YAML 1.2 booleans only (`y` and `on` stay strings).

mod diagnostic;

use std::fmt;

pub use diagnostic::{Diagnostic, LoadError, Severity};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML node and where it is: 1-based line and column, and its byte span when known.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub line: u64,
    pub col: u64,
    pub offset: Option<usize>,
    pub len: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// An empty node of `kind` at the start of the file.
    pub fn at_start(kind: NodeKind) -> Node {
        Node {
            kind,
            line: 1,
            col: 1,
            offset: Some(0),
            len: Some(0),
        }
    }

    /// "a string", "a list", ...: for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The entry `key` of a mapping: its key node (where it is written) and its value.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            NodeKind::Map(kv) => kv
                .iter()
                .find(|(k, _)| matches!(&k.kind, NodeKind::Str(s) if s == key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, NodeKind::Map(_))
    }

    /// The entries of a mapping whose keys `allowed` lists, in file order. Each problem (the
    /// node is no mapping, a key is no string, a key is unknown) goes to `diags` as an error
    /// of `file` at its node; `what` names the mapping in the messages (`scopes[0]`).
    pub fn known_entries<'n>(
        &'n self,
        file: &str,
        what: &str,
        allowed: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<(&'n str, &'n Node)> {
        let NodeKind::Map(kv) = &self.kind else {
            let problem = format!("{what} must be a mapping, not {}", self.type_name());
            diags.push(Diagnostic::at_node(file, self, problem));
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (k, v) in kv {
            let problem = match &k.kind {
                NodeKind::Str(key) if allowed.contains(&key.as_str()) => {
                    entries.push((key.as_str(), v));
                    continue;
                }
                NodeKind::Str(key) => format!(
                    "unknown key `{key}` in {what} (expected one of: {})",
                    allowed.join(", ")
                ),
                _ => format!("a key of {what} must be a string, not {}", k.type_name()),
            };
            diags.push(Diagnostic::at_node(file, k, problem));
        }
        entries
    }

    /// How the value reads in a message: `false`, `the string "true"`, `null`, `a list`.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "null".into(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Int(i) => i.to_string(),
            NodeKind::Float(f) => f.to_string(),
            NodeKind::Str(s) => format!("the string {s:?}"),
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a mapping".into(),
        }
    }

    /// Moves the node and its children down by `lines` (a document parsed on its own starts
    /// at line 1 but sits further down its file). Byte offsets stay the document's.
    pub fn shift_lines(&mut self, lines: u64) {
        self.line += lines;
        match &mut self.kind {
            NodeKind::Seq(v) => v.iter_mut().for_each(|n| n.shift_lines(lines)),
            NodeKind::Map(kv) => kv.iter_mut().for_each(|(k, v)| {
                k.shift_lines(lines);
                v.shift_lines(lines);
            }),
            _ => {}
        }
    }

    /// A scalar as text. With the file's `text`, a number or bool keeps its spelling in the
    /// file (`1.10` stays `1.10`); without it, its canonical form.
    pub fn scalar(&self, text: Option<&str>) -> Option<String> {
        if matches!(
            self.kind,
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_)
        ) && let (Some(text), Some(off), Some(len)) = (text, self.offset, self.len)
            && let Some(raw) = text.get(off..off + len)
            && !raw.is_empty()
        {
            return Some(raw.to_string());
        }
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }
}

/// Why a text is not a YAML tree: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; 1:1 when the parser gave no position (or the file is too large).
    pub line: u64,
    pub col: u64,
    /// Byte offset of the error, when the parser gave one.
    pub offset: Option<usize>,
    pub problem: ParseProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseProblem {
    /// The parser's message, without its own position prefix.
    Syntax(String),
    TooLarge {
        size: usize,
        max: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            ParseProblem::Syntax(m) => write!(f, "invalid YAML: {m}"),
            ParseProblem::TooLarge { size, max } => {
                write!(f, "file is {size} bytes, more than the {max} bytes allowed")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Limits and dialect of one parse.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    pub max_bytes: usize,
    pub max_depth: usize,
    /// YAML 1.2 booleans only (`y`, `on` stay strings), as Falco reads rules. `false` reads
    /// YAML 1.1's `yes`/`on` as booleans, as Kubernetes does.
    pub strict_booleans: bool,
    /// Lift the parser's node, event and scalar-bytes budgets (a 10 MB `kubectl get -o
    /// yaml` List): `max_bytes` then bounds the work.
    pub large_documents: bool,
}

impl ParseLimits {
    /// Configuration-sized files: 8 MiB, 64 levels, YAML 1.2 booleans.
    pub const CONFIG: ParseLimits = ParseLimits {
        max_bytes: 8 * 1024 * 1024,
        max_depth: 64,
        strict_booleans: true,
        large_documents: false,
    };
}

/// Parses a text. An empty file (or one with only comments) is `Ok(None)`.
pub fn parse(text: &str, limits: ParseLimits) -> Result<Option<Node>, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError {
            line: 1,
            col: 1,
            offset: Some(0),
            problem: ParseProblem::TooLarge {
                size: text.len(),
                max: limits.max_bytes,
            },
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.strict_booleans = limits.strict_booleans;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = budget.max_depth.min(limits.max_depth);
        if limits.large_documents {
            budget.max_nodes = usize::MAX;
            budget.max_events = usize::MAX;
            budget.max_total_scalar_bytes = usize::MAX;
        }
    }
    serde_saphyr::from_str_with_options::<Option<Node>>(text, options).map_err(|e| {
        let (line, col, offset) = e.location().map_or((1, 1, None), |l| {
            let offset = l
                .span()
                .byte_offset()
                .and_then(|o| usize::try_from(o).ok())
                .filter(|o| *o <= text.len());
            (l.line().max(1), l.column().max(1), offset)
        });
        ParseError {
            line,
            col,
            offset,
            problem: ParseProblem::Syntax(clean_message(&e.without_snippet().to_string())),
        }
    })
}

/// serde-saphyr prefixes its messages with `error: line N column M: `; we print our own.
fn clean_message(msg: &str) -> String {
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let msg = match msg.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(msg, |(_, m)| m),
        None => msg,
    };
    let msg = msg.lines().next().unwrap_or(msg).trim();
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains("column") => &msg[..i],
        _ => msg,
    };
    msg.to_string()
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(i64::try_from(v).map_or(NodeKind::Str(v.to_string()), NodeKind::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_char<E>(self, v: char) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<NodeKind, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            v.push(n);
        }
        Ok(NodeKind::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<NodeKind, A::Error> {
        let mut v = Vec::new();
        while let Some(kv) = a.next_entry::<Node, Node>()? {
            v.push(kv);
        }
        Ok(NodeKind::Map(v))
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<NodeKind>::deserialize(d)?;
        let span = s.referenced.span();
        Ok(Node {
            kind: s.value,
            line: s.referenced.line(),
            col: s.referenced.column(),
            offset: span.byte_offset().and_then(|o| usize::try_from(o).ok()),
            len: span.byte_len().and_then(|o| usize::try_from(o).ok()),
        })
    }
}

/// Levenshtein distance in characters, for the "did you mean" of the rule and config loaders.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_characters_not_bytes() {
        assert_eq!(edit_distance("retries", "retries"), 0);
        assert_eq!(edit_distance("retry", "retries"), 3);
        assert_eq!(edit_distance("proc.nme", "proc.name"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    const LIMITS: ParseLimits = ParseLimits {
        max_bytes: 1 << 20,
        ..ParseLimits::CONFIG
    };

    #[test]
    fn known_entries_and_their_problems() {
        let n = parse("a: 1\nb: 2\n3: x\nzz: 4\n", LIMITS).unwrap().unwrap();
        let mut diags = Vec::new();
        let entries = n.known_entries("f.yaml", "the file", &["a", "b"], &mut diags);
        let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a", "b"]);
        let problems: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "f.yaml:3:1: a key of the file must be a string, not an integer",
                "f.yaml:4:1: unknown key `zz` in the file (expected one of: a, b)",
            ]
        );
        let list = parse("[1]\n", LIMITS).unwrap().unwrap();
        let mut diags = Vec::new();
        list.known_entries("f.yaml", "x", &[], &mut diags);
        assert_eq!(diags[0].message, "x must be a mapping, not a list");
    }

    #[test]
    fn positions_and_raw_scalars() {
        let src = "- list: x\n  items: [a, \"b c\", 1.10]\n";
        let n = parse(src, LIMITS).unwrap().unwrap();
        let NodeKind::Seq(items) = &n.kind else {
            panic!("{n:?}")
        };
        let NodeKind::Map(kv) = &items[0].kind else {
            panic!()
        };
        let NodeKind::Seq(vals) = &kv[1].1.kind else {
            panic!()
        };
        assert_eq!((vals[1].line, vals[1].col), (2, 14));
        assert_eq!(vals[2].scalar(Some(src)).as_deref(), Some("1.10"));
        assert_eq!(vals[2].scalar(None).as_deref(), Some("1.1"));
    }

    #[test]
    fn errors_are_positioned_and_bounded() {
        let e = parse("- rule: x\n  a: [1, 2\n  b: c\n", LIMITS).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("invalid YAML: "), "{e}");
        assert!(!e.to_string().contains("error: line"), "{e}");
        assert!(parse("a: 1\na: 2\n", LIMITS).is_err());
        assert!(parse(&"[".repeat(10_000), LIMITS).is_err());
        let e = parse(
            "a: 1\n",
            ParseLimits {
                max_bytes: 2,
                ..LIMITS
            },
        )
        .unwrap_err();
        assert!(
            matches!(e.problem, ParseProblem::TooLarge { size: 5, max: 2 }),
            "{e:?}"
        );
        assert_eq!(parse("", LIMITS).unwrap(), None);
        let k8s = ParseLimits {
            strict_booleans: false,
            ..LIMITS
        };
        assert_eq!(
            parse("on: yes\n", k8s).unwrap().unwrap().get("on"),
            None,
            "YAML 1.1: the key `on` is a boolean"
        );
        assert_eq!(parse("# only a comment\n", LIMITS).unwrap(), None);
        assert_eq!(
            parse("on: y\n", LIMITS).unwrap().unwrap().kind,
            NodeKind::Map(vec![(
                Node {
                    kind: NodeKind::Str("on".into()),
                    line: 1,
                    col: 1,
                    offset: Some(0),
                    len: Some(2)
                },
                Node {
                    kind: NodeKind::Str("y".into()),
                    line: 1,
                    col: 5,
                    offset: Some(4),
                    len: Some(1)
                },
            )])
        );
    }
}
