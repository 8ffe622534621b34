//! "Is this drift?": the one pure verdict over a file's facts, shared by detection (the exec
//! sensor), prevention (fanotify's exec permission, orphans held while no agent ran) and file
//! drift. Callers gather the facts (the kernel's record or `fstat` of the file handed over,
//! the mount it lives on, the content comparison with the image's layers, the identity check
//! of the judged path); this decides, with no I/O, so every path answers alike.

use crate::Verdict;

/// The filesystem a file lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residence {
    /// The container's root overlay (the file's device is the root mount's). `upper`: the
    /// file has a writable-layer copy; `lower`: the image's layers have one too. A file named
    /// by path, whose bits nobody handed over, is `upper: true, lower: true`: only its content
    /// can tell.
    RootOverlay { upper: bool, lower: bool },
    /// An anonymous memory file (`memfd_create`).
    Memfd,
    /// tmpfs, ramfs or hugetlbfs: memory, never the image.
    Memory,
    /// proc, sysfs, devpts and the like: a program or library named there is a magic link to
    /// some other file (`/proc/self/fd/3`), which the path does not identify.
    KernelPseudo,
    /// Any other filesystem (a volume, a bind mount of the host, an overlay that is not the
    /// container's root): not the image.
    Volume,
}

/// What comparing the file at the judged path with the image's layers said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Not compared: not needed, or the container's layers are unknown.
    NotCompared,
    /// Only in the image's layers.
    Image,
    /// In the writable layer, byte-identical to the image's file.
    CopyUp,
    /// In the writable layer only.
    Added,
    /// In the writable layer, different from the image's file.
    Modified,
    /// No file at the judged path.
    Missing,
    /// The comparison failed (unreadable, not a regular file, a symlink loop, ...).
    Failed,
}

/// Is the file judged at a path the file that runs?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The kernel handed the file over and the judged path's writable-layer inode is its own.
    Verified,
    /// The kernel handed the file over and the judged path is another file (renamed or
    /// replaced after exec, or a path the container steered), or none.
    Mismatch,
    /// The kernel handed the file over; nothing to check (not compared, or no upper inode).
    Unchecked,
    /// Named by path only (a script, a loader's target, a preloaded library), resolved in
    /// the container's mounts as the agent read them.
    ByPath,
    /// Named by path in a mount namespace or root the agent has not read (made inside the
    /// container): the path may name a different file than the one loaded.
    ByPathUnresolved,
}

/// The facts about one file; see [`verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    pub residence: Residence,
    /// The kernel reported no links left: it ran from an open file that was unlinked.
    pub unlinked: bool,
    pub content: Content,
    pub identity: Identity,
    /// The file was there when the code was loaded (the kernel opened it: an executed file or
    /// a script), so a missing path is a file that moved, not one never loaded.
    pub existed: bool,
    /// The kernel executed this file, and its writable-layer copy has an execute bit while the
    /// image's file at the same path had none (`chmod +x` in the container). Only callers that
    /// judge an executed file set it: a library or a script handed to an interpreter needs no
    /// execute bit to run.
    pub made_executable: bool,
}

