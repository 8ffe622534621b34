//! Counters of configuration reloads (SIGHUP), for the metrics endpoint and the stats file.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads applied.
    pub reloads: AtomicU64,
    /// Reloads refused (the file or a file it names was invalid): the agent kept the
    /// configuration it had.
    pub failures: AtomicU64,
    /// Unix time (seconds) of the last reload applied, 0: none.
    pub last_reload_unix: AtomicU64,
    /// Unix time (seconds) of the last reload refused, 0: none.
    pub last_failure_unix: AtomicU64,
}

impl ReloadStats {
    pub fn applied(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.last_reload_unix
            .store(crate::baseline::unix_now(), Ordering::Relaxed);
    }

    pub fn refused(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.last_failure_unix
            .store(crate::baseline::unix_now(), Ordering::Relaxed);
    }
}
