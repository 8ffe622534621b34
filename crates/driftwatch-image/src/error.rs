//! Why a file could not be judged: every variant names the path, in the container or on the host.

use std::io;
use std::path::PathBuf;

use crate::path::{ContainerPath, MAX_SYMLINK_HOPS};

/// A failed [`Judge::judge`](crate::Judge::judge).
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("{path}: not an absolute path")]
    NotAbsolute { path: ContainerPath },
    #[error("{path}: no such file in the container's layers")]
    NotFound { path: ContainerPath },
    #[error("{path}: too many levels of symbolic links (more than {MAX_SYMLINK_HOPS})")]
    SymlinkLoop { path: ContainerPath },
    #[error("{path}: a component of the path is not a directory")]
    NotADirectory { path: ContainerPath },
    #[error("{path}: not a regular file but a {kind}")]
    NotRegularFile {
        path: ContainerPath,
        kind: &'static str,
    },
    /// A system call on a layer failed.
    #[error(transparent)]
    Io(#[from] LayerIoError),
}

/// A system call on a layer directory failed; `host` is the path on the host.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", host.display())]
pub struct LayerIoError {
    pub op: &'static str,
    pub host: PathBuf,
    #[source]
    pub source: io::Error,
}

impl LayerIoError {
    pub fn new(op: &'static str, host: impl Into<PathBuf>, e: impl Into<io::Error>) -> Self {
        LayerIoError {
            op,
            host: host.into(),
            source: e.into(),
        }
    }

    /// The file or directory is gone (removed while we read).
    pub fn is_vanished(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

impl JudgeError {
    /// True for the errors that say the file is simply not there (as opposed to I/O trouble).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            JudgeError::NotFound { .. } | JudgeError::NotADirectory { .. }
        )
    }
}
