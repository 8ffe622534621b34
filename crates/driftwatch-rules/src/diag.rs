//! What can be wrong in a rule file, stage by stage, and the collector that keeps errors and
//! warnings apart; positioned and rendered by `driftwatch_yaml::Diagnostic`.

use crate::compile_error::CompileError;
use crate::parser::SyntaxError;
use crate::schema_error::SchemaError;
use crate::source::SourceFile;
use crate::yaml::YamlError;
pub use driftwatch_yaml::Severity;

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
    #[error("rule {rule:?} is inactive: it {reason}")]
    Inactive { rule: String, reason: String },
}

/// One problem, with where it is: the workspace's one positioned diagnostic, carrying this
/// loader's typed [`Problem`].
pub type Diagnostic = driftwatch_yaml::Diagnostic<Problem>;

/// A diagnostic at byte `offset` of `file`; a warning when the problem is one.
pub(crate) fn diagnostic_at(
    file: &SourceFile,
    offset: usize,
    problem: impl Into<Problem>,
) -> Diagnostic {
    let problem = problem.into();
    let (line, col, line_text) = file.locate(offset);
    let mut d = match problem {
        Problem::Warning(_) => Diagnostic::warning(&file.name, line.into(), col.into(), problem),
        _ => Diagnostic::error(&file.name, line.into(), col.into(), problem),
    };
    d.line_text = line_text;
    d
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
        self.push(diagnostic_at(file, offset, problem));
    }
}
