//! Manifest text to positioned YAML documents: the stream is split at `---` markers (so every
//! document keeps its number even when another one is invalid or empty) and each document is
//! parsed by serde-saphyr into a small tree whose nodes know their line and column.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deeper than any Kubernetes object; deeper input is refused, never recursed into.
pub const MAX_DEPTH: usize = 64;

/// The stack documents are parsed on: serde's recursion through [`MAX_DEPTH`] block mappings
/// takes about 8 MiB in a debug build, more than a test thread's 2 MiB.
pub const PARSE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// A YAML node and where it starts (1-based line and column in the file).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub line: u64,
    pub col: u64,
    /// Byte offset and length in the document's text, when the parser knows them.
    pub span: Option<(usize, usize)>,
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

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as Kubernetes reads it into a string field: `name: n` or `name: 0755` keep
    /// their spelling (YAML 1.1 would make them a boolean and a number). `doc` is the text of
    /// the document the node was parsed from.
    pub fn text(&self, doc: &str) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) => {
                let raw = self.span.and_then(|(o, l)| doc.get(o..o + l));
                Some(raw.filter(|r| !r.is_empty()).map_or_else(
                    || match &self.kind {
                        NodeKind::Bool(b) => b.to_string(),
                        NodeKind::Int(i) => i.to_string(),
                        NodeKind::Float(f) => f.to_string(),
                        _ => String::new(),
                    },
                    str::to_string,
                ))
            }
            NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
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

    /// How the value reads in a message: `false`, `"true"` (a string), `null`.
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

    /// Moves the node (and its children) down by `lines`: a document parsed on its own starts
    /// at line 1, but sits at some line of the file.
    fn shift(&mut self, lines: u64) {
        self.line += lines;
        match &mut self.kind {
            NodeKind::Seq(v) => v.iter_mut().for_each(|n| n.shift(lines)),
            NodeKind::Map(kv) => kv.iter_mut().for_each(|(k, v)| {
                k.shift(lines);
                v.shift(lines);
            }),
            _ => {}
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
        let offset = span.byte_offset().and_then(|o| usize::try_from(o).ok());
        let len = span.byte_len().and_then(|o| usize::try_from(o).ok());
        Ok(Node {
            kind: s.value,
            line: s.referenced.line(),
            col: s.referenced.column(),
            span: offset.zip(len),
        })
    }
}

/// One document of a YAML stream, as text, before parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDocument {
    /// 1-based, counting empty documents, as `kubectl` and a reader count them.
    pub index: usize,
    /// The file line the text starts at (1-based).
    pub first_line: u64,
    /// The document's text; a `---` marker is blanked out so columns stay those of the file.
    pub text: String,
    /// Helm's `# Source: chart/templates/x.yaml` comment, when the document has one.
    pub source: Option<String>,
}

fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t.starts_with('%')
}

/// Splits a YAML stream at its `---` lines. A `---` inside a block scalar ends the document in
/// YAML too, and flow scalars may not contain one, so a line scan agrees with a parser. The
/// text before the first marker is a document only when it holds more than comments and
/// directives (YAML's bare document).
pub fn split_documents(text: &str) -> Vec<RawDocument> {
    let mut segments: Vec<(u64, String)> = vec![(1, String::new())];
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_marker(line) {
            segments.push((i as u64 + 1, format!("   {}", &line[3..])));
        } else if let Some((_, seg)) = segments.last_mut() {
            seg.push_str(line);
        }
    }
    let first_is_doc = segments
        .first()
        .is_some_and(|(_, t)| !t.lines().all(is_blank_or_comment));
    let start = if first_is_doc || segments.len() == 1 {
        0
    } else {
        1
    };
    segments
        .into_iter()
        .skip(start)
        .enumerate()
        .map(|(i, (first_line, text))| {
            let source = text
                .lines()
                .take_while(|l| is_blank_or_comment(l))
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("# Source:")
                        .map(|s| s.trim().to_string())
                });
            RawDocument {
                index: i + 1,
                first_line,
                text,
                source,
            }
        })
        .collect()
}

/// A YAML syntax error at a file line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u64,
    pub col: u64,
    pub message: String,
}

/// Parses one document; `None` for an empty (or `null`) document.
pub fn parse_document(doc: &RawDocument) -> Result<Option<Node>, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = budget.max_depth.min(MAX_DEPTH);
        // The file size cap bounds the work; a 10 MB `kubectl get -o yaml` List is one
        // document with far more nodes than serde-saphyr's default allows.
        budget.max_nodes = usize::MAX;
        budget.max_events = usize::MAX;
        budget.max_total_scalar_bytes = usize::MAX;
    }
    let delta = doc.first_line - 1;
    match serde_saphyr::from_str_with_options::<Option<Node>>(&doc.text, options) {
        Ok(Some(mut node)) => {
            node.shift(delta);
            Ok(Some(node))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            let (line, col) = e
                .location()
                .map_or((doc.first_line, 1), |l| (l.line() + delta, l.column()));
            Err(SyntaxError {
                line,
                col,
                message: clean_message(&e.without_snippet().to_string()),
            })
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

    #[test]
    fn split_counts_empty_documents_and_skips_a_comment_preamble() {
        let text = "# Source: c/templates/a.yaml\n---\n# Source: c/templates/b.yaml\na: 1\n---\n---\nb: 2\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].index, 1);
        assert_eq!(docs[0].first_line, 2);
        assert_eq!(docs[0].source.as_deref(), Some("c/templates/b.yaml"));
        assert_eq!(parse_document(&docs[1]).unwrap(), None);
        let b = parse_document(&docs[2]).unwrap().unwrap();
        let (k, _) = b.entry("b").unwrap();
        assert_eq!((k.line, k.col), (7, 1));
    }

    #[test]
    fn yaml_1_1_scalars_keep_their_spelling_as_text() {
        let docs = split_documents("a: 1\n---\nname: n\nmode: 0755\nro: yes\n");
        let n = parse_document(&docs[1]).unwrap().unwrap();
        let t = &docs[1].text;
        assert_eq!(n.get("name").unwrap().text(t).as_deref(), Some("n"));
        assert_eq!(n.get("mode").unwrap().text(t).as_deref(), Some("0755"));
        assert_eq!(n.get("ro").unwrap().kind, NodeKind::Bool(true));
    }

    #[test]
    fn a_bare_first_document_counts() {
        let docs = split_documents("a: 1\n---\nb: 2\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 2);
        let b = parse_document(&docs[1]).unwrap().unwrap();
        assert_eq!(b.entry("b").unwrap().0.line, 3);
    }

    #[test]
    fn content_on_the_marker_line_keeps_its_column() {
        let docs = split_documents("--- {a: 1}\n");
        let n = parse_document(&docs[0]).unwrap().unwrap();
        let (k, v) = n.entry("a").unwrap();
        assert_eq!((k.line, k.col), (1, 6));
        assert_eq!(v.kind, NodeKind::Int(1));
    }

    #[test]
    fn syntax_errors_are_at_file_lines() {
        let docs = split_documents("a: 1\n---\nb: [1, 2\nc: d\n");
        let e = parse_document(&docs[1]).unwrap_err();
        assert!(e.line >= 3, "{e:?}");
        assert!(!e.message.starts_with("error"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let docs = split_documents(&"[".repeat(100_000));
        assert!(parse_document(&docs[0]).is_err());
        let docs = split_documents(&"{a: ".repeat(1000));
        assert!(parse_document(&docs[0]).is_err());
    }
}
