//! Rust mirror of `bpf/include/driftwatch_abi.h`, the kernel/user contract.
//! keep in sync: bpf/include/driftwatch_abi.h (a test checks sizes and offsets against the
//! layout clang produced for the compiled BPF object's own `struct dw_exec_event`).

pub const DW_EVENT_EXEC: u32 = 1;
pub const DW_COMM_LEN: usize = 16;
pub const DW_ANCESTORS: usize = 4;
pub const DW_CGROUP_NAME_LEN: usize = 128;

pub const FS_MAGIC_OVERLAY: u32 = 0x794c_7630;
pub const FS_MAGIC_TMPFS: u32 = 0x0102_1994;
pub const FS_MAGIC_HUGETLBFS: u32 = 0x9584_58f6;

/// `enum dw_stat`: indexes of the per-CPU `stats` map.
pub const DW_STAT_LOST: u32 = 0;
pub const DW_STAT_SENT: u32 = 1;
pub const DW_STAT_HOST_SKIPPED: u32 = 2;
pub const DW_STAT_KILLED: u32 = 3;
pub const DW_STAT_HELD: u32 = 4;
pub const DW_STAT_ORPHANED: u32 = 5;
pub const DW_STAT_COUNT: u32 = 6;

/// `enum dw_enforce_flags`: values of the `enforce` map (key: mount namespace inode).
pub const DW_ENFORCE_KILL_MEMFD: u32 = 1 << 0;
pub const DW_ENFORCE_HOLD_SUSPECT: u32 = 1 << 1;
pub const DW_ENFORCE_HOLD_ALL: u32 = 1 << 2;

/// Key size of the exec program's `interpreters` map (`DW_INTERP_NAME_MAX`): a file name,
/// NUL padded; longer names cannot be listed.
pub const DW_INTERP_NAME_MAX: usize = 32;

/// `enum dw_exec_flags`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecFlags(pub u32);

impl ExecFlags {
    pub const OVL_UPPER: u32 = 1 << 0;
    pub const OVL_LOWER: u32 = 1 << 1;
    pub const INTERP: u32 = 1 << 2;
    pub const PATH_TRUNCATED: u32 = 1 << 3;
    pub const ARGS_TRUNCATED: u32 = 1 << 4;
    pub const ENV_TRUNCATED: u32 = 1 << 5;
    pub const CWD_TRUNCATED: u32 = 1 << 6;
    pub const KILLED: u32 = 1 << 7;
    pub const HELD: u32 = 1 << 8;
    pub const PSEUDO: u32 = 1 << 9;
    pub const ORPHAN: u32 = 1 << 10;
    pub const ROOT_TRUNCATED: u32 = 1 << 11;
    pub const NO_LOGINUID: u32 = 1 << 12;
    /// The working directory is the root: its section is empty, [`crate::ExecRecord::cwd`]
    /// is the root's path.
    pub const CWD_IS_ROOT: u32 = 1 << 13;

    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
}

/// The fixed-size head of `struct dw_exec_event`; the variable `data` follows it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawExecHeader {
    pub r#type: u32,
    pub flags: u32,
    pub boot_ns: u64,
    pub cgroup_id: u64,
    pub ino: u64,
    pub upper_ino: u64,
    pub mtime_ns: u64,
    pub ctime_ns: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_inheritable: u64,
    pub start_boot_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub dev: u32,
    pub fs_magic: u32,
    pub nlink: u32,
    pub mode: u32,
    pub mnt_id: u32,
    pub tty: u32,
    pub ns_pid: u32,
    pub cwd_dev: u32,
    pub root_dev: u32,
    pub loginuid: u32,
    pub sid: u32,
    pub pgid: u32,
    pub vpgid: u32,
    pub ancestor_pids: [u32; DW_ANCESTORS],
    pub path_len: u16,
    pub filename_len: u16,
    pub interp_len: u16,
    pub cwd_len: u16,
    pub args_len: u16,
    pub env_len: u16,
    pub root_len: u16,
    pub pad: [u16; 3],
    pub comm: [u8; DW_COMM_LEN],
    pub ancestors: [[u8; DW_COMM_LEN]; DW_ANCESTORS],
    pub cgroup: [u8; DW_CGROUP_NAME_LEN],
    pub cgroup_parent: [u8; DW_CGROUP_NAME_LEN],
}

