//! Manifest text to positioned YAML documents: the stream is split at `---` markers (so every
//! document keeps its number even when another one is invalid or empty) and each document is
//! parsed into the positioned tree of `driftwatch-yaml` (shared with rules and playbooks).

/// Deeper than any Kubernetes object; deeper input is refused, never recursed into.
pub const MAX_DEPTH: usize = 64;

/// The stack documents are parsed on: serde's recursion through [`MAX_DEPTH`] block mappings
/// takes about 8 MiB in a debug build, more than a test thread's 2 MiB.
pub const PARSE_STACK_BYTES: usize = 64 * 1024 * 1024;

pub use driftwatch_yaml::{Node, NodeKind};

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
pub struct AuditSyntaxError {
    pub line: u64,
    pub col: u64,
    pub message: String,
}

/// Parses one document; `None` for an empty (or `null`) document.
pub fn parse_document(doc: &RawDocument) -> Result<Option<Node>, AuditSyntaxError> {
    let limits = driftwatch_yaml::ParseLimits {
        // The file size cap (checked when reading) bounds the work.
        max_bytes: usize::MAX,
        max_depth: MAX_DEPTH,
        // Kubernetes reads YAML 1.1: `yes` is true there.
        strict_booleans: false,
        // A 10 MB `kubectl get -o yaml` List is one document with far more nodes than the
        // parser's default budget allows.
        large_documents: true,
    };
    let delta = doc.first_line - 1;
    match driftwatch_yaml::parse(&doc.text, limits) {
        Ok(Some(mut node)) => {
            node.shift_lines(delta);
            Ok(Some(node))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(AuditSyntaxError {
            line: e.line + delta,
            col: e.col,
            message: match e.problem {
                driftwatch_yaml::ParseProblem::Syntax(m) => m,
                other => format!("{other:?}"),
            },
        }),
    }
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
        assert_eq!(n.get("name").unwrap().scalar(Some(t)).as_deref(), Some("n"));
        assert_eq!(
            n.get("mode").unwrap().scalar(Some(t)).as_deref(),
            Some("0755")
        );
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
