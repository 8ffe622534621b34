//! Decoding of exec records from the ring buffer into owned values.

use crate::abi::{DW_EVENT_EXEC, ExecFlags, HEADER_SIZE, RawExecHeader};

/// One exec, as the kernel saw it at `sched_process_exec`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecRecord {
    pub boot_ns: u64,
    pub cgroup_id: u64,
    pub flags: ExecFlags,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ns_pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub tty: u32,
    /// The executed file (for scripts: the interpreter).
    pub ino: u64,
    pub upper_ino: u64,
    pub mtime_ns: u64,
    /// The executed file's inode change time.
    pub ctime_ns: u64,
    pub dev: u32,
    pub fs_magic: u32,
    pub nlink: u32,
    pub mode: u32,
    pub mnt_id: u32,
    /// The executed file's path (lossy UTF-8): on an overlay, its place in that overlay
    /// filesystem (from the filesystem's root, whatever chroot or mounts led to it); on any
    /// other filesystem, from the root of the process's mount namespace. Never relative to a
    /// chroot.
    pub path: String,
    /// The name given to exec (`bprm->filename`): for a script, the script.
    pub filename: String,
    /// For a script, the interpreter named by the shebang (`bprm->interp`).
    pub interp: Option<String>,
    /// The working directory, in the same terms as `path`, on the superblock `cwd_dev`.
    /// When it is the root (the kernel says so rather than sending the path twice), the
    /// root's path.
    pub cwd: String,
    pub cwd_dev: u32,
    /// The process's root directory (`/` unless chrooted), in the same terms as `path`, on
    /// the superblock `root_dev`. Absolute names given to exec are relative to it.
    pub root: String,
    pub root_dev: u32,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub comm: String,
    /// Parent first.
    pub ancestors: Vec<String>,
    pub cgroup: String,
    pub cgroup_parent: String,
    /// Some bytes of a path were not UTF-8 and were replaced.
    pub lossy: bool,
    /// What the kernel says of the process itself, true until its next exec.
    pub facts: ProcessFacts,
    /// Host pids of the ancestors, parent first, aligned with `ancestors`.
    pub ancestor_pids: Vec<u32>,
}

