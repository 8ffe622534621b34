/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user contract of driftwatch's BPF programs.
 * keep in sync: crates/driftwatch-sensor/src/abi.rs (mirrors every struct and constant here;
 * a test there compares sizes and offsets with the BTF of the compiled object).
 */
#ifndef DRIFTWATCH_ABI_H
#define DRIFTWATCH_ABI_H

/* 2: process facts (login uid, session, process group, capabilities, start time, exe ctime,
 * ancestors' pids) added to dw_exec_event.
 * 3: DW_EXEC_CWD_IS_ROOT: a working directory that is the root is not sent twice. */
#define DW_ABI_VERSION 3

#define DW_COMM_LEN 16
#define DW_ANCESTORS 4
#define DW_CGROUP_NAME_LEN 128
/* Variable-length sections follow the header; each is capped. */
#define DW_PATH_MAX 4096
#define DW_NAME_MAX 256
#define DW_FILENAME_MAX 1024
#define DW_INTERP_MAX 512
#define DW_CWD_MAX 2048
#define DW_ARGS_MAX 4096
#define DW_ENV_MAX 4096
#define DW_ROOT_MAX 256
/* Key of the `interpreters` map: an executable's file name, NUL padded. */
#define DW_INTERP_NAME_MAX 32
/* Room for the sections: a power of two, at least the sum of the caps (16128). */
#define DW_DATA_SIZE 16384
#define DW_DATA_SLACK 4096

enum dw_event_type {
	DW_EVENT_EXEC = 1,
};

enum dw_exec_flags {
	/* The executed file has an overlay upper (writable-layer) dentry. */
	DW_EXEC_OVL_UPPER = 1 << 0,
	/* The executed overlay file also has a lower (image-layer) entry. */
	DW_EXEC_OVL_LOWER = 1 << 1,
	/* A binfmt handler replaced the file: bprm->interp differs from bprm->filename
	 * (a script run by its shebang, or binfmt_misc). The file is then the interpreter. */
	DW_EXEC_INTERP = 1 << 2,
	DW_EXEC_PATH_TRUNCATED = 1 << 3,
	DW_EXEC_ARGS_TRUNCATED = 1 << 4,
	DW_EXEC_ENV_TRUNCATED = 1 << 5,
	DW_EXEC_CWD_TRUNCATED = 1 << 6,
	/* Enforcement acted in the kernel: the new image was sent SIGKILL before its first
	 * instruction (a memfd exec in a container in prevent mode). */
	DW_EXEC_KILLED = 1 << 7,
	/* Enforcement held the new image: it was sent SIGSTOP before its first instruction and
	 * waits for user space to judge it and send SIGCONT or SIGKILL. */
	DW_EXEC_HELD = 1 << 8,
	/* The executed file is a memfd (or another pseudo file): its dentry is its own parent. */
	DW_EXEC_PSEUDO = 1 << 9,
	/* Held while no agent was alive (see dw_enforce_config). */
	DW_EXEC_ORPHAN = 1 << 10,
	/* The task's root path did not fit DW_ROOT_MAX. */
	DW_EXEC_ROOT_TRUNCATED = 1 << 11,
	/* The kernel keeps no login uid (built without CONFIG_AUDIT): `loginuid` means nothing. */
	DW_EXEC_NO_LOGINUID = 1 << 12,
	/* The working directory is the task's root (same dentry, same mount): the cwd section
	 * is empty and its path is the root's (cwd_len 0). */
	DW_EXEC_CWD_IS_ROOT = 1 << 13,
};

/*
 * Enforcement per mount namespace (map `enforce`, key: mnt ns inode, value: these flags),
 * set by user space for each container it has placed in a scope. Namespaces not in the map
 * get the `unknown` flags of `enforce_config` (user space has not judged their scope yet).
 */
enum dw_enforce_flags {
	/* SIGKILL execs of memfd/pseudo files (fanotify never sees them). */
	DW_ENFORCE_KILL_MEMFD = 1 << 0,
	/* SIGSTOP execs that load code fanotify's exec permission does not see: the dynamic
	 * loader run as a program (ld.so /tmp/x), any exec whose environment has LD_PRELOAD,
	 * any exec of a file not on an overlay (a filesystem mounted inside the container
	 * after its mounts were marked), and an interpreter (a file name in the `interpreters`
	 * map) run with at least one argument: the script it names is read with a plain open(),
	 * which fanotify's exec permission does not see. */
	DW_ENFORCE_HOLD_SUSPECT = 1 << 1,
	/* SIGSTOP every exec (a namespace whose scope user space has not decided yet). */
	DW_ENFORCE_HOLD_ALL = 1 << 2,
};

