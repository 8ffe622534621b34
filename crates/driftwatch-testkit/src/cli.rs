//! The `driftwatch` CLI run to completion (the binary is the caller's: see the crate docs).

use std::path::Path;
use std::process::{Command, Output};

/// Runs `BIN ARGS` to completion.
pub fn run_cli(bin: impl AsRef<Path>, args: &[&str]) -> Output {
    Command::new(bin.as_ref())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.as_ref().display()))
}

/// `BIN ARGS`: (success, stdout+stderr).
pub fn cli(bin: impl AsRef<Path>, args: &[&str]) -> (bool, String) {
    let out = run_cli(bin, args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
