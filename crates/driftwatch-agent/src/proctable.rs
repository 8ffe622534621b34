//! What the exec sensor saw of recently exec'd processes: the parent fields of the next exec
//! (`proc.pexepath`), and the acting process of file and network events, which the kernel
//! reports by pid only. Bounded: the oldest half is dropped when full.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    exepaths: HashMap<u32, (u64, ProcInfo)>,
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
        self.exepaths.insert(pid, (self.next, info));
        if self.exepaths.len() > self.capacity {
            let keep_after = self.next - (self.capacity as u64 / 2);
            self.exepaths.retain(|_, (seq, _)| *seq > keep_after);
        }
    }

    pub fn exepath(&self, pid: u32) -> Option<&str> {
        self.get(pid).map(|p| p.exepath.as_str())
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.exepaths.get(&pid).map(|(_, p)| p)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.exepaths.len()
    }
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
}
