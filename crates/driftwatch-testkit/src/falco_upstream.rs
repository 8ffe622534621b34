//! Falco's upstream rule files as the tests load them: the pinned, unchanged copies in the
//! rules crate's test data, in the order Falco loads them, so a test runs the agent with the
//! rules a user moving from Falco brings.

use std::path::PathBuf;

use crate::host::repo_root;

/// Upstream's rule files that Falco loads, in its order: stable, then incubating, then sandbox
/// (later files redefine what earlier ones define, as Falco does).
pub const FALCO_UPSTREAM_FILES: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

/// Where the pinned copies live (see SOURCE.md there for the commit they come from).
pub fn falco_upstream_dir() -> PathBuf {
    repo_root().join("crates/driftwatch-rules/tests/data/falcosecurity-rules")
}

/// `--rules FILE` for each of [`FALCO_UPSTREAM_FILES`] in Falco's order, then for each of
/// `tuning` (a user's own files, loaded last as Falco loads `rules_files` in order).
pub fn falco_upstream_rule_args(tuning: &[PathBuf]) -> Vec<String> {
    let dir = falco_upstream_dir();
    FALCO_UPSTREAM_FILES
        .iter()
        .map(|f| dir.join(f))
        .chain(tuning.iter().cloned())
        .flat_map(|p| ["--rules".to_string(), p.display().to_string()])
        .collect()
}
