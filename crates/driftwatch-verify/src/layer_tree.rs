//! A layer directory on disk, whoever unpacked it: its walk (every path's `lstat` and a
//! fingerprint of them), the problems a replay of the layer's tar over it finds, and the
//! whiteout convention both Docker's overlay2 and containerd's overlayfs snapshots use.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    TarSplit {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Same size, other content (crc64 differs).
    Modified,
    /// Size differs from the recorded one.
    SizeChanged,
    /// Recorded in the layer, gone from the directory.
    Missing,
    /// In the directory, not in the layer's tar.
    Added,
    /// Could not be read.
    Unreadable,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Modified => "modified",
            ProblemKind::SizeChanged => "size_changed",
            ProblemKind::Missing => "missing",
            ProblemKind::Added => "added",
            ProblemKind::Unreadable => "unreadable",
        }
    }
}

/// A file of a layer that is not what the layer recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    /// Relative to the layer root (`etc/passwd`); inside a container it is `/etc/passwd`.
    pub path: String,
    pub kind: ProblemKind,
    pub expected_size: Option<u64>,
    pub actual_size: Option<u64>,
}

pub(crate) struct Stat {
    pub(crate) size: u64,
    pub(crate) is_whiteout: bool,
}

/// Every path under `dir` with its `lstat`, and the fingerprint of them all. Directories are
/// opened through the safe opener, beneath `dir` and never through a symlink, so a link a
/// layer holds (or one swapped in while walking) is listed, not followed.
pub(crate) fn walk(dir: &Path) -> Result<(BTreeMap<String, Stat>, String), LayerError> {
    use rustix::fs::{AtFlags, FileType};
    let fs_err = |path: &Path, e: driftwatch_fs::FsError| LayerError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    };
    let mut out = BTreeMap::new();
    let mut hasher = Sha256::new();
    let root = driftwatch_fs::Root::layer("image layer", dir).map_err(|e| fs_err(dir, e))?;
    let mut stack = vec![(root, String::new())];
    while let Some((here, rel)) = stack.pop() {
        let abs = dir.join(&rel);
        let rd = rustix::fs::Dir::read_from(here.as_fd()).map_err(|e| io(&abs)(e.into()))?;
        for ent in rd {
            let ent = ent.map_err(|e| io(&abs)(e.into()))?;
            let raw = ent.file_name();
            if matches!(raw.to_bytes(), b"." | b"..") {
                continue;
            }
            let name = String::from_utf8_lossy(raw.to_bytes()).into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let st = rustix::fs::statat(here.as_fd(), raw, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io(&dir.join(&r))(e.into()))?;
            hasher.update(r.as_bytes());
            for v in [
                st.st_size as u64,
                st.st_mtime as u64,
                st.st_mtime_nsec as u64,
                st.st_ctime as u64,
                st.st_ctime_nsec as u64,
                st.st_ino,
                st.st_mode as u64,
            ] {
                hasher.update(v.to_le_bytes());
            }
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft == FileType::Directory {
                let name = std::ffi::OsStr::from_bytes(raw.to_bytes());
                let sub = here
                    .open_dir(&driftwatch_fs::InContainer::new(name))
                    .map_err(|e| fs_err(&dir.join(&r), e))?;
                stack.push((sub, r.clone()));
            }
            out.insert(
                r,
                Stat {
                    size: st.st_size as u64,
                    // overlay2 and containerd store a tar's `.wh.NAME` as a 0:0 character
                    // device NAME.
                    is_whiteout: ft == FileType::CharacterDevice && st.st_rdev == 0,
                },
            );
        }
    }
    Ok((out, hex::encode(hasher.finalize())))
}

/// What replaying a layer's record over its directory found.
pub(crate) struct Found {
    pub(crate) problems: Vec<FileProblem>,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// sha256 of the rebuilt (uncompressed) tar stream.
    pub(crate) stream_digest: String,
}

/// Files on disk that the layer's tar does not have (whiteout devices excepted).
pub(crate) fn added_files(
    on_disk: &BTreeMap<String, Stat>,
    in_tar: &HashSet<String>,
    problems: &mut Vec<FileProblem>,
) {
    for (rel, st) in on_disk {
        if !in_tar.contains(rel) && !st.is_whiteout {
            problems.push(FileProblem {
                path: rel.clone(),
                kind: ProblemKind::Added,
                expected_size: None,
                actual_size: Some(st.size),
            });
        }
    }
}

/// A whiteout entry `DIR/.wh.NAME`: `Some(Some("DIR/NAME"))`, the device NAME on disk; the
/// opaque marker `.wh..wh..opq` (an xattr on disk): `Some(None)`; any other name: `None`.
pub(crate) fn whiteout(rel: &str) -> Option<Option<String>> {
    let (dir_part, base) = rel.rsplit_once('/').map_or(("", rel), |(d, b)| (d, b));
    let hidden = base.strip_prefix(".wh.")?;
    if hidden == ".wh..opq" {
        return Some(None);
    }
    Some(Some(if dir_part.is_empty() {
        hidden.to_string()
    } else {
        format!("{dir_part}/{hidden}")
    }))
}
