//! `isolate` / `release`: all traffic of a container's network namespace dropped but loopback,
//! by an nftables table of our own *inside that namespace* (`inet driftwatch_isolate`: input,
//! output and forward chains with policy drop, accepting only `lo`). The host's ruleset is
//! never touched: `nft` runs in the container's namespace (entered with `setns` in the child
//! before exec), and a container sharing the host's network namespace is refused. Release
//! deletes the table. Established connections are cut too (nothing is accepted by state).

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

impl NetNs {
    /// The network namespace of `pid`, refused when it is the host's (the agent's own).
    pub fn of_pid(pid: u32) -> Result<NetNs, String> {
        let path = format!("/proc/{pid}/ns/net");
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let ns = file.metadata().map_err(|e| format!("{path}: {e}"))?;
        let ours = std::fs::metadata("/proc/self/ns/net")
            .map_err(|e| format!("/proc/self/ns/net: {e}"))?;
        if (ns.dev(), ns.ino()) == (ours.dev(), ours.ino()) {
            return Err(format!(
                "pid {pid} is in the host's network namespace (--network host?): isolating it would cut the host off; refused"
            ));
        }
        Ok(NetNs {
            fd: file.into(),
            pid,
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
        let e = NetNs::of_pid(std::process::id()).err().unwrap();
        assert!(e.contains("host's network namespace"), "{e}");
    }
}
