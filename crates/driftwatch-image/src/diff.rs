//! `driftwatch diff`'s library: every path a container changed compared with its image, from
//! a parallel walk of the upper dir only (the image's unchanged files are never visited),
//! with content verdicts, file classes and the package-level diff.
//!
//! The file-level view agrees with `docker diff` (`FileDiff::docker`): A for added, D for
//! whiteouts and the entries an opaque directory hides directly, C for entries whose mode,
//! owner, rdev, capabilities or (non-directories) size or mtime differ, and for directories
//! holding such changes. On top it says what docker cannot: whether the bytes changed.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use driftwatch_model::OverlayLayers;
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use serde::Serialize;

use crate::classify::{self, FileClass};
use crate::error::LayerIoError;
use crate::hash::{HashCache, open_regular};
use crate::judge::MetadataChange;
use crate::overlay::{DirHandle, DirStack, LayerOptions, Lookup, Meta, View, io_err, xattr_of};
use crate::packages::{self, Ecosystem, PackageChange, PackageDiffBuilder};
use crate::path::{ContainerPath, name_fields};

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Not in the image.
    Added,
    /// In the image, gone from the container (whiteout, opaque directory).
    Deleted,
    /// Content differs from the image's (bytes, symlink target, device number, file type);
    /// for a directory: entries inside it changed.
    Modified,
    /// Same content; mode, owner, times or capabilities differ (see `metadata`).
    Metadata,
    /// Copied up to the writable layer, nothing differs: not drift.
    Unchanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Modified => "modified",
            ChangeKind::Metadata => "metadata",
            ChangeKind::Unchanged => "unchanged",
        }
    }

    /// True for the changes that are drift (everything but a content-preserving copy-up).
    pub fn is_drift(self) -> bool {
        self != ChangeKind::Unchanged
    }
}

/// What `docker diff` prints for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum DockerChange {
    A,
    C,
    D,
}

impl DockerChange {
    pub fn as_char(self) -> char {
        match self {
            DockerChange::A => 'A',
            DockerChange::C => 'C',
            DockerChange::D => 'D',
        }
    }
}

/// File type of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl FileKind {
    fn of(meta: &Meta) -> FileKind {
        use rustix::fs::FileType as T;
        match meta.file_type() {
            T::RegularFile => FileKind::File,
            T::Directory => FileKind::Dir,
            T::Symlink => FileKind::Symlink,
            T::Fifo => FileKind::Fifo,
            T::Socket => FileKind::Socket,
            T::CharacterDevice => FileKind::CharDevice,
            T::BlockDevice => FileKind::BlockDevice,
            T::Unknown => FileKind::Unknown,
        }
    }
}

/// One changed path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    /// The path inside the container: in JSON the real name, plus `path_b64` when it is not
    /// UTF-8.
    #[serde(flatten, serialize_with = "name_fields::path")]
    pub path: ContainerPath,
    pub change: ChangeKind,
    /// Type in the container (for `deleted`: in the image).
    pub kind: FileKind,
    /// Type in the image, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_kind: Option<FileKind>,
    /// What `docker diff` says about this path, `None` when it does not list it.
    pub docker: Option<DockerChange>,
    /// For entries deleted as part of a deleted directory: the whiteout or opaque directory
    /// that hides them (`docker diff` lists only that one).
    #[serde(flatten, serialize_with = "name_fields::deleted_with")]
    pub deleted_with: Option<ContainerPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataChange>,
    /// Size in bytes of a regular file (in the container; for `deleted`, in the image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// blake3 (hex) of the container's file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// blake3 (hex) of the image's file, when it was needed to compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_hash: Option<String>,
    #[serde(flatten, serialize_with = "name_fields::symlink_target")]
    pub symlink_target: Option<ContainerPath>,
    #[serde(skip_serializing_if = "FileClass::is_empty")]
    pub class: FileClass,
    /// The image layer and the package the file came from, with the package's digest
    /// compared (filled by [`crate::fill_diff_provenance`]).
    #[serde(flatten)]
    pub provenance: driftwatch_model::Provenance,
}

impl FileDiff {
    fn new(path: ContainerPath, change: ChangeKind, kind: FileKind) -> FileDiff {
        FileDiff {
            path,
            change,
            kind,
            image_kind: None,
            docker: None,
            deleted_with: None,
            metadata: None,
            size: None,
            hash: None,
            image_hash: None,
            symlink_target: None,
            class: FileClass::default(),
            provenance: driftwatch_model::Provenance::default(),
        }
    }
}

/// A path that could not be fully examined; the walk went on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffWarning {
    #[serde(flatten, serialize_with = "name_fields::path")]
    pub path: ContainerPath,
    pub message: String,
}

/// Counters of a walk, also passed to progress callbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffStats {
    /// Entries of the upper dir examined (and hidden image entries listed as deleted).
    pub entries: u64,
    pub dirs: u64,
    /// Paths reported.
    pub changes: u64,
    pub files_hashed: u64,
    pub bytes_hashed: u64,
}

