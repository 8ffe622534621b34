//! What the exec sensor saw of recently exec'd processes: the parent fields of the next exec
//! (`proc.pexepath`), and the acting process of file and network events, which the kernel
//! reports by pid only. Bounded: the oldest half is dropped when full. Processes that have
//! exited are dropped [`PRUNE_AFTER`] after their exec ([`spawn_pruner`]), so the table holds
//! the live processes and the last seconds' exits, not the last 65,536 execs: churn and exec
//! loops do not grow the agent's memory.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use driftwatch_model::Process;
use driftwatch_sensor::ProcessFacts;

/// How long an exited process stays known after its exec was recorded: the events naming
/// it (a file write by `rm`, a connect by `nc`) are handled well within this.
pub const PRUNE_AFTER: Duration = Duration::from_secs(10);

/// What the exec sensor saw of `pid`. A short-lived process (`rm`, `nc`) may have exited
/// before the event naming it is handled, and the exec sensor may not have recorded it yet
/// when it is busy: then wait for the record, up to [`RECORD_WAIT`], rather than report the
/// event without its actor. `None` at once when the process still runs (read /proc instead).
pub fn lookup_or_wait(procs: &Mutex<ProcTable>, pid: u32) -> Option<ProcInfo> {
    lookup_or_wait_until(procs, pid, &mut None)
}

/// How long an event waits for its exited process's exec record.
pub const RECORD_WAIT: Duration = Duration::from_millis(100);

/// Like [`lookup_or_wait`], for a batch of events sharing one wait: the first that waits
/// sets `deadline` ([`RECORD_WAIT`] ahead), the others wait no later.
pub fn lookup_or_wait_until(
    procs: &Mutex<ProcTable>,
    pid: u32,
    deadline: &mut Option<Instant>,
) -> Option<ProcInfo> {
    let lookup = || recorded(procs, pid);
    let mut known = lookup();
    if known.is_none() && pid != 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let until = *deadline.get_or_insert_with(|| Instant::now() + RECORD_WAIT);
        while known.is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
            known = lookup();
        }
    }
    known
}

/// The exec record of a running `pid` that is known to have exec'd, waiting for it no later
/// than the batch's shared `deadline` (set [`RECORD_WAIT`] ahead by the first that waits).
pub fn wait_for_record_until(
    procs: &Mutex<ProcTable>,
    pid: u32,
    deadline: &mut Option<Instant>,
) -> Option<ProcInfo> {
    let until = *deadline.get_or_insert_with(|| Instant::now() + RECORD_WAIT);
    let mut known = recorded(procs, pid);
    while known.is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
        known = recorded(procs, pid);
    }
    known
}

/// A number field of a `/proc/PID/status` text (`PPid:`, `Uid:` ...): its first value.
pub fn status_u32(status: &str, key: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The exec record of `pid`, if the table has it.
fn recorded(procs: &Mutex<ProcTable>, pid: u32) -> Option<ProcInfo> {
    procs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(pid)
        .cloned()
}

/// How long the exec before a pid's last one is kept (see [`ProcTable::get_as_of`]).
pub const PREVIOUS_KEPT_FOR: Duration = Duration::from_secs(1);

/// The exec record of `pid` current at `time_ns` ([`ProcTable::get_as_of`]), waiting up to
/// [`LIVE_RECORD_WAIT`] for one even while the process runs: under load the exec sensor's queue can be behind a process that execs and listens at
/// once, and the record carries what /proc cannot give back (the kernel's facts at exec).
/// For rare events only (a listen, a connect to a new destination).
pub fn lookup_or_wait_live_as_of(
    procs: &Mutex<ProcTable>,
    pid: u32,
    time_ns: u64,
) -> Option<ProcInfo> {
    let lookup = || {
        procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_as_of(pid, time_ns)
            .cloned()
    };
    let until = Instant::now() + LIVE_RECORD_WAIT;
    let mut known = lookup();
    while known.is_none() && pid != 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
        known = lookup();
    }
    known
}

/// How long a network event of a live process waits for that process's exec record.
pub const LIVE_RECORD_WAIT: Duration = Duration::from_millis(300);

/// A process as it was at its last exec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub exepath: String,
    pub name: String,
    /// As the kernel gave it: at most the exec record's argument cap (4 KiB).
    pub argv: Vec<String>,
    pub ancestors: Vec<String>,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
    pub facts: ExecFacts,
}

/// What the exec sensor said of a process that stays true of it until its next exec, so
/// that its file and network events carry them as its exec event did. Fixed size but
/// `ancestor_pids` (at most the record's 4 ancestors): entries stay small however hostile
/// the container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecFacts {
    /// Session and group ids in the host's view: the keys of the leaders' names in the table.
    pub kernel: ProcessFacts,
    pub vpid: u32,
    /// `kernel.start_boot_ns` as nanoseconds since the epoch.
    pub start_ns: u64,
    /// When this exec happened (the record's boot time), as nanoseconds since the epoch.
    pub exec_ns: u64,
    pub exe_ino: u64,
    pub exe_ctime_ns: u64,
    pub exe_mtime_ns: u64,
    pub ancestor_pids: Vec<u32>,
}

