//! The process a file notice names by pid: its exec record, /proc while it runs, or, for a
//! forked child that never exec'd and is gone, the process it was forked from
//! (`fork.bpf.c`). Kept apart from the event shaping: who did it is one question, what was
//! done another.

use std::sync::Mutex;
use std::time::Instant;

use driftwatch_model::Process;
use driftwatch_sensor::ForkParents;

use crate::proctable::{ProcInfo, ProcTable};

/// The acting process, from what the exec sensor saw or, failing that, from /proc, or for a
/// forked child that never exec'd and is gone, from the process that forked it
/// ([`forked_process`]). The notices of one read share one wait for their exited processes'
/// exec records (`deadline`): a process that never exec'd (a shell's forked child running a
/// busybox applet: `mkdir` in a loop) is never recorded, and waiting 100 ms for each of a
/// burst of them would put the sensor seconds behind.
pub(super) fn process_of(
    procs: &Mutex<ProcTable>,
    forks: Option<&ForkParents>,
    pid: u32,
    deadline: &mut Option<Instant>,
) -> Process {
    let mut known = crate::proctable::lookup_or_wait_until(procs, pid, deadline);
    if known.is_none() && pid != 0 && exec_record_due(pid) {
        known = crate::proctable::wait_for_record_until(procs, pid, deadline);
    }
    if let Some(p) = known {
        return recorded_process(procs, pid, p);
    }
    if pid == 0 {
        return Process::default();
    }
    if let Some(forks) = forks
        && !crate::proctable::pid_alive(pid)
        && let Some(p) = forked_process(procs, forks, pid)
    {
        return p;
    }
    running_process(pid)
}

/// Is `pid` running a program its parent does not (it exec'd, so the exec sensor has its
/// record on the way)? Under load the exec queue can be behind a process that execs and
/// writes at once (`sh -c 'mkdir /etc/x'`); a forked child that never exec'd (a busybox
/// applet) runs its parent's executable and will never have a record: it is not waited for.
fn exec_record_due(pid: u32) -> bool {
    let exe = |p: u32| driftwatch_fs::host::proc_link(p, "exe").ok();
    let Some(own) = exe(pid) else {
        return false;
    };
    let status = driftwatch_fs::host::proc_bytes(pid, "status").unwrap_or_default();
    let ppid = crate::proctable::status_u32(&String::from_utf8_lossy(&status), "PPid:");
    match ppid {
        Some(pp) if pp != 0 => exe(pp).is_none_or(|parent| parent != own),
        _ => false,
    }
}

/// How many forks up [`forked_process`] looks for an ancestor it can name (a subshell of a
/// subshell of a shell).
const FORK_DEPTH: usize = 8;

/// A gone process that never exec'd, named after the closest ancestor it was forked from
/// that exec'd (its record) or still runs (/proc): a forked child runs its parent's
/// executable with its parent's argv, as Falco reports it. Its parent is that ancestor
/// (`proc.pname`, `proc.pexepath`, `proc.pcmdline`); facts of the parent's exec that are not
/// the child's (its start, its own pid in the container, its session's and group's
/// leaders) are left unknown, but for the child's own pid in the container, which the fork
/// record has.
fn forked_process(procs: &Mutex<ProcTable>, forks: &ForkParents, pid: u32) -> Option<Process> {
    let first = forks.fork_of(pid)?;
    let mut parent = first.parent;
    for _ in 0..FORK_DEPTH {
        let known = procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(parent)
            .cloned();
        let from = match known {
            Some(info) => Some(recorded_process(procs, parent, info)),
            None if crate::proctable::pid_alive(parent) => Some(running_process(parent)),
            None => None,
        };
        if let Some(from) = from {
            return Some(Process {
                pid,
                ppid: first.parent,
                vpid: Some(first.vpid),
                uid: from.uid,
                gid: from.gid,
                name: from.name.clone(),
                exepath: from.exepath.clone(),
                argv: from.argv.clone(),
                cwd: from.cwd.clone(),
                ancestors: std::iter::once(from.name.clone())
                    .chain(from.ancestors.iter().cloned())
                    .collect(),
                ancestor_pids: std::iter::once(parent)
                    .chain(from.ancestor_pids.iter().copied())
                    .collect(),
                ancestor_exepaths: std::iter::once(from.exepath.clone())
                    .chain(from.ancestor_exepaths.iter().cloned())
                    .collect(),
                pexepath: from.exepath.clone(),
                pargv: from.argv.clone(),
                loginuid: from.loginuid,
                ..Default::default()
            });
        }
        parent = forks.fork_of(parent)?.parent;
    }
    None
}

