// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tamper.bpf.c: every signal generated for the agent's own thread group, with who sent it
 * (namespaces, cgroup, comm), so that a container sending SIGTERM/SIGSTOP/SIGKILL to the
 * agent raises a critical alert and the agent can ignore a container's request to stop.
 *
 * Hook: tp_btf/signal_generate, a non-syscall tracepoint in __send_signal_locked() (and
 * the paths that drop a signal early), run in the sender's context when a signal is
 * generated, before it is delivered. It fires only when a signal is generated, so it costs
 * nothing to other work; for signals to other processes it is one compare (tgid).
 * fentry/LSM hooks (security_task_kill) would let us deny the signal but are refused by
 * kernel lockdown here (docs/platform.md), and syscall tracepoints slow every syscall.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "driftwatch_abi.h"
#include "dw_ring.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load: the agent's tgid (host view). */
const volatile __u32 agent_tgid = 0;

/* Unused: puts struct dw_signal_event in the object's BTF for the layout test (abi.rs). */
struct dw_signal_event signal_layout = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} signal_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} signal_stats SEC(".maps"); /* 0: sent, 1: lost */

/* kernfs_node.parent was renamed __parent in 6.15; support both with CO-RE flavors. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&signal_stats, &which);
	if (v)
		*v += 1;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(dw_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *target,
	     int group, int result)
{
	if (BPF_CORE_READ(target, tgid) != agent_tgid)
		return 0;
	struct dw_signal_event e = {};
	e.type = DW_EVENT_SIGNAL;
	e.sig = sig;
	e.result = result;
	e.target_tid = BPF_CORE_READ(target, pid);
	e.boot_ns = bpf_ktime_get_boot_ns();
	e.cgroup_id = bpf_get_current_cgroup_id();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e.pid = pid_tgid >> 32;
	e.tid = (__u32)pid_tgid;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	e.uid = BPF_CORE_READ(task, cred, uid.val);
	e.mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	{
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		e.ns_pid = BPF_CORE_READ(pid, numbers[level & 31].nr);
		e.pid_ns = BPF_CORE_READ(pid, numbers[level & 31].ns, ns.inum);
	}
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	bpf_probe_read_kernel_str(e.cgroup, sizeof(e.cgroup), BPF_CORE_READ(kn, name));
	struct kernfs_node *pkn = kn_parent(kn);
	if (pkn)
		bpf_probe_read_kernel_str(e.cgroup_parent, sizeof(e.cgroup_parent), BPF_CORE_READ(pkn, name));
	/* A signal to the agent is rare and may be the start of an attack: always wake. */
	if (dw_ring_output(&signal_events, &e, sizeof(e), 1))
		stat_inc(1);
	else
		stat_inc(0);
	return 0;
}
