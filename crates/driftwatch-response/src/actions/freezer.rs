//! `freeze` / `unfreeze`: every process of the container stopped (or resumed) at once by its
//! cgroup's freezer, found from `/proc/<pid>/cgroup` of one of its processes: cgroup v1's
//! `freezer` controller (`freezer.state`: `FROZEN` / `THAWED`), else cgroup v2's
//! `cgroup.freeze` (`1` / `0`, `frozen 1` in `cgroup.events` once done).
//!
//! In a pod (or a container run with `--cgroupns private`) the agent has a cgroup namespace of
//! its own: `/proc/<pid>/cgroup` then names other containers' cgroups relative to the agent's
//! root (`/../../kubepods/...`), and its `/sys/fs/cgroup` shows only its own subtree. There the
//! path is read again from the host's cgroup namespace (a kernel thread's, so no container's)
//! and joined to the host's own cgroupfs (the DaemonSet's `hostPath` mount of it at
//! `/host/sys/fs/cgroup`, else `/proc/1/root/sys/fs/cgroup`): a path the kernel wrote, never
//! one a container could choose; one holding a `..` is refused rather than joined, and the
//! directory found must list the process in its `cgroup.procs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long freezing may take before it is reported as failed (a task in an uninterruptible
/// sleep delays it).
const SETTLE: Duration = Duration::from_secs(5);

/// A container's freezer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freezer {
    /// `.../freezer/<path>/freezer.state`
    V1(PathBuf),
    /// `.../<path>/cgroup.freeze`
    V2(PathBuf),
}

/// The freezer of `pid`'s cgroup, given the text of `/proc/<pid>/cgroup` and where the
/// hierarchies are mounted (`/sys/fs/cgroup` normally). A path that is not absolute and
/// plain (`..`, `.`, as read from a cgroup namespace that does not hold it) is refused. Pure.
pub fn freezer_from_proc_cgroup(text: &str, root: &Path) -> Result<Freezer, String> {
    let plain = |path: &str| -> Result<String, String> {
        let rel = path
            .strip_prefix('/')
            .ok_or_else(|| format!("cgroup path {path:?} is not absolute"))?;
        if rel.split('/').any(|c| c == ".." || c == ".") {
            return Err(format!(
                "cgroup path {path:?} is outside the agent's cgroup namespace"
            ));
        }
        Ok(rel.to_string())
    };
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "freezer") {
            return Ok(Freezer::V1(root.join("freezer").join(plain(path)?)));
        }
        if controllers.is_empty() {
            v2 = Some(path);
        }
    }
    let rel = plain(v2.ok_or("no freezer cgroup (neither v1 `freezer` nor v2)")?)?;
    // Pure v2: the unified hierarchy at the root; hybrid: at `unified/`.
    let base = if root.join("cgroup.controllers").exists() {
        root.to_path_buf()
    } else {
        root.join("unified")
    };
    Ok(Freezer::V2(base.join(rel)))
}

/// Where the host's cgroup hierarchies are when the agent has a cgroup namespace of its own
/// (its `/sys/fs/cgroup` then shows only its own subtree, read-only), first found first: the
/// host's `/sys/fs/cgroup` mounted by the DaemonSet (a `hostPath`, writable), else the host's
/// init's view (`hostPID` and a ptrace-readable pid 1).
pub const HOST_CGROUP_ROOTS: [&str; 2] = ["/host/sys/fs/cgroup", "/proc/1/root/sys/fs/cgroup"];

/// The first of `roots` that can be read. Pure but for the `stat`s.
fn host_cgroup_root(roots: &[&str]) -> Result<PathBuf, String> {
    let mut why = Vec::new();
    for r in roots {
        match std::fs::read_dir(r) {
            Ok(_) => return Ok(PathBuf::from(r)),
            Err(e) => why.push(format!("{r}: {e}")),
        }
    }
    Err(format!(
        "the agent has a cgroup namespace of its own and the host's cgroupfs is not in sight (mount the host's /sys/fs/cgroup at /host/sys/fs/cgroup): {}",
        why.join("; ")
    ))
}

