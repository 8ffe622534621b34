//! Positioned diagnostics: every problem found while loading rules, as `FILE:LINE:COL: message`
//! plus the offending line, errors and warnings kept apart.

use std::fmt;

use crate::compile::CompileError;
use crate::loader::SchemaError;
use crate::parser::SyntaxError;
use crate::source::SourceFile;
use crate::yaml::YamlError;

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

/// What a diagnostic is about, one enum per loading stage: YAML syntax, rule-file schema,
/// condition syntax, compilation (names, types), and warnings.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Warning(#[from] Warning),
}

/// Things that load but are probably not what the author meant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    #[error(
        "rule {rule:?} does not restrict evt.type, so it is evaluated against every event type \
         (add an evt.type test, or `warn_evttypes: false` if this is intended)"
    )]
    NoEventTypeRestriction { rule: String },
    #[error(
        "rule {rule:?} has source {src:?}; only \"syscall\" rules are evaluated, so it is skipped"
    )]
    UnsupportedSource { rule: String, src: String },
    #[error(
        "rule {rule:?} uses a field this engine does not know ({detail}); skipped because of `skip-if-unknown-filter: true`"
    )]
    SkippedUnknownFilter { rule: String, detail: String },
    #[error("key {key:?} is accepted for Falco compatibility but has no effect in driftwatch")]
    IgnoredKey { key: String },
    #[error(
        "rule {rule:?} can never match: no event type it tests for is produced by driftwatch's sensors"
    )]
    NeverMatches { rule: String },
}

/// One problem, with where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based; 0 when the position is unknown.
    pub line: u32,
    /// 1-based, in characters; 0 when the position is unknown.
    pub col: u32,
    /// The text of the offending line (without its newline), empty when unknown.
    pub line_text: String,
    pub problem: Problem,
}

impl Diagnostic {
    pub(crate) fn at(file: &SourceFile, offset: usize, problem: impl Into<Problem>) -> Diagnostic {
        let problem = problem.into();
        let severity = match problem {
            Problem::Warning(_) => Severity::Warning,
            _ => Severity::Error,
        };
        let (line, col, line_text) = file.locate(offset);
        Diagnostic {
            severity,
            file: file.name.clone(),
            line,
            col,
            line_text,
            problem,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: severity: message`, then the offending line and a caret under the column.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}: {}: {}",
            self.location(),
            self.severity.as_str(),
            self.problem
        );
        if !self.line_text.is_empty() {
            let gutter = self.line.to_string();
            s.push('\n');
            s.push_str(&format!(
                "{gutter} | {}\n",
                self.line_text.replace('\t', " ")
            ));
            s.push_str(&" ".repeat(gutter.len()));
            s.push_str(" | ");
            s.push_str(&" ".repeat(self.col.saturating_sub(1) as usize));
            s.push('^');
        }
        s
    }

    /// `FILE:LINE:COL`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.col)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.problem)
    }
}

/// A collector that keeps errors and warnings apart, in the order found.
#[derive(Default)]
pub(crate) struct Diagnostics {
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Error => self.errors.push(d),
            Severity::Warning => self.warnings.push(d),
        }
    }

    pub(crate) fn add(&mut self, file: &SourceFile, offset: usize, problem: impl Into<Problem>) {
        self.push(Diagnostic::at(file, offset, problem));
    }
}
