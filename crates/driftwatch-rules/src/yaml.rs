//! Rule files as positioned YAML trees (`driftwatch-yaml`), placed in this crate's source
//! files so that every later error can point at the node it is about.

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

pub(crate) use driftwatch_yaml::{Node, NodeKind};

/// Where a node is, in terms of this crate's source files.
pub(crate) trait NodeAt {
    /// Where this node is in file `file_idx`.
    fn at(&self, file_idx: usize, file: &SourceFile) -> At;
    /// The node as a scalar string, as Falco reads list items and names: a number or bool
    /// keeps its spelling in the file (`1.10` stays `1.10`).
    fn scalar_text(&self, file: &SourceFile) -> Option<String>;
}

impl NodeAt for Node {
    fn at(&self, file_idx: usize, file: &SourceFile) -> At {
        let offset = self
            .offset
            .unwrap_or_else(|| file.offset_of(self.line, self.col));
        At {
            file: file_idx,
            offset,
            len: self.len.unwrap_or(0),
        }
    }

    fn scalar_text(&self, file: &SourceFile) -> Option<String> {
        self.scalar(Some(&file.text))
    }
}

/// Parses one file. An empty file is an empty list.
pub(crate) fn parse(file: &SourceFile) -> Result<Node, (usize, YamlError)> {
    let limits = driftwatch_yaml::ParseLimits {
        max_bytes: MAX_FILE_BYTES,
        max_depth: MAX_DEPTH,
        ..driftwatch_yaml::ParseLimits::CONFIG
    };
    match driftwatch_yaml::parse(&file.text, limits) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Ok(Node::at_start(NodeKind::Seq(Vec::new()))),
        Err(e) => {
            let offset = e.offset.unwrap_or_else(|| file.offset_of(e.line, e.col));
            let err = match e.problem {
                driftwatch_yaml::ParseProblem::Syntax(m) => YamlError::Syntax(m),
                driftwatch_yaml::ParseProblem::TooLarge { size, max } => {
                    YamlError::TooLarge { size, max }
                }
            };
            Err((offset, err))
        }
    }
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
