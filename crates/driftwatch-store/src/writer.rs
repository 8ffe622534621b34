//! The writer thread: takes queued alerts in batches of up to [`MAX_BATCH`], one transaction
//! each; keeps a failed batch and retries it every [`RETRY`] (the queue fills meanwhile and
//! new alerts are dropped, counted); applies retention by age and size.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::{Connection, ErrorCode, params};

use driftwatch_model::clock::now_ns;

use crate::columns::{AlertRow, column_ns};
use crate::{Msg, RETENTION_INTERVAL, StoreStats};

/// Alerts per transaction at most.
pub(crate) const MAX_BATCH: usize = 4096;
/// How long after a failed write it is tried again.
pub(crate) const RETRY: Duration = Duration::from_secs(1);
/// Retention deletes at most this many alerts per statement (short write locks).
const DELETE_CHUNK: i64 = 5000;

pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    max_age: Duration,
    max_bytes: u64,
    /// Over `max_bytes`, containers holding more than this share (percent) of the alerts
    /// lose their oldest first.
    container_percent: u32,
    stats: Arc<StoreStats>,
    pending: Vec<AlertRow>,
    waiters: Vec<Sender<bool>>,
    retry_at: Option<Instant>,
}

/// What a failed write means, for the degraded reason (one log line per change).
fn condition(e: &rusqlite::Error) -> String {
    let what = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "disk full",
        Some(ErrorCode::SystemIoFailure) => "I/O error",
        Some(ErrorCode::ReadOnly) => "read-only",
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => "database locked",
        Some(ErrorCode::DatabaseCorrupt) => "database corrupt",
        _ => "write failed",
    };
    format!("{what}: {e}")
}

