/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * dw_ring.h: the one way a driftwatch program puts a record in its ring buffer, choosing
 * whether the record wakes the reader in user space.
 *
 * Why: bpf_ringbuf_output(..., 0) queues an irq_work (a self-IPI, a VM exit in a virtual
 * machine) whenever the reader has caught up (kernel/bpf/ringbuf.c: bpf_ringbuf_commit()
 * wakes when consumer_pos == the record's position), i.e. for nearly every exec of a slow
 * exec loop: about 18 us of the exec's CPU on a VM. The reader drains on a timer while
 * records flow, so most records need no wakeup (BPF_RB_NO_WAKEUP). A record forces one
 * (BPF_RB_FORCE_WAKEUP) when:
 *   - it is urgent (the caller says so: a process held or killed, a signal to the agent);
 *   - a record was lost since the last forced one (the loss is reported promptly);
 *   - the reader said it is going to sleep (dw_ring_reader == DW_RING_ASLEEP): the first
 *     record after idle wakes it, and clears the flag so that the next ones do not;
 *   - the ring holds more than 1/8 of its size (a burst: drain before it fills).
 *
 * The race with a reader going to sleep: the reader stores DW_RING_ASLEEP, then drains once
 * more, then checks that no record is reserved but uncommitted, then blocks in epoll. A
 * record that read DW_RING_DRAINING before that store is committed with NO_WAKEUP; the
 * commit's xchg (a full barrier) orders it before this program's second read of the flag:
 * either the reader's last drain saw the record, or this program sees DW_RING_ASLEEP after
 * its commit and sends an 8-byte nudge record that forces the wakeup. No record waits for the
 * reader's poll timeout. keep in sync: crates/driftwatch-sensor/src/ring.rs
 */
#ifndef DW_RING_H
#define DW_RING_H

/* dw_ring_reader: what the reader in user space is doing. */
enum dw_ring_reader_state {
	/* The kernel's default wakeups (sensor.drain_interval 0, or no reader set up yet). */
	DW_RING_PER_RECORD = 0,
	DW_RING_DRAINING = 1, /* draining on a timer: records need no wakeup */
	DW_RING_ASLEEP = 2,   /* blocked in epoll: the next record wakes it */
};

/* Why a record forced the wakeup (the dw_ring_stats keys). */
enum dw_ring_stat {
	DW_RING_FORCED_URGENT = 0,
	DW_RING_FORCED_LOSS = 1,
	DW_RING_FORCED_ASLEEP = 2,
	DW_RING_FORCED_FILL = 3,
	DW_RING_NUDGED = 4, /* a nudge record sent for a reader that fell asleep meanwhile */
	DW_RING_STAT_COUNT = 5,
};

/* A nudge record is exactly this long and carries this type; no other record is 8 bytes. */
#define DW_RING_NUDGE_TYPE 0x6e756467 /* "nudg" */
struct dw_ring_nudge {
	__u32 type;
	__u32 pad;
};

/* Written by user space through the skeleton's mmapped .bss (and cleared here). */
volatile __u32 dw_ring_reader = 0; /* enum dw_ring_reader_state */
/* A record was lost since the last forced wakeup. */
volatile __u32 dw_ring_lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_RING_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} dw_ring_stats SEC(".maps");

static __always_inline void dw_ring_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&dw_ring_stats, &which);
	if (v)
		*v += 1;
}

/* Outputs `size` bytes of `data` to `ring`; `urgent`: something waits for this record.
 * Returns bpf_ringbuf_output()'s result (0: sent); a failure is remembered so that the next
 * record that goes out wakes the reader. */
static __always_inline long dw_ring_output(void *ring, void *data, __u64 size, int urgent)
{
	__u32 reader = dw_ring_reader;
	__u64 flags = BPF_RB_FORCE_WAKEUP;
	if (urgent) {
		dw_ring_count(DW_RING_FORCED_URGENT);
	} else if (dw_ring_lost) {
		dw_ring_count(DW_RING_FORCED_LOSS);
	} else if (reader == DW_RING_ASLEEP) {
		dw_ring_count(DW_RING_FORCED_ASLEEP);
	} else if (reader == DW_RING_PER_RECORD) {
		flags = 0;
	} else if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >
		   (bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) >> 3)) {
		dw_ring_count(DW_RING_FORCED_FILL);
	} else {
		flags = BPF_RB_NO_WAKEUP;
	}
	long err = bpf_ringbuf_output(ring, data, size, flags);
	if (err) {
		dw_ring_lost = 1;
		return err;
	}
	if (flags == BPF_RB_FORCE_WAKEUP) {
		if (dw_ring_lost)
			dw_ring_lost = 0;
		if (reader == DW_RING_ASLEEP)
			dw_ring_reader = DW_RING_DRAINING;
	} else if (flags == BPF_RB_NO_WAKEUP && dw_ring_reader == DW_RING_ASLEEP) {
		/* The reader went to sleep between our first read and our commit. */
		struct dw_ring_nudge nudge = { .type = DW_RING_NUDGE_TYPE };
		if (!bpf_ringbuf_output(ring, &nudge, sizeof(nudge), BPF_RB_FORCE_WAKEUP)) {
			dw_ring_reader = DW_RING_DRAINING;
			dw_ring_count(DW_RING_NUDGED);
		}
	}
	return 0;
}

#endif /* DW_RING_H */
