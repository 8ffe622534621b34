//! The process tree of a running container for an evidence bundle, read from `/proc` of the
//! container's processes (found by cgroup): who runs what, since when, and whether the
//! executable is the image's. Parsing is pure; reading tolerates processes exiting meanwhile.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use driftwatch_image::{Judge, content_of};
use driftwatch_model::{Content, FileFacts, Identity, OverlayLayers, Residence, Verdict};
use driftwatch_runtime::{MountKind, MountTable};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One process of the container.
#[derive(Debug, Serialize)]
pub struct ProcessInfo {
    /// In the host's pid namespace.
    pub pid: u32,
    pub ppid: u32,
    /// The pid inside the container's pid namespace (`NSpid`), when it has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    pub comm: String,
    pub state: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The uid's name in the container's `/etc/passwd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The executable's path inside the container (`/proc/<pid>/exe`); ends in ` (deleted)`
    /// when unlinked. In JSON the real name, plus `exe_b64` when it is not UTF-8.
    #[serde(flatten, serialize_with = "exe_name")]
    pub exe: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_sha256: Option<String>,
    /// Is the executable the image's: `image`, `copy_up`, `added`, `modified`, `deleted`,
    /// `memfd`, `tmpfs`, `volume`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_verdict_detail: Option<String>,
    pub cmdline: Vec<String>,
    /// RFC 3339, UTC, from the start time in clock ticks since boot and the boot time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Why some fields are missing (the process exited while being read, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

fn exe_name<S: serde::Serializer>(exe: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    driftwatch_model::name::serialize_flat("exe", exe, s)
}

/// What `/proc/<pid>/stat` says that we keep.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// Clock ticks after boot.
    pub starttime: u64,
}

/// Parses `/proc/<pid>/stat`. The command name sits in parentheses and may itself hold
/// spaces and parentheses: the fields start after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(Stat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

/// `(uid, gid, innermost NSpid)` from `/proc/<pid>/status` (real ids).
pub fn parse_status(text: &str) -> (Option<u32>, Option<u32>, Option<u32>) {
    let first = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let ns_pid = text
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| {
            let ids: Vec<&str> = v.split_whitespace().collect();
            (ids.len() > 1).then(|| ids.last().and_then(|s| s.parse().ok()))?
        });
    (first("Uid:"), first("Gid:"), ns_pid)
}

/// uid → name from the text of an `/etc/passwd`.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

/// `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn rfc3339(ns: i128) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads the processes `pids` of a container whose root filesystem is `layers`.
/// `mounts`: the container's mount table (tells which executables are on the image's root).
pub fn read_processes(
    container: &str,
    pids: &[u32],
    layers: &OverlayLayers,
    mounts: Option<&MountTable>,
    judge: &Judge,
) -> Vec<ProcessInfo> {
    let btime = driftwatch_fs::host::kernel_string("/proc/stat")
        .ok()
        .and_then(|t| parse_btime(&t));
    // SAFETY: sysconf has no preconditions.
    let ticks = i128::from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1));
    let mut users_problem = None;
    let users = match pids.first().map(|p| {
        super::read_in_container_root(container, *p, "/etc/passwd", driftwatch_fs::SMALL_FILE_CAP)
    }) {
        Some(Ok(b)) => parse_passwd(&String::from_utf8_lossy(&b)),
        Some(Err(e)) => {
            users_problem = Some(format!("user names: {e}"));
            HashMap::new()
        }
        None => HashMap::new(),
    };
    let mut hashes: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = Vec::new();
    for &pid in pids {
        let mut problems: Vec<String> = users_problem.take().into_iter().collect();
        let stat = match driftwatch_fs::host::proc_string(pid, "stat") {
            Ok(t) => parse_stat(&t),
            // Exited since it was listed: not part of the tree any more.
            Err(_) => continue,
        };
        let Some(stat) = stat else {
            problems.push("unparsable /proc/<pid>/stat".into());
            continue;
        };
        let (uid, gid, ns_pid) = driftwatch_fs::host::proc_string(pid, "status")
            .map(|t| parse_status(&t))
            .unwrap_or_default();
        let cmdline = driftwatch_fs::host::proc_bytes(pid, "cmdline")
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let exe = driftwatch_fs::host::proc_link(pid, "exe").ok();
        let exe_sha256 = if exe.is_some() {
            match hash_exe(pid, &mut hashes) {
                Ok(h) => Some(h),
                Err(e) => {
                    problems.push(format!("hashing /proc/{pid}/exe: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let (exe_verdict, exe_verdict_detail) = match &exe {
            Some(path) => verdict(pid, &path.to_string_lossy(), layers, mounts, judge),
            None => (None, None),
        };
        let start_time = btime.and_then(|b| {
            rfc3339(
                i128::from(b) * 1_000_000_000 + i128::from(stat.starttime) * 1_000_000_000 / ticks,
            )
        });
        out.push(ProcessInfo {
            pid,
            ppid: stat.ppid,
            ns_pid,
            comm: stat.comm,
            state: stat.state.to_string(),
            uid,
            gid,
            user: uid.and_then(|u| users.get(&u).cloned()),
            exe,
            exe_sha256,
            exe_verdict,
            exe_verdict_detail,
            cmdline,
            start_time,
            problems,
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// sha256 of the executable a process runs, through `/proc/<pid>/exe` (works for deleted
/// and memfd executables too); the same file is hashed once.
fn hash_exe(pid: u32, seen: &mut HashMap<(u64, u64), String>) -> std::io::Result<String> {
    let mut f = driftwatch_fs::host::proc_exe(pid)?;
    let m = f.metadata()?;
    if let Some(h) = seen.get(&(m.dev(), m.ino())) {
        return Ok(h.clone());
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let h = hex::encode(hasher.finalize());
    seen.insert((m.dev(), m.ino()), h.clone());
    Ok(h)
}

/// The exe's verdict, from the one verdict function the agent uses
/// ([`driftwatch_model::verdict`]): where the file lives (the mount table), whether it was
/// unlinked, its content against the image, and whether the file judged at its path is the
/// one the process runs (the inode of `/proc/<pid>/exe`).
fn verdict(
    pid: u32,
    exe: &str,
    layers: &OverlayLayers,
    mounts: Option<&MountTable>,
    judge: &Judge,
) -> (Option<Verdict>, Option<String>) {
    let unlinked = exe.ends_with(" (deleted)");
    let mut facts = FileFacts {
        residence: Residence::RootOverlay {
            upper: true,
            lower: true,
        },
        unlinked,
        content: Content::NotCompared,
        identity: Identity::Unchecked,
        existed: true,
        made_executable: false,
    };
    let mut detail = None;
    if exe.starts_with("/memfd:") {
        facts.residence = Residence::Memfd;
    } else if let Some(m) = mounts.and_then(|t| t.find(exe)) {
        let place = m.mount_point.display().to_string();
        match m.kind() {
            MountKind::ImageRoot => {}
            MountKind::Tmpfs => {
                facts.residence = Residence::Memory;
                detail = Some(place);
            }
            MountKind::Proc | MountKind::Sys | MountKind::Dev => {
                facts.residence = Residence::KernelPseudo;
                detail = Some(place);
            }
            other => {
                facts.residence = Residence::Volume;
                detail = Some(format!("{place} ({other:?})"));
            }
        }
    }
    if matches!(facts.residence, Residence::RootOverlay { .. }) && !unlinked {
        let judged = judge.judge(layers, exe);
        facts.content = content_of(&judged);
        match &judged {
            Ok(j) => {
                facts.residence = Residence::RootOverlay {
                    upper: j.upper_ino.is_some(),
                    lower: j.upper_ino.is_none() || j.image_ino.is_some(),
                };
                facts.identity = match driftwatch_fs::host::proc_metadata(pid, "exe") {
                    Ok(md) if j.is_inode(md.ino()) => Identity::Verified,
                    Ok(_) => Identity::Mismatch,
                    Err(_) => Identity::Unchecked,
                };
                // The running program is this file: an execute bit its image copy lacked.
                if let Some(m) = j.made_executable()
                    && facts.identity == Identity::Verified
                {
                    facts.made_executable = true;
                    detail = Some(m.mode_words());
                }
            }
            Err(e) => detail = Some(e.to_string()),
        }
    }
    (Some(driftwatch_model::verdict(&facts)), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exe_names_are_exact_with_their_bytes_beside_one_that_is_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let info = |exe: Option<&[u8]>| ProcessInfo {
            pid: 1,
            ppid: 0,
            ns_pid: None,
            comm: "x".into(),
            state: "S".into(),
            uid: None,
            gid: None,
            user: None,
            exe: exe.map(|e| PathBuf::from(std::ffi::OsStr::from_bytes(e))),
            exe_sha256: None,
            exe_verdict: None,
            exe_verdict_detail: None,
            cmdline: Vec::new(),
            start_time: None,
            problems: Vec::new(),
        };
        let v = serde_json::to_value(info(Some(b"/tmp/a\nb\xff"))).unwrap();
        assert_eq!(v["exe"], "/tmp/a\nb\u{FFFD}");
        assert_eq!(
            driftwatch_model::name::decode_name(&v, "exe").unwrap(),
            b"/tmp/a\nb\xff"
        );
        let v = serde_json::to_value(info(Some(b"/bin/sh"))).unwrap();
        assert_eq!((&v["exe"], v.get("exe_b64")), (&"/bin/sh".into(), None));
        let v = serde_json::to_value(info(None)).unwrap();
        assert!(v.get("exe").is_none() && v.get("exe_b64").is_none(), "{v}");
    }

    #[test]
    fn stat_with_a_hostile_comm() {
        let text = "4242 (a) (b c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.comm, "a) (b c");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 17);
        assert_eq!(s.starttime, 987654);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_ids_and_namespaced_pid() {
        let text =
            "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t50\t50\t50\t50\nNSpid:\t4242\t7\n";
        assert_eq!(parse_status(text), (Some(1000), Some(50), Some(7)));
        let host = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t1\n";
        assert_eq!(parse_status(host), (Some(0), Some(0), None));
    }

    #[test]
    fn passwd_and_btime() {
        let p =
            parse_passwd("root:x:0:0:root:/root:/bin/sh\nbad line\nwww:x:33:33::/:/bin/false\n");
        assert_eq!(p.get(&0).map(String::as_str), Some("root"));
        assert_eq!(p.get(&33).map(String::as_str), Some("www"));
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(
            rfc3339(500_000_000).as_deref(),
            Some("1970-01-01T00:00:00.5Z")
        );
    }
}