struct dw_enforce_config {
	__u32 unknown; /* dw_enforce_flags for namespaces not in the map */
	__u32 pad;
	/* Fail closed when the agent dies (on_agent_death: hold; the program's link is pinned so
	 * it outlives the agent): the agent writes bpf_ktime_get_boot_ns() to heartbeat_ns
	 * regularly; once it is older than dead_after_ns (0: never), execs in prevent-mode
	 * namespaces of files not provably the image's (overlay upper layer, or not overlay) are
	 * held and their pids kept in the `orphans` map for the next agent to judge. */
	__u64 heartbeat_ns;
	__u64 dead_after_ns;
};

enum dw_stat {
	/* Events the ring buffer had no room for. */
	DW_STAT_LOST = 0,
	/* Exec events sent. */
	DW_STAT_SENT = 1,
	/* Execs of host processes, filtered out in the kernel. */
	DW_STAT_HOST_SKIPPED = 2,
	/* New images sent SIGKILL or SIGSTOP by enforcement. */
	DW_STAT_KILLED = 3,
	DW_STAT_HELD = 4,
	/* Execs held while no agent was alive. */
	DW_STAT_ORPHANED = 5,
	DW_STAT_COUNT = 6,
};

/*
 * One exec inside a (possibly) containerised process, read at tp_btf/sched_process_exec.
 * Followed by `data`: root, path, filename, interp, cwd, args, env in that order, with the
 * lengths below (no terminating NULs in the lengths; args/env are NUL-separated).
 *
 * Paths never stop at the task's root (chroot, pivot_root inside the container): a path on
 * an overlay (path, cwd, root) is the file's place in that overlay filesystem, from its own
 * root dentry whatever mounts or chroots lead to it, which is where its layers hold it; any
 * other path runs through the mounts up to the root of the task's mount namespace. cwd and
 * root come with their superblock's device, so user space knows which overlay they are in
 * and can resolve the names given to exec (bprm->filename, LD_PRELOAD) as the kernel did.
 */
struct dw_exec_event {
	__u32 type;            /* DW_EVENT_EXEC */
	__u32 flags;           /* dw_exec_flags */
	__u64 boot_ns;         /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;       /* cgroup v2 id */
	__u64 ino;             /* inode number of the executed file (overlay inode) */
	__u64 upper_ino;       /* the upper layer inode, when DW_EXEC_OVL_UPPER */
	__u64 mtime_ns;        /* the executed file's mtime */
	__u64 ctime_ns;        /* the executed file's ctime */
	/* Capability sets of the new credentials (kernel_cap_t: one 64-bit mask since 6.3,
	 * two 32-bit words before, the same bytes on little-endian). */
	__u64 cap_permitted;
	__u64 cap_effective;
	__u64 cap_inheritable;
	__u64 start_boot_ns;   /* the thread group's start, boot time (task->start_boottime) */
	__u32 pid;             /* tgid, host view */
	__u32 tid;
	__u32 ppid;            /* real parent's tgid, host view */
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 mnt_ns;
	__u32 pid_ns;
	__u32 dev;             /* s_dev of the executed file's superblock */
	__u32 fs_magic;        /* s_magic of that superblock */
	__u32 nlink;
	__u32 mode;
	__u32 mnt_id;          /* mount id of the executed file's mount (mountinfo field 1) */
	__u32 tty;             /* new_encode_dev of the controlling tty, 0 if none */
	__u32 ns_pid;          /* pid inside its pid namespace */
	__u32 cwd_dev;         /* s_dev of the superblock of the task's working directory */
	__u32 root_dev;        /* s_dev of the superblock of the task's root (chroot) */
	__u32 loginuid;        /* audit login uid, (__u32)-1 when unset */
	__u32 sid;             /* session id, host view */
	__u32 pgid;            /* process group id, host view */
	__u32 vpgid;           /* process group id in the task's pid namespace, 0 if not in it */
	__u32 ancestor_pids[DW_ANCESTORS]; /* host tgids, parent first, aligned with ancestors */
	__u16 path_len;
	__u16 filename_len;
	__u16 interp_len;
	__u16 cwd_len;
	__u16 args_len;
	__u16 env_len;
	__u16 root_len;        /* the task's root directory (see above), "/" unless chrooted */
	__u16 pad[3];          /* keeps `data` 8-byte aligned */
	char comm[DW_COMM_LEN];
	char ancestors[DW_ANCESTORS][DW_COMM_LEN]; /* parent first */
	char cgroup[DW_CGROUP_NAME_LEN];           /* leaf cgroup v2 name */
	char cgroup_parent[DW_CGROUP_NAME_LEN];
	char data[DW_DATA_SIZE + DW_DATA_SLACK];
};

