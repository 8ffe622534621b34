//! Playbook files as positioned YAML trees (`driftwatch-yaml`, shared with the rules
//! loader), so every playbook error names FILE:LINE:COL.

pub(crate) use driftwatch_yaml::{Node, NodeKind};

/// A playbook file bigger than this is refused before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
const MAX_DEPTH: usize = 32;

/// Parses a file; an empty file is `Null`. Errors carry (line, col, message).
pub(crate) fn parse(text: &str) -> Result<Node, (u64, u64, String)> {
    let limits = driftwatch_yaml::ParseLimits {
        max_bytes: MAX_FILE_BYTES,
        max_depth: MAX_DEPTH,
        ..driftwatch_yaml::ParseLimits::CONFIG
    };
    match driftwatch_yaml::parse(text, limits) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Ok(Node::at_start(NodeKind::Null)),
        Err(e) => {
            let msg = match e.problem {
                driftwatch_yaml::ParseProblem::TooLarge { size, .. } => format!(
                    "file is {size} bytes, more than the {MAX_FILE_BYTES} a playbook file may have"
                ),
                driftwatch_yaml::ParseProblem::Syntax(_) => e.to_string(),
            };
            Err((e.line, e.col, msg))
        }
    }
}
