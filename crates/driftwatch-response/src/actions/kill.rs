//! `kill`: SIGKILL the alert's process, and only that process.
//!
//! The pid-reuse guard: the process is pinned first with a pidfd (`pidfd_open`), so the checks
//! and the signal are about one process even if the pid is freed and reused meanwhile. Then it
//! must (1) still be in the alert's container (its cgroup names the same container id),
//! (2) have started no later than the alert's exec (a process started after the alert is a
//! reused pid), and (3) when its executable can be read, still run the alert's executable (a
//! process that exec'd something else since is left alone). Only then `pidfd_send_signal`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use driftwatch_model::ContainerId;

use super::Step;

/// Scheduling slack allowed between a process's start and the alert's exec time (the start
/// time is in clock ticks).
const START_SLACK_NS: u64 = 50_000_000;

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
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

/// The wall-clock time (ns since the epoch) a process started, from `/proc/<pid>/stat`.
pub(crate) fn start_time_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces and parentheses): state is field 3,
    // starttime field 22.
    let rest = &stat[stat.rfind(')')? + 2..];
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()?
        .max(1);
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    let boot_now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let boot_at = crate::record::now_ns().checked_sub(boot_now)?;
    Some(boot_at + ticks * (1_000_000_000 / hz))
}

/// The container a process is in, by its cgroup.
pub(crate) fn container_of(pid: u32) -> Option<ContainerId> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    driftwatch_runtime::container_from_proc_cgroup(&text).map(|m| m.id)
}

/// Kills `pid` if it is still the alert's process in `container`.
/// `container` is the alert's short id (or the full id).
pub fn kill(container: &str, pid: u32, exepath: &str, alert_time_ns: Option<u64>) -> Step {
    let container = container.to_ascii_lowercase();
    let short = &container[..container.len().min(12)];
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            return Step::Skipped(format!("process {pid} already exited"));
        }
        Err(e) => return Step::Failed(format!("pidfd_open({pid}): {e}")),
    };
    // From here on, /proc/<pid> is the pinned process or gone (then the signal fails ESRCH).
    match container_of(pid) {
        Some(id) if container.len() >= 12 && id.as_str().starts_with(container.as_str()) => {}
        Some(other) => {
            return Step::Skipped(format!(
                "pid {pid} is now in container {}, not {short} (pid reused): not killed",
                other.short(),
            ));
        }
        None => {
            return Step::Skipped(format!(
                "pid {pid} is no longer in container {short} (exited, pid reused by a host process?): not killed",
            ));
        }
    }
    if let (Some(alert_ns), Some(start_ns)) = (alert_time_ns, start_time_ns(pid))
        && start_ns > alert_ns + START_SLACK_NS
    {
        return Step::Skipped(format!(
            "pid {pid} started {} ms after the alert's exec: a reused pid, not killed",
            (start_ns - alert_ns) / 1_000_000
        ));
    }
    if !exepath.is_empty()
        && let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
    {
        let exe = exe.to_string_lossy();
        let exe = exe.trim_end_matches(" (deleted)");
        if !exe.ends_with(exepath)
            && !exepath.starts_with("/proc/self/fd")
            && !exepath.starts_with("/dev/fd")
        {
            return Step::Skipped(format!(
                "pid {pid} now runs {exe}, not {exepath}: not killed"
            ));
        }
    }
    match pidfd_send_signal(&fd, libc::SIGKILL) {
        Ok(()) => Step::Ok(format!("SIGKILL sent to pid {pid} ({exepath})")),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            Step::Skipped(format!("process {pid} exited before the signal"))
        }
        Err(e) => Step::Failed(format!("pidfd_send_signal({pid}, SIGKILL): {e}")),
    }
}
