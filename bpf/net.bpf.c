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
 * an array slot compare, not a ring-buffer record and a wakeup.
 *
 * Cost: the hot runs are the connects and listens (every other transition returns at the
 * first compare), measured with bpf_stats by dw-net-bench's workloads. Kernel pointers are read with
 * plain loads (tp_btf arguments and bpf_get_current_task_btf() are trusted BTF pointers: the
 * verifier adds the fault handling), not one bpf_probe_read_kernel call per hop, and nothing
 * is read for the record before the dedupe check has passed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "driftwatch_abi.h"
#include "dw_ring.h"

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

/* One slot of net_recent: the last report of the key stored in it (boot ns). */
struct dw_net_recent {
	__u64 cgroup_id;
	__u32 pid;
	__u32 state;
	__u16 family;
	__u16 port;
	__u32 pad;
	__u8 addr[16];
	__u64 boot_ns;
};

#define DW_NET_RECENT_SLOTS 4096

/* The dedupe window's memory: a direct-mapped table, each key in the slot its hash names, over
 * whatever key was there. An array slot is found with no hash-table walk, no lock and no
 * allocation; the LRU hash it replaces cost about 500 ns per new key here (an update takes the
 * LRU's locks and may evict), more than the rest of the program. Per CPU, so that a slot is
 * never written by two CPUs at once: a key is compared whole and a torn slot could otherwise
 * match a key that was never reported. The price is at most one report per CPU a process
 * runs on per window, and one more report when two live keys share a slot: duplicates, never
 * a miss. Nothing to delete: a stale slot is overwritten or its time is past the window. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_NET_RECENT_SLOTS);
	__type(key, __u32);
	__type(value, struct dw_net_recent);
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

/* A slot of net_recent for the key (a multiply-xorshift mix of its words). */
static __always_inline __u32 recent_slot(const struct dw_net_recent *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = 0;
	/* The key's five words, not boot_ns. */
#pragma unroll
	for (int i = 0; i < 5; i++) {
		h = (h ^ w[i]) * 0x9E3779B97F4A7C15ULL;
		h ^= h >> 32;
	}
	return h & (DW_NET_RECENT_SLOTS - 1);
}

/* One side's address as the record carries it: 16 bytes, an IPv4 one in the first 4. */
static __always_inline void sk_addr(__u16 family, __be32 v4, const struct in6_addr *v6, __u8 *out)
{
	__u32 *a32 = (__u32 *)out;
	if (family == DW_AF_INET) {
		a32[0] = v4;
		return;
	}
	a32[0] = v6->in6_u.u6_addr32[0];
	a32[1] = v6->in6_u.u6_addr32[1];
	a32[2] = v6->in6_u.u6_addr32[2];
	a32[3] = v6->in6_u.u6_addr32[3];
}

static __always_inline bool same_key(const struct dw_net_recent *a, const struct dw_net_recent *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(dw_inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate != DW_TCP_LISTEN && newstate != DW_TCP_SYN_SENT)
		return 0;
	if (sk->sk_protocol != DW_IPPROTO_TCP)
		return 0;
	__u16 family = sk->__sk_common.skc_family;
	if (family != DW_AF_INET && family != DW_AF_INET6)
		return 0;

	struct task_struct *task = bpf_get_current_task_btf();
	__u32 mnt_ns = task->nsproxy->mnt_ns->ns.inum;
	if (mnt_ns == host_mnt_ns) {
		stat_inc(DW_NET_STAT_HOST_SKIPPED);
		return 0;
	}

	/* The key first: the address and port that identify the socket's side of interest. */
	struct dw_net_recent key = {};
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.state = newstate;
	key.family = family;
	const struct sock_common *skc = &sk->__sk_common;
	if (newstate == DW_TCP_LISTEN) {
		key.port = skc->skc_num;
		sk_addr(family, skc->skc_rcv_saddr, &skc->skc_v6_rcv_saddr, key.addr);
	} else {
		key.port = bpf_ntohs(skc->skc_dport);
		sk_addr(family, skc->skc_daddr, &skc->skc_v6_daddr, key.addr);
	}
	__u64 now = bpf_ktime_get_boot_ns();
	if (dedupe_ns) {
		__u32 slot = recent_slot(&key);
		struct dw_net_recent *last = bpf_map_lookup_elem(&net_recent, &slot);
		if (!last)
			return 0;
		if (same_key(last, &key) && now - last->boot_ns < dedupe_ns) {
			stat_inc(DW_NET_STAT_DEDUPED);
			return 0;
		}
		key.boot_ns = now;
		*last = key;
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
	e->boot_ns = now;
	e->cgroup_id = key.cgroup_id;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->sport = skc->skc_num;
	if (newstate == DW_TCP_LISTEN) {
		__builtin_memcpy(e->saddr, key.addr, sizeof(e->saddr));
	} else {
		e->dport = key.port;
		__builtin_memcpy(e->daddr, key.addr, sizeof(e->daddr));
		sk_addr(family, skc->skc_rcv_saddr, &skc->skc_v6_rcv_saddr, e->saddr);
	}

	e->ppid = task->real_parent->tgid;
	const struct cred *cred = task->cred;
	e->uid = cred->uid.val;
	e->gid = cred->gid.val;
	e->mnt_ns = mnt_ns;
	e->net_ns = skc->skc_net.net->ns.inum;
	{
		struct pid *pid = task->thread_pid;
		unsigned int level = pid->level;
		/* numbers[] is indexed by a value the verifier cannot bound for a BTF pointer. */
		e->ns_pid = BPF_CORE_READ(pid, numbers[level & 31].nr);
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* The cgroup v2 leaf name identifies the container without asking any engine. */
	struct kernfs_node *kn = task->cgroups->dfl_cgrp->kn;
	bpf_probe_read_kernel_str(e->cgroup, sizeof(e->cgroup), kn->name);
	struct kernfs_node *pkn = kn_parent(kn);
	if (pkn)
		bpf_probe_read_kernel_str(e->cgroup_parent, sizeof(e->cgroup_parent), BPF_CORE_READ(pkn, name));

	if (dw_ring_output(&net_events, e, sizeof(*e), 0))
		stat_inc(DW_NET_STAT_LOST);
	else
		stat_inc(DW_NET_STAT_SENT);
	return 0;
}
