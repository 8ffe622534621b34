//! The `--record` file (every event the agent saw, for `driftwatch rules test`): opened for
//! appending and kept private, since events carry the containers' command lines and
//! environments.

use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// Opens `path` for appending: created 0600, and an existing file that group or others may
/// read or write is narrowed to 0600 (with a warning naming it).
pub fn open_private_append(path: &Path) -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading the mode of {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("narrowing {} to owner only", path.display()))?;
        tracing::warn!(
            "{}: mode {mode:04o} let group or others read the recorded events (environments among them): narrowed to {:04o}",
            path.display(),
            mode & 0o700
        );
    }
    Ok(file)
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests read their own fixtures")]
mod tests {
    use super::*;

    #[test]
    fn created_0600_and_a_loose_existing_file_is_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        drop(open_private_append(&p).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&p, "kept\n").unwrap();
        use std::io::Write;
        writeln!(open_private_append(&p).unwrap(), "appended").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "kept\nappended\n");
    }
}
