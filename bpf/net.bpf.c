// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * net.bpf.c: TCP sockets of processes outside the host's mount namespace that start
 * listening or connect out, with the addresses, ports, process and cgroup leaf name.
 *
 * Hook: tp_btf/inet_sock_set_state, the non-syscall tracepoint fired by inet_sk_state_store()
 * and tcp_set_state() on every TCP state change. Only two transitions matter here, and both
 * run in the acting task's context, so `current` is the process that did it:
 *   - TCP_LISTEN:   inet_csk_listen_start(), from listen(2);
 *   - TCP_SYN_SENT: tcp_v4_connect()/tcp_v6_connect(), from connect(2) (or a TCP Fast Open
 *     sendmsg), after the route gave the source address.
 * Other transitions (softirq context: SYN_RECV, ESTABLISHED, FIN_WAIT, ...) return at the
 * first comparison. Syscalls pay nothing: no syscall tracepoint is attached (docs/platform.md).
 *
 * Repeats of one (cgroup, pid, state, address, port) within `dedupe_ns` are counted and
 * dropped here: a connection pool or a busy client reconnecting to the same destination costs
 * a hash lookup, not a ring-buffer record and a wakeup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "driftwatch_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load: the inode number of the host's mount namespace. */
const volatile __u32 host_mnt_ns = 0;
/* Set by user space before load: repeats within this many ns are dropped (0: never). */
const volatile __u64 dedupe_ns = 1000000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* user space may resize before load */
} net_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_NET_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} net_stats SEC(".maps");

/* The record is built here, not on the stack (it is most of the 512-byte stack), and the map
 * puts struct dw_net_event in the object's BTF for the layout test in abi.rs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dw_net_event);
} net_scratch SEC(".maps");

struct dedupe_key {
	__u64 cgroup_id;
	__u32 pid;
	__u32 state;
	__u16 family;
	__u16 port;
	__u32 pad;
	__u8 addr[16];
};

/* Last report of each dedupe_key (boot ns). Never deleted here: user space deletes the entries
 * older than dedupe_ns every few seconds (crates/driftwatch-sensor/src/net.rs, SWEEP_EVERY), so
 * dead processes' and containers' keys go; the LRU cap bounds it in between. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dedupe_key);
	__type(value, __u64);
} net_recent SEC(".maps");

/* kernfs_node.parent was renamed __parent in 6.15 (same flavor trick as exec.bpf.c). */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&net_stats, &which);
	if (v)
		*v += 1;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(dw_inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate != DW_TCP_LISTEN && newstate != DW_TCP_SYN_SENT)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != DW_IPPROTO_TCP)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != DW_AF_INET && family != DW_AF_INET6)
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u32 mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	if (mnt_ns == host_mnt_ns) {
		stat_inc(DW_NET_STAT_HOST_SKIPPED);
		return 0;
	}

	__u32 zero = 0;
	struct dw_net_event *e = bpf_map_lookup_elem(&net_scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->type = DW_EVENT_NET;
	e->state = newstate;
	e->family = family;
	e->protocol = DW_IPPROTO_TCP;
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == DW_AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	if (newstate == DW_TCP_LISTEN) {
		e->dport = 0;
		__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	}

	e->cgroup_id = bpf_get_current_cgroup_id();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->boot_ns = bpf_ktime_get_boot_ns();

	if (dedupe_ns) {
		struct dedupe_key key = {};
		key.cgroup_id = e->cgroup_id;
		key.pid = e->pid;
		key.state = newstate;
		key.family = family;
		if (newstate == DW_TCP_LISTEN) {
			key.port = e->sport;
			__builtin_memcpy(key.addr, e->saddr, sizeof(key.addr));
		} else {
			key.port = e->dport;
			__builtin_memcpy(key.addr, e->daddr, sizeof(key.addr));
		}
		__u64 *last = bpf_map_lookup_elem(&net_recent, &key);
		if (last && e->boot_ns - *last < dedupe_ns) {
			stat_inc(DW_NET_STAT_DEDUPED);
			return 0;
		}
		bpf_map_update_elem(&net_recent, &key, &e->boot_ns, BPF_ANY);
	}

	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->gid = BPF_CORE_READ(task, cred, gid.val);
	e->mnt_ns = mnt_ns;
	e->net_ns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	{
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		e->ns_pid = BPF_CORE_READ(pid, numbers[level & 31].nr);
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* The cgroup v2 leaf name identifies the container without asking any engine. */
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	bpf_probe_read_kernel_str(e->cgroup, sizeof(e->cgroup), BPF_CORE_READ(kn, name));
	struct kernfs_node *pkn = kn_parent(kn);
	if (pkn)
		bpf_probe_read_kernel_str(e->cgroup_parent, sizeof(e->cgroup_parent), BPF_CORE_READ(pkn, name));

	if (bpf_ringbuf_output(&net_events, e, sizeof(*e), 0))
		stat_inc(DW_NET_STAT_LOST);
	else
		stat_inc(DW_NET_STAT_SENT);
	return 0;
}
