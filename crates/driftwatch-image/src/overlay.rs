//! The merged view of overlay layers, read from the layer directories without mounting:
//! lookups honour whiteouts and opaque directories, and path resolution follows symlinks
//! inside the container's root.
//!
//! Every step works relative to an open directory fd and never follows a symlink on the
//! host: the upper dir is writable by the container, and a directory swapped for a symlink
//! to `/` between two of our calls must not make us read the host's files.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{JudgeError, LayerIoError};
use crate::path::{ContainerPath, MAX_SYMLINK_HOPS};

/// How the layer directories encode deletions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The overlay is mounted with `userxattr` (rootless engines): honour
    /// `user.overlay.opaque` as well as `trusted.overlay.opaque`. Off by default, because on
    /// a normal mount overlayfs ignores `user.overlay.*` while any container process can set
    /// it on its own files: honouring it would let a container hide image files from us.
    pub userxattr: bool,
    /// The layers are extracted image tars (aufs-style): `.wh.NAME` deletes `NAME` and
    /// `.wh..wh..opq` makes its directory opaque. Off by default: overlayfs treats those as
    /// ordinary names, so in an upper dir they are just files a container made.
    pub aufs_whiteouts: bool,
}

const AUFS_WHITEOUT_PREFIX: &[u8] = b".wh.";
const AUFS_OPAQUE: &str = ".wh..wh..opq";

/// What we keep of a `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Meta {
    #[expect(
        clippy::unnecessary_cast,
        reason = "stat field types differ between architectures"
    )]
    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Meta {
        Meta {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            rdev: st.st_rdev as u64,
            size: st.st_size as u64,
            mtime_ns: (st.st_mtime as i64) * 1_000_000_000 + st.st_mtime_nsec as i64,
            ctime_ns: (st.st_ctime as i64) * 1_000_000_000 + st.st_ctime_nsec as i64,
        }
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    /// An overlay whiteout: a character device 0/0.
    pub fn is_whiteout(&self) -> bool {
        self.file_type() == FileType::CharacterDevice && self.rdev == 0
    }

    /// Permission bits with setuid/setgid/sticky.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    pub fn kind_name(&self) -> &'static str {
        kind_name(self.file_type())
    }
}

pub(crate) use driftwatch_fs::kind_name;

/// One layer's copy of a directory of the merged view, open.
#[derive(Debug)]
pub struct DirHandle {
    /// Index into the view's layers: with the upper dir present, 0 is the upper dir.
    pub layer: usize,
    pub fd: OwnedFd,
    /// Host path, for messages only: never opened by path.
    pub host: PathBuf,
}

/// A directory of the merged view: its copies, top-most first, down to the first opaque one.
pub type DirStack = Vec<Arc<DirHandle>>;

/// A non-directory entry of the merged view: the top-most layer's copy.
#[derive(Clone, Debug)]
pub struct FileEntry {
    pub layer: usize,
    pub parent: Arc<DirHandle>,
    pub name: OsString,
    pub meta: Meta,
}

impl FileEntry {
    pub fn host_path(&self) -> PathBuf {
        self.parent.host.join(&self.name)
    }
}

/// What a name is in a merged directory.
#[derive(Debug)]
pub enum Lookup {
    Missing,
    Dir(DirStack),
    File(FileEntry),
}

/// A stack of layer roots, top-most first: `[upper, lowers...]` for the container's view,
/// `[lowers...]` for the image's.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Host paths of the layer roots, top-most first.
    pub roots: &'a [PathBuf],
    /// Layer index of `roots[0]`.
    pub first_layer: usize,
    pub options: LayerOptions,
}

pub(crate) fn io_err(
    op: &'static str,
    host: impl Into<PathBuf>,
    e: impl Into<io::Error>,
) -> LayerIoError {
    LayerIoError::new(op, host, e)
}