impl ProcTable {
    /// Fills `p` with `info`'s exec facts and what the table knows of its relatives: the
    /// parent's argv (`proc.pcmdline`, `proc.pexe`), the ancestors' executables
    /// (`proc.aexepath[N]`), the session and process group leaders' names (`proc.sname`,
    /// `proc.vpgid.name`). A relative the table does not know stays empty here; see
    /// [`fill_unknown_relatives`].
    pub fn fill(&self, p: &mut Process, info: &ProcInfo) {
        let f = &info.facts;
        let k = &f.kernel;
        p.loginuid = k.loginuid;
        p.vpid = Some(f.vpid);
        p.sid = Some(k.sid);
        p.vpgid = Some(k.vpgid);
        p.cap_permitted = Some(k.cap_permitted);
        p.cap_effective = Some(k.cap_effective);
        p.cap_inheritable = Some(k.cap_inheritable);
        p.start_ns = Some(f.start_ns);
        p.exe_ino = Some(f.exe_ino);
        p.exe_ctime_ns = Some(f.exe_ctime_ns);
        p.exe_mtime_ns = Some(f.exe_mtime_ns);
        p.ancestor_pids = f.ancestor_pids.clone();
        p.ancestor_exepaths = f
            .ancestor_pids
            .iter()
            .map(|&pid| self.exepath(pid).unwrap_or_default().to_string())
            .collect();
        // The parent's pid is the first ancestor's when the kernel gave it; `info.ppid` is the
        // same pid for an exec record, and the only one for older entries.
        let ppid = f.ancestor_pids.first().copied().unwrap_or(info.ppid);
        p.pargv = self.get(ppid).map(|pi| pi.argv.clone()).unwrap_or_default();
        let leader = |pid: u32| {
            if pid == p.pid {
                Some(info.name.clone())
            } else {
                self.get(pid).map(|l| l.name.clone())
            }
        };
        p.sname = leader(k.sid).unwrap_or_default();
        p.vpgid_name = leader(k.pgid).unwrap_or_default();
    }
}

/// Fills `p` from `k`, its exec's record in the table: the exec's facts and its relatives'
/// ([`ProcTable::fill`], then [`fill_unknown_relatives`]) and what it ran (exe path, argv,
/// ancestors, working directory), as its exec event carried them.
pub fn fill_from_exec(procs: &Mutex<ProcTable>, p: &mut Process, k: ProcInfo) {
    procs.lock().unwrap_or_else(|e| e.into_inner()).fill(p, &k);
    fill_unknown_relatives(p, k.facts.kernel.sid, k.facts.kernel.pgid);
    p.exepath = k.exepath;
    p.argv = k.argv;
    p.ancestors = k.ancestors;
    p.cwd = k.cwd;
}

/// What the table did not know of `p`'s relatives, from /proc while they run: the parent's
/// argv (a container's init is the child of the engine's shim, a host process the exec
/// sensor does not report) and the session and process group leaders' names (leaders that
/// exec'd before the agent started, or whose entry was pruned). One small, capped read
/// each, only for those unknown. Call it without the table's lock.
pub fn fill_unknown_relatives(p: &mut Process, sid: u32, pgid: u32) {
    if p.pargv.is_empty() && p.ppid != 0 {
        p.pargv = proc_argv(p.ppid);
    }
    let comm = |pid: u32| {
        if pid == 0 {
            return String::new();
        }
        driftwatch_fs::host::proc_string(pid, "comm")
            .map(|c| c.trim_end_matches('\n').to_string())
            .unwrap_or_default()
    };
    if p.sname.is_empty() {
        p.sname = comm(sid);
    }
    if p.vpgid_name.is_empty() {
        p.vpgid_name = if pgid == sid {
            p.sname.clone()
        } else {
            comm(pgid)
        };
    }
}

pub struct ProcTable {
    /// pid -> (insertion sequence, when, what).
    exepaths: HashMap<u32, (u64, Instant, ProcInfo)>,
    /// The exec before the current one, for pids that exec'd again within
    /// [`PREVIOUS_KEPT_FOR`]: a network or file event of the earlier program can be handled
    /// after the later exec's record is in (the sensors' rings are drained on timers).
    previous: HashMap<u32, ProcInfo>,
    next: u64,
    capacity: usize,
}

impl ProcTable {
    pub fn new(capacity: usize) -> Self {
        ProcTable {
            exepaths: HashMap::new(),
            previous: HashMap::new(),
            next: 0,
            capacity: capacity.max(2),
        }
    }

    pub fn insert(&mut self, pid: u32, info: ProcInfo) {
        self.next += 1;
        let now = Instant::now();
        match self.exepaths.insert(pid, (self.next, now, info)) {
            Some((_, at, old)) if now.duration_since(at) < PREVIOUS_KEPT_FOR => {
                if self.previous.len() >= self.capacity / 8 {
                    self.previous.clear();
                }
                self.previous.insert(pid, old);
            }
            _ => {
                self.previous.remove(&pid);
            }
        }
        if self.exepaths.len() > self.capacity {
            let keep_after = self.next - (self.capacity as u64 / 2);
            self.exepaths.retain(|_, (seq, _, _)| *seq > keep_after);
            let kept = &self.exepaths;
            self.previous.retain(|pid, _| kept.contains_key(pid));
        }
    }