pub const HEADER_SIZE: usize = std::mem::size_of::<RawExecHeader>();

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;
    use crate::sensor::skel::types::dw_exec_event as Kernel;

    /// The "structs must align" check: the generated type is laid out from the BPF object's
    /// BTF, i.e. exactly what clang compiled for the kernel side.
    #[test]
    fn header_matches_the_bpf_objects_layout() {
        macro_rules! same {
            ($($f:ident),*) => {$(
                assert_eq!(offset_of!(RawExecHeader, $f), offset_of!(Kernel, $f), stringify!($f));
            )*};
        }
        same!(
            r#type,
            flags,
            boot_ns,
            cgroup_id,
            ino,
            upper_ino,
            mtime_ns,
            ctime_ns,
            cap_permitted,
            cap_effective,
            cap_inheritable,
            start_boot_ns,
            pid,
            tid,
            ppid,
            uid,
            gid,
            euid,
            mnt_ns,
            pid_ns,
            dev,
            fs_magic,
            nlink,
            mode,
            mnt_id,
            tty,
            ns_pid,
            cwd_dev,
            root_dev,
            loginuid,
            sid,
            pgid,
            vpgid,
            ancestor_pids,
            path_len,
            filename_len,
            interp_len,
            cwd_len,
            args_len,
            env_len,
            root_len,
            pad,
            comm,
            ancestors,
            cgroup,
            cgroup_parent
        );
        assert_eq!(HEADER_SIZE, offset_of!(Kernel, data));
    }

    /// `DW_ABI_VERSION`, bumped with every change to a record's layout: change it here with
    /// the header, and the offsets above with it.
    const DW_ABI_VERSION: u32 = 3;

    /// A `#define` is not in the BTF: the version is compared with the header's text.
    #[test]
    fn abi_version_matches_the_header() {
        let header = include_str!("../../../bpf/include/driftwatch_abi.h");
        let version = header
            .lines()
            .find_map(|l| l.strip_prefix("#define DW_ABI_VERSION "))
            .and_then(|v| v.trim().parse::<u32>().ok());
        assert_eq!(version, Some(DW_ABI_VERSION));
    }
}

/// `struct dw_net_event` (keep in sync: bpf/include/driftwatch_abi.h).
pub const DW_EVENT_NET: u32 = 2;
pub const DW_TCP_SYN_SENT: u32 = 2;
pub const DW_TCP_LISTEN: u32 = 10;
pub const DW_AF_INET: u16 = 2;
pub const DW_AF_INET6: u16 = 10;

/// `enum dw_net_stat`: indexes of net.bpf.c's per-CPU `net_stats` map.
pub const DW_NET_STAT_LOST: u32 = 0;
pub const DW_NET_STAT_SENT: u32 = 1;
pub const DW_NET_STAT_HOST_SKIPPED: u32 = 2;
pub const DW_NET_STAT_DEDUPED: u32 = 3;
pub const DW_NET_STAT_COUNT: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawNetEvent {
    pub r#type: u32,
    pub state: u32,
    pub boot_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub ns_pid: u32,
    pub family: u16,
    pub protocol: u16,
    pub sport: u16,
    pub dport: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub comm: [u8; DW_COMM_LEN],
    pub cgroup: [u8; DW_CGROUP_NAME_LEN],
    pub cgroup_parent: [u8; DW_CGROUP_NAME_LEN],
}

pub const NET_EVENT_SIZE: usize = std::mem::size_of::<RawNetEvent>();

#[cfg(test)]
mod net_tests {
    use std::mem::offset_of;

    use super::*;
    use crate::net::skel::types::dw_net_event as Kernel;

    /// "Structs must align" for the network record, against net.bpf.c's compiled BTF.
    #[test]
    fn net_event_matches_the_bpf_objects_layout() {
        macro_rules! same {
            ($($f:ident),*) => {$(
                assert_eq!(offset_of!(RawNetEvent, $f), offset_of!(Kernel, $f), stringify!($f));
            )*};
        }
        same!(
            r#type,
            state,
            boot_ns,
            cgroup_id,
            pid,
            tid,
            ppid,
            uid,
            gid,
            mnt_ns,
            net_ns,
            ns_pid,
            family,
            protocol,
            sport,
            dport,
            saddr,
            daddr,
            comm,
            cgroup,
            cgroup_parent
        );
        assert_eq!(NET_EVENT_SIZE, std::mem::size_of::<Kernel>());
    }
}

pub const DW_EVENT_SIGNAL: u32 = 3;

/// `struct dw_signal_event` (tamper.bpf.c).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawSignalEvent {
    pub r#type: u32,
    pub sig: u32,
    pub result: i32,
    pub target_tid: u32,
    pub boot_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub ns_pid: u32,
    pub comm: [u8; DW_COMM_LEN],
    pub cgroup: [u8; DW_CGROUP_NAME_LEN],
    pub cgroup_parent: [u8; DW_CGROUP_NAME_LEN],
}

pub const SIGNAL_EVENT_SIZE: usize = std::mem::size_of::<RawSignalEvent>();

#[cfg(test)]
mod signal_tests {
    use std::mem::offset_of;

    use super::*;
    use crate::tamper::skel::types::dw_signal_event as Kernel;

    /// "Structs must align" for the signal record, against tamper.bpf.c's compiled BTF.
    #[test]
    fn signal_event_matches_the_bpf_objects_layout() {
        macro_rules! same {
            ($($f:ident),*) => {$(
                assert_eq!(offset_of!(RawSignalEvent, $f), offset_of!(Kernel, $f), stringify!($f));
            )*};
        }
        same!(
            r#type,
            sig,
            result,
            target_tid,
            boot_ns,
            cgroup_id,
            pid,
            tid,
            uid,
            mnt_ns,
            pid_ns,
            ns_pid,
            comm,
            cgroup,
            cgroup_parent
        );
        assert_eq!(SIGNAL_EVENT_SIZE, std::mem::size_of::<Kernel>());
    }
}