impl View<'_> {
    /// Opens the root directory of every layer, down to the first opaque one.
    pub fn open_root(&self) -> Result<DirStack, LayerIoError> {
        let mut stack = Vec::with_capacity(self.roots.len());
        for (i, root) in self.roots.iter().enumerate() {
            let fd = rustix::fs::open(
                root.as_path(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("open layer", root, e))?;
            let h = Arc::new(DirHandle {
                layer: self.first_layer + i,
                fd,
                host: root.clone(),
            });
            let opaque = self.is_opaque(&h)?;
            stack.push(h);
            if opaque {
                break;
            }
        }
        Ok(stack)
    }

    /// Whether this layer's copy of a directory hides the copies below it.
    pub fn is_opaque(&self, dir: &DirHandle) -> Result<bool, LayerIoError> {
        if xattr_is_y(dir, "trusted.overlay.opaque")? {
            return Ok(true);
        }
        if self.options.userxattr && xattr_is_y(dir, "user.overlay.opaque")? {
            return Ok(true);
        }
        if self.options.aufs_whiteouts {
            return exists_in(dir, OsStr::new(AUFS_OPAQUE));
        }
        Ok(false)
    }

    /// Whether `name` is an aufs whiteout name (hidden from the merged view in aufs mode).
    pub fn is_aufs_marker(&self, name: &OsStr) -> bool {
        self.options.aufs_whiteouts && name.as_bytes().starts_with(AUFS_WHITEOUT_PREFIX)
    }

    /// Looks `name` up in a merged directory.
    pub fn lookup(&self, stack: &[Arc<DirHandle>], name: &OsStr) -> Result<Lookup, LayerIoError> {
        if self.is_aufs_marker(name) {
            return Ok(Lookup::Missing);
        }
        let mut dirs: DirStack = Vec::new();
        for d in stack {
            let meta = match rustix::fs::statat(&d.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Meta::from_stat(&st),
                Err(Errno::NOENT) => {
                    if self.options.aufs_whiteouts && exists_in(d, &aufs_whiteout_name(name))? {
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(io_err("stat", d.host.join(name), e)),
            };
            if meta.is_whiteout() {
                break;
            }
            if meta.is_dir() {
                let fd = match rustix::fs::openat(
                    &d.fd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    // Replaced by something else since the stat: treat as gone in this layer.
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                    Err(e) => return Err(io_err("open directory", d.host.join(name), e)),
                };
                let h = Arc::new(DirHandle {
                    layer: d.layer,
                    fd,
                    host: d.host.join(name),
                });
                let opaque = self.is_opaque(&h)?;
                dirs.push(h);
                if opaque {
                    break;
                }
            } else if dirs.is_empty() {
                return Ok(Lookup::File(FileEntry {
                    layer: d.layer,
                    parent: d.clone(),
                    name: name.to_os_string(),
                    meta,
                }));
            } else {
                // A non-directory below a directory ends the merge.
                break;
            }
        }
        Ok(if dirs.is_empty() {
            Lookup::Missing
        } else {
            Lookup::Dir(dirs)
        })
    }

    /// Resolves an absolute container path as the kernel would in the merged view:
    /// symlinks in every component (and in the last one when `follow_final`) are followed,
    /// absolute targets from the container's root, at most [`MAX_SYMLINK_HOPS`] of them.
    pub fn resolve(&self, path: &Path, follow_final: bool) -> Result<Resolved, JudgeError> {
        let cpath = ContainerPath::from(path);
        let bytes = path.as_os_str().as_bytes();
        if bytes.first() != Some(&b'/') {
            return Err(JudgeError::NotAbsolute { path: cpath });
        }
        let mut todo: VecDeque<OsString> = split(bytes).collect();
        let mut stacks: Vec<DirStack> = vec![self.open_root()?];
        let mut comps: Vec<OsString> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                if !comps.is_empty() {
                    comps.pop();
                    stacks.pop();
                }
                continue;
            }
            let is_last = todo.is_empty();
            let top = stacks.last().expect("the root stays on the stack");
            match self.lookup(top, &c)? {
                Lookup::Missing => return Err(JudgeError::NotFound { path: cpath }),
                Lookup::Dir(s) => {
                    comps.push(c);
                    stacks.push(s);
                }
                Lookup::File(f) if f.meta.is_symlink() && (!is_last || follow_final) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(JudgeError::SymlinkLoop { path: cpath });
                    }
                    let target = rustix::fs::readlinkat(&f.parent.fd, &f.name, Vec::new())
                        .map_err(|e| io_err("readlink", f.host_path(), e))?;
                    let target = target.into_bytes();
                    if target.is_empty() {
                        return Err(JudgeError::NotFound { path: cpath });
                    }
                    if target[0] == b'/' {
                        comps.clear();
                        stacks.truncate(1);
                    }
                    for (i, t) in split(&target).enumerate() {
                        todo.insert(i, t);
                    }
                }
                Lookup::File(f) => {
                    if !is_last {
                        return Err(JudgeError::NotADirectory { path: cpath });
                    }
                    comps.push(c);
                    let parent = stacks.pop().expect("the root stays on the stack");
                    return Ok(Resolved {
                        components: comps,
                        entry: ResolvedEntry::File { file: f, parent },
                    });
                }
            }
        }
        Ok(Resolved {
            components: comps,
            entry: ResolvedEntry::Dir,
        })
    }
}

/// A path resolved in a view.
#[derive(Debug)]
pub struct Resolved {
    /// The physical path: no symlink, `.` or `..` left.
    pub components: Vec<OsString>,
    pub entry: ResolvedEntry,
}

#[derive(Debug)]
pub enum ResolvedEntry {
    Dir,
    /// A non-directory and the merged directory holding it.
    File {
        file: FileEntry,
        parent: DirStack,
    },
}

/// Path components, without empty ones and `.`.
fn split(bytes: &[u8]) -> impl Iterator<Item = OsString> + '_ {
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
}

fn aufs_whiteout_name(name: &OsStr) -> OsString {
    let mut v = AUFS_WHITEOUT_PREFIX.to_vec();
    v.extend_from_slice(name.as_bytes());
    OsString::from_vec(v)
}

fn exists_in(dir: &DirHandle, name: &OsStr) -> Result<bool, LayerIoError> {
    match rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(io_err("stat", dir.host.join(name), e)),
    }
}

fn xattr_is_y(dir: &DirHandle, name: &str) -> Result<bool, LayerIoError> {
    let mut buf = [0u8; 8];
    match rustix::fs::fgetxattr(dir.fd.as_fd(), name, &mut buf[..]) {
        Ok(n) => Ok(&buf[..n] == b"y"),
        Err(Errno::NODATA | Errno::OPNOTSUPP | Errno::RANGE) => Ok(false),
        Err(e) => Err(io_err("getxattr", dir.host.clone(), e)),
    }
}

/// The value of extended attribute `xattr` of `name` in `dir` (not following a symlink), or
/// `None` when it has none or it cannot be read.
pub(crate) fn xattr_of(dir: &DirHandle, name: &OsStr, xattr: &str) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::openat(
        &dir.fd,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // fgetxattr refuses O_PATH fds; the /proc magic link reaches the very inode we opened.
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::getxattr(proc_path.as_str(), xattr, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}