/// Checks that `freezer`'s cgroup holds `pid` (its `cgroup.procs`, as this pid namespace
/// numbers them): a host cgroupfs found elsewhere than expected is not written blindly.
fn check_holds(freezer: &Freezer, pid: u32) -> Result<(), String> {
    let procs = freezer.dir().join("cgroup.procs");
    let text = std::fs::read_to_string(&procs).map_err(|e| format!("{}: {e}", procs.display()))?;
    if text.lines().any(|l| l.trim() == pid.to_string()) {
        Ok(())
    } else {
        Err(format!(
            "{} does not list pid {pid}: not its cgroup as the host sees it",
            procs.display()
        ))
    }
}

impl Freezer {
    /// The freezer of a pinned process's cgroup, read while it provably still held its pid,
    /// as the host sees it (see the module's comment).
    pub fn of_process(p: &driftwatch_runtime::PinnedProcess) -> Result<Freezer, String> {
        let (text, root) = match driftwatch_runtime::host_cgroupns() {
            Ok(Some(host)) => (
                p.read_proc_in_cgroupns("cgroup", &host)
                    .map_err(|e| e.to_string())?,
                host_cgroup_root(&HOST_CGROUP_ROOTS)?,
            ),
            // The agent's namespace is the host's, or the host's cannot be seen (no
            // hostPID): read as is (a path outside the agent's namespace is refused), and
            // joined to the host's cgroupfs mount when there is one (a container's own
            // `/sys/fs/cgroup` shows only its own cgroup), else to `/sys/fs/cgroup`.
            Ok(None) | Err(_) => (
                p.read_proc("cgroup").map_err(|e| e.to_string())?,
                host_cgroup_root(&HOST_CGROUP_ROOTS[..1])
                    .unwrap_or_else(|_| PathBuf::from("/sys/fs/cgroup")),
            ),
        };
        let f = freezer_from_proc_cgroup(&text, &root)
            .map_err(|e| format!("/proc/{}/cgroup: {e}", p.pid()))?;
        check_holds(&f, p.pid())?;
        Ok(f)
    }

    pub fn dir(&self) -> &Path {
        match self {
            Freezer::V1(d) | Freezer::V2(d) => d,
        }
    }

    fn control(&self) -> PathBuf {
        match self {
            Freezer::V1(d) => d.join("freezer.state"),
            Freezer::V2(d) => d.join("cgroup.freeze"),
        }
    }

