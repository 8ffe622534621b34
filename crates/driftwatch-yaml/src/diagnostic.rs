//! One positioned problem and its one rendering, for every file a person writes for the
//! agent (configuration, rules, playbooks, enforcement policy, approved lists, baselines):
//! `FILE:LINE:COL: severity: message`, the line, a caret under the column.

use std::fmt;
use std::path::PathBuf;

use crate::Node;

/// Whether a diagnostic fails the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, with where it is. `M` is what is wrong: a message, or a loader's own enum
/// (the rules loader keeps its typed problems so that tests and tools can match on them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic<M = String> {
    pub severity: Severity,
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based; 0 when the position is unknown.
    pub line: u64,
    /// 1-based, in characters; 0 when the position is unknown.
    pub col: u64,
    /// The text of the offending line (without its newline), empty when unknown.
    pub line_text: String,
    pub message: M,
    /// What to write instead, when the loader knows (`300s` for a bare `300`).
    pub help: Option<String>,
}

impl<M> Diagnostic<M> {
    /// An error at `line:col` of `file`; [`Diagnostic::with_source`] adds the line's text.
    pub fn error(file: impl Into<String>, line: u64, col: u64, message: M) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line,
            col,
            line_text: String::new(),
            message,
            help: None,
        }
    }

    /// A warning at `line:col` of `file`.
    pub fn warning(file: impl Into<String>, line: u64, col: u64, message: M) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, col, message)
        }
    }

    /// An error about the YAML node `at`.
    pub fn at_node(file: impl Into<String>, at: &Node, message: M) -> Self {
        Diagnostic::error(file, at.line, at.col, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Takes the offending line from the whole text of the file.
    pub fn with_source(mut self, text: &str) -> Self {
        self.set_source(text);
        self
    }

    /// Takes the offending line from the whole text of the file.
    pub fn set_source(&mut self, text: &str) {
        let line = usize::try_from(self.line).unwrap_or(usize::MAX);
        if let Some(src) = line.checked_sub(1).and_then(|i| text.lines().nth(i)) {
            self.line_text = src.trim_end_matches('\r').to_string();
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.col)
    }
}

impl<M: fmt::Display> Diagnostic<M> {
    /// `FILE:LINE:COL: severity: message`, then the offending line and a caret under the
    /// column (tabs before the column kept as tabs, so the caret lines up at any tab width),
    /// then the help.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}: {}: {}",
            self.location(),
            self.severity.as_str(),
            self.message
        );
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        if !self.line_text.is_empty() {
            let lead: String = self
                .line_text
                .chars()
                .take(usize::try_from(self.col.saturating_sub(1)).unwrap_or(usize::MAX))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            s.push_str(&format!("\n{gutter} | {}\n{pad} | {lead}^", self.line_text));
        }
        if let Some(help) = &self.help {
            s.push_str(&format!("\n{pad} = help: {help}"));
        }
        s
    }
}

/// `FILE:LINE:COL: message`: one line, for logs.
impl<M: fmt::Display> fmt::Display for Diagnostic<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

/// Why a file someone wrote for the agent cannot be used.
#[derive(Debug)]
pub enum LoadError {
    /// The file cannot be read. `what` names it in the message ("the configuration").
    Unreadable {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read; these are every problem in it.
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unreadable { what, path, error } => {
                write!(f, "reading {what} {}: {error}", path.display())
            }
            LoadError::Invalid { path, diagnostics } => {
                write!(
                    f,
                    "{}: {} problem{}:",
                    path.display(),
                    diagnostics.len(),
                    if diagnostics.len() == 1 { "" } else { "s" }
                )?;
                for d in diagnostics {
                    write!(f, "\n{}", d.render())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_line_a_caret_and_the_help() {
        let d = Diagnostic::error("p.yaml", 3, 14, "a duration needs a unit".to_string())
            .with_source("a: 1\nb: 2\ncooldown:\t  300\n")
            .with_help("write `300s`");
        assert_eq!(
            d.render(),
            "p.yaml:3:14: error: a duration needs a unit\n3 | cooldown:\t  300\n  |          \t   ^\n  = help: write `300s`"
        );
        assert_eq!(d.to_string(), "p.yaml:3:14: a duration needs a unit");
    }

    #[test]
    fn unknown_line_renders_no_snippet() {
        let d = Diagnostic::warning("x", 0, 0, "m").with_source("only\n");
        assert_eq!(d.render(), "x:0:0: warning: m");
    }
}
