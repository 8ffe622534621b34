//! Container file access: the one way driftwatch opens a path a container controls.
//!
//! The agent runs as root on the host; a container controls its own files, and through its
//! writable layer, part of the host's filesystem. Reading such a path with `std::fs` follows
//! the container's symlinks on the host (an absolute link reads the host's file), blocks on a
//! FIFO, reads a device (`/etc/passwd -> /dev/zero` is a read without end) and reads files of
//! any size. Everything here goes through an open directory, a [`Root`], instead:
//!
//! - the path is resolved by `openat2(2)` relative to the root: [`Resolve::InRoot`]
//!   (`RESOLVE_IN_ROOT`: symlinks, absolute ones included, resolve inside the container's root,
//!   `..` stops there) or [`Resolve::Beneath`] (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_XDEV`: for overlay layer dirs, where no symlink is ours to follow and no mount
//!   is the layer's); magic links (`/proc/<pid>/fd/N` style) are never followed;
//! - the file is first opened `O_PATH` and `fstat`ed: anything but a regular file (or the
//!   directory asked for) is refused **before** it is opened for reading, so a device's open
//!   has no side effect and a FIFO cannot block;
//! - it is then reopened read-only through our own `/proc/self/fd/N` (the same inode: the
//!   container cannot swap it in between) with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC` and, where
//!   allowed, `O_NOATIME`;
//! - every read has a cap ([`Limit`]): a file over the cap is an error or a truncated read, as
//!   the caller asks, never an unbounded read, even when the file grows while read;
//! - every error ([`FsError`]) names the container and the path.
//!
//! Paths inside a container are [`InContainer`]: it does not implement `AsRef<Path>`, so it
//! cannot be handed to `std::fs` by mistake. The crates that touch containers ban `std::fs`'s
//! readers with clippy's `disallowed-methods` (see their `clippy.toml`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

pub mod host;

/// The read cap for small text files a container controls (`/etc/passwd`, `/etc/group`,
/// `os-release`): 4 MiB, far above any real one.
pub const SMALL_FILE_CAP: u64 = 4 << 20;

/// The read cap for package databases in `driftwatch diff` and `capture` (dpkg `status`, apk
/// `installed`, Python `METADATA`, `package.json`): 256 MiB, run on request.
pub const PACKAGE_DB_CAP: u64 = 256 << 20;

/// The read cap for package databases in the agent, which reads them whenever a container
/// changes one: 32 MiB, a few times a large dpkg `status` (a desktop install is about 5 MiB).
pub const AGENT_PACKAGE_DB_CAP: u64 = 32 << 20;

/// How paths are resolved below a [`Root`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: the root is a container's `/` (e.g.
    /// `/proc/<pid>/root`); symlinks are followed as the container's processes would see them,
    /// confined to it: an absolute link starts again at the container's root, `..` stops there.
    /// Mounts inside the container (volumes, `/etc/hosts`) are crossed: they are its view.
    InRoot,
    /// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, and
    /// `O_NOFOLLOW` on the last component: the root is an overlay layer directory, where a
    /// symlink is a file of the layer, never something to follow, and another mount is never
    /// part of the layer.
    Beneath,
}

impl Resolve {
    fn flags(self) -> ResolveFlags {
        match self {
            Resolve::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            Resolve::Beneath => {
                ResolveFlags::BENEATH
                    | ResolveFlags::NO_SYMLINKS
                    | ResolveFlags::NO_MAGICLINKS
                    | ResolveFlags::NO_XDEV
            }
        }
    }

    fn nofollow(self) -> OFlags {
        match self {
            Resolve::InRoot => OFlags::empty(),
            Resolve::Beneath => OFlags::NOFOLLOW,
        }
    }
}

/// How much of a file to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The whole file, or [`FsError::TooBig`] when it is (or grows) larger than this many bytes.
    Whole(u64),
    /// At most this many bytes from the start; the rest is not read.
    Prefix(u64),
}

impl Limit {
    fn cap(self) -> u64 {
        match self {
            Limit::Whole(n) | Limit::Prefix(n) => n,
        }
    }
}

/// A path inside a container (absolute, as its processes see it), or inside a layer
/// directory; a relative path is taken from the root (`etc/passwd` is `/etc/passwd`). Only
/// this crate opens it: it is deliberately not `AsRef<Path>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InContainer(OsString);

