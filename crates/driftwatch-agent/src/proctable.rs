//! What the exec sensor saw of recently exec'd processes: the parent fields of the next exec
//! (`proc.pexepath`), and the acting process of file and network events, which the kernel
//! reports by pid only. Bounded: the oldest half is dropped when full. Processes that have
//! exited are dropped [`PRUNE_AFTER`] after their exec ([`spawn_pruner`]), so the table holds
//! the live processes and the last seconds' exits, not the last 65,536 execs: churn and exec
//! loops do not grow the agent's memory.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// How long an exited process stays known after its exec was recorded: the events naming
/// it (a file write by `rm`, a connect by `nc`) are handled well within this.
pub const PRUNE_AFTER: Duration = Duration::from_secs(10);

/// What the exec sensor saw of `pid`. A short-lived process (`rm`, `nc`) may have exited
/// before the event naming it is handled, and the exec sensor may not have recorded it yet
/// when it is busy: then wait for the record, up to 100 ms, rather than report the event
/// without its actor. `None` at once when the process still runs (read /proc instead).
pub fn lookup_or_wait(procs: &Mutex<ProcTable>, pid: u32) -> Option<ProcInfo> {
    let lookup = || {
        procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pid)
            .cloned()
    };
    let mut known = lookup();
    if known.is_none() && pid != 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let deadline = Instant::now() + Duration::from_millis(100);
        while known.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            known = lookup();
        }
    }
    known
}

/// A process as it was at its last exec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub exepath: String,
    pub name: String,
    pub argv: Vec<String>,
    pub ancestors: Vec<String>,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

pub struct ProcTable {
    /// pid -> (insertion sequence, when, what).
    exepaths: HashMap<u32, (u64, Instant, ProcInfo)>,
    next: u64,
    capacity: usize,
}

impl ProcTable {
    pub fn new(capacity: usize) -> Self {
        ProcTable {
            exepaths: HashMap::new(),
            next: 0,
            capacity: capacity.max(2),
        }
    }

    pub fn insert(&mut self, pid: u32, info: ProcInfo) {
        self.next += 1;
        self.exepaths.insert(pid, (self.next, Instant::now(), info));
        if self.exepaths.len() > self.capacity {
            let keep_after = self.next - (self.capacity as u64 / 2);
            self.exepaths.retain(|_, (seq, _, _)| *seq > keep_after);
        }
    }

    pub fn exepath(&self, pid: u32) -> Option<&str> {
        self.get(pid).map(|p| p.exepath.as_str())
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.exepaths.get(&pid).map(|(_, _, p)| p)
    }

    pub fn len(&self) -> usize {
        self.exepaths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exepaths.is_empty()
    }

    /// (pid, sequence) of the entries recorded at least `min_age` ago.
    fn older_than(&self, min_age: Duration) -> Vec<(u32, u64)> {
        let now = Instant::now();
        self.exepaths
            .iter()
            .filter(|(_, (_, at, _))| now.duration_since(*at) >= min_age)
            .map(|(pid, (seq, _, _))| (*pid, *seq))
            .collect()
    }
}

/// Drops the entries recorded at least `min_age` ago whose process is gone (`alive` says
/// no). The liveness checks run without the lock; an entry replaced meanwhile (the pid
/// exec'd again) stays. Returns how many went.
pub fn prune_exited(
    procs: &Mutex<ProcTable>,
    min_age: Duration,
    alive: impl Fn(u32) -> bool,
) -> usize {
    let old = procs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .older_than(min_age);
    let gone: Vec<(u32, u64)> = old.into_iter().filter(|(pid, _)| !alive(*pid)).collect();
    if gone.is_empty() {
        return 0;
    }
    let mut t = procs.lock().unwrap_or_else(|p| p.into_inner());
    let before = t.exepaths.len();
    for (pid, seq) in gone {
        if t.exepaths.get(&pid).is_some_and(|(s, _, _)| *s == seq) {
            t.exepaths.remove(&pid);
        }
    }
    let removed = before - t.exepaths.len();
    // Give the memory back when the table was large (an exec storm) and is small now.
    if t.exepaths.capacity() > 4 * t.exepaths.len().max(1024) {
        t.exepaths.shrink_to_fit();
    }
    removed
}

/// Whether `pid` runs (in the agent's pid namespace: the host's).
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A thread that prunes the processes exited at least `min_age` after their exec, every
/// `every`, until the table is dropped.
pub fn spawn_pruner(
    procs: Weak<Mutex<ProcTable>>,
    every: Duration,
    min_age: Duration,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dw-proc-prune".into())
        .spawn(move || {
            let step = Duration::from_millis(250).min(every);
            let mut waited = Duration::ZERO;
            loop {
                std::thread::sleep(step);
                if procs.strong_count() == 0 {
                    return;
                }
                waited += step;
                if waited < every {
                    continue;
                }
                waited = Duration::ZERO;
                let Some(p) = procs.upgrade() else {
                    return;
                };
                prune_exited(&p, min_age, pid_alive);
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_the_newest() {
        let mut t = ProcTable::new(10);
        for pid in 0..100 {
            t.insert(
                pid,
                ProcInfo {
                    exepath: format!("/bin/p{pid}"),
                    ..Default::default()
                },
            );
        }
        assert!(t.len() <= 10);
        assert_eq!(t.exepath(99), Some("/bin/p99"));
        assert_eq!(t.exepath(0), None);
        t.insert(
            99,
            ProcInfo {
                exepath: "/bin/other".into(),
                ..Default::default()
            },
        );
        assert_eq!(t.exepath(99), Some("/bin/other"));
    }

    /// A real exited process goes, a live one (this test) stays, an entry too young stays,
    /// and an entry replaced while the liveness checks ran is kept.
    #[test]
    fn exited_processes_are_pruned_live_ones_kept() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        let procs = Mutex::new(ProcTable::new(100));
        for pid in [dead, live] {
            procs.lock().unwrap().insert(pid, ProcInfo::default());
        }
        // Too young: nothing goes.
        assert_eq!(prune_exited(&procs, Duration::from_secs(60), pid_alive), 0);
        assert_eq!(prune_exited(&procs, Duration::ZERO, pid_alive), 1);
        let t = procs.lock().unwrap();
        assert!(t.get(dead).is_none());
        assert!(t.get(live).is_some());
        drop(t);
        // Re-exec'd while its liveness was checked: the new entry stays.
        let procs = Mutex::new(ProcTable::new(100));
        procs.lock().unwrap().insert(dead, ProcInfo::default());
        let removed = prune_exited(&procs, Duration::ZERO, |pid| {
            procs.lock().unwrap().insert(
                pid,
                ProcInfo {
                    exepath: "/bin/again".into(),
                    ..Default::default()
                },
            );
            false
        });
        assert_eq!(removed, 0);
        assert_eq!(procs.lock().unwrap().exepath(dead), Some("/bin/again"));
    }

    /// The thread prunes on its own, and ends once the table is dropped.
    #[test]
    fn the_pruner_prunes_and_ends_with_the_table() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let procs = std::sync::Arc::new(Mutex::new(ProcTable::new(100)));
        procs.lock().unwrap().insert(dead, ProcInfo::default());
        procs
            .lock()
            .unwrap()
            .insert(std::process::id(), ProcInfo::default());
        let thread = spawn_pruner(
            std::sync::Arc::downgrade(&procs),
            Duration::from_millis(20),
            Duration::ZERO,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while procs.lock().unwrap().len() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(procs.lock().unwrap().get(dead).is_none());
        assert_eq!(procs.lock().unwrap().len(), 1);
        drop(procs);
        thread.join().unwrap();
    }
}
