//! "Is this file the image's?": the content verdict on a file a container process executes.

use std::path::{Path, PathBuf};

use driftwatch_model::{Content, OverlayLayers, Verdict};
use serde::Serialize;

use crate::error::JudgeError;
use crate::hash::{DEFAULT_HASH_CACHE_ENTRIES, FileKey, HashCache};
use crate::overlay::{FileEntry, LayerOptions, Lookup, Meta, ResolvedEntry, View};
use crate::path::ContainerPath;

/// Judges files against a container's image. Holds a bounded hash cache shared by every
/// container (layers shared between images share inodes, so their hashes too).
/// `Send + Sync`: share one behind an `Arc`.
#[derive(Debug)]
pub struct Judge {
    hashes: HashCache,
    options: LayerOptions,
}

/// A changed value: what the image has and what the container has now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    pub image: T,
    pub current: T,
}

impl<T: PartialEq> Change<T> {
    fn if_differs(image: T, current: T) -> Option<Change<T>> {
        (image != current).then_some(Change { image, current })
    }
}

impl Change<u32> {
    /// `mode 0644 -> 0755`, as file drift words a `chmod`: the detail of a `metadata` verdict.
    pub fn mode_words(&self) -> String {
        format!("mode {:04o} -> {:04o}", self.image, self.current)
    }
}

/// How a file's metadata differs from the image's file at the same path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetadataChange {
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Change<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Change<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Change<u32>>,
    /// Modification time, nanoseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<Change<i64>>,
    /// File capabilities (`security.capability`, as `setcap` sets) differ.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub capabilities: bool,
}

impl MetadataChange {
    /// `None` when mode, owner and mtime are all the image's.
    pub(crate) fn between(image: &Meta, current: &Meta) -> Option<MetadataChange> {
        let m = MetadataChange {
            mode: Change::if_differs(image.perm(), current.perm()),
            uid: Change::if_differs(image.uid, current.uid),
            gid: Change::if_differs(image.gid, current.gid),
            mtime_ns: Change::if_differs(image.mtime_ns, current.mtime_ns),
            capabilities: false,
        };
        (m != MetadataChange::default()).then_some(m)
    }

    /// Mode, owner or capabilities changed (a `touch` changes only the time).
    pub fn mode_or_owner(&self) -> bool {
        self.mode.is_some() || self.uid.is_some() || self.gid.is_some() || self.capabilities
    }

    /// Names of the changed fields: `mode`, `owner`, `times`, `capabilities`.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.mode.is_some() {
            v.push("mode");
        }
        if self.uid.is_some() || self.gid.is_some() {
            v.push("owner");
        }
        if self.mtime_ns.is_some() {
            v.push("times");
        }
        if self.capabilities {
            v.push("capabilities");
        }
        v
    }
}

/// The verdict on one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// `Image`, `CopyUp`, `Added` or `Modified`.
    pub verdict: Verdict,
    /// The path after following symlinks, lossy UTF-8 (the exact bytes are in `resolved`).
    pub resolved_path: String,
    /// The path after following symlinks, exact and escaped when shown.
    pub resolved: ContainerPath,
    /// blake3 (hex) of the container's file. `None` for `Image`: the image's files are not
    /// hashed on the hot path.
    pub hash: Option<String>,
    /// blake3 (hex) of the image's file at the same path: set for `CopyUp`, and for
    /// `Modified` when the sizes were equal or the image file's hash was already cached.
    pub image_hash: Option<String>,
    /// Mode, owner, mtime or capabilities differ from the image's file (`CopyUp` and
    /// `Modified` only).
    pub metadata_change: Option<MetadataChange>,
    /// Size of the container's file in bytes.
    pub size: u64,
    /// The inode number of the file in the writable layer (`None` when it is only in the
    /// image's layers): the identity a caller compares with the inode the kernel executed.
    pub upper_ino: Option<u64>,
    /// The inode number of the image's file at the same place, when the judged file is in the
    /// writable layer and the image has one (`CopyUp`, `Modified`); overlay reports this
    /// origin's number in `st_ino` of a copied-up file.
    pub image_ino: Option<u64>,
    /// The inode number of the judged file on its layer (upper or lower).
    pub layer_ino: u64,
    /// Which of the image's layers (index into `OverlayLayers::lowers`, top-most first) has
    /// the image's file at this path: the judged file itself for `Image`, the file it was
    /// copied from for `CopyUp` and `Modified`. Known without extra reads; see
    /// [`crate::layer_diff_id`] for its diff id.
    pub image_layer: Option<usize>,
}

impl Judgement {
    /// Is the judged file the one `fstat` of the file handed over reports (overlay with all
    /// layers on one filesystem, no `xino`: `st_ino` is the underlying inode's, the origin's
    /// for a copy-up)?
    pub fn is_inode(&self, st_ino: u64) -> bool {
        self.layer_ino == st_ino || self.image_ino == Some(st_ino)
    }

    /// The mode change when the container's copy is the image's bytes made executable: the
    /// image's file had no execute bit at all and this one has one (`chmod +x`). `chmod 755`
    /// of a file the image already made executable by someone is not this.
    pub fn made_executable(&self) -> Option<Change<u32>> {
        let mode = self.metadata_change?.mode?;
        (self.verdict == Verdict::CopyUp && mode.image & 0o111 == 0 && mode.current & 0o111 != 0)
            .then_some(mode)
    }

    /// The comparison's result as a fact for [`driftwatch_model::verdict`].
    pub fn content(&self) -> Content {
        match self.verdict {
            Verdict::CopyUp => Content::CopyUp,
            Verdict::Added => Content::Added,
            Verdict::Modified => Content::Modified,
            _ => Content::Image,
        }
    }
}