/// The verdict on one file from its facts.
pub fn verdict(f: &FileFacts) -> Verdict {
    let upper_only = matches!(
        f.residence,
        Residence::RootOverlay {
            upper: true,
            lower: false
        }
    );
    match f.residence {
        Residence::Memfd => return Verdict::Memfd,
        _ if f.unlinked => return Verdict::Deleted,
        Residence::Memory => return Verdict::Tmpfs,
        Residence::Volume => return Verdict::Volume,
        Residence::KernelPseudo => return Verdict::Unjudged,
        Residence::RootOverlay { upper: false, .. } => return Verdict::Image,
        Residence::RootOverlay { upper: true, .. } => {}
    }
    match (f.content, f.identity) {
        // Whatever the path says, the kernel's file has no image copy under it.
        (_, Identity::Mismatch) if upper_only => Verdict::Added,
        (_, Identity::Mismatch) => Verdict::Unjudged,
        (Content::Added, _) => Verdict::Added,
        (Content::Modified, _) => Verdict::Modified,
        // A path judged in mounts the agent does not know may not be the loaded file.
        (Content::Image | Content::CopyUp, Identity::ByPathUnresolved) => Verdict::Unjudged,
        (Content::Image, _) => Verdict::Image,
        // The image's bytes, but the image never let them run: the mode is the change.
        (Content::CopyUp, _) if f.made_executable => Verdict::Metadata,
        (Content::CopyUp, _) => Verdict::CopyUp,
        (Content::Missing, Identity::ByPath | Identity::ByPathUnresolved) if !f.existed => {
            Verdict::Unknown
        }
        (Content::Missing | Content::Failed | Content::NotCompared, _) if upper_only => {
            Verdict::Added
        }
        (Content::Missing | Content::Failed | Content::NotCompared, _) => Verdict::Unjudged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPPER: Residence = Residence::RootOverlay {
        upper: true,
        lower: false,
    };
    const BOTH: Residence = Residence::RootOverlay {
        upper: true,
        lower: true,
    };
    const LOWER: Residence = Residence::RootOverlay {
        upper: false,
        lower: true,
    };

    fn facts(residence: Residence, content: Content, identity: Identity) -> FileFacts {
        FileFacts {
            residence,
            unlinked: false,
            content,
            identity,
            existed: true,
            made_executable: false,
        }
    }

    /// Every residence × content × identity, with the verdict written out: one table, so
    /// a change to any answer shows up here.
    #[test]
    fn every_case() {
        use Content::*;
        use Identity::*;
        use Verdict as V;
        let contents = [NotCompared, Image, CopyUp, Added, Modified, Missing, Failed];
        // (identity, [verdict for each content above]) for a file in both layers.
        let by_content = [
            V::Unjudged,
            V::Image,
            V::CopyUp,
            V::Added,
            V::Modified,
            V::Unjudged,
            V::Unjudged,
        ];
        let unresolved = [
            V::Unjudged,
            V::Unjudged,
            V::Unjudged,
            V::Added,
            V::Modified,
            V::Unjudged,
            V::Unjudged,
        ];
        let both: [(Identity, [V; 7]); 5] = [
            (Verified, by_content),
            (Mismatch, [V::Unjudged; 7]),
            (Unchecked, by_content),
            (ByPath, by_content),
            (ByPathUnresolved, unresolved),
        ];
        for (identity, row) in both {
            for (content, want) in contents.iter().zip(row) {
                let f = facts(BOTH, *content, identity);
                assert_eq!(verdict(&f), want, "{f:?}");
            }
        }
        // Upper only: drift whatever the path or the comparison says (Image/CopyUp from a
        // path that is not the executed file's can only come through a mismatch).
        for identity in [Verified, Mismatch, Unchecked, ByPath, ByPathUnresolved] {
            for content in contents {
                let f = facts(UPPER, content, identity);
                let want = match (content, identity) {
                    (_, Mismatch) => V::Added,
                    (Modified, _) => V::Modified,
                    (Image | CopyUp, ByPathUnresolved) => V::Unjudged,
                    (Image, _) => V::Image,
                    (CopyUp, _) => V::CopyUp,
                    _ => V::Added,
                };
                assert_eq!(verdict(&f), want, "{f:?}");
            }
        }
        // Everything else is decided by the filesystem alone.
        for identity in [Verified, Mismatch, Unchecked, ByPath, ByPathUnresolved] {
            for content in contents {
                let v = |r| verdict(&facts(r, content, identity));
                assert_eq!(v(LOWER), V::Image);
                assert_eq!(v(Residence::Memfd), V::Memfd);
                assert_eq!(v(Residence::Memory), V::Tmpfs);
                assert_eq!(v(Residence::Volume), V::Volume);
                assert_eq!(v(Residence::KernelPseudo), V::Unjudged);
            }
        }
    }

    #[test]
    fn unlinked_files_are_deleted_except_memfds() {
        for r in [UPPER, BOTH, LOWER, Residence::Memory, Residence::Volume] {
            let f = FileFacts {
                unlinked: true,
                ..facts(r, Content::Image, Identity::Verified)
            };
            assert_eq!(verdict(&f), Verdict::Deleted, "{r:?}");
        }
        let f = FileFacts {
            unlinked: true,
            ..facts(Residence::Memfd, Content::NotCompared, Identity::Unchecked)
        };
        assert_eq!(verdict(&f), Verdict::Memfd);
    }

    #[test]
    fn a_named_file_that_was_never_there_is_not_drift() {
        // LD_PRELOAD naming nothing: the loader skips it.
        let f = FileFacts {
            existed: false,
            ..facts(BOTH, Content::Missing, Identity::ByPath)
        };
        assert_eq!(verdict(&f), Verdict::Unknown);
        // A script the kernel opened, gone by the time it is judged: reported.
        let f = facts(BOTH, Content::Missing, Identity::ByPath);
        assert_eq!(verdict(&f), Verdict::Unjudged);
    }

    #[test]
    fn an_image_file_made_executable_is_metadata_drift_only_when_its_bytes_are_the_images() {
        let made = |content, identity| {
            verdict(&FileFacts {
                made_executable: true,
                ..facts(BOTH, content, identity)
            })
        };
        assert_eq!(made(Content::CopyUp, Identity::Verified), Verdict::Metadata);
        assert_eq!(made(Content::CopyUp, Identity::ByPath), Verdict::Metadata);
        // Changed bytes are the bigger news; a path that may be another file is unjudged.
        assert_eq!(
            made(Content::Modified, Identity::Verified),
            Verdict::Modified
        );
        assert_eq!(
            made(Content::CopyUp, Identity::ByPathUnresolved),
            Verdict::Unjudged
        );
        assert_eq!(made(Content::CopyUp, Identity::Mismatch), Verdict::Unjudged);
        // Without the fact, a copy-up is the image's file.
        assert_eq!(
            verdict(&facts(BOTH, Content::CopyUp, Identity::Verified)),
            Verdict::CopyUp
        );
    }
}