/// A process as its exec record says it.
fn recorded_process(procs: &Mutex<ProcTable>, pid: u32, p: ProcInfo) -> Process {
    let pexepath = procs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .exepath(p.ppid)
        .unwrap_or_default()
        .to_string();
    let mut process = Process {
        pid,
        ppid: p.ppid,
        uid: p.uid,
        gid: p.gid,
        name: p.name.clone(),
        pexepath,
        ..Default::default()
    };
    // With the facts of its exec (login uid, session, capabilities, ...), as its exec
    // event carried them.
    crate::proctable::fill_from_exec(procs, &mut process, p);
    process
}

/// A running process as /proc says it, with its parent's name and argv while the parent
/// runs (the exec sensor never saw it: it exec'd before the agent started, or never did).
fn running_process(pid: u32) -> Process {
    let read = |f: &str| driftwatch_fs::host::proc_bytes(pid, f).unwrap_or_default();
    let argv = crate::proctable::proc_argv(pid);
    let status = String::from_utf8_lossy(&read("status")).into_owned();
    let field = |k: &str| crate::proctable::status_u32(&status, k);
    let ppid = field("PPid:").unwrap_or(0);
    // Its pid in its own namespace: the last of `NSpid:` (the innermost namespace).
    let vpid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok());
    let parent_name = (ppid != 0)
        .then(|| driftwatch_fs::host::proc_string(ppid, "comm").ok())
        .flatten()
        .map(|c| c.trim_end_matches('\n').to_string());
    Process {
        pid,
        ppid,
        vpid,
        uid: field("Uid:").unwrap_or(0),
        gid: field("Gid:").unwrap_or(0),
        name: String::from_utf8_lossy(&read("comm")).trim().to_string(),
        exepath: driftwatch_fs::host::proc_link(pid, "exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        argv,
        ancestors: parent_name.into_iter().collect(),
        ancestor_pids: if ppid != 0 { vec![ppid] } else { Vec::new() },
        pargv: if ppid != 0 {
            crate::proctable::proc_argv(ppid)
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real forked child that never exec'd and is gone: with the fork table it is named
    /// after its parent's exec record (name, executable, argv, the parent as `proc.pname`),
    /// with its own pids; without it, /proc has nothing left to say.
    #[test]
    fn a_gone_forked_child_is_named_after_the_process_it_was_forked_from() {
        driftwatch_testkit::require!(Root("loading BPF programs"));
        // Any namespace but this one's is "the host's": this test's forks are recorded.
        let forks = ForkParents::start(1).expect("loading the fork program");
        let out = std::process::Command::new("sh")
            .args(["-c", "(read -r p rest < /proc/self/stat; echo $p); echo $$"])
            .output()
            .unwrap();
        let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        let (child, parent) = (pids[0], pids[1]);
        let procs = Mutex::new(ProcTable::new(16));
        let argv = vec!["sh".to_string(), "-c".into(), "the script".into()];
        procs.lock().unwrap().insert(
            parent,
            ProcInfo {
                exepath: "/usr/bin/dash".into(),
                name: "sh".into(),
                argv: argv.clone(),
                ancestors: vec!["bash".into()],
                ..Default::default()
            },
        );
        let p = process_of(&procs, Some(&forks), child, &mut None);
        assert_eq!((p.pid, p.ppid, p.vpid), (child, parent, Some(child)));
        assert_eq!(
            (p.name.as_str(), p.exepath.as_str()),
            ("sh", "/usr/bin/dash")
        );
        assert_eq!(p.argv, argv);
        assert_eq!(p.ancestors, ["sh", "bash"]);
        assert_eq!(p.pargv, argv);
        let p = process_of(&procs, None, child, &mut None);
        assert_eq!((p.pid, p.name.as_str()), (child, ""));
    }
}