/// The whole diff.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    /// Sorted by path bytes.
    pub files: Vec<FileDiff>,
    pub packages: Vec<PackageChange>,
    /// Package databases that changed but whose format is not recognised (an rpm database
    /// that is neither sqlite, Berkeley DB hash nor NDB).
    pub unparsed_package_dbs: Vec<ContainerPath>,
    pub warnings: Vec<DiffWarning>,
    pub stats: DiffStats,
    /// The caps the walk reached: what is below them was not examined.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Truncation>,
}

/// Which cap of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkCap {
    /// [`DiffOptions::max_depth`]: directories nested deeper were not descended into.
    MaxDepth,
    /// [`DiffOptions::max_entries`]: the walk stopped after this many entries.
    MaxEntries,
}

impl WalkCap {
    pub fn as_str(self) -> &'static str {
        match self {
            WalkCap::MaxDepth => "max_depth",
            WalkCap::MaxEntries => "max_entries",
        }
    }
}

/// A cap a walk reached, and where first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Truncation {
    pub cap: WalkCap,
    /// The cap's value (levels or entries).
    pub limit: u64,
    /// The first directory not (fully) examined because of it.
    #[serde(flatten, serialize_with = "name_fields::first_at")]
    pub first_at: ContainerPath,
    /// Directories not descended into because of it.
    pub dirs_skipped: u64,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "truncated at the {} cap ({}): {} directories not examined, first {}",
            self.cap.as_str(),
            self.limit,
            self.dirs_skipped,
            self.first_at
        )
    }
}

impl Diff {
    /// True when anything drifted (a change other than an unchanged copy-up).
    pub fn drifted(&self) -> bool {
        self.files.iter().any(|f| f.change.is_drift())
    }

    /// What `docker diff` would print, sorted by path.
    pub fn docker_view(&self) -> Vec<(DockerChange, &ContainerPath)> {
        self.files
            .iter()
            .filter_map(|f| f.docker.map(|d| (d, &f.path)))
            .collect()
    }
}

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("layer directory {} is gone (container removed during the diff?)", host.display())]
    LayerVanished { host: PathBuf },
    #[error(transparent)]
    Io(#[from] LayerIoError),
}

/// Knobs of a diff.
#[derive(Clone, Copy, Debug)]
pub struct DiffOptions {
    pub layers: LayerOptions,
    /// Hash regular files of the writable layer (added and modified). Files present in both
    /// layers with equal sizes are always hashed: that is how copy-ups are told apart.
    pub hash_added: bool,
    /// List the image entries inside deleted directories one by one (`deleted_with` set).
    pub expand_deleted: bool,
    /// Package databases larger than this are not parsed (a warning says so).
    pub max_package_db_bytes: u64,
    /// Call the progress callback every this many entries.
    pub progress_every: u64,
    /// Directories nested deeper than this below `/` are listed but not descended into
    /// (reported in [`Diff::truncated`]).
    pub max_depth: usize,
    /// The walk stops descending after examining this many entries (reported in
    /// [`Diff::truncated`]).
    pub max_entries: u64,
}

/// The default [`DiffOptions::max_depth`]: far deeper than any real image (paths stop at
/// 4096 bytes, about 2,000 levels of one-letter names), shallow enough to bound the walk.
pub const DEFAULT_MAX_DEPTH: usize = 512;

/// The default [`DiffOptions::max_entries`].
pub const DEFAULT_MAX_ENTRIES: u64 = 5_000_000;

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            layers: LayerOptions::default(),
            hash_added: true,
            expand_deleted: true,
            max_package_db_bytes: driftwatch_fs::PACKAGE_DB_CAP,
            progress_every: 4096,
            max_depth: DEFAULT_MAX_DEPTH,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

type Sink<'a> = dyn Fn(FileDiff) + Sync + 'a;
type ProgressFn<'a> = dyn Fn(&DiffStats) + Sync + 'a;

/// Compares a container's writable layer with its image.
pub struct Differ<'a> {
    layers: &'a OverlayLayers,
    options: DiffOptions,
    hashes: Option<&'a HashCache>,
    progress: Option<&'a ProgressFn<'a>>,
}

impl<'a> Differ<'a> {
    pub fn new(layers: &'a OverlayLayers) -> Self {
        Differ {
            layers,
            options: DiffOptions::default(),
            hashes: None,
            progress: None,
        }
    }

    pub fn options(mut self, options: DiffOptions) -> Self {
        self.options = options;
        self
    }

    /// Shares a hash cache (a [`Judge`](crate::Judge)'s) across diffs.
    pub fn hash_cache(mut self, hashes: &'a HashCache) -> Self {
        self.hashes = Some(hashes);
        self
    }

    /// Called from worker threads every `progress_every` entries, and once at the end.
    pub fn progress(mut self, f: &'a ProgressFn<'a>) -> Self {
        self.progress = Some(f);
        self
    }

    /// The whole diff, files sorted by path. Memory grows with the number of changes; use
    /// [`Differ::for_each`] to stream.
    pub fn run(self) -> Result<Diff, DiffError> {
        let files = Mutex::new(Vec::new());
        let mut diff =
            self.for_each(&|f| files.lock().unwrap_or_else(|p| p.into_inner()).push(f))?;
        let mut files = files.into_inner().unwrap_or_else(|p| p.into_inner());
        files.par_sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        diff.files = files;
        Ok(diff)
    }

