//! A file a package manager writes is reported once its database names it: dpkg, apk and
//! rpm write a package's files before the record that lists them, so an alert sent at once
//! would name no package and read like a dropped payload. Such events wait (bounded in
//! number and time) until the container's package database settles.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use driftwatch_model::{ContainerId, Event};

use super::Sensor;
use crate::alert_names::RawNames;
use crate::emitter::emit_named;

/// Processes (`comm`, 15 bytes at most) that install files their database then lists: dpkg
/// and its front ends, apk, rpm and its front ends. Language package managers (pip, npm) are
/// not held: their records (`RECORD`, `package.json`) are not read as file owners.
const PACKAGE_INSTALLERS: [&str; 14] = [
    "dpkg",
    "apt",
    "apt-get",
    "aptitude",
    "unattended-upgr",
    "apk",
    "rpm",
    "dnf",
    "dnf5",
    "yum",
    "microdnf",
    "tdnf",
    "zypper",
    "rpmkeys",
];

/// Events held at most (across containers): past it, events are sent at once, without a
/// package, rather than held without bound.
const MAX_HELD: usize = 4096;

/// How long an event waits at most for the database: a package whose maintainer scripts run
/// longer is reported with what the database says by then.
pub(super) const MAX_HOLD: Duration = Duration::from_secs(10);

/// The events waiting, oldest first.
#[derive(Default)]
pub(super) struct HeldEvents {
    queue: VecDeque<(Instant, ContainerId, Event, Option<RawNames>)>,
}

fn is_installer(name: &str) -> bool {
    PACKAGE_INSTALLERS.contains(&name)
}

impl Sensor {
    /// Sends `event`, or holds it when a package installer made the change.
    pub(super) fn emit_or_hold(&mut self, id: &ContainerId, event: Event, names: Option<RawNames>) {
        if is_installer(&event.process.name) && self.held.queue.len() < MAX_HELD {
            self.held
                .queue
                .push_back((Instant::now(), id.clone(), event, names));
            return;
        }
        emit_named(&self.emitter, &event, names.as_ref());
    }

    /// Sends the held events of `settled` (its package database was just compared: it names
    /// the files now), those held for [`MAX_HOLD`], or all of them (`all`: shutting down).
    pub(super) fn release_held(&mut self, settled: Option<&ContainerId>, all: bool) {
        if self.held.queue.is_empty() {
            return;
        }
        let (due, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.held.queue)
            .into_iter()
            .partition(|(t, id, _, _)| all || Some(id) == settled || t.elapsed() >= MAX_HOLD);
        self.held.queue = keep;
        for (_, _, e, names) in due {
            emit_named(&self.emitter, &e, names.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installers_are_told_from_other_processes() {
        for n in ["dpkg", "apk", "rpm", "dnf", "unattended-upgr"] {
            assert!(is_installer(n), "{n}");
        }
        for n in ["sh", "cp", "python3", "dpkg-query", "curl", "pip"] {
            assert!(!is_installer(n), "{n}");
        }
    }
}
