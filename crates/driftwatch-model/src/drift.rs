//! What a drift finding says: which kind of drift, about what, and the verdict on it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The five kinds of drift of the seed document, plus shells (their own alert category).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Binary,
    File,
    Package,
    Config,
    Network,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Binary => "binary",
            DriftKind::File => "file",
            DriftKind::Package => "package",
            DriftKind::Config => "config",
            DriftKind::Network => "network",
        }
    }

    /// The alert tag of the category (`binary_drift`, ...).
    pub fn tag(self) -> &'static str {
        match self {
            DriftKind::Binary => "binary_drift",
            DriftKind::File => "file_drift",
            DriftKind::Package => "package_drift",
            DriftKind::Config => "config_drift",
            DriftKind::Network => "network_drift",
        }
    }
}

/// Which code of an exec a binary-drift verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSubject {
    /// The executed file itself (`bprm->file`).
    Exe,
    /// A script run by its shebang: the script, not its interpreter.
    Script,
    /// A program run through the dynamic loader (`ld.so /tmp/x`).
    LoaderTarget,
    /// A library named by `LD_PRELOAD`.
    Preload,
}

impl DriftSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftSubject::Exe => "exe",
            DriftSubject::Script => "script",
            DriftSubject::LoaderTarget => "loader_target",
            DriftSubject::Preload => "preload",
        }
    }
}

/// Where a file's bytes came from, judged against the container's image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the image's layers, untouched. Not drift.
    Image,
    /// Copied up to the writable layer (touch, chmod) but byte-identical to the image's file.
    /// Not drift: the overlay bit alone would have said "upper".
    CopyUp,
    /// In the writable layer only: the image has no file at this path.
    Added,
    /// In the writable layer, and its content differs from the image's file at this path.
    Modified,
    /// An anonymous memory file (`memfd_create`): fileless execution.
    Memfd,
    /// Unlinked before it ran (executed through an open fd).
    Deleted,
    /// On a tmpfs mounted into the container (`/dev/shm`, `--tmpfs`).
    Tmpfs,
    /// On a bind mount or volume: a filesystem that is not the image's.
    Volume,
    /// Could not be judged (the file vanished before it could be read, layers unknown).
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Image => "image",
            Verdict::CopyUp => "copy_up",
            Verdict::Added => "added",
            Verdict::Modified => "modified",
            Verdict::Memfd => "memfd",
            Verdict::Deleted => "deleted",
            Verdict::Tmpfs => "tmpfs",
            Verdict::Volume => "volume",
            Verdict::Unknown => "unknown",
        }
    }

    /// True when the code did not come from the image.
    pub fn is_drift(self) -> bool {
        !matches!(self, Verdict::Image | Verdict::CopyUp | Verdict::Unknown)
    }

    pub const ALL: [Verdict; 9] = [
        Verdict::Image,
        Verdict::CopyUp,
        Verdict::Added,
        Verdict::Modified,
        Verdict::Memfd,
        Verdict::Deleted,
        Verdict::Tmpfs,
        Verdict::Volume,
        Verdict::Unknown,
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judged piece of an event: "the script /tmp/s.sh was added at runtime".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFinding {
    pub kind: DriftKind,
    pub subject: DriftSubject,
    pub verdict: Verdict,
    /// The path inside the container of the file judged.
    pub path: String,
    /// blake3 of the drifted file's content, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// blake3 of the image's file at the same path (for `modified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_hash: Option<String>,
    /// What changed, in words (packages and versions, a setting and its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_code_is_drift() {
        let drift: Vec<_> = Verdict::ALL
            .iter()
            .filter(|v| v.is_drift())
            .map(|v| v.as_str())
            .collect();
        assert_eq!(
            drift,
            ["added", "modified", "memfd", "deleted", "tmpfs", "volume"]
        );
    }

    #[test]
    fn serde_names_match_as_str() {
        for v in Verdict::ALL {
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
    }
}