    pub fn exepath(&self, pid: u32) -> Option<&str> {
        self.get(pid).map(|p| p.exepath.as_str())
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.exepaths.get(&pid).map(|(_, _, p)| p)
    }

    /// The exec of `pid` that was current at `time_ns` (ns since the epoch): the last one,
    /// unless it came after that time and the one before it is still known.
    pub fn get_as_of(&self, pid: u32, time_ns: u64) -> Option<&ProcInfo> {
        let current = self.get(pid)?;
        if current.facts.exec_ns > time_ns
            && let Some(prev) = self.previous.get(&pid)
            && prev.facts.exec_ns <= time_ns
        {
            return Some(prev);
        }
        Some(current)
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
            t.previous.remove(&pid);
        }
    }
    let removed = before - t.exepaths.len();
    // Give the memory back when the table was large (an exec storm) and is small now.
    if t.exepaths.capacity() > 4 * t.exepaths.len().max(1024) {
        t.exepaths.shrink_to_fit();
    }
    removed
}

/// A running process's argv from `/proc/<pid>/cmdline` (capped by
/// [`driftwatch_fs::host::proc_bytes`]); empty once it is gone.
pub fn proc_argv(pid: u32) -> Vec<String> {
    driftwatch_fs::host::proc_bytes(pid, "cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
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

    /// An exec's facts come from its own record; its relatives' from their entries: the
    /// parent's argv, the ancestors' executables (empty for one not seen), the leaders' names.
    #[test]
    fn fill_takes_relatives_from_the_table() {
        let mut t = ProcTable::new(100);
        let entry = |exepath: &str, name: &str, argv: &[&str]| ProcInfo {
            exepath: exepath.into(),
            name: name.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        t.insert(10, entry("/usr/bin/bash", "bash", &["bash", "-l"]));
        t.insert(
            20,
            entry("/usr/bin/python3.11", "python3", &["python3", "app.py"]),
        );
        let info = ProcInfo {
            name: "sh".into(),
            ppid: 20,
            facts: ExecFacts {
                kernel: ProcessFacts {
                    loginuid: Some(u32::MAX),
                    sid: 10,
                    pgid: 30,
                    vpgid: 3,
                    cap_effective: 1 << 12,
                    ..Default::default()
                },
                vpid: 7,
                start_ns: 99,
                exe_ino: 5,
                ancestor_pids: vec![20, 15, 10],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut p = Process {
            pid: 30,
            ..Default::default()
        };
        t.fill(&mut p, &info);
        assert_eq!(p.pargv, ["python3", "app.py"]);
        assert_eq!(p.ancestor_pids, [20, 15, 10]);
        assert_eq!(
            p.ancestor_exepaths,
            ["/usr/bin/python3.11", "", "/usr/bin/bash"]
        );
        assert_eq!(p.sname, "bash");
        // The process leads its own group: its own name, not an entry's.
        assert_eq!(p.vpgid_name, "sh");
        assert_eq!((p.vpid, p.sid, p.vpgid), (Some(7), Some(10), Some(3)));
        assert_eq!(p.loginuid, Some(u32::MAX));
        assert_eq!(p.cap_effective, Some(1 << 12));
        assert_eq!((p.start_ns, p.exe_ino), (Some(99), Some(5)));
    }

    /// A parent and leaders the table does not know are read from /proc: here, this test's
    /// own process stands for them.
    #[test]
    fn unknown_relatives_come_from_proc() {
        let me = std::process::id();
        let mut p = Process {
            ppid: me,
            ..Default::default()
        };
        fill_unknown_relatives(&mut p, me, me);
        let own_argv: Vec<String> = std::env::args().collect();
        assert_eq!(p.pargv, own_argv);
        let comm = driftwatch_fs::host::proc_string(me, "comm").unwrap();
        assert_eq!(p.sname, comm.trim_end());
        assert_eq!(p.vpgid_name, p.sname);
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

    #[test]
    fn an_event_before_a_pids_second_exec_is_described_by_the_first() {
        let mut t = ProcTable::new(64);
        let exec = |argv: &str, exec_ns: u64| ProcInfo {
            argv: vec![argv.to_string()],
            facts: ExecFacts {
                exec_ns,
                ..Default::default()
            },
            ..Default::default()
        };
        t.insert(7, exec("first", 100));
        t.insert(7, exec("again", 200));
        let at = |t: &ProcTable, ns| t.get_as_of(7, ns).map(|p| p.argv[0].clone());
        assert_eq!(at(&t, 150).as_deref(), Some("first"));
        assert_eq!(at(&t, 250).as_deref(), Some("again"));
        // Before either exec (a clock skew between the sensors): the last one.
        assert_eq!(at(&t, 50).as_deref(), Some("again"));
        assert_eq!(t.get_as_of(8, 150), None);
    }
}
