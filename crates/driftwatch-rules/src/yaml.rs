//! YAML to a small positioned document tree (serde-saphyr with spans), so every later error
//! can point at the node it is about.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::source::{At, SourceFile};

/// A file bigger than this is refused before parsing: rule files are kilobytes.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("file is {size} bytes, more than the {max} bytes a rule file may have")]
    TooLarge { size: usize, max: usize },
}

/// A YAML node and where it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    line: u64,
    col: u64,
    offset: Option<usize>,
    len: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Where this node is in file `file_idx`.
    pub(crate) fn at(&self, file_idx: usize, file: &SourceFile) -> At {
        let offset = self
            .offset
            .unwrap_or_else(|| file.offset_of(self.line, self.col));
        At {
            file: file_idx,
            offset,
            len: self.len.unwrap_or(0),
        }
    }

    /// The node as a scalar string, as Falco reads list items and names: a number or bool
    /// keeps its spelling in the file (`1.10` stays `1.10`).
    pub(crate) fn scalar_text(&self, file: &SourceFile) -> Option<String> {
        if matches!(
            self.kind,
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_)
        ) && let (Some(off), Some(len)) = (self.offset, self.len)
            && let Some(raw) = file.text.get(off..off + len)
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

    pub(crate) fn type_name(&self) -> &'static str {
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

/// Parses one file. An empty file is an empty list.
pub(crate) fn parse(file: &SourceFile) -> Result<Node, (usize, YamlError)> {
    if file.text.len() > MAX_FILE_BYTES {
        return Err((
            0,
            YamlError::TooLarge {
                size: file.text.len(),
                max: MAX_FILE_BYTES,
            },
        ));
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2 booleans only: a list item or macro named `y` or `on` stays a string.
    options.strict_booleans = true;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = budget.max_depth.min(MAX_DEPTH);
    }
    match serde_saphyr::from_str_with_options::<Option<Node>>(&file.text, options) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Ok(Node {
            kind: NodeKind::Seq(Vec::new()),
            line: 1,
            col: 1,
            offset: Some(0),
            len: Some(0),
        }),
        Err(e) => {
            let offset = e.location().map_or(0, |l| {
                l.span()
                    .byte_offset()
                    .and_then(|o| usize::try_from(o).ok())
                    .filter(|o| *o <= file.text.len())
                    .unwrap_or_else(|| file.offset_of(l.line(), l.column()))
            });
            Err((
                offset,
                YamlError::Syntax(clean_message(&e.without_snippet().to_string())),
            ))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Node, (usize, YamlError)> {
        parse(&SourceFile::new("t.yaml", s))
    }

    #[test]
    fn spans_of_nested_nodes() {
        let src = "- list: x\n  items: [a, \"b c\", 80]\n";
        let n = parse_str(src).unwrap();
        let NodeKind::Seq(items) = &n.kind else {
            panic!()
        };
        let NodeKind::Map(kv) = &items[0].kind else {
            panic!()
        };
        let NodeKind::Seq(vals) = &kv[1].1.kind else {
            panic!()
        };
        assert_eq!(vals[2].kind, NodeKind::Int(80));
        let f = SourceFile::new("t.yaml", src);
        assert_eq!(f.locate(vals[1].at(0, &f).offset).0, 2);
    }

    #[test]
    fn syntax_errors_are_positioned() {
        let src = "- rule: x\n  a: [1, 2\n  b: c\n";
        let (off, e) = parse_str(src).unwrap_err();
        let f = SourceFile::new("t.yaml", src);
        assert_eq!(f.locate(off).0, 3);
        assert!(matches!(e, YamlError::Syntax(m) if !m.starts_with("error")));
    }

    #[test]
    fn duplicate_keys_and_depth() {
        assert!(parse_str("- rule: x\n  a: 1\n  a: 2\n").is_err());
        let deep = "[".repeat(10_000);
        assert!(parse_str(&deep).is_err());
        assert_eq!(parse_str("").unwrap().kind, NodeKind::Seq(vec![]));
        assert_eq!(
            parse_str("# only a comment\n").unwrap().kind,
            NodeKind::Seq(vec![])
        );
    }
}
