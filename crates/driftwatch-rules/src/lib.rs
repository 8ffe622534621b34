//! Falco-compatible rule files compiled and evaluated against driftwatch events; no I/O.
//!
//! Loading takes `(file name, text)` pairs ([`Source`]) and runs read → merge → compile,
//! collecting every error with its `FILE:LINE:COL` ([`Diagnostic`]). The compiled
//! [`RuleSet`] finds the rules an event matches without allocating, and builds Falco-format
//! alerts. The default ruleset ships embedded ([`default_sources`]).
//!
//! ```
//! use driftwatch_rules::{RuleSet, Source};
//! let extra = Source::new("/etc/driftwatch/rules.d/local.yaml", "- list: shell_binaries\n  items: [fish]\n  override:\n    items: append\n");
//! let loaded = RuleSet::load_with_defaults(&[extra]).expect("rules load");
//! assert!(loaded.ruleset.find("Drop and execute new binary in container").is_some());
//! ```

mod activity;
mod append_output;
mod compile;
mod compile_error;
mod diag;
mod dir_reach;
mod eval;
mod fields;
mod glob;
mod loader;
mod output;
mod parser;
mod ruleset;
mod schema_error;
mod source;
mod yaml;

pub use append_output::{AppendOutput, ExtraField, SUGGESTED_OUTPUT, check_output_format};
pub use compile_error::{CompileError, MAX_EXPANDED_NODES};
pub use diag::{Diagnostic, Problem, Severity, Warning};
pub use dir_reach::{
    DETAIL_IMAGE_FILE_REMOVED, DETAIL_RUNTIME_DIR_REMOVED, DETAIL_RUNTIME_FILE_REMOVED, DirReach,
    FileScope,
};
pub use fields::{
    ArgSpec, FIELD_CLASSES, FIELDS, FalcoType, FieldInfo, FieldType, Filled, evt_type_name, field,
    fields_markdown,
};
pub use glob::{Glob, GlobError};
pub use parser::{MAX_NESTING, Op, SyntaxError};
pub use ruleset::{LoadedRules, RuleIdx, RuleInfo, RuleSet};
pub use schema_error::{ENGINE_VERSION, SchemaError};
pub use source::Source;
pub use yaml::{MAX_FILE_BYTES, YamlError};

/// Checks a condition's syntax alone (no names resolved): the byte offset and error of the
/// first problem. For editors and the fuzz target; loading reports the same errors positioned.
pub fn check_condition_syntax(text: &str) -> Result<(), (usize, SyntaxError)> {
    let map = |offset| source::Pos { file: 0, offset };
    parser::parse_condition(text, &map)
        .map(|_| ())
        .map_err(|(p, e)| (p.offset, e))
}

/// File name under which the embedded default rules report their diagnostics.
pub const DEFAULT_RULES_NAME: &str = "driftwatch_rules.yaml";

/// The default ruleset's text (`rules/driftwatch_rules.yaml` in the repository).
pub const DEFAULT_RULES: &str = include_str!("../../../rules/driftwatch_rules.yaml");

/// The sources the agent loads before users' `/etc/driftwatch/rules.d/*.yaml`.
pub fn default_sources() -> Vec<Source> {
    vec![Source::new(DEFAULT_RULES_NAME, DEFAULT_RULES)]
}