    /// Streams each changed path to `sink` (from worker threads, in no particular order) and
    /// returns everything else: packages, warnings, counters. Memory stays flat in the number
    /// of files.
    pub fn for_each(self, sink: &Sink<'_>) -> Result<Diff, DiffError> {
        let own_cache;
        let hashes = match self.hashes {
            Some(h) => h,
            None => {
                own_cache = HashCache::new(4096);
                &own_cache
            }
        };
        let upper_roots = [self.layers.upper.clone()];
        let walk = Walk {
            options: self.options,
            upper_view: View {
                roots: &upper_roots,
                first_layer: 0,
                options: self.options.layers,
            },
            image_view: View {
                roots: &self.layers.lowers,
                first_layer: 1,
                options: self.options.layers,
            },
            upper_root: &self.layers.upper,
            hashes,
            hashed_before: (hashes.computed(), hashes.bytes_hashed()),
            sink,
            progress: self.progress,
            entries: AtomicU64::new(0),
            dirs: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            packages: Mutex::new(PackageDiffBuilder::default()),
            unparsed: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
            truncated: Mutex::new(Vec::new()),
        };
        let upper = walk.upper_view.open_root().map_err(|e| walk.fatal(e))?;
        let opaque = upper.len() == 1
            && walk
                .upper_view
                .is_opaque(&upper[0])
                .map_err(|e| walk.fatal(e))?;
        let image = walk.image_view.open_root().map_err(|e| walk.fatal(e))?;
        let root = upper.into_iter().next().expect("one upper root");
        walk.walk(root, Some(image), opaque)?;
        let stats = walk.stats();
        if let Some(p) = walk.progress {
            p(&stats);
        }
        let mut unparsed = walk
            .unparsed
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        unparsed.sort();
        let mut warnings = walk
            .warnings
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        warnings.sort_by(|a, b| a.path.cmp(&b.path));
        let mut truncated = walk
            .truncated
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        truncated.sort_by_key(|t| t.cap);
        Ok(Diff {
            truncated,
            files: Vec::new(),
            packages: walk
                .packages
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .finish(),
            unparsed_package_dbs: unparsed,
            warnings,
            stats,
        })
    }
}

struct Walk<'a> {
    options: DiffOptions,
    upper_view: View<'a>,
    image_view: View<'a>,
    upper_root: &'a PathBuf,
    hashes: &'a HashCache,
    hashed_before: (u64, u64),
    sink: &'a Sink<'a>,
    progress: Option<&'a ProgressFn<'a>>,
    entries: AtomicU64,
    dirs: AtomicU64,
    changes: AtomicU64,
    packages: Mutex<PackageDiffBuilder>,
    unparsed: Mutex<Vec<ContainerPath>>,
    warnings: Mutex<Vec<DiffWarning>>,
    truncated: Mutex<Vec<Truncation>>,
}

/// The result of examining one upper entry: did `docker diff` see a change at or below it.
type Seen = bool;

/// What examining one entry of an upper directory gave.
enum Step {
    Seen(Seen),
    /// A subdirectory, to descend into later (kept as a name: no descriptor held meanwhile).
    Dir(PendingDir),
}

struct PendingDir {
    name: OsString,
    meta: Meta,
}

/// A subdirectory opened to be walked.
struct OpenDir {
    dir: Arc<DirHandle>,
    path: ContainerPath,
    image: Option<DirStack>,
    opaque: bool,
    own: OwnDir,
}

/// A directory's own entry, reported when its walk ends.
struct OwnDir {
    diff: FileDiff,
    was_added: bool,
}

/// A directory of the upper dir being walked: one per level of the walk's explicit stack.
struct Frame {
    dir: Arc<DirHandle>,
    path: ContainerPath,
    image: Option<DirStack>,
    /// Levels below `/`.
    depth: usize,
    /// `None` for the root.
    own: Option<OwnDir>,
    /// Subdirectories still to walk.
    subdirs: Vec<PendingDir>,
    /// A change docker sees somewhere below.
    inside: Seen,
    /// The parent's frame, by index in the stack (`None` for the root).
    parent: Option<usize>,
}

/// A subdirectory after [`Walk::descend`].
enum Child {
    /// Walked and reported: did docker see a change at or below it.
    Done(Seen),
    /// Entered; its subdirectories are still to walk.
    Frame(Box<Frame>),
}

/// Subdirectories entered in parallel at a time.
const DIR_BATCH: usize = 16;

/// Above this many frames on the stack, subdirectories are entered one at a time (frames hold
/// descriptors: a wide and deep tree must not exhaust them).
const MAX_PARALLEL_FRAMES: usize = 64;

/// Levels below `/` of a path (`/` is 0, `/a` 1).
fn depth_of(path: &ContainerPath) -> usize {
    path.as_bytes().iter().filter(|b| **b == b'/').count() - usize::from(path.as_bytes() == b"/")
}

