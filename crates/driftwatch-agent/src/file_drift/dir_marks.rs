//! Which events each watched directory's fanotify mark asks for, from what the enabled rules
//! can match there ([`driftwatch_rules::FileScope`]): the kernel queues no notice for a change
//! no rule can match (a scratch file made, renamed and removed in `/var/tmp`), so neither the
//! container's process nor the agent pays for it.
//!
//! A mark reports the entries directly in its directory; each subdirectory has its own. So a
//! directory's mask comes from what can match *directly in it*, plus `CREATE` of directories
//! (with files' `CREATE` ignored where creations cannot matter) while anything can match
//! *below* it, to mark subdirectories as they appear. Where nothing can match below, the
//! directory gets no mark and its tree is not walked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use driftwatch_image::{ContainerPath, package_db_kind};
use driftwatch_model::EventKind;
use driftwatch_rules::{DirReach, FileScope};
use driftwatch_sensor::fanotify::{DirMarks, op};

/// The rules' reach, cached per container directory (containers share most paths).
pub(super) struct MarkPlan {
    scope: FileScope,
    /// The emitter's rules generation `scope` was taken from.
    pub(super) generation: u64,
    /// Container directory -> (reach directly in it, reach below it).
    cache: HashMap<PathBuf, (DirReach, DirReach)>,
}

/// Entries of the cache before it is cleared (a container making directories without end).
const CACHE_MAX: usize = 50_000;

impl MarkPlan {
    pub(super) fn new(scope: FileScope, generation: u64) -> MarkPlan {
        MarkPlan {
            scope,
            generation,
            cache: HashMap::new(),
        }
    }

    /// What can match directly in, and below, the container directory `dir` (absolute).
    pub(super) fn reach(&mut self, dir: &Path) -> (DirReach, DirReach) {
        if let Some(r) = self.cache.get(dir) {
            return *r;
        }
        let shown = dir.to_string_lossy();
        let r = (self.scope.children(&shown), self.scope.below(&shown));
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(dir.to_path_buf(), r);
        r
    }
}

/// Whether a package database (dpkg `status`, apk `installed`, rpm's, a Python `METADATA`,
/// an npm `package.json`) can be an entry of the container directory `dir`.
pub(super) fn holds_package_db(dir: &Path) -> bool {
    [
        "status",
        "installed",
        "Packages",
        "Packages.db",
        "rpmdb.sqlite",
        "METADATA",
        "PKG-INFO",
        "package.json",
    ]
    .iter()
    .any(|name| package_db_kind(&ContainerPath::from(dir.join(name).as_path())).is_some())
}

/// The marks of a directory, `None` when nothing can match below it (no mark, no walk).
/// `package_dir`: a package database can be one of its entries; `image_entries`: the image
/// has entries in this directory (their removal comes as a whiteout renamed in from
/// overlayfs's work directory), asked only when it decides.
pub(super) fn marks_for(
    children: DirReach,
    below: DirReach,
    package_dir: bool,
    image_entries: impl FnOnce() -> bool,
) -> Option<DirMarks> {
    if below.is_empty() && children.is_empty() {
        return None;
    }
    let k = |kind| children.can_match(kind);
    let package = package_dir && children.package;
    let mut mask = 0;
    let mut file_creations = package;
    if k(EventKind::Creat) || k(EventKind::Open) || k(EventKind::Symlink) {
        mask |= op::CREATE;
        file_creations = true;
    }
    if k(EventKind::Open) || k(EventKind::Creat) || package {
        mask |= op::CLOSE_WRITE;
    }
    if k(EventKind::Rename) || package {
        mask |= op::RENAME;
    }
    if k(EventKind::Unlink) || package {
        mask |= op::DELETE;
    }
    if k(EventKind::Chmod) || k(EventKind::Chown) {
        mask |= op::ATTRIB;
    }
    // The copy-up of a chmod, chown or write comes with its own ATTRIB or CLOSE_WRITE; the
    // removal of an image entry comes as its whiteout only.
    if children.image_unlink && mask & op::RENAME == 0 && image_entries() {
        mask |= op::RENAME | op::CREATE;
        file_creations = true;
    }
    // New subdirectories (and `mkdir` itself) are followed wherever something can match
    // below; subdirectories moved in come with RENAME where renames are reported.
    mask |= op::CREATE;
    Some(DirMarks {
        mask: mask | op::ONDIR | op::EVENT_ON_CHILD,
        ignore_files: if file_creations { 0 } else { op::CREATE },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> MarkPlan {
        let rules = driftwatch_rules::RuleSet::load_with_defaults(&[])
            .unwrap()
            .ruleset;
        MarkPlan::new(rules.file_scope(), 0)
    }

    fn marks(p: &mut MarkPlan, dir: &str, image_entries: bool) -> Option<DirMarks> {
        let dir = Path::new(dir);
        let (c, b) = p.reach(dir);
        marks_for(c, b, holds_package_db(dir), || image_entries)
    }

    #[test]
    fn scratch_directories_report_mode_changes_and_new_subdirectories() {
        let mut p = plan();
        for dir in ["/var/tmp", "/tmp", "/run", "/var/log", "/var/cache/apt"] {
            let m = marks(&mut p, dir, false).unwrap();
            assert_eq!(
                m.mask,
                op::ATTRIB | op::CREATE | op::ONDIR | op::EVENT_ON_CHILD,
                "{dir}"
            );
            assert_eq!(m.ignore_files, op::CREATE, "{dir}");
        }
        // An image with files in /var/log: their removal is a whiteout renamed in.
        let m = marks(&mut p, "/var/log", true).unwrap();
        assert_eq!(m.mask & op::RENAME, op::RENAME);
        assert_eq!(m.ignore_files, 0);
    }

    #[test]
    fn drift_places_report_everything() {
        let mut p = plan();
        for dir in ["/etc", "/usr/bin", "/root", "/etc/cron.d", "/"] {
            let m = marks(&mut p, dir, false).unwrap();
            assert_eq!(m, DirMarks::ALL, "{dir}");
        }
    }

    #[test]
    fn package_databases_are_reported_where_they_live() {
        let mut p = plan();
        for dir in [
            "/var/lib/dpkg",
            "/lib/apk/db",
            "/var/lib/rpm",
            "/usr/lib/python3/dist-packages/requests-2.0.dist-info",
            "/app/node_modules/left-pad",
            "/var/tmp/node_modules/@scope/pkg",
        ] {
            assert!(holds_package_db(Path::new(dir)), "{dir}");
            let m = marks(&mut p, dir, false).unwrap();
            let want = op::CREATE | op::CLOSE_WRITE | op::RENAME | op::DELETE;
            assert_eq!(m.mask & want, want, "{dir}");
            assert_eq!(m.ignore_files, 0, "{dir}");
        }
        assert!(!holds_package_db(Path::new("/var/tmp")));
    }

    #[test]
    fn nothing_to_match_below_means_no_mark() {
        let off = driftwatch_rules::Source::new(
            "local.yaml",
            "- rule: Set Setuid or Setgid bit\n  enabled: false\n  override:\n    enabled: replace\n- rule: Delete image file in container\n  enabled: false\n  override:\n    enabled: replace\n- rule: Package drift in container\n  enabled: false\n  override:\n    enabled: replace\n",
        );
        let rules = driftwatch_rules::RuleSet::load_with_defaults(&[off])
            .unwrap()
            .ruleset;
        let mut p = MarkPlan::new(rules.file_scope(), 1);
        assert_eq!(marks(&mut p, "/var/tmp", true), None);
        assert_eq!(marks(&mut p, "/etc", true), Some(DirMarks::ALL));
    }
}
