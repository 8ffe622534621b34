//! `isolate` / `release`: all traffic of a container's network namespace dropped but loopback,
//! by an nftables table of our own *inside that namespace* (`inet driftwatch_isolate`: input,
//! output and forward chains with policy drop, accepting only `lo`). The host's ruleset is
//! never touched: `nft` runs in the container's namespace (entered with `setns` in the child
//! before exec), and a container sharing the host's network namespace is refused. Release
//! deletes the table. Established connections are cut too (nothing is accepted by state).
//!
//! "The host's network namespace" is found through the host's pid namespace (`/proc/1`, a
//! kernel thread: see [`driftwatch_runtime::host_netns`]), never by comparing with the
//! agent's own: in a DaemonSet without `hostNetwork` the agent's is its pod's, and a
//! `hostNetwork` pod isolated on that comparison would cut the node off. When the host's
//! namespace cannot be determined (no `hostPID`), isolation is refused.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

pub const TABLE: &str = "driftwatch_isolate";

/// The ruleset loaded into the container's namespace, atomically (one `nft -f` batch): the
/// first two lines make it idempotent (add, then delete whatever was there).
pub fn ruleset() -> String {
    format!(
        "table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  chain input {{ type filter hook input priority -300; policy drop; iifname \"lo\" accept; }}
  chain output {{ type filter hook output priority -300; policy drop; oifname \"lo\" accept; }}
  chain forward {{ type filter hook forward priority -300; policy drop; }}
}}
"
    )
}

/// A network namespace to run `nft` in.
pub struct NetNs {
    fd: OwnedFd,
    pid: u32,
}

/// Refuses a namespace `ns` that is one of the host's (`host`, or the reason the host's could
/// not be determined). Pure.
pub fn refuse_host(
    pid: u32,
    ns: driftwatch_runtime::pinned::NsId,
    host: Result<Vec<driftwatch_runtime::pinned::NsId>, String>,
) -> Result<(), String> {
    match host {
        Err(why) => Err(format!(
            "pid {pid}: {why}; isolating without knowing could cut the host off: refused"
        )),
        Ok(host) if host.contains(&ns) => Err(format!(
            "pid {pid} is in the host's network namespace (--network host, or a hostNetwork pod): isolating it would cut the host off; refused"
        )),
        Ok(_) => Ok(()),
    }
}

impl NetNs {
    /// The network namespace of a pinned process, refused when it is the host's or the
    /// host's cannot be determined.
    pub fn of_process(p: &driftwatch_runtime::PinnedProcess) -> Result<NetNs, String> {
        let pid = p.pid();
        let file = p.netns().map_err(|e| e.to_string())?;
        let m = file
            .metadata()
            .map_err(|e| format!("/proc/{pid}/ns/net: {e}"))?;
        refuse_host(pid, (m.dev(), m.ino()), driftwatch_runtime::host_netns())?;
        Ok(NetNs {
            fd: file.into(),
            pid,
        })
    }

    /// The network namespace of a pinned process, to release in: not refused when it is the
    /// host's (release deletes only our own table, which isolation never puts in the host's
    /// namespace).
    pub fn for_release(p: &driftwatch_runtime::PinnedProcess) -> Result<NetNs, String> {
        let file = p.netns().map_err(|e| e.to_string())?;
        Ok(NetNs {
            fd: file.into(),
            pid: p.pid(),
        })
    }

    /// Runs `nft ARGS` in this namespace with `stdin`; returns stdout or the error.
    pub fn nft(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        let fd = self.fd.as_raw_fd();
        let mut cmd = Command::new("nft");
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setns is async-signal-safe; the fd stays open in the parent until the child
        // has exec'd (we wait for it below).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "running nft in the network namespace of pid {}: {e}",
                self.pid
            )
        })?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes())
                .map_err(|e| format!("writing to nft: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for nft: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "nft {} in the network namespace of pid {}: {}",
                args.join(" "),
                self.pid,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Whether our table is there.
    pub fn is_isolated(&self) -> Result<bool, String> {
        let out = self.nft(&["list", "tables"], "")?;
        Ok(out
            .lines()
            .any(|l| l.trim() == format!("table inet {TABLE}")))
    }

    pub fn isolate(&self) -> Result<(), String> {
        self.nft(&["-f", "-"], &ruleset()).map(drop)
    }

    /// Deletes our table; `false` when there was none.
    pub fn release(&self) -> Result<bool, String> {
        if !self.is_isolated()? {
            return Ok(false);
        }
        self.nft(&["delete", "table", "inet", TABLE], "")
            .map(|_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_accepts_loopback_only_and_drops_the_rest() {
        let r = ruleset();
        assert_eq!(r.matches("policy drop").count(), 3);
        assert!(r.contains("iifname \"lo\" accept"));
        assert!(r.contains("oifname \"lo\" accept"));
        assert!(
            !r.contains("ct state"),
            "established traffic must be cut too"
        );
        assert!(
            r.starts_with("table inet driftwatch_isolate\ndelete table inet driftwatch_isolate\n")
        );
    }

    #[test]
    fn the_hosts_own_namespace_is_refused() {
        let p = driftwatch_runtime::PinnedProcess::open(std::process::id()).unwrap();
        let e = NetNs::of_process(&p).err().unwrap();
        assert!(e.contains("host's network namespace"), "{e}");
    }

    #[test]
    fn a_namespace_is_refused_when_it_is_the_hosts_or_the_hosts_is_unknown() {
        // The agent's own namespace is not the host's (a DaemonSet pod): a hostNetwork pod's
        // namespace, which is the host's, is still refused.
        let host = (4, 4026531833);
        let e = refuse_host(7, host, Ok(vec![(4, 4026532000), host])).unwrap_err();
        assert!(e.contains("hostNetwork pod"), "{e}");
        refuse_host(7, (4, 4026532999), Ok(vec![host])).unwrap();
        let e =
            refuse_host(7, (4, 4026532999), Err("no kernel thread in sight".into())).unwrap_err();
        assert!(
            e.contains("no kernel thread in sight") && e.ends_with("refused"),
            "{e}"
        );
    }
}