/// A judgement's outcome as a fact for [`driftwatch_model::verdict`]: the content, or why
/// there is none (no file at the path, or the comparison failed).
pub fn content_of(r: &Result<Judgement, JudgeError>) -> Content {
    match r {
        Ok(j) => j.content(),
        Err(e) if e.is_not_found() => Content::Missing,
        Err(_) => Content::Failed,
    }
}

impl Default for Judge {
    fn default() -> Self {
        Self::new()
    }
}

impl Judge {
    pub fn new() -> Judge {
        Judge::with_options(LayerOptions::default(), DEFAULT_HASH_CACHE_ENTRIES)
    }

    /// A judge for layers with other encodings (rootless `userxattr`, aufs tars), holding at
    /// most `cache_entries` hashes.
    pub fn with_options(options: LayerOptions, cache_entries: usize) -> Judge {
        Judge {
            hashes: HashCache::new(cache_entries),
            options,
        }
    }

    /// The hash cache (statistics: files hashed, bytes read).
    pub fn hashes(&self) -> &HashCache {
        &self.hashes
    }

    /// Judges the file at `path`, absolute inside the container, on its root overlay
    /// filesystem. Symlinks are followed (the kernel execs the target). Reads the layers,
    /// never writes them.
    pub fn judge(
        &self,
        layers: &OverlayLayers,
        path: impl AsRef<Path>,
    ) -> Result<Judgement, JudgeError> {
        let path = path.as_ref();
        let roots: Vec<PathBuf> = std::iter::once(layers.upper.clone())
            .chain(layers.lowers.iter().cloned())
            .collect();
        let merged = View {
            roots: &roots,
            first_layer: 0,
            options: self.options,
        };
        let resolved = merged.resolve(path, true)?;
        let cpath = ContainerPath::from_components(&resolved.components);
        let (file, parent) = match resolved.entry {
            ResolvedEntry::File { file, parent } => (file, parent),
            ResolvedEntry::Dir => {
                return Err(JudgeError::NotRegularFile {
                    path: cpath,
                    kind: "directory",
                });
            }
        };
        if !file.meta.is_file() {
            return Err(JudgeError::NotRegularFile {
                path: cpath,
                kind: file.meta.kind_name(),
            });
        }
        let mut j = Judgement {
            verdict: Verdict::Image,
            resolved_path: cpath.to_string_lossy(),
            resolved: cpath,
            hash: None,
            image_hash: None,
            metadata_change: None,
            size: file.meta.size,
            upper_ino: (file.layer == 0).then_some(file.meta.ino),
            image_ino: None,
            layer_ino: file.meta.ino,
            image_layer: file.layer.checked_sub(1),
        };
        if file.layer != 0 {
            return Ok(j);
        }
        // The image's file is what the merged directory shows below the upper dir: an opaque
        // or re-created parent directory hides the lower copies.
        let below: Vec<_> = parent.into_iter().filter(|d| d.layer != 0).collect();
        let image_file = match merged.lookup(&below, &file.name)? {
            Lookup::File(f) => Some(f),
            Lookup::Dir(_) | Lookup::Missing => None,
        };
        let Some(image_file) = image_file else {
            let (h, _) = self.hash(&file)?;
            j.verdict = Verdict::Added;
            j.hash = Some(h.to_hex().to_string());
            return Ok(j);
        };
        j.image_ino = Some(image_file.meta.ino);
        j.image_layer = image_file.layer.checked_sub(1);
        j.metadata_change = MetadataChange::between(&image_file.meta, &file.meta);
        if capabilities(&image_file) != capabilities(&file) {
            j.metadata_change.get_or_insert_default().capabilities = true;
        }
        if !image_file.meta.is_file() {
            // A symlink, device... replaced by a regular file.
            let (h, _) = self.hash(&file)?;
            j.verdict = Verdict::Modified;
            j.hash = Some(h.to_hex().to_string());
            return Ok(j);
        }
        if is_metacopy(&file) {
            // overlay `metacopy=on`: the upper file holds metadata only, data is the lower's.
            let (ih, _) = self.hash(&image_file)?;
            j.verdict = Verdict::CopyUp;
            j.hash = Some(ih.to_hex().to_string());
            j.image_hash = j.hash.clone();
            return Ok(j);
        }
        let (h, now) = self.hash(&file)?;
        j.hash = Some(h.to_hex().to_string());
        j.size = now.size;
        if now.size != image_file.meta.size {
            j.verdict = Verdict::Modified;
            j.image_hash = self
                .hashes
                .get(&FileKey::from(&image_file.meta))
                .map(|h| h.to_hex().to_string());
            return Ok(j);
        }
        let (ih, _) = self.hash(&image_file)?;
        j.image_hash = Some(ih.to_hex().to_string());
        j.verdict = if ih == h {
            Verdict::CopyUp
        } else {
            Verdict::Modified
        };
        Ok(j)
    }

    fn hash(&self, f: &FileEntry) -> Result<(blake3::Hash, Meta), JudgeError> {
        Ok(self.hashes.hash_at(&f.parent, &f.name, &f.meta)?)
    }
}

/// The file's `security.capability` xattr, if any.
fn capabilities(f: &FileEntry) -> Option<Vec<u8>> {
    crate::overlay::xattr_of(&f.parent, &f.name, "security.capability")
}

/// The upper file carries `trusted.overlay.metacopy`: its data lives in a lower layer.
fn is_metacopy(f: &FileEntry) -> bool {
    crate::overlay::xattr_of(&f.parent, &f.name, "trusted.overlay.metacopy").is_some()
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests check their fixtures with std::fs"
)]
pub(crate) mod tests;