impl Walk<'_> {
    fn stats(&self) -> DiffStats {
        DiffStats {
            entries: self.entries.load(Ordering::Relaxed),
            dirs: self.dirs.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
            files_hashed: self.hashes.computed() - self.hashed_before.0,
            bytes_hashed: self.hashes.bytes_hashed() - self.hashed_before.1,
        }
    }

    fn tick(&self) {
        let n = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = self.progress
            && n.is_multiple_of(self.options.progress_every.max(1))
        {
            p(&self.stats());
        }
    }

    fn emit(&self, f: FileDiff) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        (self.sink)(f);
    }

    fn warn(&self, path: &ContainerPath, message: impl Into<String>) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(DiffWarning {
                path: path.clone(),
                message: message.into(),
            });
    }

    /// An I/O error: fatal when the layer itself is gone, else the error.
    fn fatal(&self, e: LayerIoError) -> DiffError {
        if rustix::fs::stat(self.upper_root.as_path()).is_err() {
            return DiffError::LayerVanished {
                host: self.upper_root.clone(),
            };
        }
        for l in self.image_view.roots {
            if rustix::fs::stat(l.as_path()).is_err() {
                return DiffError::LayerVanished { host: l.clone() };
            }
        }
        DiffError::Io(e)
    }

    /// An I/O error on one entry: a warning when the entry vanished or is unreadable while
    /// the layers are still there (a running container changes its files as we read).
    fn entry_error(&self, path: &ContainerPath, e: LayerIoError) -> Result<(), DiffError> {
        match self.fatal(e) {
            DiffError::Io(e) => {
                self.warn(path, e.to_string());
                Ok(())
            }
            fatal => Err(fatal),
        }
    }

    /// Records that `cap` kept the walk out of the directory `path`.
    fn truncate(&self, cap: WalkCap, path: &ContainerPath) {
        let limit = match cap {
            WalkCap::MaxDepth => self.options.max_depth as u64,
            WalkCap::MaxEntries => self.options.max_entries,
        };
        let mut all = self.truncated.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|t| t.cap == cap) {
            Some(t) => t.dirs_skipped += 1,
            None => all.push(Truncation {
                cap,
                limit,
                first_at: path.clone(),
                dirs_skipped: 1,
            }),
        }
    }

    /// The cap that keeps the walk out of a directory `depth` levels below `/`, if any.
    fn cap_at(&self, depth: usize) -> Option<WalkCap> {
        if depth > self.options.max_depth {
            Some(WalkCap::MaxDepth)
        } else if self.entries.load(Ordering::Relaxed) >= self.options.max_entries {
            Some(WalkCap::MaxEntries)
        } else {
            None
        }
    }

    /// Walks the upper dir depth-first with an explicit stack, so a hostile tree's depth costs
    /// heap (frames, bounded by [`DiffOptions::max_depth`]), never the thread's stack. The
    /// subdirectories of the directory on top are entered in parallel batches; one with no
    /// subdirectories of its own is finished at once, the others become frames (holding their
    /// descriptors) above it. A directory's own entry is reported once everything below it is
    /// known, when its frame is popped.
    fn walk(
        &self,
        root: Arc<DirHandle>,
        image: Option<DirStack>,
        opaque: bool,
    ) -> Result<(), DiffError> {
        let mut stack = vec![self.enter(root, ContainerPath::root(), image, opaque, 0, None)?];
        while let Some(top) = stack.last_mut() {
            if top.subdirs.is_empty() {
                let done = stack.pop().expect("the frame just looked at");
                let seen = match done.own {
                    Some(own) => self.finish_dir(own, done.inside),
                    None => done.inside,
                };
                if let Some(parent) = done.parent.and_then(|p| stack.get_mut(p)) {
                    parent.inside |= seen;
                }
                continue;
            }
            // Few frames wait at once: each holds descriptors, and the stack grows with the
            // batch only while it is short.
            let batch = if stack.len() > MAX_PARALLEL_FRAMES {
                1
            } else {
                DIR_BATCH
            };
            let top_at = stack.len() - 1;
            let top = &mut stack[top_at];
            let pending = top
                .subdirs
                .split_off(top.subdirs.len().saturating_sub(batch));
            let top = &stack[top_at];
            let children = pending
                .into_par_iter()
                .map(|sub| self.descend(top, sub))
                .collect::<Result<Vec<Child>, DiffError>>()?;
            for child in children {
                match child {
                    Child::Done(seen) => stack[top_at].inside |= seen,
                    Child::Frame(mut f) => {
                        f.parent = Some(top_at);
                        stack.push(*f);
                    }
                }
            }
        }
        Ok(())
    }

    /// Opens and enters one subdirectory of `top`: finished when it has no subdirectories
    /// (or a cap keeps the walk out of it), else a frame to walk.
    fn descend(&self, top: &Frame, sub: PendingDir) -> Result<Child, DiffError> {
        let path = top.path.join(&sub.name);
        let image = match top.image.as_deref() {
            Some(s) => match self.image_view.lookup(s, &sub.name) {
                Ok(l) => l,
                Err(e) => {
                    self.entry_error(&path, e)?;
                    Lookup::Missing
                }
            },
            None => Lookup::Missing,
        };
        let Some(open) = self.open_subdir(&top.dir, path, &sub.name, sub.meta, image)? else {
            return Ok(Child::Done(false));
        };
        let depth = top.depth + 1;
        if let Some(cap) = self.cap_at(depth) {
            self.truncate(cap, &open.path);
            return Ok(Child::Done(self.finish_dir(open.own, false)));
        }
        let frame = self.enter(
            open.dir,
            open.path,
            open.image,
            open.opaque,
            depth,
            Some(open.own),
        )?;
        if !frame.subdirs.is_empty() {
            return Ok(Child::Frame(Box::new(frame)));
        }
        Ok(Child::Done(match frame.own {
            Some(own) => self.finish_dir(own, frame.inside),
            None => frame.inside,
        }))
    }

    /// Examines a directory's entries (all but its subdirectories, which are returned in the
    /// frame to descend into) and the image entries an opaque directory hides.
    fn enter(
        &self,
        dir: Arc<DirHandle>,
        path: ContainerPath,
        image: Option<DirStack>,
        opaque: bool,
        depth: usize,
        own: Option<OwnDir>,
    ) -> Result<Frame, DiffError> {
        self.dirs.fetch_add(1, Ordering::Relaxed);
        let mut frame = Frame {
            dir,
            path,
            image,
            depth,
            own,
            subdirs: Vec::new(),
            inside: false,
            parent: None,
        };
        let room = self
            .options
            .max_entries
            .saturating_sub(self.entries.load(Ordering::Relaxed));
        let names = match read_names(&frame.dir, room) {
            Ok((n, complete)) => {
                if !complete {
                    self.truncate(WalkCap::MaxEntries, &frame.path);
                }
                n
            }
            Err(e) => {
                self.entry_error(&frame.path, e)?;
                return Ok(frame);
            }
        };
        let steps = names
            .par_iter()
            .map(|name| self.entry(&frame.dir, &frame.path, frame.image.as_deref(), name))
            .collect::<Result<Vec<Step>, DiffError>>()?;
        for step in steps {
            match step {
                Step::Seen(seen) => frame.inside |= seen,
                Step::Dir(d) => frame.subdirs.push(d),
            }
        }
        if opaque && let Some(image) = &frame.image {
            // An opaque directory hides the image's entries: the ones not re-created above
            // are deleted (docker lists these, not what is inside them).
            let upper: BTreeSet<&OsString> = names.iter().collect();
            let image_names = match self.image_names(image) {
                Ok(n) => n,
                Err(e) => {
                    self.entry_error(&frame.path, e)?;
                    BTreeSet::new()
                }
            };
            for name in image_names.iter().filter(|n| !upper.contains(n)) {
                let child = frame.path.join(name);
                match self.image_view.lookup(image, name) {
                    Ok(Lookup::Missing) => {}
                    Ok(found) => {
                        self.deleted(child, found, None)?;
                        frame.inside = true;
                    }
                    Err(e) => self.entry_error(&child, e)?,
                }
            }
        }
        Ok(frame)
    }

    /// Names in the merged image directory.
    fn image_names(&self, image: &[Arc<DirHandle>]) -> Result<BTreeSet<OsString>, LayerIoError> {
        let mut all = BTreeSet::new();
        for d in image {
            all.extend(read_names(d, u64::MAX)?.0);
        }
        Ok(all)
    }

    /// One entry of an upper directory: examined and reported, or (a subdirectory) returned
    /// to be descended into.
    fn entry(
        &self,
        dir: &Arc<DirHandle>,
        parent: &ContainerPath,
        image_dir: Option<&[Arc<DirHandle>]>,
        name: &OsString,
    ) -> Result<Step, DiffError> {
        self.tick();
        let path = parent.join(name);
        if self.upper_view.is_aufs_marker(name) {
            return Ok(Step::Seen(false));
        }
        let meta = match rustix::fs::statat(&dir.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Meta::from_stat(&st),
            Err(e) => {
                self.entry_error(&path, io_err("stat", dir.host.join(name), e))?;
                return Ok(Step::Seen(false));
            }
        };
        if meta.is_dir() {
            return Ok(Step::Dir(PendingDir {
                name: name.clone(),
                meta,
            }));
        }
        let image = match image_dir {
            Some(s) => match self.image_view.lookup(s, name) {
                Ok(l) => l,
                Err(e) => {
                    self.entry_error(&path, e)?;
                    Lookup::Missing
                }
            },
            None => Lookup::Missing,
        };
        if meta.is_whiteout() {
            return match image {
                Lookup::Missing => Ok(Step::Seen(false)),
                found => {
                    self.deleted(path, found, None)?;
                    Ok(Step::Seen(true))
                }
            };
        }
        self.entry_file(dir, path, name, meta, image)
            .map(Step::Seen)
    }

    /// Opens a subdirectory of the upper dir and works out its own entry (reported later, by
    /// [`Walk::finish_dir`]); `None` when it could not be opened (a warning says why).
    fn open_subdir(
        &self,
        dir: &Arc<DirHandle>,
        path: ContainerPath,
        name: &OsStr,
        meta: Meta,
        image: Lookup,
    ) -> Result<Option<OpenDir>, DiffError> {
        let fd = match rustix::fs::openat(
            &dir.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                self.entry_error(&path, io_err("open directory", dir.host.join(name), e))?;
                return Ok(None);
            }
        };
        let child = Arc::new(DirHandle {
            layer: 0,
            fd,
            host: dir.host.join(name),
        });
        let opaque = match self.upper_view.is_opaque(&child) {
            Ok(o) => o,
            Err(e) => {
                self.entry_error(&path, e)?;
                false
            }
        };
        let mut d = FileDiff::new(path.clone(), ChangeKind::Added, FileKind::Dir);
        let image_dir = match image {
            Lookup::Missing => {
                d.docker = Some(DockerChange::A);
                None
            }
            Lookup::File(f) => {
                // A directory where the image has a file: the file is gone.
                d.change = ChangeKind::Modified;
                d.image_kind = Some(FileKind::of(&f.meta));
                d.docker = Some(DockerChange::C);
                None
            }
            Lookup::Dir(stack) => {
                let im = stack[0].clone();
                let image_meta = match rustix::fs::fstat(&im.fd) {
                    Ok(st) => Meta::from_stat(&st),
                    Err(e) => return Err(self.fatal(io_err("fstat", im.host.clone(), e))),
                };
                let mut md = MetadataChange::between(&image_meta, &meta);
                let caps = dir_caps(&im) != dir_caps(&child);
                if caps {
                    md.get_or_insert_default().capabilities = true;
                }
                if stat_differs_for_docker(&image_meta, &meta) || caps {
                    d.docker = Some(DockerChange::C);
                }
                d.change = match &md {
                    Some(m) if m.mode_or_owner() => ChangeKind::Metadata,
                    _ => ChangeKind::Unchanged,
                };
                d.metadata = md;
                Some(stack)
            }
        };
        let was_added = d.change == ChangeKind::Added;
        Ok(Some(OpenDir {
            dir: child,
            path,
            image: image_dir,
            opaque,
            own: OwnDir { diff: d, was_added },
        }))
    }

    /// Reports a directory's own entry once what is below it is known (`inside`: a change
    /// `docker diff` sees there).
    fn finish_dir(&self, own: OwnDir, inside: Seen) -> Seen {
        let mut d = own.diff;
        if inside && !own.was_added {
            if d.change == ChangeKind::Unchanged {
                d.change = ChangeKind::Modified;
            }
            d.docker.get_or_insert(DockerChange::C);
        }
        if d.change == ChangeKind::Unchanged && d.metadata.is_some() {
            // Only the directory's times moved.
            d.change = ChangeKind::Metadata;
        }
        let seen = d.docker.is_some();
        self.emit(d);
        seen || inside
    }

    fn entry_file(
        &self,
        dir: &Arc<DirHandle>,
        path: ContainerPath,
        name: &OsStr,
        meta: Meta,
        image: Lookup,
    ) -> Result<Seen, DiffError> {
        let kind = FileKind::of(&meta);
        let mut d = FileDiff::new(path.clone(), ChangeKind::Added, kind);
        d.class.config = classify::is_config(&path) && kind == FileKind::File;
        if meta.is_symlink() {
            d.symlink_target =
                readlink(dir, name).map(|t| ContainerPath::from(std::path::Path::new(&t)));
        }
        let db = classify::package_db_kind(&path).filter(|_| kind == FileKind::File);
        d.class.package_db = db;
        let opened = if meta.is_file() {
            match open_regular(dir, name) {
                Ok((file, now)) => {
                    d.size = Some(now.size);
                    match classify::classify_content(&file, classify::named_so(name.as_bytes())) {
                        Ok(c) => {
                            d.class.executable = c.executable;
                            d.class.library = c.library || classify::named_so(name.as_bytes());
                        }
                        Err(e) => self.warn(&path, format!("classify: {e}")),
                    }
                    Some((file, now))
                }
                Err(e) => {
                    self.entry_error(&path, e)?;
                    None
                }
            }
        } else {
            None
        };
        let hash_current = |d: &mut FileDiff| -> Result<(), DiffError> {
            if let Some((file, now)) = &opened {
                match self.hashes.hash_file(file, now, || dir.host.join(name)) {
                    Ok((h, _)) => d.hash = Some(h.to_hex().to_string()),
                    Err(e) => self.entry_error(&path, e)?,
                }
            }
            Ok(())
        };
        match image {
            Lookup::Missing => {
                d.docker = Some(DockerChange::A);
                if self.options.hash_added {
                    hash_current(&mut d)?;
                }
            }
            Lookup::Dir(stack) => {
                // A file where the image has a directory: everything in it is gone.
                d.change = ChangeKind::Modified;
                d.image_kind = Some(FileKind::Dir);
                d.docker = Some(DockerChange::C);
                if self.options.hash_added {
                    hash_current(&mut d)?;
                }
                self.expand_deleted(stack, &path, &path)?;
            }
            Lookup::File(im) => {
                let mut md = MetadataChange::between(&im.meta, &meta);
                let caps = xattr_of(&im.parent, &im.name, "security.capability")
                    != xattr_of(dir, name, "security.capability");
                if caps {
                    md.get_or_insert_default().capabilities = true;
                }
                if stat_differs_for_docker(&im.meta, &meta) || caps {
                    d.docker = Some(DockerChange::C);
                }
                let image_kind = FileKind::of(&im.meta);
                let same_content = if image_kind != kind {
                    d.image_kind = Some(image_kind);
                    false
                } else {
                    match kind {
                        FileKind::File => {
                            hash_current(&mut d)?;
                            let size = opened.as_ref().map(|(_, m)| m.size);
                            if size != Some(im.meta.size) {
                                d.image_hash = self
                                    .hashes
                                    .get(&(&im.meta).into())
                                    .map(|h| h.to_hex().to_string());
                                false
                            } else {
                                match self.hashes.hash_at(&im.parent, &im.name, &im.meta) {
                                    Ok((h, _)) => {
                                        let h = h.to_hex().to_string();
                                        let same = d.hash.as_deref() == Some(h.as_str());
                                        d.image_hash = Some(h);
                                        same
                                    }
                                    Err(e) => {
                                        self.entry_error(&path, e)?;
                                        false
                                    }
                                }
                            }
                        }
                        FileKind::Symlink => readlink(&im.parent, &im.name) == readlink(dir, name),
                        FileKind::CharDevice | FileKind::BlockDevice => im.meta.rdev == meta.rdev,
                        _ => true,
                    }
                };
                d.change = if !same_content {
                    ChangeKind::Modified
                } else if md.is_some() {
                    ChangeKind::Metadata
                } else {
                    ChangeKind::Unchanged
                };
                d.metadata = md;
                if let (Some(eco), true) = (db, im.meta.is_file()) {
                    self.package_db(eco, &path, ImageSide::Lookup(&im.parent, &im.name), true);
                }
            }
        }
        if let (Some(eco), Some((file, _))) = (db, &opened) {
            self.package_db(eco, &path, ImageSide::Open(file, dir, name), false);
        }
        let seen = d.docker.is_some();
        self.emit(d);
        Ok(seen)
    }

    /// Reports an image entry hidden by a whiteout or an opaque directory, and (expanded)
    /// what it held. `with`: the top-most deleted path, for entries deleted along with it.
    fn deleted(
        &self,
        path: ContainerPath,
        found: Lookup,
        with: Option<&ContainerPath>,
    ) -> Result<(), DiffError> {
        if let Some(stack) = self.deleted_one(&path, found, with) {
            self.expand_deleted(stack, &path, with.unwrap_or(&path))?;
        }
        Ok(())
    }

    /// Reports one deleted image entry; a directory's layers are returned, not expanded.
    fn deleted_one(
        &self,
        path: &ContainerPath,
        found: Lookup,
        with: Option<&ContainerPath>,
    ) -> Option<DirStack> {
        let (kind, size, stack) = match found {
            Lookup::Missing => return None,
            Lookup::File(f) => {
                if let Some(eco) = classify::package_db_kind(path).filter(|_| f.meta.is_file()) {
                    self.package_db(eco, path, ImageSide::Lookup(&f.parent, &f.name), true);
                }
                (
                    FileKind::of(&f.meta),
                    f.meta.is_file().then_some(f.meta.size),
                    None,
                )
            }
            Lookup::Dir(s) => (FileKind::Dir, None, Some(s)),
        };
        if with.is_none() || self.options.expand_deleted {
            let mut d = FileDiff::new(path.clone(), ChangeKind::Deleted, kind);
            d.size = size;
            d.docker = with.is_none().then_some(DockerChange::D);
            d.deleted_with = with.cloned();
            self.emit(d);
        }
        stack
    }

    /// Everything inside a deleted image directory (package manifests are read even when
    /// the entries are not listed, so removed Python and npm packages show), depth-first with
    /// an explicit stack and the walk's caps. Subdirectories wait as names, not open layers.
    fn expand_deleted(
        &self,
        stack: DirStack,
        path: &ContainerPath,
        with: &ContainerPath,
    ) -> Result<(), DiffError> {
        let mut todo: Vec<(Arc<DirStack>, OsString, ContainerPath)> = Vec::new();
        let mut next = Some((stack, path.clone()));
        loop {
            if let Some((stack, path)) = next.take() {
                if let Some(cap) = self.cap_at(depth_of(&path)) {
                    self.truncate(cap, &path);
                } else {
                    let subdirs = self.expand_one(&stack, &path, with)?;
                    let parent = Arc::new(stack);
                    todo.extend(subdirs.into_iter().map(|name| {
                        let child = path.join(&name);
                        (parent.clone(), name, child)
                    }));
                }
            }
            let Some((parent, name, child)) = todo.pop() else {
                return Ok(());
            };
            match self.image_view.lookup(&parent, &name) {
                Ok(Lookup::Dir(s)) => next = Some((s, child)),
                Ok(_) => {}
                Err(e) => self.entry_error(&child, e)?,
            }
        }
    }

    /// Reports the entries of one deleted image directory; returns its subdirectories' names.
    fn expand_one(
        &self,
        stack: &[Arc<DirHandle>],
        path: &ContainerPath,
        with: &ContainerPath,
    ) -> Result<Vec<OsString>, DiffError> {
        let names = match self.image_names(stack) {
            Ok(n) => n,
            Err(e) => {
                self.entry_error(path, e)?;
                return Ok(Vec::new());
            }
        };
        let subdirs = names
            .par_iter()
            .map(|name| -> Result<Option<OsString>, DiffError> {
                self.tick();
                let child = path.join(name);
                match self.image_view.lookup(stack, name) {
                    Ok(found) => Ok(self
                        .deleted_one(&child, found, Some(with))
                        .map(|_| name.clone())),
                    Err(e) => self.entry_error(&child, e).map(|()| None),
                }
            })
            .collect::<Result<Vec<_>, DiffError>>()?;
        Ok(subdirs.into_iter().flatten().collect())
    }

    /// Reads one side of a package database and records its packages.
    fn package_db(
        &self,
        eco: Ecosystem,
        path: &ContainerPath,
        side: ImageSide<'_>,
        in_image: bool,
    ) {
        let bytes = match side {
            ImageSide::Open(f, _, _) => read_capped(f, self.options.max_package_db_bytes),
            ImageSide::Lookup(dir, name) => open_regular(dir, name)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|(f, _)| read_capped(&f, self.options.max_package_db_bytes)),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                let side = if in_image { "image" } else { "container" };
                self.warn(path, format!("package database ({side}) not read: {e}"));
                return;
            }
        };
        let location = package_location(eco, path);
        let pkgs = if eco == Ecosystem::Rpm {
            // The same side's `-wal`, where committed rows wait for a checkpoint.
            let (dir, name) = match side {
                ImageSide::Open(_, d, n) | ImageSide::Lookup(d, n) => (d, n),
            };
            let mut wal_name = name.to_os_string();
            wal_name.push(packages::rpm::WAL_SUFFIX);
            let wal = open_regular(dir, &wal_name)
                .ok()
                .and_then(|(f, _)| read_capped(&f, self.options.max_package_db_bytes).ok());
            match packages::rpm::try_parse_rpm_packages(&bytes, wal.as_deref()) {
                Some(p) => p,
                None => {
                    if !in_image {
                        self.unparsed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(path.clone());
                    }
                    return;
                }
            }
        } else {
            packages::parse(eco, &bytes)
        };
        self.packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(eco, &location, in_image, pkgs);
    }
}

