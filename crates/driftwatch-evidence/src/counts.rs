//! Counts of a container's diff by change and by class: filled while the diff is walked
//! (`target`) and printed in its report (`report`).

use driftwatch_image::{ChangeKind, FileDiff};
use serde::Serialize;

/// Counts of a (filtered) diff.
#[derive(Serialize, Default)]
pub struct Counts {
    pub added: u64,
    pub deleted: u64,
    pub modified: u64,
    pub metadata: u64,
    pub unchanged: u64,
    pub executables: u64,
    pub libraries: u64,
    pub package_dbs: u64,
    pub config: u64,
    pub packages: u64,
}

impl Counts {
    /// Counts one path.
    pub fn add(&mut self, f: &FileDiff) {
        match f.change {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Deleted => self.deleted += 1,
            ChangeKind::Modified => self.modified += 1,
            ChangeKind::Metadata => self.metadata += 1,
            ChangeKind::Unchanged => self.unchanged += 1,
        }
        if f.change.is_drift() {
            self.executables += u64::from(f.class.executable.is_some());
            self.libraries += u64::from(f.class.library);
            self.package_dbs += u64::from(f.class.package_db.is_some());
            self.config += u64::from(f.class.config);
        }
    }
}