/// What the kernel said of a process at its exec that stays true of the process until its
/// next exec (Falco's `user.loginuid`, `proc.sid`, `proc.vpgid`, `thread.cap_*`, ...): its
/// other events carry them as its exec event does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    /// The audit login uid (`u32::MAX`: unset); `None` when the kernel keeps none.
    pub loginuid: Option<u32>,
    /// Session and process group ids as the host sees them, and the group's id in the
    /// process's own pid namespace (0 when its leader is outside it).
    pub sid: u32,
    pub pgid: u32,
    pub vpgid: u32,
    /// Capability sets after exec, bit masks (bit `n` is capability `n`).
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_inheritable: u64,
    /// When the process started, boot-time nanoseconds (like `boot_ns`).
    pub start_boot_ns: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the {HEADER_SIZE}-byte exec header")]
    Short(usize),
    #[error("unknown record type {0}")]
    UnknownType(u32),
    #[error("section lengths ({sections} bytes) run past the record's {data} data bytes")]
    Overrun { sections: usize, data: usize },
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn split_nul(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

impl ExecRecord {
    /// Decodes one ring-buffer record. Never panics on malformed input.
    pub fn decode(buf: &[u8]) -> Result<ExecRecord, DecodeError> {
        if buf.len() < HEADER_SIZE {
            return Err(DecodeError::Short(buf.len()));
        }
        // SAFETY: RawExecHeader is repr(C) plain old data (integers and byte arrays, every
        // bit pattern valid) and `buf` holds at least size_of::<RawExecHeader>() bytes;
        // read_unaligned copes with the ring buffer's 8-byte alignment.
        let h: RawExecHeader = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        if h.r#type != DW_EVENT_EXEC {
            return Err(DecodeError::UnknownType(h.r#type));
        }
        let data = &buf[HEADER_SIZE..];
        let lens = [
            h.root_len,
            h.path_len,
            h.filename_len,
            h.interp_len,
            h.cwd_len,
            h.args_len,
            h.env_len,
        ];
        let total: usize = lens.iter().map(|&l| usize::from(l)).sum();
        if total > data.len() {
            return Err(DecodeError::Overrun {
                sections: total,
                data: data.len(),
            });
        }
        let mut sections = [&data[..0]; 7];
        let mut off = 0;
        for (slot, len) in sections.iter_mut().zip(lens) {
            *slot = &data[off..off + usize::from(len)];
            off += usize::from(len);
        }
        let [root, path, filename, interp, cwd, args, env] = sections;
        let flags = ExecFlags(h.flags);
        let ancestors: Vec<String> = h
            .ancestors
            .iter()
            .map(|a| cstr(a))
            .take_while(|a| !a.is_empty())
            .collect();
        let ancestor_pids = h.ancestor_pids[..ancestors.len()].to_vec();
        let lossy = [path, filename, cwd, root]
            .iter()
            .any(|s| std::str::from_utf8(s).is_err());
        Ok(ExecRecord {
            boot_ns: h.boot_ns,
            cgroup_id: h.cgroup_id,
            flags,
            pid: h.pid,
            tid: h.tid,
            ppid: h.ppid,
            ns_pid: h.ns_pid,
            uid: h.uid,
            gid: h.gid,
            euid: h.euid,
            mnt_ns: h.mnt_ns,
            pid_ns: h.pid_ns,
            tty: h.tty,
            ino: h.ino,
            upper_ino: h.upper_ino,
            mtime_ns: h.mtime_ns,
            ctime_ns: h.ctime_ns,
            dev: h.dev,
            fs_magic: h.fs_magic,
            nlink: h.nlink,
            mode: h.mode,
            mnt_id: h.mnt_id,
            path: String::from_utf8_lossy(path).into_owned(),
            filename: String::from_utf8_lossy(filename).into_owned(),
            interp: flags
                .has(ExecFlags::INTERP)
                .then(|| String::from_utf8_lossy(interp).into_owned()),
            cwd: String::from_utf8_lossy(if flags.has(ExecFlags::CWD_IS_ROOT) {
                root
            } else {
                cwd
            })
            .into_owned(),
            cwd_dev: h.cwd_dev,
            root: String::from_utf8_lossy(root).into_owned(),
            root_dev: h.root_dev,
            argv: split_nul(args),
            env: split_nul(env),
            comm: cstr(&h.comm),
            ancestors,
            ancestor_pids,
            cgroup: cstr(&h.cgroup),
            cgroup_parent: cstr(&h.cgroup_parent),
            lossy,
            facts: ProcessFacts {
                loginuid: (!flags.has(ExecFlags::NO_LOGINUID)).then_some(h.loginuid),
                sid: h.sid,
                pgid: h.pgid,
                vpgid: h.vpgid,
                cap_permitted: h.cap_permitted,
                cap_effective: h.cap_effective,
                cap_inheritable: h.cap_inheritable,
                start_boot_ns: h.start_boot_ns,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RawExecHeader {
        // SAFETY: all-zero bytes are a valid RawExecHeader (integers and byte arrays).
        let mut h: RawExecHeader = unsafe { std::mem::zeroed() };
        h.r#type = DW_EVENT_EXEC;
        h
    }

    fn encode(h: &RawExecHeader, data: &[u8]) -> Vec<u8> {
        // SAFETY: reading the bytes of a repr(C) POD value.
        let head = unsafe {
            std::slice::from_raw_parts((h as *const RawExecHeader).cast::<u8>(), HEADER_SIZE)
        };
        [head, data].concat()
    }

    #[test]
    fn decodes_every_section() {
        let mut h = header();
        h.pid = 42;
        h.flags = ExecFlags::INTERP | ExecFlags::OVL_UPPER;
        h.comm[..2].copy_from_slice(b"sh");
        h.ancestors[0][..4].copy_from_slice(b"bash");
        h.cgroup[..4].copy_from_slice(b"abcd");
        let sections: [&[u8]; 7] = [
            b"/tmp/r",
            b"/usr/bin/dash",
            b"/tmp/s.sh",
            b"/bin/sh",
            b"/root",
            b"/bin/sh\0/tmp/s.sh\0-x\0",
            b"A=1\0LD_PRELOAD=/tmp/x.so\0",
        ];
        let lens: Vec<u16> = sections.iter().map(|s| s.len() as u16).collect();
        (
            h.root_len,
            h.path_len,
            h.filename_len,
            h.interp_len,
            h.cwd_len,
            h.args_len,
            h.env_len,
        ) = (
            lens[0], lens[1], lens[2], lens[3], lens[4], lens[5], lens[6],
        );
        h.root_dev = 77;
        h.ancestor_pids = [7, 1, 0, 0];
        h.loginuid = u32::MAX;
        (h.sid, h.pgid, h.vpgid) = (40, 42, 3);
        (h.cap_permitted, h.cap_effective, h.cap_inheritable) = (0xa80425fb, 1 << 12, 0);
        (h.start_boot_ns, h.ctime_ns) = (5, 6);
        let r = ExecRecord::decode(&encode(&h, &sections.concat())).unwrap();
        assert_eq!(r.pid, 42);
        assert_eq!(r.path, "/usr/bin/dash");
        assert_eq!(r.filename, "/tmp/s.sh");
        assert_eq!(r.interp.as_deref(), Some("/bin/sh"));
        assert_eq!(r.cwd, "/root");
        assert_eq!(r.argv, ["/bin/sh", "/tmp/s.sh", "-x"]);
        assert_eq!(r.env, ["A=1", "LD_PRELOAD=/tmp/x.so"]);
        assert_eq!((r.root.as_str(), r.root_dev), ("/tmp/r", 77));
        assert_eq!(r.comm, "sh");
        assert_eq!(r.ancestors, ["bash"]);
        // Pids past the named ancestors (a parent chain that ended) are not made up.
        assert_eq!(r.ancestor_pids, [7]);
        let f = &r.facts;
        assert_eq!(f.loginuid, Some(u32::MAX));
        assert_eq!((f.sid, f.pgid, f.vpgid), (40, 42, 3));
        assert_eq!(f.cap_effective, 1 << 12);
        assert_eq!(f.cap_permitted, 0xa80425fb);
        assert_eq!((f.start_boot_ns, r.ctime_ns), (5, 6));
        assert_eq!(r.cgroup, "abcd");
        assert!(r.flags.has(ExecFlags::OVL_UPPER));
        assert!(!r.lossy);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert_eq!(ExecRecord::decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        let mut h = header();
        h.r#type = 9;
        assert_eq!(
            ExecRecord::decode(&encode(&h, b"")),
            Err(DecodeError::UnknownType(9))
        );
        let mut h = header();
        h.path_len = 100;
        assert!(matches!(
            ExecRecord::decode(&encode(&h, b"abc")),
            Err(DecodeError::Overrun { .. })
        ));
        // Every prefix of a valid record decodes or errors; none panics.
        let mut h = header();
        h.path_len = 3;
        let buf = encode(&h, b"/ab");
        for n in 0..=buf.len() {
            let _ = ExecRecord::decode(&buf[..n]);
        }
    }

    #[test]
    fn a_working_directory_at_the_root_is_the_roots_path() {
        let mut h = header();
        h.flags = ExecFlags::CWD_IS_ROOT;
        (h.root_len, h.path_len) = (6, 4);
        h.cwd_dev = 9;
        let r = ExecRecord::decode(&encode(&h, b"/tmp/r/bin")).unwrap();
        assert_eq!(
            (r.root.as_str(), r.cwd.as_str(), r.cwd_dev),
            ("/tmp/r", "/tmp/r", 9)
        );
        assert_eq!(r.path, "/bin");
        // Without the flag an empty section is an empty working directory, as before.
        h.flags = 0;
        assert_eq!(
            ExecRecord::decode(&encode(&h, b"/tmp/r/bin")).unwrap().cwd,
            ""
        );
    }

    #[test]
    fn a_kernel_without_login_uids_says_none() {
        let mut h = header();
        h.flags = ExecFlags::NO_LOGINUID;
        h.loginuid = u32::MAX;
        assert_eq!(
            ExecRecord::decode(&encode(&h, b"")).unwrap().facts.loginuid,
            None
        );
        h.flags = 0;
        h.loginuid = 1000;
        assert_eq!(
            ExecRecord::decode(&encode(&h, b"")).unwrap().facts.loginuid,
            Some(1000)
        );
    }

    /// Real execs through the loaded program, with the host's namespace set to one no
    /// process is in (so this test's own execs count as a container's): every fact read by
    /// a direct kernel load or a shortcut is the one /proc and the test know.
    #[test]
    fn real_execs_carry_the_kernels_facts() {
        use std::os::unix::fs::MetadataExt;
        use std::sync::{Mutex, mpsc};
        driftwatch_testkit::require!(Root("loading BPF programs"));
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let config = crate::ExecSensorConfig {
            host_mnt_ns: Some(1),
            ..Default::default()
        };
        let sensor = crate::ExecSensor::start(config, move |r: ExecRecord| {
            let _ = tx.lock().unwrap().send(r);
        })
        .expect("loading the exec program");
        let run = |dir: &str| {
            let mut child = std::process::Command::new("/bin/true")
                .arg("an-argument")
                .current_dir(dir)
                .env("DW_EXEC_TEST", dir)
                .spawn()
                .unwrap();
            let pid = child.id();
            child.wait().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let r = rx.recv_timeout(left).expect("the exec was recorded");
                if r.pid == pid {
                    return r;
                }
            }
        };
        let at_root = run("/");
        let in_tmp = run("/tmp");
        drop(sensor);

        let own = std::process::id();
        let true_md = std::fs::metadata("/bin/true").unwrap();
        for (r, cwd) in [(&at_root, "/"), (&in_tmp, "/tmp")] {
            assert_eq!(r.cwd, cwd);
            assert_eq!(r.root, "/");
            assert_eq!(r.argv, ["/bin/true", "an-argument"]);
            assert!(r.env.iter().any(|e| *e == format!("DW_EXEC_TEST={cwd}")));
            assert_eq!((r.ppid, r.comm.as_str()), (own, "true"));
            assert_eq!(r.ancestor_pids.first(), Some(&own));
            assert_eq!(
                (r.ino, u64::from(r.nlink)),
                (true_md.ino(), true_md.nlink())
            );
            assert_eq!(r.mode, true_md.mode());
            assert_eq!(r.ns_pid, r.pid, "the test runs in the host's pid namespace");
            assert_eq!((r.uid, r.euid), (0, 0));
            assert_ne!(r.facts.cap_effective, 0, "root has capabilities");
            assert_eq!(r.facts.pgid, own_pgid());
            assert_eq!(r.facts.vpgid, r.facts.pgid);
            assert_eq!(r.cgroup, own_cgroup_leaf());
        }
        assert!(at_root.flags.has(ExecFlags::CWD_IS_ROOT));
        assert!(!in_tmp.flags.has(ExecFlags::CWD_IS_ROOT));
    }

    /// The last name of this process's cgroup v2 path ("" at the hierarchy's root).
    fn own_cgroup_leaf() -> String {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let path = cgroups
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 line");
        path.rsplit('/').next().unwrap_or_default().to_string()
    }

    fn own_pgid() -> u32 {
        // SAFETY: getpgrp takes no argument and cannot fail.
        unsafe { libc::getpgrp() as u32 }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut h = header();
        h.path_len = 4;
        let r = ExecRecord::decode(&encode(&h, b"/a\xffb")).unwrap();
        assert!(r.lossy);
        assert_eq!(r.path, "/a\u{fffd}b");
    }
}