impl InContainer {
    pub fn new(path: impl Into<OsString>) -> Self {
        let path = path.into();
        if path.as_bytes().first() == Some(&b'/') {
            return InContainer(path);
        }
        let mut v = Vec::with_capacity(path.len() + 1);
        v.push(b'/');
        v.extend_from_slice(path.as_bytes());
        InContainer(OsString::from_vec(v))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// `self/name`.
    pub fn join(&self, name: impl AsRef<OsStr>) -> InContainer {
        let mut v = self.0.as_bytes().to_vec();
        if v.last() != Some(&b'/') {
            v.push(b'/');
        }
        v.extend_from_slice(name.as_ref().as_bytes());
        InContainer(OsString::from_vec(v))
    }

    /// The path relative to the root it is resolved in (`.` for the root itself).
    fn relative(&self) -> &OsStr {
        let mut b = self.0.as_bytes();
        while let Some(rest) = b.strip_prefix(b"/") {
            b = rest;
        }
        if b.is_empty() {
            OsStr::new(".")
        } else {
            OsStr::from_bytes(b)
        }
    }
}

impl From<&str> for InContainer {
    fn from(s: &str) -> Self {
        InContainer::new(s)
    }
}

impl fmt::Display for InContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0.as_bytes()))
    }
}

impl fmt::Debug for InContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Bytes shown on one printable line: control characters, `\` and bytes that are not UTF-8
/// escaped (`\n`, `\\`, `\xNN`), so a hostile name cannot forge a log line.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Why a container's file was not read. Every variant names the container and the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call failed (`op`: what we were doing).
    #[error("container {container}: {path}: {op}: {source}")]
    Io {
        container: String,
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Not a regular file (or not the directory asked for): refused before it was opened for
    /// reading.
    #[error("container {container}: {path}: a {kind}, not a {wanted}; refused")]
    WrongType {
        container: String,
        path: String,
        kind: &'static str,
        wanted: &'static str,
    },
    /// Larger than the caller's cap.
    #[error("container {container}: {path}: more than the {cap} byte cap; not read")]
    TooBig {
        container: String,
        path: String,
        cap: u64,
    },
}

impl FsError {
    fn errno(&self) -> Option<i32> {
        match self {
            FsError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The error without the container and path (for a caller whose own error names them):
    /// a failed call's own error (its kind kept), or what was refused.
    pub fn into_io(self) -> io::Error {
        match self {
            FsError::Io { source, .. } => source,
            FsError::WrongType { kind, wanted, .. } => {
                io::Error::other(format!("not a {wanted} but a {kind}"))
            }
            FsError::TooBig { cap, .. } => {
                io::Error::other(format!("more than the {cap} byte cap"))
            }
        }
    }

    /// The path is simply not there (as opposed to refused or unreadable).
    pub fn is_not_found(&self) -> bool {
        self.errno()
            .is_some_and(|e| e == Errno::NOENT.raw_os_error() || e == Errno::NOTDIR.raw_os_error())
    }

    /// The resolution would have left the root, crossed a mount, or followed a symlink where
    /// none may be followed.
    pub fn is_escape(&self) -> bool {
        self.errno()
            .is_some_and(|e| e == Errno::XDEV.raw_os_error() || e == Errno::LOOP.raw_os_error())
    }
}

/// What a file's type is, in words.
pub fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown file type",
    }
}

/// An open directory that a container controls (its `/`, a layer directory, a volume), and
/// whose it is: every open of a path below it goes through here.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    container: String,
    /// The host path, for messages only: never opened by path after [`Root::open_host_dir`].
    host: PathBuf,
    resolve: Resolve,
}

impl Root {
    /// The root of a running process of the container (`/proc/<pid>/root`), resolved in root.
    pub fn of_process(container: impl Into<String>, pid: u32) -> Result<Root, FsError> {
        Root::open_host_dir(container, format!("/proc/{pid}/root"), Resolve::InRoot)
    }

    /// A layer directory on the host (an overlay upper or lower dir), resolved beneath it.
    pub fn layer(container: impl Into<String>, dir: impl Into<PathBuf>) -> Result<Root, FsError> {
        Root::open_host_dir(container, dir, Resolve::Beneath)
    }

    /// Opens `host` (a path the agent chose, e.g. from the engine or mountinfo: the
    /// container does not control its components) as a root.
    pub fn open_host_dir(
        container: impl Into<String>,
        host: impl Into<PathBuf>,
        resolve: Resolve,
    ) -> Result<Root, FsError> {
        let container = container.into();
        let host = host.into();
        let fd = rustix::fs::open(
            host.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError::Io {
            container: container.clone(),
            path: escape(host.as_os_str().as_bytes()),
            op: "open root",
            source: e.into(),
        })?;
        Ok(Root {
            fd,
            container,
            host,
            resolve,
        })
    }

    /// A root from a directory already open.
    pub fn from_fd(
        container: impl Into<String>,
        host: impl Into<PathBuf>,
        fd: OwnedFd,
        resolve: Resolve,
    ) -> Root {
        Root {
            fd,
            container: container.into(),
            host: host.into(),
            resolve,
        }
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    pub fn host(&self) -> &Path {
        &self.host
    }

    fn err(&self, path: &InContainer, op: &'static str, e: impl Into<io::Error>) -> FsError {
        FsError::Io {
            container: self.container.clone(),
            path: self.shown(path),
            op,
            source: e.into(),
        }
    }

    /// `path` for messages: the container path, and for a layer the host directory too.
    fn shown(&self, path: &InContainer) -> String {
        match self.resolve {
            Resolve::InRoot => path.to_string(),
            Resolve::Beneath => format!(
                "{} (in layer {})",
                path,
                escape(self.host.as_os_str().as_bytes())
            ),
        }
    }

    /// An `O_PATH` descriptor of `path` and its `fstat`: nothing of the file is opened yet.
    fn locate(&self, path: &InContainer) -> Result<(OwnedFd, Stat), FsError> {
        let fd = rustix::fs::openat2(
            &self.fd,
            path.relative(),
            OFlags::PATH | OFlags::CLOEXEC | self.resolve.nofollow(),
            Mode::empty(),
            self.resolve.flags(),
        )
        .map_err(|e| self.err(path, "resolve", e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.err(path, "fstat", e))?;
        Ok((fd, st))
    }

    /// Opens the regular file at `path`; anything else is refused unopened.
    pub fn open(&self, path: &InContainer) -> Result<ContainerFile, FsError> {
        let (fd, st) = self.locate(path)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(FsError::WrongType {
                container: self.container.clone(),
                path: self.shown(path),
                kind: kind_name(kind),
                wanted: "regular file",
            });
        }
        let file = reopen(fd.as_fd(), &st).map_err(|e| self.err(path, "open", e))?;
        Ok(ContainerFile {
            file,
            stat: st,
            container: self.container.clone(),
            path: self.shown(path),
        })
    }

    /// Reads the regular file at `path` within `limit`.
    pub fn read(&self, path: &InContainer, limit: Limit) -> Result<Vec<u8>, FsError> {
        self.open(path)?.read(limit)
    }

    /// Opens the directory at `path` as a root of its own (same resolution); anything else
    /// is refused.
    pub fn open_dir(&self, path: &InContainer) -> Result<Root, FsError> {
        let fd = rustix::fs::openat2(
            &self.fd,
            path.relative(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | self.resolve.nofollow(),
            Mode::empty(),
            self.resolve.flags(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR => FsError::WrongType {
                container: self.container.clone(),
                path: self.shown(path),
                kind: "non-directory",
                wanted: "directory",
            },
            e => self.err(path, "open directory", e),
        })?;
        let mut host = self.host.clone();
        host.push(path.relative());
        Ok(Root {
            fd,
            container: self.container.clone(),
            host,
            resolve: self.resolve,
        })
    }

    /// An `O_PATH` descriptor of whatever `path` names (any file type: nothing is opened
    /// for reading or writing) and its `fstat`. For handing the object itself to a syscall
    /// that takes a path, as `/proc/self/fd/N`: the kernel then acts on exactly what this
    /// resolution found, inside the root, not on a path the container can re-point.
    pub fn open_path(&self, path: &InContainer) -> Result<(OwnedFd, Stat), FsError> {
        self.locate(path)
    }

    /// The `fstat` of `path` without following a last symlink (`lstat` semantics in
    /// [`Resolve::Beneath`]), or of what it names (in [`Resolve::InRoot`]).
    pub fn stat(&self, path: &InContainer) -> Result<Stat, FsError> {
        self.locate(path).map(|(_, st)| st)
    }

    /// Like [`Root::stat`], as `std::fs::Metadata` (what `symlink_metadata` gives in
    /// [`Resolve::Beneath`]).
    pub fn metadata(&self, path: &InContainer) -> Result<std::fs::Metadata, FsError> {
        let (fd, _) = self.locate(path)?;
        File::from(fd)
            .metadata()
            .map_err(|e| self.err(path, "fstat", e))
    }

    /// The directory itself.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory's descriptor, for a walk that goes on relative to it.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Opens the regular file `name` directly in the directory `dir` (already resolved safely,
/// e.g. a layer walk's directory fd), never following a symlink, refusing anything but a
/// regular file before opening it for reading. `container` and `host_dir` name it in errors.
pub fn open_entry(
    container: &str,
    dir: BorrowedFd<'_>,
    host_dir: &Path,
    name: &OsStr,
) -> Result<ContainerFile, FsError> {
    let shown = || escape(host_dir.join(name).as_os_str().as_bytes());
    let err = |op, e: Errno| FsError::Io {
        container: container.to_string(),
        path: shown(),
        op,
        source: e.into(),
    };
    if name.as_bytes().contains(&b'/') || name == ".." || name == "." || name.is_empty() {
        return Err(err("open", Errno::INVAL));
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("open", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| err("fstat", e))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(FsError::WrongType {
            container: container.to_string(),
            path: shown(),
            kind: kind_name(kind),
            wanted: "regular file",
        });
    }
    let file = reopen(fd.as_fd(), &st).map_err(|e| err("open", e))?;
    Ok(ContainerFile {
        file,
        stat: st,
        container: container.to_string(),
        path: shown(),
    })
}

/// Opens for reading the very inode `path_fd` (an `O_PATH` descriptor) refers to, through our
/// own `/proc/self/fd` entry, and checks it is still that inode.
fn reopen(path_fd: BorrowedFd<'_>, st: &Stat) -> Result<File, Errno> {
    let proc = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = match rustix::fs::open(proc.as_str(), flags | OFlags::NOATIME, Mode::empty()) {
        // O_NOATIME needs ownership or CAP_FOWNER.
        Err(Errno::PERM) => rustix::fs::open(proc.as_str(), flags, Mode::empty()),
        r => r,
    }?;
    let now = rustix::fs::fstat(&fd)?;
    if now.st_dev != st.st_dev
        || now.st_ino != st.st_ino
        || FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
    {
        return Err(Errno::STALE);
    }
    Ok(File::from(fd))
}

/// A regular file of a container, open for reading.
#[derive(Debug)]
pub struct ContainerFile {
    file: File,
    stat: Stat,
    container: String,
    path: String,
}

impl ContainerFile {
    /// Its size when opened.
    pub fn size(&self) -> u64 {
        self.stat.st_size as u64
    }

    /// Its mode bits (type and permissions) when opened.
    #[expect(
        clippy::unnecessary_cast,
        reason = "stat field types differ between architectures"
    )]
    pub fn mode(&self) -> u32 {
        self.stat.st_mode as u32
    }

    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn into_file(self) -> File {
        self.file
    }

    /// The whole file or a prefix of it, per `limit`; never more than the cap, even when the
    /// file grows while read.
    pub fn read(&self, limit: Limit) -> Result<Vec<u8>, FsError> {
        let cap = limit.cap();
        if let Limit::Whole(_) = limit
            && self.size() > cap
        {
            return Err(self.too_big(cap));
        }
        let mut buf = Vec::with_capacity(self.size().min(cap) as usize);
        // One byte more than the cap tells "exactly the cap" from "more".
        (&self.file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| FsError::Io {
                container: self.container.clone(),
                path: self.path.clone(),
                op: "read",
                source: e,
            })?;
        if buf.len() as u64 > cap {
            match limit {
                Limit::Whole(_) => return Err(self.too_big(cap)),
                Limit::Prefix(_) => buf.truncate(cap as usize),
            }
        }
        Ok(buf)
    }

    fn too_big(&self, cap: u64) -> FsError {
        FsError::TooBig {
            container: self.container.clone(),
            path: self.path.clone(),
            cap,
        }
    }
}

#[cfg(test)]
mod tests;
