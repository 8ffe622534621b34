//! `isolate` / `release`: all traffic of a container's network namespace dropped but loopback,
//! by an nftables table of our own *inside that namespace* (`inet driftwatch_isolate`: input,
//! output and forward chains with policy drop, accepting only `lo`). The host's ruleset is
//! never touched: the table is written through an nf_tables netlink socket opened in the
//! container's namespace ([`super::nft_netlink`]; no `nft` binary, which the container image
//! lacks), and a container sharing the host's network namespace is refused. Release deletes
//! the table. Established connections are cut too (nothing is accepted by state).
//!
//! "The host's network namespace" is found through the host's pid namespace (`/proc/1`, a
//! kernel thread: see [`driftwatch_runtime::host_netns`]), never by comparing with the
//! agent's own: in a DaemonSet without `hostNetwork` the agent's is its pod's, and a
//! `hostNetwork` pod isolated on that comparison would cut the node off. When the host's
//! namespace cannot be determined (no `hostPID`), isolation is refused.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::nft_netlink::{self, Answer, BaseChain, Batch, NfSocket};

pub const TABLE: &str = "driftwatch_isolate";

/// The chains of our table, as `nft` would read them:
/// `chain input { type filter hook input priority -300; policy drop; iifname "lo" accept; }`,
/// the same for output with `oifname "lo"`, and forward dropping everything.
pub fn chains() -> [BaseChain; 3] {
    [
        BaseChain {
            name: "input",
            hook: nft_netlink::HOOK_INPUT,
            priority: -300,
            policy: nft_netlink::NF_DROP,
            accept_if: Some((nft_netlink::META_IIFNAME, "lo")),
        },
        BaseChain {
            name: "output",
            hook: nft_netlink::HOOK_OUTPUT,
            priority: -300,
            policy: nft_netlink::NF_DROP,
            accept_if: Some((nft_netlink::META_OIFNAME, "lo")),
        },
        BaseChain {
            name: "forward",
            hook: nft_netlink::HOOK_FORWARD,
            priority: -300,
            policy: nft_netlink::NF_DROP,
            accept_if: None,
        },
    ]
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

    /// Sends `batch` through an nf_tables socket in this namespace.
    fn run(&self, batch: &Batch) -> Result<Answer, String> {
        let sock = NfSocket::open_in(self.fd.as_fd()).map_err(|e| {
            format!(
                "opening an nf_tables netlink socket in the network namespace of pid {}: {e}",
                self.pid
            )
        })?;
        sock.run(batch).map_err(|e| {
            format!(
                "nf_tables netlink in the network namespace of pid {}: {e}",
                self.pid
            )
        })
    }

    fn failed(&self, what: &str, errno: i32) -> String {
        format!(
            "{what} in the network namespace of pid {}: {}",
            self.pid,
            std::io::Error::from_raw_os_error(errno)
        )
    }

    /// Whether our table is there.
    pub fn is_isolated(&self) -> Result<bool, String> {
        match self.run(&Batch::get_table(TABLE))? {
            Answer::Done => Ok(true),
            Answer::Failed { errno, .. } if errno == libc::ENOENT => Ok(false),
            Answer::Failed { what, errno } => Err(self.failed(&what, errno)),
        }
    }

    /// Replaces our table (whatever was there) by the isolating one, atomically.
    pub fn isolate(&self) -> Result<(), String> {
        match self.run(&Batch::replace_table(TABLE, &chains()))? {
            Answer::Done => Ok(()),
            Answer::Failed { what, errno } => Err(self.failed(&what, errno)),
        }
    }

    /// Deletes our table; `false` when there was none.
    pub fn release(&self) -> Result<bool, String> {
        match self.run(&Batch::delete_table(TABLE))? {
            Answer::Done => Ok(true),
            Answer::Failed { errno, .. } if errno == libc::ENOENT => Ok(false),
            Answer::Failed { what, errno } => Err(self.failed(&what, errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chains_accept_loopback_only_and_drop_the_rest() {
        let c = chains();
        assert!(c.iter().all(|c| c.policy == nft_netlink::NF_DROP));
        assert_eq!(c[0].accept_if, Some((nft_netlink::META_IIFNAME, "lo")));
        assert_eq!(c[1].accept_if, Some((nft_netlink::META_OIFNAME, "lo")));
        // Forwarded traffic is never accepted, and nothing is accepted by connection state:
        // established connections are cut too.
        assert_eq!(c[2].accept_if, None);
    }

    #[test]
    fn isolation_and_release_work_in_a_fresh_network_namespace() {
        // A child in a network namespace of its own (`unshare -n`), where the table is
        // written, looked up and deleted through netlink, as in a container.
        let Ok(mut child) = std::process::Command::new("unshare")
            .args(["-n", "sleep", "30"])
            .spawn()
        else {
            eprintln!("skipped: no unshare");
            return;
        };
        let pid = child.id();
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .map(|m| m.ino())
            .ok()
            == Some(ours)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare -n did not happen"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let p = driftwatch_runtime::PinnedProcess::open(pid).unwrap();
        let ns = NetNs::of_process(&p).unwrap();
        assert_eq!(ns.is_isolated(), Ok(false));
        assert_eq!(ns.release(), Ok(false));
        ns.isolate().unwrap();
        assert_eq!(ns.is_isolated(), Ok(true));
        // Idempotent: a second isolation replaces the table.
        ns.isolate().unwrap();
        // Where `nft` is installed (the host, not the image), it reads back the ruleset the
        // nft-based isolation used to load, rule for rule.
        if let Ok(out) = std::process::Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-n",
                "nft",
                "list",
                "table",
                "inet",
                TABLE,
            ])
            .output()
            && out.status.success()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            // nft names priority -300 `raw` (since 0.9.1).
            let text = text.replace("priority raw;", "priority -300;");
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(
                lines,
                [
                    "table inet driftwatch_isolate {",
                    "chain input {",
                    "type filter hook input priority -300; policy drop;",
                    "iifname \"lo\" accept",
                    "}",
                    "chain output {",
                    "type filter hook output priority -300; policy drop;",
                    "oifname \"lo\" accept",
                    "}",
                    "chain forward {",
                    "type filter hook forward priority -300; policy drop;",
                    "}",
                    "}"
                ],
                "{text}"
            );
        }
        // Only the child's namespace holds the table: ours (the host's) does not.
        let own = driftwatch_runtime::PinnedProcess::open(std::process::id()).unwrap();
        assert_eq!(NetNs::for_release(&own).unwrap().is_isolated(), Ok(false));
        assert_eq!(ns.release(), Ok(true));
        assert_eq!(ns.is_isolated(), Ok(false));
        let _ = child.kill();
        let _ = child.wait();
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
