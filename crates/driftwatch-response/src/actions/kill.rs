//! `kill`: SIGKILL the alert's process, and only that process.
//!
//! The pid-reuse guard: the process is pinned first with a pidfd (`pidfd_open`), so the checks
//! and the signal are about one process even if the pid is freed and reused meanwhile. Then it
//! must (1) still be in the alert's container (its cgroup names the same container id),
//! (2) have started no later than the alert's exec (a process started after the alert is a
//! reused pid), and (3) when its executable can be read, still run the alert's executable (a
//! process that exec'd something else since is left alone). Only then `pidfd_send_signal`.

use driftwatch_runtime::{PinError, PinnedProcess};

use super::Step;

/// Scheduling slack allowed between a process's start and the alert's exec time (the start
/// time is in clock ticks).
const START_SLACK_NS: u64 = 50_000_000;

/// The wall-clock time (ns since the epoch) a pinned process started, from its
/// `/proc/<pid>/stat`.
fn start_time_ns(p: &PinnedProcess) -> Option<u64> {
    let stat = p.read_proc("stat").ok()?;
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
    let boot_at = driftwatch_model::clock::now_ns().checked_sub(boot_now)?;
    Some(boot_at + ticks * (1_000_000_000 / hz))
}

/// Kills `pid` if it is still the alert's process in `container`.
/// `container` is the alert's short id (or the full id).
pub fn kill(container: &str, pid: u32, exepath: &str, alert_time_ns: Option<u64>) -> Step {
    let container = container.to_ascii_lowercase();
    let short = &container[..container.len().min(12)];
    let p = match PinnedProcess::open(pid) {
        Ok(p) => p,
        Err(PinError::Exited { .. }) => {
            return Step::Skipped(format!("process {pid} already exited"));
        }
        Err(e) => return Step::Failed(e.to_string()),
    };
    // From here on, what is read about /proc/<pid> is kept only while the pinned process
    // provably still holds the pid.
    match p.container() {
        Err(PinError::Exited { .. }) => {
            return Step::Skipped(format!("process {pid} already exited"));
        }
        Ok(Some(id)) if container.len() >= 12 && id.as_str().starts_with(container.as_str()) => {}
        Ok(Some(other)) => {
            return Step::Skipped(format!(
                "pid {pid} is now in container {}, not {short} (pid reused): not killed",
                other.short(),
            ));
        }
        Ok(None) | Err(_) => {
            return Step::Skipped(format!(
                "pid {pid} is no longer in container {short} (exited, pid reused by a host process?): not killed",
            ));
        }
    }
    if let (Some(alert_ns), Some(start_ns)) = (alert_time_ns, start_time_ns(&p))
        && start_ns > alert_ns + START_SLACK_NS
    {
        return Step::Skipped(format!(
            "pid {pid} started {} ms after the alert's exec: a reused pid, not killed",
            (start_ns - alert_ns) / 1_000_000
        ));
    }
    if !exepath.is_empty()
        && let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && p.alive()
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
    match p.signal(libc::SIGKILL) {
        Ok(()) => Step::Ok(format!("SIGKILL sent to pid {pid} ({exepath})")),
        Err(PinError::Exited { .. }) => {
            Step::Skipped(format!("process {pid} exited before the signal"))
        }
        Err(e) => Step::Failed(e.to_string()),
    }
}
