//! The agent's local history: alerts, response actions and network baselines in one embedded
//! SQLite database (`/var/lib/driftwatch/driftwatch.db`), kept within an age and a size, and
//! read back by `driftwatch alerts` while the agent writes.
//!
//! Detection never waits for the disk: [`Store::record_alert`] only puts the alert in a
//! bounded queue (full: dropped and counted); one writer thread stores queued alerts in
//! batches, one transaction each, and applies retention every minute. A write that fails
//! (disk full, I/O error) marks the store degraded with the reason, is logged once, and is
//! retried; alerts still reach the other outputs, the store being one sink among them.

mod actions;
mod baselines;
mod columns;
mod query;
mod schema;
mod writer;

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use driftwatch_model::{Alert, AlertSourceError};
use rusqlite::{Connection, OpenFlags};

// The alert history's vocabulary is the model's (one trait for the store and the API's
// ring); re-exported so that reading a store takes one import.
pub use driftwatch_model::{AlertQuery, AlertSource, Order, RuleMatch, StoredAlert};
pub use query::AlertReader;
pub use schema::SCHEMA_VERSION;

pub const DEFAULT_PATH: &str = "/var/lib/driftwatch/driftwatch.db";

/// Why the store could not be opened or read. Each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot create the store's directory: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the database: {reason} (run as root, or choose another path)")]
    NotWritable { path: PathBuf, reason: String },
    #[error(
        "{path}: not an SQLite database, or a corrupt one (move it away: a new one is created in its place)"
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{path}: written by a newer driftwatch (schema version {found}; this one reads up to {supported})"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path}: no alert database here (does `driftwatch run` store alerts there? see --store / --db)"
    )]
    Missing { path: PathBuf },
    #[error("{path}: an SQLite database, but not driftwatch's (no schema_version table)")]
    Empty { path: PathBuf },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: stored alert {id} is unreadable: {msg}")]
    BadRow { path: PathBuf, id: i64, msg: String },
    #[error("baselines: {msg}")]
    BadBaselines { msg: String },
    #[error("starting the store's writer thread: {0}")]
    Thread(std::io::Error),
}

impl StoreError {
    fn not_writable(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::NotWritable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// The store's counters, updated by the writer and read without locking (except the
/// degraded reason).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Alerts accepted into the queue.
    pub queued: AtomicU64,
    /// Alerts committed to the database.
    pub written: AtomicU64,
    /// Alerts lost: queue full, or still unwritable when the agent stopped.
    pub dropped: AtomicU64,
    /// Failed write transactions (each retried later).
    pub write_errors: AtomicU64,
    /// Alerts deleted by retention (age or size).
    pub retention_deleted: AtomicU64,
    /// Retention passes that failed.
    pub retention_errors: AtomicU64,
    /// Size-retention deletions that took a container's oldest alerts because it held more
    /// than its share (`store.container_percent`).
    pub retention_over_share: AtomicU64,
    /// The database file plus its write-ahead log, in bytes.
    pub db_bytes: AtomicU64,
    /// The oldest stored alert's time (ns since the epoch), 0 when none.
    pub oldest_alert_ns: AtomicI64,
    degraded_flag: AtomicBool,
    degraded: Mutex<Option<String>>,
}

impl StoreStats {
    /// Why writes are failing now, if they are.
    pub fn degraded(&self) -> Option<String> {
        if !self.degraded_flag.load(Ordering::Relaxed) {
            return None;
        }
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets or clears the reason; returns whether it changed (to log once per condition).
    fn set_degraded(&self, reason: Option<String>) -> bool {
        let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        if *d == reason {
            return false;
        }
        self.degraded_flag
            .store(reason.is_some(), Ordering::Relaxed);
        *d = reason;
        true
    }
}

/// A copy of the counters at one moment, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub queued: u64,
    pub written: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub retention_deleted: u64,
    pub retention_errors: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub db_bytes: u64,
    pub oldest_alert_ns: Option<i64>,
    pub degraded: Option<String>,
}

enum Msg {
    Alert(Box<Alert>),
    /// Answered once everything queued before it was written (or failed to be).
    Flush(Sender<bool>),
}

/// An open store: the queue into the writer thread and a connection for queries, actions
/// and baselines. Dropping it writes what is queued and stops the writer.
pub struct Store {
    path: PathBuf,
    queue: Option<Sender<Msg>>,
    capacity: usize,
    stats: Arc<StoreStats>,
    conn: Mutex<Connection>,
    writer: Option<JoinHandle<()>>,
}

/// How often retention runs (and once at open).
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Opens a read-write connection with the store's settings.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| schema::classify(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| schema::classify(path, e))?;
    // Only takes effect on a new database (before WAL mode writes its header): lets
    // retention give freed pages back to the filesystem.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
        .map_err(|e| schema::classify(path, e))?;
    // Reading the journal mode reads the header: a file that is not a database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| schema::classify(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            "{}: SQLite kept journal mode {mode} (not WAL): readers may wait for writes",
            path.display()
        );
    }
    // WAL with synchronous=NORMAL cannot corrupt; a power loss may lose the last batches.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 8388608;")
        .map_err(|e| schema::classify(path, e))?;
    Ok(conn)
}