/* ---- Network (net.bpf.c) ------------------------------------------------------------ */
/* keep in sync: crates/driftwatch-sensor/src/abi.rs:RawNetEvent */

#define DW_EVENT_NET 2

/* TCP states of interest (include/net/tcp_states.h). */
#define DW_TCP_SYN_SENT 2
#define DW_TCP_LISTEN 10

#define DW_AF_INET 2
#define DW_AF_INET6 10
#define DW_IPPROTO_TCP 6

enum dw_net_stat {
	/* Events the ring buffer had no room for. */
	DW_NET_STAT_LOST = 0,
	/* Listen/connect events sent. */
	DW_NET_STAT_SENT = 1,
	/* Listen/connect of host processes, filtered out in the kernel. */
	DW_NET_STAT_HOST_SKIPPED = 2,
	/* Repeats of the same (cgroup, pid, state, address, port) within the dedupe window. */
	DW_NET_STAT_DEDUPED = 3,
	DW_NET_STAT_COUNT = 4,
};

/*
 * A TCP socket of a (possibly) containerised process that started listening (state
 * DW_TCP_LISTEN) or connecting out (DW_TCP_SYN_SENT), read at sock/inet_sock_set_state in
 * the acting task's context. Addresses are in network byte order (IPv4 in the first 4
 * bytes), ports in host byte order.
 */
struct dw_net_event {
	__u32 type;            /* DW_EVENT_NET */
	__u32 state;           /* the new TCP state */
	__u64 boot_ns;         /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;       /* cgroup v2 id */
	__u32 pid;             /* tgid, host view */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 mnt_ns;
	__u32 net_ns;
	__u32 ns_pid;          /* pid inside its pid namespace */
	__u16 family;          /* DW_AF_INET or DW_AF_INET6 */
	__u16 protocol;        /* DW_IPPROTO_TCP */
	__u16 sport;           /* local port (0 before an unbound connect picks one) */
	__u16 dport;           /* remote port, 0 for a listener */
	__u8 saddr[16];        /* local address */
	__u8 daddr[16];        /* remote address, zero for a listener */
	char comm[DW_COMM_LEN];
	char cgroup[DW_CGROUP_NAME_LEN];
	char cgroup_parent[DW_CGROUP_NAME_LEN];
};

/* ---- Tamper protection (tamper.bpf.c) ------------------------------------------------- */
/* keep in sync: crates/driftwatch-sensor/src/abi.rs:RawSignalEvent */

#define DW_EVENT_SIGNAL 3

/*
 * A signal generated for the agent's own thread group (any sender), read at
 * tp_btf/signal_generate in the sender's context. User space tells the host's senders from a
 * container's by the namespaces.
 */
struct dw_signal_event {
	__u32 type;            /* DW_EVENT_SIGNAL */
	__u32 sig;
	__s32 result;          /* TRACE_SIGNAL_DELIVERED (0), _IGNORED (1), ... */
	__u32 target_tid;      /* the agent's thread the signal was generated for */
	__u64 boot_ns;
	__u64 cgroup_id;       /* the sender's cgroup v2 id */
	__u32 pid;             /* the sender's tgid, host view */
	__u32 tid;
	__u32 uid;
	__u32 mnt_ns;
	__u32 pid_ns;          /* the sender's active pid namespace */
	__u32 ns_pid;          /* the sender's pid inside it */
	char comm[DW_COMM_LEN];
	char cgroup[DW_CGROUP_NAME_LEN];
	char cgroup_parent[DW_CGROUP_NAME_LEN];
};

#endif