    /// Whether the cgroup is (completely) frozen now.
    pub fn is_frozen(&self) -> Result<bool, String> {
        let (file, want): (PathBuf, &str) = match self {
            Freezer::V1(d) => (d.join("freezer.state"), "FROZEN"),
            Freezer::V2(d) => (d.join("cgroup.events"), "frozen 1"),
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(text.lines().any(|l| l.trim() == want))
    }

    /// Freezes (`true`) or thaws, and waits until the kernel says it is done.
    pub fn set(&self, frozen: bool) -> Result<(), String> {
        let file = self.control();
        let value = match (self, frozen) {
            (Freezer::V1(_), true) => "FROZEN",
            (Freezer::V1(_), false) => "THAWED",
            (Freezer::V2(_), true) => "1",
            (Freezer::V2(_), false) => "0",
        };
        std::fs::write(&file, value)
            .map_err(|e| format!("writing {value} to {}: {e}", file.display()))?;
        let start = Instant::now();
        loop {
            if self.is_frozen()? == frozen {
                return Ok(());
            }
            if start.elapsed() > SETTLE {
                return Err(format!(
                    "{}: still not {} after {:?}",
                    self.dir().display(),
                    if frozen { "frozen" } else { "thawed" },
                    SETTLE
                ));
            }
            if frozen {
                // cgroup v1 finishes a freeze that was FREEZING when written again.
                if let Freezer::V1(_) = self {
                    let _ = std::fs::write(&file, value);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_freezer_wins_on_hybrid_hosts() {
        let text =
            "12:freezer:/docker/abc\n4:memory:/docker/abc\n0::/system.slice/docker.service\n";
        assert_eq!(
            freezer_from_proc_cgroup(text, Path::new("/sys/fs/cgroup")),
            Ok(Freezer::V1(PathBuf::from(
                "/sys/fs/cgroup/freezer/docker/abc"
            )))
        );
    }

    #[test]
    fn v2_freezer_at_the_unified_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        let text = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(
            freezer_from_proc_cgroup(text, dir.path()),
            Ok(Freezer::V2(
                dir.path().join("system.slice/docker-abc.scope")
            ))
        );
        // Hybrid without a v1 freezer: the unified mount.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            freezer_from_proc_cgroup(text, other.path()),
            Ok(Freezer::V2(
                other.path().join("unified/system.slice/docker-abc.scope")
            ))
        );
        assert!(
            freezer_from_proc_cgroup("garbage", dir.path())
                .unwrap_err()
                .contains("no freezer cgroup")
        );
    }

    #[test]
    fn a_path_outside_the_agents_cgroup_namespace_is_refused_not_joined() {
        // As read from a pod's cgroup namespace: the container is a sibling of the agent.
        let v2 = "0::/../../kubepods/besteffort/pod1/abc\n";
        let e = freezer_from_proc_cgroup(v2, Path::new("/sys/fs/cgroup")).unwrap_err();
        assert!(e.contains("outside the agent's cgroup namespace"), "{e}");
        let v1 = "7:freezer:/../pod1/abc\n0::/../pod1/abc\n";
        let e = freezer_from_proc_cgroup(v1, Path::new("/sys/fs/cgroup")).unwrap_err();
        assert!(e.contains("\"/../pod1/abc\""), "{e}");
        let e = freezer_from_proc_cgroup("0::kubepods/x\n", Path::new("/x")).unwrap_err();
        assert!(e.contains("not absolute"), "{e}");
        // Read from the host's namespace, the same cgroup is absolute and joined to the
        // host's hierarchy.
        assert_eq!(
            freezer_from_proc_cgroup(
                "7:freezer:/kubepods/besteffort/pod1/abc\n",
                Path::new(HOST_CGROUP_ROOTS[0])
            ),
            Ok(Freezer::V1(PathBuf::from(
                "/host/sys/fs/cgroup/freezer/kubepods/besteffort/pod1/abc"
            )))
        );
    }

    #[test]
    fn the_host_cgroupfs_is_the_first_root_in_sight_and_must_hold_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().to_str().unwrap();
        let e = host_cgroup_root(&["/nonexistent/cg"]).unwrap_err();
        assert!(
            e.contains("/host/sys/fs/cgroup") && e.contains("/nonexistent/cg"),
            "{e}"
        );
        assert_eq!(
            host_cgroup_root(&["/nonexistent/cg", there]),
            Ok(dir.path().to_path_buf())
        );
        std::fs::write(dir.path().join("cgroup.procs"), "12\n345\n").unwrap();
        let f = Freezer::V2(dir.path().to_path_buf());
        check_holds(&f, 345).unwrap();
        let e = check_holds(&f, 34).unwrap_err();
        assert!(e.contains("does not list pid 34"), "{e}");
    }

    #[test]
    fn state_files_are_read_per_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert_eq!(Freezer::V2(dir.path().into()).is_frozen(), Ok(true));
        std::fs::write(dir.path().join("freezer.state"), "FREEZING\n").unwrap();
        assert_eq!(Freezer::V1(dir.path().into()).is_frozen(), Ok(false));
        let e = Freezer::V1(dir.path().join("gone"))
            .is_frozen()
            .unwrap_err();
        assert!(e.contains("gone/freezer.state"), "{e}");
    }
}
