//! Package drift, followed from the file sensor: a change to a package database (dpkg
//! status, apk installed, rpm's databases, Python dist-info, npm package.json) is compared,
//! once writes settle, with the image's own database and with what was last reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use driftwatch_fs::{AGENT_PACKAGE_DB_CAP, InContainer, Limit};
use driftwatch_image::packages::{self, PackageDiffBuilder};
use driftwatch_image::{ContainerPath, Ecosystem, PackageChangeKind, package_db_kind};
use driftwatch_model::{
    ContainerId, DriftFinding, DriftKind, DriftSubject, Event, EventKind, FileRef, Verdict,
};

use super::actor::process_of;
use super::{Sensor, container_path, is_whiteout};
use crate::emitter::emit;

impl Sensor {
    pub(super) fn note_package_db(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let cpath = ContainerPath::from(container_path(rel).as_path());
        if package_db_kind(&cpath).is_some() {
            self.pending_packages
                .insert((id.clone(), rel.to_path_buf()), (Instant::now(), pid));
        }
    }

    /// Compares settled package databases with the image's and reports what changed since
    /// the last report.
    pub(super) fn flush_packages(&mut self, all: bool) {
        let settle = self.config.package_settle;
        let due: Vec<((ContainerId, PathBuf), u32)> = self
            .pending_packages
            .iter()
            .filter(|(_, (t, _))| all || t.elapsed() >= settle)
            .map(|(k, (_, pid))| (k.clone(), *pid))
            .collect();
        for (key, pid) in due {
            self.pending_packages.remove(&key);
            let (id, rel) = key;
            self.package_diff(&id, &rel, pid);
            // The database names the files its installer wrote: their events can go.
            self.release_held(Some(&id), false);
        }
    }

    fn package_diff(&mut self, id: &ContainerId, rel: &Path, pid: u32) {
        let cpath = ContainerPath::from(container_path(rel).as_path());
        let Some(eco) = package_db_kind(&cpath) else {
            return;
        };
        let Some(w) = self.containers.get(id) else {
            return;
        };
        let location = cpath.to_string_lossy();
        let current_md = w.lstat(rel).ok();
        // rpm's sqlite database keeps committed rows in its `-wal` until a checkpoint.
        let wal_of = |rel: &Path| {
            let mut p = rel.as_os_str().to_os_string();
            p.push(packages::rpm::WAL_SUFFIX);
            PathBuf::from(p)
        };
        let parse = |bytes: &[u8], wal: Option<Vec<u8>>| match eco {
            Ecosystem::Rpm => packages::rpm::parse_rpm_packages(bytes, wal.as_deref()),
            _ => packages::parse(eco, bytes),
        };
        let current = match current_md {
            Some(md) if !is_whiteout(&md) => match w.read_capped(rel) {
                Ok(b) => parse(
                    &b,
                    (eco == Ecosystem::Rpm)
                        .then(|| w.read_capped(&wal_of(rel)).ok())
                        .flatten(),
                ),
                Err(e) => {
                    tracing::warn!("package database not read: {e}");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        let path = InContainer::new(rel.as_os_str());
        let image = self
            .image_layer(id, rel)
            .and_then(|(l, _)| {
                let db = l
                    .read(&path, Limit::Whole(AGENT_PACKAGE_DB_CAP))
                    .map_err(|e| tracing::warn!("image package database not read: {e}"))
                    .ok()?;
                let wal = (eco == Ecosystem::Rpm)
                    .then(|| {
                        let wal = wal_of(rel);
                        l.read(
                            &InContainer::new(wal.as_os_str()),
                            Limit::Whole(AGENT_PACKAGE_DB_CAP),
                        )
                        .ok()
                    })
                    .flatten();
                Some(parse(&db, wal))
            })
            .unwrap_or_default();
        let w = match self.containers.get_mut(id) {
            Some(w) => w,
            None => return,
        };
        let last = w.packages.get(rel).cloned().unwrap_or(image);
        let mut b = PackageDiffBuilder::default();
        b.add(eco, &location, true, last);
        b.add(eco, &location, false, current.clone());
        let changes = b.finish();
        w.packages.insert(rel.to_path_buf(), current);
        if changes.is_empty() {
            return;
        }
        let words: Vec<String> = changes
            .iter()
            .map(|c| match c.change {
                PackageChangeKind::Added => {
                    format!("added {} {}", c.name, c.version.as_deref().unwrap_or("?"))
                }
                PackageChangeKind::Removed => format!(
                    "removed {} {}",
                    c.name,
                    c.image_version.as_deref().unwrap_or("?")
                ),
                PackageChangeKind::Changed => format!(
                    "changed {} {} -> {}",
                    c.name,
                    c.image_version.as_deref().unwrap_or("?"),
                    c.version.as_deref().unwrap_or("?")
                ),
            })
            .collect();
        let verdict = if changes.iter().all(|c| c.change == PackageChangeKind::Added) {
            Verdict::Added
        } else {
            Verdict::Modified
        };
        let meta = w.meta.clone();
        let path = location.clone();
        let forks = self.config.forks.as_deref();
        let mut process = process_of(&self.procs, forks, pid, &mut self.actor_deadline);
        if let Some(e) = self.registry.get(id) {
            e.name_process(&mut process);
        }
        let event = Event {
            num: 0,
            time_ns: driftwatch_model::clock::now_ns(),
            kind: EventKind::Open,
            process,
            container: Some(meta),
            // Not an open-for-write of its own: the writes were reported as they happened.
            file: Some(FileRef {
                flags: 0,
                mode: None,
                target: None,
                owner: None,
                path: path.clone(),
                old_path: None,
                write: false,
                typechar: 'f',
            }),
            net: None,
            drift: Some(DriftFinding {
                provenance: Default::default(),
                enforcement: None,
                kind: DriftKind::Package,
                subject: DriftSubject::PackageDb,
                verdict,
                path,
                hash: None,
                image_hash: None,
                detail: Some(format!("{}: {}", eco.as_str(), words.join("; "))),
            }),
        };
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        emit(&self.emitter, &event);
    }
}