/// Creates the directory (0700) and the file (0600) when missing.
fn prepare_path(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::not_writable(path, e))?;
    let md = f
        .metadata()
        .map_err(|e| StoreError::not_writable(path, e))?;
    if md.permissions().mode() & 0o077 != 0 {
        // Alerts name processes, files and containers: only root reads them.
        let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

impl Store {
    /// Opens (creating and migrating when needed) the database `config.path` names and starts
    /// the writer thread, which applies retention first (the agent's start does not wait for
    /// a big deletion; [`Store::flush`] does).
    pub fn open(config: &driftwatch_config::StoreConfig) -> Result<Store, StoreError> {
        let path = config.path.clone();
        prepare_path(&path)?;
        let mut conn = connect(&path)?;
        schema::migrate(&mut conn, &path)?;
        let writer_conn = connect(&path)?;
        let stats = Arc::new(StoreStats::default());
        let capacity = config.queue_size.max(1);
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let w = writer::Writer::new(writer_conn, path.clone(), config, stats.clone());
        let writer = std::thread::Builder::new()
            .name("dw-store".into())
            .spawn(move || w.run(rx))
            .map_err(StoreError::Thread)?;
        Ok(Store {
            path,
            queue: Some(tx),
            capacity,
            stats,
            conn: Mutex::new(conn),
            writer: Some(writer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `alert` for the writer; never blocks. A full queue drops it (counted).
    pub fn record_alert(&self, alert: &Alert) {
        let Some(q) = &self.queue else { return };
        match q.try_send(Msg::Alert(Box::new(alert.clone()))) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every alert queued before this call is written (true) or failed to be
    /// (false). For tests and orderly shutdown; the agent never calls it on its hot path.
    pub fn flush(&self) -> bool {
        let Some(q) = &self.queue else { return false };
        let (tx, rx) = crossbeam_channel::bounded(1);
        if q.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        rx.recv().unwrap_or(false)
    }

    /// The live counters.
    pub fn stats(&self) -> &Arc<StoreStats> {
        &self.stats
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let oldest = s.oldest_alert_ns.load(Ordering::Relaxed);
        StatsSnapshot {
            queued: n(&s.queued),
            written: n(&s.written),
            dropped: n(&s.dropped),
            write_errors: n(&s.write_errors),
            retention_deleted: n(&s.retention_deleted),
            retention_errors: n(&s.retention_errors),
            queue_depth: self.queue.as_ref().map_or(0, |q| q.len()),
            queue_capacity: self.capacity,
            db_bytes: n(&s.db_bytes),
            oldest_alert_ns: (oldest != 0).then_some(oldest),
            degraded: s.degraded(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one response action record (the JSON object the actions log holds).
    pub fn record_action(&self, record: &serde_json::Value) -> Result<(), StoreError> {
        actions::append(&self.conn(), &self.path, record)
    }

    /// Stored action records (JSON text), oldest first.
    pub fn actions(&self) -> Result<Vec<String>, StoreError> {
        actions::list(&self.conn(), &self.path)
    }

    /// The stored baselines as the baseline file's JSON text (`{"version":1,"images":…}`).
    pub fn baselines_json(&self) -> Result<String, StoreError> {
        baselines::load_json(&self.conn(), &self.path)
    }

    /// Replaces the stored baselines with the baseline file text `json`.
    pub fn save_baselines_json(&self, json: &str) -> Result<(), StoreError> {
        baselines::save_json(&mut self.conn(), &self.path, json)
    }

    /// Once per database: when it holds no baselines yet and `file` exists, takes its
    /// baselines in (the file is left in place). Returns how many images it took.
    pub fn migrate_baseline_file(&self, file: &Path) -> Result<usize, StoreError> {
        const KEY: &str = "baselines_migrated_from";
        let done: Option<String> = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [KEY], |r| r.get(0))
            .ok();
        if done.is_some() {
            return Ok(0);
        }
        let text = match std::fs::read_to_string(file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StoreError::BadBaselines {
                    msg: format!("{}: {e}", file.display()),
                });
            }
        };
        let mut n = 0;
        if let Some(text) = text {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| StoreError::BadBaselines {
                    msg: format!("{}: {e}", file.display()),
                })?;
            n = v["images"].as_object().map_or(0, |m| m.len());
            let stored: usize = self
                .conn()
                .query_row("SELECT count(*) FROM baselines", [], |r| r.get(0))
                .map_err(|e| schema::classify(&self.path, e))?;
            if stored == 0 {
                self.save_baselines_json(&text)?;
            } else {
                n = 0;
            }
        }
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [KEY, &file.display().to_string()],
            )
            .map_err(|e| schema::classify(&self.path, e))?;
        Ok(n)
    }
}

impl AlertSource for Store {
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, AlertSourceError> {
        Ok(query::run_query(&self.conn(), &self.path, q)?)
    }

    fn last_id(&self) -> Result<u64, AlertSourceError> {
        Ok(query::last_id(&self.conn(), &self.path)?)
    }
}

/// A query's failure, as the one [`AlertSource`] trait carries it.
impl From<StoreError> for AlertSourceError {
    fn from(e: StoreError) -> AlertSourceError {
        AlertSourceError::new(e)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the queue tells the writer to write what is left and stop.
        self.queue = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