enum ImageSide<'a> {
    /// The file, and the directory and name it was opened at.
    Open(&'a File, &'a Arc<DirHandle>, &'a OsStr),
    Lookup(&'a Arc<DirHandle>, &'a OsStr),
}

/// Where a package is recorded: the database itself (dpkg, apk), the site-packages
/// directory (Python), the package directory (npm).
fn package_location(eco: Ecosystem, path: &ContainerPath) -> String {
    let p = path.as_path();
    let dir = match eco {
        Ecosystem::Python => p.parent().and_then(|d| d.parent()),
        Ecosystem::Npm => p.parent(),
        _ => Some(p),
    };
    ContainerPath::from(dir.unwrap_or(p)).to_string()
}

/// docker's `statDifferent`: mode, owner and rdev; size and mtime for non-directories.
fn stat_differs_for_docker(image: &Meta, now: &Meta) -> bool {
    image.mode != now.mode
        || image.uid != now.uid
        || image.gid != now.gid
        || image.rdev != now.rdev
        || (!now.is_dir() && (image.mtime_ns != now.mtime_ns || image.size != now.size))
}

fn dir_caps(d: &DirHandle) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::fgetxattr(&d.fd, "security.capability", &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn readlink(dir: &DirHandle, name: &OsStr) -> Option<OsString> {
    let t = rustix::fs::readlinkat(&dir.fd, name, Vec::new()).ok()?;
    Some(OsString::from(OsStr::from_bytes(t.as_bytes())))
}

/// Entry names of a directory, without `.` and `..`, at most `limit` of them; whether that
/// was all of them.
fn read_names(dir: &DirHandle, limit: u64) -> Result<(Vec<OsString>, bool), LayerIoError> {
    let mut names = Vec::new();
    let d =
        rustix::fs::Dir::read_from(&dir.fd).map_err(|e| io_err("opendir", dir.host.clone(), e))?;
    for e in d {
        let e = match e {
            Ok(e) => e,
            // A directory removed while we read it has no more entries.
            Err(Errno::NOENT) => break,
            Err(e) => return Err(io_err("readdir", dir.host.clone(), e)),
        };
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            if names.len() as u64 >= limit {
                return Ok((names, false));
            }
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok((names, true))
}

fn read_capped(f: &File, cap: u64) -> std::io::Result<Vec<u8>> {
    let len = f.metadata()?.len();
    if len > cap {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {cap} byte cap"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests check their fixtures with std::fs"
)]
mod tests;
