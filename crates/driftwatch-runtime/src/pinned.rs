//! A process pinned by a pidfd, so that what is read about it under `/proc/<pid>` and what is
//! done to it (a signal, entering its network namespace, finding its cgroup) are about one
//! process even when its pid is freed and reused meanwhile.
//!
//! The rule every method follows: read `/proc/<pid>/...` first, then ask the pidfd whether
//! the pinned process still lives. A living process holds its pid, so a read made before
//! that answer was about it; when it died, the read is thrown away. Acting goes through the
//! pidfd itself (`pidfd_send_signal`), or through something the read proved belongs to the
//! container (its cgroup directory, its network namespace's fd).
//!
//! Also here: the host's network namespace, found through a process of the host's pid
//! namespace (`/proc/1`, or a kernel thread), never through the agent's own namespace,
//! which in a Kubernetes DaemonSet without `hostNetwork` is its pod's.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use driftwatch_model::ContainerId;

/// `PF_KTHREAD` in `/proc/<pid>/stat`'s flags (field 9): kernel threads are visible only in
/// the host's (initial) pid namespace.
const PF_KTHREAD: u64 = 0x0020_0000;

/// A process pinned by a pidfd.
#[derive(Debug)]
pub struct PinnedProcess {
    fd: OwnedFd,
    pid: u32,
}

/// Why a process could not be pinned or proved to be the container's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinError {
    #[error("process {pid} has exited")]
    Exited { pid: u32 },
    #[error("process {pid} is not in container {container} ({found}): the pid was reused")]
    Elsewhere {
        pid: u32,
        container: String,
        found: String,
    },
    #[error("{call}({pid}): {message}")]
    Call {
        call: &'static str,
        pid: u32,
        message: String,
    },
}

fn call_err(call: &'static str, pid: u32, e: &std::io::Error) -> PinError {
    if e.raw_os_error() == Some(libc::ESRCH) {
        PinError::Exited { pid }
    } else {
        PinError::Call {
            call,
            pid,
            message: e.to_string(),
        }
    }
}