impl Writer {
    pub fn new(
        conn: Connection,
        path: PathBuf,
        config: &driftwatch_config::StoreConfig,
        stats: Arc<StoreStats>,
    ) -> Writer {
        Writer {
            conn,
            path,
            max_age: config.max_age,
            max_bytes: config.max_bytes,
            container_percent: config.container_percent.clamp(1, 100),
            stats,
            pending: Vec::new(),
            waiters: Vec::new(),
            retry_at: None,
        }
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Alert(a) => self.pending.push(AlertRow::of(&a)),
            Msg::Flush(w) => self.waiters.push(w),
        }
    }

    pub fn run(mut self, rx: Receiver<Msg>) {
        self.retention();
        self.refresh_stats();
        let mut next_retention = Instant::now() + RETENTION_INTERVAL;
        loop {
            let now = Instant::now();
            let wait = match self.retry_at {
                Some(t) => t.saturating_duration_since(now),
                None => next_retention.saturating_duration_since(now),
            };
            let mut closed = false;
            if self.pending.len() < MAX_BATCH {
                match rx.recv_timeout(wait) {
                    Ok(m) => self.take(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => closed = true,
                }
                while !closed && self.pending.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => self.take(m),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => closed = true,
                    }
                }
            } else {
                std::thread::sleep(wait);
            }
            let due = self.retry_at.is_none_or(|t| Instant::now() >= t);
            if !self.pending.is_empty() && (due || closed) {
                self.write();
            }
            if !self.waiters.is_empty() && (self.pending.is_empty() || self.retry_at.is_some()) {
                let ok = self.pending.is_empty();
                for w in self.waiters.drain(..) {
                    let _ = w.send(ok);
                }
            }
            if Instant::now() >= next_retention && self.retry_at.is_none() {
                self.retention();
                self.refresh_stats();
                next_retention = Instant::now() + RETENTION_INTERVAL;
            }
            if closed && (self.pending.is_empty() || self.retry_at.is_some()) {
                let lost = self.pending.len() as u64;
                if lost > 0 {
                    self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                    tracing::warn!(
                        "{}: {lost} alerts could not be stored before the agent stopped",
                        self.path.display()
                    );
                }
                let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
                return;
            }
        }
    }

    fn insert_pending(&mut self) -> rusqlite::Result<()> {
        // IMMEDIATE: take the write lock first, waiting (busy timeout) for another writer of
        // the same file, instead of failing to upgrade a read.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO alerts (time_ns, rule, priority, source, hostname, container_id,
                    container_name, image, k8s_ns, k8s_pod, tags, output, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for r in &self.pending {
                st.execute(params![
                    r.time_ns,
                    r.rule,
                    r.priority,
                    r.source,
                    r.hostname,
                    r.container_id,
                    r.container_name,
                    r.image,
                    r.k8s_ns,
                    r.k8s_pod,
                    r.tags,
                    r.output,
                    r.json
                ])?;
            }
        }
        tx.commit()
    }

    /// Writes the pending batch; on failure keeps it for a retry and marks the store degraded.
    fn write(&mut self) {
        match self.insert_pending() {
            Ok(()) => {
                let n = self.pending.len() as u64;
                let first = self.pending.iter().map(|r| r.time_ns).min().unwrap_or(0);
                self.pending.clear();
                self.retry_at = None;
                self.stats.written.fetch_add(n, Ordering::Relaxed);
                if self.stats.oldest_alert_ns.load(Ordering::Relaxed) == 0 {
                    self.stats.oldest_alert_ns.store(first, Ordering::Relaxed);
                }
                if self.stats.set_degraded(None) {
                    tracing::info!("{}: storing alerts again", self.path.display());
                }
                self.refresh_size();
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                self.retry_at = Some(Instant::now() + RETRY);
                let reason = condition(&e);
                if self.stats.set_degraded(Some(reason.clone())) {
                    tracing::warn!(
                        "{}: cannot store alerts ({reason}); {} waiting, retrying every {}s, new ones are dropped while the queue is full (other outputs still get them)",
                        self.path.display(),
                        self.pending.len(),
                        RETRY.as_secs()
                    );
                }
            }
        }
    }

    fn pragma(&self, name: &str) -> rusqlite::Result<u64> {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
            .map(|v| v.max(0) as u64)
    }

    /// The database's size as retention counts it: its pages, free ones included.
    fn db_size(&self) -> rusqlite::Result<u64> {
        Ok(self.pragma("page_count")? * self.pragma("page_size")?)
    }

    fn refresh_size(&self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len());
        if let Ok(n) = self.db_size() {
            self.stats.db_bytes.store(n + wal, Ordering::Relaxed);
        }
    }

    fn refresh_stats(&self) {
        self.refresh_size();
        let oldest: Option<i64> = self
            .conn
            .query_row("SELECT min(time_ns) FROM alerts", [], |r| r.get(0))
            .unwrap_or(None);
        self.stats
            .oldest_alert_ns
            .store(oldest.unwrap_or(0), Ordering::Relaxed);
    }

    /// Deletes alerts (and actions) older than `max_age`, then the oldest alerts while the
    /// database is over `max_bytes`, giving the freed pages back to the filesystem.
    fn retention(&mut self) {
        if let Err(e) = self.try_retention() {
            self.stats.retention_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{}: retention failed: {e}", self.path.display());
        }
    }

    fn delete(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<u64> {
        let n = self.conn.execute(sql, p)? as u64;
        self.stats.retention_deleted.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    fn try_retention(&mut self) -> rusqlite::Result<()> {
        let cutoff = column_ns(now_ns())
            .saturating_sub(i64::try_from(self.max_age.as_nanos()).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            let n = self.delete(
                "DELETE FROM alerts WHERE id IN
                   (SELECT id FROM alerts WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)",
                params![cutoff, DELETE_CHUNK],
            )?;
            deleted += n;
            if n < DELETE_CHUNK as u64 {
                break;
            }
        }
        self.conn
            .execute("DELETE FROM actions WHERE time_ns < ?1", [cutoff])?;
        self.incremental_vacuum()?;
        loop {
            let size = self.db_size()?;
            if size <= self.max_bytes {
                break;
            }
            let count = self.pragma_count()?;
            if count == 0 {
                break;
            }
            // Down to 90% of the limit (so the next minute does not start over at once),
            // assuming alerts of average size; the loop corrects a wrong guess.
            let target = self.max_bytes / 10 * 9;
            let excess = (size - target.min(size)) as u128;
            let chunk = (u128::from(count) * excess).div_ceil(u128::from(size.max(1)));
            let chunk = chunk.clamp(1, DELETE_CHUNK as u128) as i64;
            // A container over its share of the alerts loses its oldest first, so that one
            // container's alert storm does not push everyone else's out of the store.
            let share = (u128::from(count) * u128::from(self.container_percent) / 100) as i64;
            let n = match self.biggest_holder()? {
                Some((container, held)) if held > share.max(1) => {
                    self.stats
                        .retention_over_share
                        .fetch_add(1, Ordering::Relaxed);
                    self.delete(
                        "DELETE FROM alerts WHERE id IN
                           (SELECT id FROM alerts WHERE container_id = ?1 ORDER BY id LIMIT ?2)",
                        params![container, chunk.min(held - share).max(1)],
                    )?
                }
                _ => self.delete(
                    "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts ORDER BY id LIMIT ?1)",
                    [chunk],
                )?,
            };
            deleted += n;
            self.incremental_vacuum()?;
            if n == 0 {
                break;
            }
        }
        if deleted > 0 {
            // Moves the freed pages out of the log so the file shrinks now.
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            tracing::debug!(
                "{}: retention deleted {deleted} alerts",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Gives free pages back to the filesystem. The pragma frees one page per step, so it
    /// is stepped to the end (a single step, as `execute` does, frees one page).
    fn incremental_vacuum(&self) -> rusqlite::Result<()> {
        let mut st = self.conn.prepare_cached("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// The container holding the most alerts, and how many (host alerts, with no container,
    /// are not a container's).
    fn biggest_holder(&self) -> rusqlite::Result<Option<(String, i64)>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT container_id, count(*) AS n FROM alerts WHERE container_id != ''
                 GROUP BY container_id ORDER BY n DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
    }

    fn pragma_count(&self) -> rusqlite::Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get::<_, i64>(0))
            .map(|v| v.max(0) as u64)
    }
}
