//! The API's bearer token file: created with a random token (mode 0600, in a 0700 directory
//! when the agent makes it) on the agent's first start, read on every later start, and
//! refused when group or others have any permission on it (a token others can read is no
//! credential). Errors name the file, never its content.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::server::BindError;

/// Where the agent keeps its token unless told otherwise (`--api-token-file`,
/// `api.token_file`).
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/driftwatch/api.token";

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

fn err(path: &Path, message: impl Into<String>) -> BindError {
    BindError::Token {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads a token file: its first line, trimmed. Refused when group or others have any
/// permission on it, when the agent's user does not own it, or when the token is shorter than
/// [`MIN_TOKEN_LEN`]. A symlink is followed (a Kubernetes Secret's files are symlinks); the
/// checks are on the file it names, the one that is read.
pub fn read_token_file(path: &Path) -> Result<String, BindError> {
    let mut file = std::fs::File::open(path).map_err(|e| err(path, e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(err(path, "not a regular file"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(
            path,
            format!(
                "mode {mode:04o}: group or others may read or change the token; `chmod 600` it (a Kubernetes Secret: defaultMode 0400)"
            ),
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(err(
            path,
            format!(
                "owned by uid {}, not by the agent's uid {euid}: whoever owns it can change the token",
                meta.uid()
            ),
        ));
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| err(path, e.to_string()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.len() < MIN_TOKEN_LEN {
        return Err(err(
            path,
            format!("the token (first line) must be at least {MIN_TOKEN_LEN} characters"),
        ));
    }
    Ok(token)
}

/// A new random token: 32 bytes of the kernel's randomness, in hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token of `path`, which is created first when missing: written to a private temporary
/// file (0600, `O_EXCL`), then linked into place, so that two agents starting at once agree
/// on one token and nobody ever reads a half-written one. Returns the token and whether it
/// was created now.
pub fn load_or_create(path: &Path) -> Result<(String, bool), BindError> {
    if path.exists() {
        return read_token_file(path).map(|t| (t, false));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(path, format!("creating {}: {e}", dir.display())))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "api.token".into());
    let tmp = dir.join(format!(".{name}.{}.new", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let token = new_token()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another agent made it first: its token is the one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    };
    let made = write();
    let _ = std::fs::remove_file(&tmp);
    made.map_err(|e| err(path, format!("creating it: {e}")))?;
    read_token_file(path).map(|t| (t, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_0600_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/api.token");
        let (token, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join("state")).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(load_or_create(&path).unwrap(), (token, false));
        // No temporary file left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_token_file_others_can_read_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_token_file(&path).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "API token file {}: mode 0{mode:o}",
                    path.display()
                )),
                "{e}"
            );
            assert!(!e.contains("0123456789abcdef"), "the token leaked: {e}");
            let e = load_or_create(&path).unwrap_err().to_string();
            assert!(e.contains("group or others"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "0123456789abcdef0123");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short\n").unwrap();
        let e = read_token_file(&path).unwrap_err().to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        let e = read_token_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