impl PinnedProcess {
    /// Pins `pid` (`pidfd_open`).
    pub fn open(pid: u32) -> Result<PinnedProcess, PinError> {
        let raw = libc::pid_t::try_from(pid).map_err(|_| PinError::Exited { pid })?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
        if fd < 0 {
            return Err(call_err(
                "pidfd_open",
                pid,
                &std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: the kernel returned a new fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(PinnedProcess { fd, pid })
    }

    /// Pins `pid` and proves it is a process of `container` (full id equality of the
    /// container its cgroup names).
    pub fn of_container(pid: u32, container: &ContainerId) -> Result<PinnedProcess, PinError> {
        let p = PinnedProcess::open(pid)?;
        p.check_container(container)?;
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn send(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: a valid pidfd, a signal number (0: only the existence check), no siginfo,
        // no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether the pinned process still lives (and so still holds its pid).
    pub fn alive(&self) -> bool {
        self.send(0).is_ok()
    }

    /// Sends `sig` to the pinned process, never to a process that reused its pid.
    pub fn signal(&self, sig: i32) -> Result<(), PinError> {
        self.send(sig)
            .map_err(|e| call_err("pidfd_send_signal", self.pid, &e))
    }

    /// Reads `/proc/<pid>/<what>`, kept only when the pinned process was alive after the
    /// read.
    pub fn read_proc(&self, what: &str) -> Result<String, PinError> {
        let path = format!("/proc/{}/{what}", self.pid);
        let text = std::fs::read_to_string(&path);
        if !self.alive() {
            return Err(PinError::Exited { pid: self.pid });
        }
        text.map_err(|e| call_err("read", self.pid, &e))
    }

    /// The container the pinned process's cgroup names, if any.
    pub fn container(&self) -> Result<Option<ContainerId>, PinError> {
        let text = self.read_proc("cgroup")?;
        Ok(crate::container_from_proc_cgroup(&text).map(|m| m.id))
    }

    /// Proves that the pinned process is in `container` (the same full id).
    pub fn check_container(&self, container: &ContainerId) -> Result<(), PinError> {
        match self.container()? {
            Some(id) if id == *container => Ok(()),
            other => Err(PinError::Elsewhere {
                pid: self.pid,
                container: container.short().to_string(),
                found: other.map_or_else(
                    || "no container's cgroup".to_string(),
                    |o| format!("container {}", o.short()),
                ),
            }),
        }
    }

    /// Reads `/proc/<pid>/<what>` from a thread that entered the cgroup namespace `cgroupns`
    /// (an open `/proc/<pid>/ns/cgroup`): the kernel writes the cgroup paths of
    /// `/proc/<pid>/cgroup` relative to the *reader's* cgroup namespace, so read from the
    /// host's they are the host's absolute paths. The thread ends after the read; the
    /// agent's own threads never change namespace.
    pub fn read_proc_in_cgroupns(&self, what: &str, cgroupns: &File) -> Result<String, PinError> {
        let ns = cgroupns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on this thread only, with an fd the caller keeps open.
                if unsafe { libc::setns(ns, libc::CLONE_NEWCGROUP) } != 0 {
                    return Err(call_err(
                        "setns cgroup",
                        self.pid,
                        &std::io::Error::last_os_error(),
                    ));
                }
                self.read_proc(what)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(PinError::Call {
                    call: "setns cgroup",
                    pid: self.pid,
                    message: "the reading thread panicked".into(),
                })
            })
        })
    }

    /// Opens the pinned process's network namespace (`/proc/<pid>/ns/net`): the fd is kept
    /// only when the process was alive after the open.
    pub fn netns(&self) -> Result<File, PinError> {
        let path = format!("/proc/{}/ns/net", self.pid);
        let file = File::open(&path);
        if !self.alive() {
            return Err(PinError::Exited { pid: self.pid });
        }
        file.map_err(|e| call_err("open ns/net", self.pid, &e))
    }
}

/// The identity of a namespace file (`nsfs` device and inode).
pub type NsId = (u64, u64);

fn ns_id(path: &str) -> std::io::Result<NsId> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Whether `/proc/<pid>/stat` says the process is a kernel thread.
fn is_kernel_thread(stat: &str) -> bool {
    // Fields after the command (which may hold spaces and parentheses): state is field 3,
    // flags field 9.
    stat.rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .and_then(|rest| rest.split_whitespace().nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// The host's network namespace(s), as seen from a `proc` mounted at `proc_root`:
/// `/proc/1/ns/net` when readable and the namespace of `kthreadd` (pid 2, a kernel thread,
/// which only the host's pid namespace shows). Both are the host's: pid 1 and the kernel
/// threads live in the initial network namespace. Without a kernel thread in sight the
/// agent does not see the host's pid namespace (no `hostPID`) and cannot tell: an error.
pub fn host_netns_in(proc_root: &str) -> Result<Vec<NsId>, String> {
    let stat_path = format!("{proc_root}/2/stat");
    let stat = std::fs::read_to_string(&stat_path).unwrap_or_default();
    if !is_kernel_thread(&stat) {
        return Err(format!(
            "the host's network namespace cannot be determined: {stat_path} is not a kernel thread, so the agent does not see the host's pid namespace (run it with hostPID, or --pid host)"
        ));
    }
    let mut found = Vec::new();
    let mut why = Vec::new();
    for p in [
        format!("{proc_root}/1/ns/net"),
        format!("{proc_root}/2/ns/net"),
    ] {
        match ns_id(&p) {
            Ok(id) => found.push(id),
            Err(e) => why.push(format!("{p}: {e}")),
        }
    }
    if found.is_empty() {
        return Err(format!(
            "the host's network namespace cannot be determined: {}",
            why.join("; ")
        ));
    }
    Ok(found)
}

/// The host's cgroup namespace as seen from a `proc` mounted at `proc_root`, when the agent
/// is in another one (a pod or a container run with `--cgroupns private`): `None` when the
/// agent's is the host's. Found like [`host_netns_in`], through a kernel thread's
/// (`kthreadd`, pid 2, only in the host's pid namespace) and never through a container's.
/// Without a kernel thread in sight the agent cannot tell: an error.
pub fn host_cgroupns_in(proc_root: &str) -> Result<Option<File>, String> {
    let stat_path = format!("{proc_root}/2/stat");
    let stat = std::fs::read_to_string(&stat_path).unwrap_or_default();
    if !is_kernel_thread(&stat) {
        return Err(format!(
            "the host's cgroup namespace cannot be determined: {stat_path} is not a kernel thread, so the agent does not see the host's pid namespace (run it with hostPID, or --pid host)"
        ));
    }
    let host_path = format!("{proc_root}/2/ns/cgroup");
    let host = ns_id(&host_path).map_err(|e| format!("{host_path}: {e}"))?;
    let own_path = format!("{proc_root}/self/ns/cgroup");
    let own = ns_id(&own_path).map_err(|e| format!("{own_path}: {e}"))?;
    if own == host {
        return Ok(None);
    }
    let file = File::open(&host_path).map_err(|e| format!("{host_path}: {e}"))?;
    // The open namespace is the one identified (pid 2 cannot be replaced, but a proc_root
    // that is not the real `/proc` could change under us).
    let m = file.metadata().map_err(|e| format!("{host_path}: {e}"))?;
    if (m.dev(), m.ino()) != host {
        return Err(format!("{host_path} changed while it was opened"));
    }
    Ok(Some(file))
}

/// [`host_cgroupns_in`] for the real `/proc`.
pub fn host_cgroupns() -> Result<Option<File>, String> {
    host_cgroupns_in("/proc")
}

/// [`host_netns_in`] for the real `/proc`.
pub fn host_netns() -> Result<Vec<NsId>, String> {
    host_netns_in("/proc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_by_their_flags_despite_hostile_names() {
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0";
        assert!(is_kernel_thread(kthreadd));
        // A user process named to look like the fields of a kernel thread.
        let fake = "2 (x) S 0 0 0 0 -1 2129984) S 0 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0";
        assert!(!is_kernel_thread(fake));
        assert!(!is_kernel_thread(""));
        assert!(!is_kernel_thread("2 (sh) S 1 1 1 0 -1 4194560 9 0"));
    }

    #[test]
    fn without_a_kernel_thread_in_sight_the_host_netns_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("2")).unwrap();
        std::fs::write(
            dir.path().join("2/stat"),
            "2 (pause) S 1 1 1 0 -1 4194560 9 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
        )
        .unwrap();
        let e = host_netns_in(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("hostPID"), "{e}");
        assert!(e.contains("/2/stat is not a kernel thread"), "{e}");
    }

    #[test]
    fn the_host_netns_is_the_kernel_threads_one() {
        // On a host (or with hostPID) the kernel threads are visible; kthreadd's namespace
        // is the initial one, and the test runs on the host.
        let ns = host_netns().unwrap();
        assert!(ns.contains(&ns_id("/proc/2/ns/net").unwrap()));
    }

    #[test]
    fn our_own_process_is_pinned_and_signalled_through_the_pidfd() {
        let p = PinnedProcess::open(std::process::id()).unwrap();
        assert!(p.alive());
        p.signal(0).unwrap();
        assert!(
            p.read_proc("stat")
                .unwrap()
                .starts_with(&p.pid().to_string())
        );
        // The test runs outside any container: proving it is one's fails, naming why.
        let c = ContainerId::new(&"a".repeat(64)).unwrap();
        let e = p.check_container(&c).unwrap_err();
        assert!(
            matches!(&e, PinError::Elsewhere { found, .. } if found == "no container's cgroup"),
            "{e}"
        );
    }

    #[test]
    fn on_the_host_the_agents_cgroup_namespace_is_the_hosts() {
        assert!(host_cgroupns().unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let e = host_cgroupns_in(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("hostPID"), "{e}");
    }

    #[test]
    fn a_cgroup_read_in_another_cgroup_namespace_is_relative_to_it() {
        // A child in a cgroup namespace of its own (`unshare -C`): read from it, our own
        // cgroup is outside its root (`/..`); read from the host's, it is our real path.
        let Ok(mut child) = std::process::Command::new("unshare")
            .args(["-C", "sleep", "30"])
            .spawn()
        else {
            eprintln!("skipped: no unshare");
            return;
        };
        let ours = std::fs::metadata("/proc/self/ns/cgroup").unwrap().ino();
        let path = format!("/proc/{}/ns/cgroup", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&path).map(|m| m.ino()).ok() == Some(ours) {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare -C did not happen"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ns = File::open(&path).unwrap();
        let me = PinnedProcess::open(std::process::id()).unwrap();
        let direct = me.read_proc("cgroup").unwrap();
        let seen_from_child = me.read_proc_in_cgroupns("cgroup", &ns).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        // unshare -C roots the child's namespace at its own cgroups, which are ours (it
        // was not moved): from there ours read `/`, the same lines with the root path.
        let roots: Vec<&str> = seen_from_child
            .lines()
            .filter_map(|l| l.rsplit(':').next())
            .collect();
        assert!(roots.iter().all(|p| *p == "/"), "{seen_from_child}");
        assert_eq!(direct.lines().count(), seen_from_child.lines().count());
        // Our own threads did not move.
        assert_eq!(me.read_proc("cgroup").unwrap(), direct);
    }

    #[test]
    fn an_exited_process_is_no_longer_acted_on() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = PinnedProcess::open(child.id()).unwrap();
        child.wait().unwrap();
        assert!(!p.alive());
        assert_eq!(
            p.signal(libc::SIGKILL),
            Err(PinError::Exited { pid: p.pid() })
        );
        assert_eq!(
            p.read_proc("cgroup"),
            Err(PinError::Exited { pid: p.pid() })
        );
        assert!(matches!(p.netns(), Err(PinError::Exited { .. })));
    }
}
