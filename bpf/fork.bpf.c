// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fork.bpf.c: child -> parent of every new process outside the host's mount namespace, so
 * that a file change made by a forked child that never exec'd (a busybox shell's applet, a
 * subshell `( echo x > /etc/f )`) and exited before user space looked at /proc still names
 * its process: it runs its parent's executable with its parent's argv (Falco reports it so).
 *
 * Hook: tp_btf/sched_process_fork, a non-syscall tracepoint fired from kernel_clone() after
 * copy_process() succeeded, in the parent's context. It costs nothing to other syscalls
 * (syscall tracepoints would slow every one of them; fentry/kprobes are refused or absent
 * here, docs/platform.md). New threads are skipped (same thread group), host processes
 * with one compare of the mount namespace, as exec.bpf.c does.
 *
 * No ring buffer: user space only looks an entry up when a file notice names a pid that is
 * gone and had no exec, so the map is the whole interface (crates/driftwatch-sensor/src/fork.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load: the inode number of the host's mount namespace. */
const volatile __u32 host_mnt_ns = 0;

/* keep in sync: crates/driftwatch-sensor/src/fork.rs:Forked */
struct dw_fork {
	__u32 parent_tgid; /* host view */
	__u32 child_vpid;  /* the child's pid in its own pid namespace */
};

/* LRU: pids are reused and nobody deletes entries; the oldest forks go first. 64 Ki entries
 * hold the last minutes of forks of a busy node. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* the child's tgid (host view) */
	__type(value, struct dw_fork);
} fork_parents SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(dw_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	/* A new thread shares its process's tgid: nothing new to name. */
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	if (BPF_CORE_READ(parent, nsproxy, mnt_ns, ns.inum) == host_mnt_ns)
		return 0;
	struct dw_fork f = {};
	f.parent_tgid = BPF_CORE_READ(parent, tgid);
	struct pid *pid = BPF_CORE_READ(child, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	f.child_vpid = BPF_CORE_READ(pid, numbers[level & 31].nr);
	bpf_map_update_elem(&fork_parents, &child_tgid, &f, BPF_ANY);
	return 0;
}
