// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * exec.bpf.c: every successful exec of a process outside the host's mount namespace,
 * with what user space needs to judge where its code came from, read at the moment of
 * exec because short-lived processes are gone before user space could look at /proc.
 *
 * Hook: tp_btf/sched_process_exec, a non-syscall tracepoint fired from exec_binprm() after
 * the new image is in place (point of no return passed, before returning to user space).
 * Unlike syscall tracepoints it costs nothing to syscalls other than exec (docs/platform.md).
 * At that point bprm->file is the final file mapped: the ELF itself, or for a script the
 * interpreter (the script's own file was already released; its name is bprm->filename).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "driftwatch_abi.h"
#include "dw_ring.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load: the inode number of the host's mount namespace.
 * Execs in that namespace are the host's, not a container's, and are skipped here. */
const volatile __u32 host_mnt_ns = 0;

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define DW_PATH_DEPTH 64
#define DW_PATHBUF_SIZE (DW_PATH_MAX + DW_NAME_MAX)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* user space may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dw_exec_event);
} exec_scratch SEC(".maps");

struct pathbuf {
	/* Walk position, kept in the map rather than on the stack so that the verifier
	 * treats it as an unknown (masked) scalar and bpf_loop's callback converges. */
	__u32 pos;
	__u32 truncated;
	__u32 pseudo; /* the walk started at a pseudo dentry (memfd) */
	__u32 done;   /* the walk reached its root (else it ran out of DW_PATH_DEPTH steps) */
	/* Where the walk starts, written by build_path: a typed kernel pointer stored here is
	 * read back by dw_walk_path as the plain number a global function's argument must be. */
	__u64 from_mnt;
	__u64 from_dentry;
	char buf[DW_PATHBUF_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
} path_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* kernfs_node.parent was renamed __parent in 6.15; support both with CO-RE flavors. */
/* LRU: mount namespaces come and go (every `ip netns exec`, every container). User space
 * deletes a container's entry when the engine says it stopped (Enforcer::forget); namespaces
 * that are no container's (set to 0 by release_unplaced) are left to the LRU. An evicted
 * container's namespace is unknown again, held once, and placed again by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* mount namespace inode */
	__type(value, __u32); /* dw_enforce_flags */
} enforce SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dw_enforce_config);
} enforce_config SEC(".maps");

/* Interpreters held in prevent-mode namespaces when run with an argument (key: the executed
 * file's name, NUL padded; filled by user space from detection.interpreters). Versioned
 * names (python3.12) match their stem (python3). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[DW_INTERP_NAME_MAX]);
	__type(value, __u8);
} interpreters SEC(".maps");

/* Pids held while no agent was alive (value: boot ns of the hold), for the next agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} orphans SEC(".maps");

#define DW_SIGKILL 9
#define DW_SIGSTOP 19
#define TMPFS_MAGIC 0x01021994
#define HUGETLBFS_MAGIC 0x958458f6

/* kernfs_node.parent was renamed __parent in 6.15; support both with CO-RE flavors. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		*v += 1;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return kn->__parent;
	return ((struct kernfs_node___old *)kn)->parent;
}

struct walk_ctx {
	struct mount *mnt;
	struct vfsmount *vfsmnt;
	struct dentry *dentry;
	/* vfsmnt->mnt_root, read once per mount crossed (unused while fs_only). */
	struct dentry *mnt_root;
	/* Stay in the file's filesystem: stop at its root dentry, never cross to the mount
	 * above (for overlay files: their place in the layers, whatever mounts lead there). */
	__u32 fs_only;
};

/* struct dentry's d_parent and d_name as the kernel lays them out, next to each other since
 * Linux 3.x: one read fetches both (a helper call per field was most of a step's cost). */
struct dw_dentry_head {
	__u64 parent;
	__u32 hash;
	__u32 len;
	__u64 name;
};

/* One step of the path walk (a bpf_loop callback: verified once, not once per iteration). */
static long walk_step(__u32 i, void *data)
{
	struct walk_ctx *w = data;
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 1;
	/* locals: CO-RE relocations must apply to kernel types only, not to walk_ctx */
	struct dentry *dentry = w->dentry;
	struct dw_dentry_head h = {};
	if (bpf_core_field_offset(struct dentry, d_name) ==
	    bpf_core_field_offset(struct dentry, d_parent) + 8) {
		bpf_probe_read_kernel(&h, sizeof(h),
				      (void *)dentry + bpf_core_field_offset(struct dentry, d_parent));
	} else {
		h.parent = (__u64)BPF_CORE_READ(dentry, d_parent);
		struct qstr q = BPF_CORE_READ(dentry, d_name);
		h.len = q.len;
		h.name = (__u64)q.name;
	}
	struct dentry *parent = (struct dentry *)h.parent;
	int pseudo = 0;
	if (w->fs_only) {
		if (dentry == parent) {
			pb->done = 1;
			return 1; /* the filesystem's root */
		}
	} else {
		struct dentry *mnt_root = w->mnt_root;
		/* A pseudo file's dentry (memfd_create, anonymous inodes) is its own parent and is
		 * not the mount's root: name it, then stop ("/memfd:NAME"). */
		pseudo = dentry == parent && dentry != mnt_root;
		if (dentry == mnt_root || (dentry == parent && !pseudo)) {
			struct mount *mnt = w->mnt;
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt || dentry != mnt_root) {
				pb->done = 1;
				return 1; /* the namespace's root */
			}
			w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			w->mnt = mnt_parent;
			w->vfsmnt = &mnt_parent->mnt;
			w->mnt_root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
			return 0;
		}
	}
	__u32 len = h.len;
	if (len >= DW_NAME_MAX)
		len = DW_NAME_MAX - 1;
	__u32 pos = pb->pos;
	if (len + 1 > pos) {
		pb->truncated = 1;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&pb->buf[pos & (DW_PATH_MAX - 1)], len & (DW_NAME_MAX - 1),
			      (const void *)h.name);
	pos -= 1;
	pb->buf[pos & (DW_PATH_MAX - 1)] = '/';
	pb->pos = pos;
	w->dentry = parent;
	if (pseudo) {
		pb->pseudo = 1;
		pb->done = 1;
	}
	return pseudo;
}

/*
 * Builds the path of (mnt, dentry), right aligned in pb->buf; returns the start offset, the
 * path being buf[start..DW_PATH_MAX). Never stops at the task's root: a chroot is the
 * container's choice, and a path relative to it names whatever the container put there.
 * On an overlay, walks d_parent up to the filesystem's root (the file's place in its layers;
 * no mount, bind mount or pivot_root changes it); elsewhere crosses mounts upwards through
 * mnt_parent/mnt_mountpoint like d_path() does, up to the mount namespace's root.
 */
__noinline int dw_walk_path(__u32 fs_only)
{
	/* A global function: the verifier checks it once, on its own, instead of once for
	 * every state of the program at each of its three call sites. Kernel pointers travel
	 * as scalars; they are only ever read through bpf_probe_read_kernel. */
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 0;
	__u64 vfsmnt = pb->from_mnt;
	struct walk_ctx w = {
		.mnt = container_of((struct vfsmount *)vfsmnt, struct mount, mnt),
		.vfsmnt = (struct vfsmount *)vfsmnt,
		.dentry = (struct dentry *)pb->from_dentry,
		.fs_only = fs_only,
	};
	if (!fs_only)
		w.mnt_root = BPF_CORE_READ((struct vfsmount *)vfsmnt, mnt_root);
	pb->pos = DW_PATH_MAX;
	pb->truncated = 0;
	pb->pseudo = 0;
	pb->done = 0;
	bpf_loop(DW_PATH_DEPTH, walk_step, &w, 0);
	if (!pb->done)
		pb->truncated = 1; /* deeper than DW_PATH_DEPTH: the top is missing */
	return 0;
}

static __always_inline __u32 build_path(struct pathbuf *pb, struct vfsmount *vfsmnt,
					struct dentry *dentry, __u32 fs_only, int *truncated)
{
	pb->from_mnt = (__u64)vfsmnt;
	pb->from_dentry = (__u64)dentry;
	dw_walk_path(fs_only);
	*truncated = pb->truncated;
	__u32 pos = pb->pos;
	if (pos > DW_PATH_MAX)
		pos = DW_PATH_MAX;
	if (pos == DW_PATH_MAX) {
		pos -= 1;
		pb->buf[pos & (DW_PATH_MAX - 1)] = '/';
	}
	return pos;
}

/* Appends buf[start..DW_PATH_MAX) to the event's data at *off, capped at cap bytes. */
static __always_inline __u16 append_path(struct dw_exec_event *ev, __u32 *off, struct pathbuf *pb,
					 __u32 start, __u32 cap, int *truncated)
{
	__u32 len = DW_PATH_MAX - (start & (DW_PATH_MAX - 1));
	if (len > cap) {
		/* keep the tail: the file name matters more than the top directories */
		start += len - cap;
		len = cap;
		*truncated = 1;
	}
	bpf_probe_read_kernel(&ev->data[*off & (DW_DATA_SIZE - 1)], len & (DW_PATH_MAX - 1),
			      &pb->buf[start & (DW_PATH_MAX - 1)]);
	*off += len;
	return len;
}

static __always_inline __u16 append_kstr(struct dw_exec_event *ev, __u32 *off, const char *src,
					 __u32 cap)
{
	long n = bpf_probe_read_kernel_str(&ev->data[*off & (DW_DATA_SIZE - 1)], cap, src);
	if (n <= 1)
		return 0;
	n -= 1; /* without the NUL */
	*off += n;
	return n;
}

static __always_inline __u16 append_user(struct dw_exec_event *ev, __u32 *off, unsigned long start,
					 unsigned long end, __u32 cap, int *truncated)
{
	unsigned long len = end - start;
	if (end <= start)
		return 0;
	if (len > cap) {
		len = cap;
		*truncated = 1;
	}
	if (bpf_probe_read_user(&ev->data[*off & (DW_DATA_SIZE - 1)], len & (DW_ARGS_MAX - 1 + DW_ARGS_MAX),
				(const void *)start))
		return 0;
	*off += len;
	return len;
}

/* Is this file name the dynamic loader's (ld-linux-x86-64.so.2, ld-musl-x86_64.so.1, ld.so)? */
static __always_inline int is_loader_name(const unsigned char *name)
{
	char n[8] = {};
	bpf_probe_read_kernel_str(n, sizeof(n), name);
	if (n[0] != 'l' || n[1] != 'd')
		return 0;
	if (n[2] == '.' && n[3] == 's' && n[4] == 'o' && n[5] == 0)
		return 1;
	return n[2] == '-';
}

/*
 * Is the file name (a kernel string) an interpreter's: listed as is, or a listed name followed
 * by a version (digits and dots: python3.12, perl5.36.0)? A global function: verified once, on
 * its own, whatever the states of the caller.
 */
__noinline int dw_is_interpreter(__u64 name)
{
	char key[DW_INTERP_NAME_MAX] = {};
	long n = bpf_probe_read_kernel_str(key, sizeof(key), (const void *)name);
	if (n <= 1)
		return 0;
	if (bpf_map_lookup_elem(&interpreters, key))
		return 1;
	/* The stem: the name without its trailing digits and dots, read again from the kernel
	 * rather than cut in place (a byte written per step multiplies the verifier's states). */
	__u32 len = n - 1;
	__u32 cut = len;
	for (int i = 0; i < DW_INTERP_NAME_MAX; i++) {
		if (cut <= 1)
			break;
		char c = key[(cut - 1) & (DW_INTERP_NAME_MAX - 1)];
		if (!((c >= '0' && c <= '9') || c == '.'))
			break;
		cut--;
	}
	if (cut == len)
		return 0;
	char stem[DW_INTERP_NAME_MAX] = {};
	bpf_probe_read_kernel(stem, cut & (DW_INTERP_NAME_MAX - 1), (const void *)name);
	return bpf_map_lookup_elem(&interpreters, stem) != 0;
}

struct env_scan {
	__u32 start;
	__u32 len;
	__u32 found;
};

#define DW_ENV_STRIDE 64

/* In .rodata, as bpf_strncmp wants its constant string. */
const char ld_preload_eq[] = "LD_PRELOAD=";

/* A bpf_loop callback over the environment in strides of DW_ENV_STRIDE bytes: does a
 * string starting in stride i name LD_PRELOAD? Most bytes cost one comparison. */
static long env_step(__u32 i, void *data)
{
	struct env_scan *s = data;
	__u32 zero = 0;
	struct dw_exec_event *ev = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!ev)
		return 1;
	__u32 base = i * DW_ENV_STRIDE;
	for (int k = 0; k < DW_ENV_STRIDE; k++) {
		__u32 pos = base + k;
		if (pos + 11 > s->len)
			return 1;
		__u32 at = s->start + pos;
		if (ev->data[at & (DW_DATA_SIZE - 1)] != 'L')
			continue;
		if (pos > 0 && ev->data[(at - 1) & (DW_DATA_SIZE - 1)] != 0)
			continue;
		if (bpf_strncmp(&ev->data[at & (DW_DATA_SIZE - 1)], 11, ld_preload_eq) == 0) {
			s->found = 1;
			return 1;
		}
	}
	return 0;
}

/* dw_is_suspect's answer for an interpreter run with an argument (nothing else suspect):
 * held while an agent judges scripts, not while none runs (see the orphans below). */
#define DW_SUSPECT_INTERP 2

/*
 * Does an exec in a prevent-mode namespace load code fanotify's exec permission does not see
 * (DW_ENFORCE_HOLD_SUSPECT)? 0: no; DW_SUSPECT_INTERP: only as an interpreter; else yes. `name` is the executed file's name, `env_start`/`env_len` the
 * environment's place in the scratch event. A global function: the verifier checks it once,
 * on its own, instead of once for every state of the program reaching it (inline, the
 * interpreter check took the program over the verifier's 1M instruction limit).
 */
__noinline int dw_is_suspect(__u64 name, __u32 argc, __u32 fs_magic, __u32 env_start, __u32 env_len)
{
	/* Not on an overlay: a filesystem fanotify may not have been asked to watch (a tmpfs
	 * mounted inside the container after it was placed). */
	if (fs_magic != OVERLAYFS_SUPER_MAGIC)
		return 1;
	if (is_loader_name((const unsigned char *)name))
		return 1;
	if (env_len) {
		struct env_scan scan = {
			.start = env_start,
			.len = env_len,
		};
		bpf_loop(DW_ENV_MAX / DW_ENV_STRIDE, env_step, &scan, 0);
		if (scan.found)
			return 1;
	}
	/* An interpreter with an argument may be naming a script, which it reads with a plain
	 * open(): user space judges it, and lets `sh -c`, `python3 -m` go at once. */
	if (argc >= 2 && dw_is_interpreter(name))
		return DW_SUSPECT_INTERP;
	return 0;
}

/*
 * The facts Falco's process fields name (user.loginuid, proc.sid, proc.vpgid, thread.cap_*,
 * the start time), a dozen plain loads: issue 19 budgets the whole program at 1 us per exec.
 * At sched_process_exec begin_new_exec() has committed the new credentials (task->cred are
 * the capabilities after exec) and de_thread() has given the task its group leader's start
 * time. Session and group leaders' names are not read here: user space has them from its
 * process table (proc.sname, proc.vpgid.name).
 */
static __always_inline void read_process_facts(struct dw_exec_event *ev, struct task_struct *task,
					       const struct cred *cred, struct pid_namespace *own_ns,
					       unsigned int level)
{
	if (bpf_core_field_exists(task->loginuid)) {
		ev->loginuid = task->loginuid.val;
	} else {
		ev->loginuid = (__u32)-1;
		ev->flags |= DW_EXEC_NO_LOGINUID;
	}
	/* kernel_cap_t: one u64 since 6.3, loaded as such; two u32 words before, the same bytes,
	 * read as the bytes they are. */
	if (bpf_core_field_exists(cred->cap_permitted.val)) {
		ev->cap_permitted = cred->cap_permitted.val;
		ev->cap_effective = cred->cap_effective.val;
		ev->cap_inheritable = cred->cap_inheritable.val;
	} else {
		bpf_core_read(&ev->cap_permitted, sizeof(ev->cap_permitted), &cred->cap_permitted);
		bpf_core_read(&ev->cap_effective, sizeof(ev->cap_effective), &cred->cap_effective);
		bpf_core_read(&ev->cap_inheritable, sizeof(ev->cap_inheritable),
			      &cred->cap_inheritable);
	}
	ev->start_boot_ns = task->start_boottime;
	struct signal_struct *sig = task->signal;
	struct pid *sid = sig->pids[PIDTYPE_SID];
	struct pid *pgrp = sig->pids[PIDTYPE_PGID];
	ev->sid = sid->numbers[0].nr;
	ev->pgid = pgrp->numbers[0].nr;
	/* pid_nr_ns(pgrp, the task's namespace): the group's number at the task's level, if the
	 * group's pid reaches that level in the same namespace (else the group leader is outside
	 * the task's namespace, and Falco's vpgid is 0 too). numbers[] is a flexible array: its
	 * entries past the first are read with the helper (the verifier bounds direct loads to
	 * the declared struct). */
	ev->vpgid = 0;
	if (pgrp->level >= level) {
		struct upid g = {};
		bpf_probe_read_kernel(&g, sizeof(g), &pgrp->numbers[level & 31]);
		if (g.ns == own_ns)
			ev->vpgid = g.nr;
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(dw_sched_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct nsproxy *nsproxy = task->nsproxy;
	__u32 mnt_ns = nsproxy->mnt_ns->ns.inum;
	if (mnt_ns == host_mnt_ns) {
		stat_inc(DW_STAT_HOST_SKIPPED);
		return 0;
	}

	__u32 zero = 0;
	struct dw_exec_event *ev = bpf_map_lookup_elem(&exec_scratch, &zero);
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!ev || !pb)
		return 0;

	/* Kernel pointers are followed with plain loads (tp_btf: the verifier knows their BTF
	 * types and the JIT turns each into a load with a fault handler) rather than
	 * bpf_probe_read_kernel calls: a helper call per field was most of this program's cost. */
	ev->type = DW_EVENT_EXEC;
	ev->flags = 0;
	ev->boot_ns = bpf_ktime_get_boot_ns();
	ev->cgroup_id = bpf_get_current_cgroup_id();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	struct task_struct *parent = task->real_parent;
	ev->ppid = parent->tgid;
	const struct cred *cred = task->cred;
	ev->uid = cred->uid.val;
	ev->gid = cred->gid.val;
	ev->euid = cred->euid.val;
	ev->mnt_ns = mnt_ns;
	ev->pid_ns = nsproxy->pid_ns_for_children->ns.inum;
	struct pid *own = task->thread_pid;
	unsigned int level = own->level & 31;
	struct upid own_up = {};
	bpf_probe_read_kernel(&own_up, sizeof(own_up), &own->numbers[level]);
	ev->ns_pid = own_up.nr;
	__builtin_memcpy(ev->comm, task->comm, DW_COMM_LEN);
	read_process_facts(ev, task, cred, own_up.ns, level);

	struct task_struct *anc = parent;
	for (int i = 0; i < DW_ANCESTORS; i++) {
		if (!anc) {
			ev->ancestors[i][0] = 0;
			ev->ancestor_pids[i] = 0;
			continue;
		}
		__builtin_memcpy(ev->ancestors[i], anc->comm, DW_COMM_LEN);
		ev->ancestor_pids[i] = anc->tgid;
		struct task_struct *next = anc->real_parent;
		anc = (next == anc) ? 0 : next;
	}

	/* The cgroup v2 leaf name identifies the container without asking any engine. */
	struct kernfs_node *kn = task->cgroups->dfl_cgrp->kn;
	bpf_probe_read_kernel_str(ev->cgroup, sizeof(ev->cgroup), kn->name);
	struct kernfs_node *pkn = kn_parent(kn);
	if (pkn)
		bpf_probe_read_kernel_str(ev->cgroup_parent, sizeof(ev->cgroup_parent), pkn->name);
	else
		ev->cgroup_parent[0] = 0;

	struct signal_struct *signal = task->signal;
	struct tty_struct *tty = signal->tty;
	ev->tty = 0;
	if (tty) {
		struct tty_driver *driver = tty->driver;
		int major = driver->major;
		int minor = driver->minor_start + tty->index;
		ev->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
	}

	/* The executed file: its filesystem, overlay layer, link count and identity. */
	struct file *file = bprm->file;
	struct inode *inode = file->f_inode;
	struct super_block *sb = inode->i_sb;
	ev->ino = inode->i_ino;
	ev->dev = sb->s_dev;
	ev->fs_magic = sb->s_magic;
	ev->nlink = inode->__i_nlink;
	ev->mode = inode->i_mode;
	ev->mtime_ns = inode->i_mtime_sec * 1000000000ULL + inode->i_mtime_nsec;
	ev->ctime_ns = inode->i_ctime_sec * 1000000000ULL + inode->i_ctime_nsec;
	ev->upper_ino = 0;
	if (ev->fs_magic == OVERLAYFS_SUPER_MAGIC) {
		/* struct ovl_inode embeds the VFS inode (fs/overlayfs/ovl_entry.h); the way back
		 * from the member to its container is not a typed pointer: read with the helper. */
		struct ovl_inode *oi = container_of(inode, struct ovl_inode, vfs_inode);
		struct dentry *upper = BPF_CORE_READ(oi, __upperdentry);
		if (upper) {
			ev->flags |= DW_EXEC_OVL_UPPER;
			ev->upper_ino = BPF_CORE_READ(upper, d_inode, i_ino);
		}
		struct ovl_entry *oe = BPF_CORE_READ(oi, oe);
		if (oe && BPF_CORE_READ(oe, __numlower) > 0)
			ev->flags |= DW_EXEC_OVL_LOWER;
	}
	struct vfsmount *fmnt = file->f_path.mnt;
	ev->mnt_id = BPF_CORE_READ(container_of(fmnt, struct mount, mnt), mnt_id);

	__u32 off = 0;
	int trunc = 0;

	/* The task's root: "/" of its overlay in one step unless chrooted. First in `data`:
	 * placed there, the verifier explores far fewer states than with it last (613k
	 * instructions instead of over the 1M limit). */
	struct fs_struct *fs = task->fs;
	struct dentry *root = fs->root.dentry;
	struct super_block *root_sb = root->d_sb;
	ev->root_dev = root_sb->s_dev;
	__u32 start;
	if (root_sb->s_magic == OVERLAYFS_SUPER_MAGIC && root->d_parent == root) {
		/* The overlay's own root, the container's root unless chrooted: what the walk
		 * would find in its first step, without the walk. */
		ev->data[0] = '/';
		off = 1;
		ev->root_len = 1;
	} else {
		start = build_path(pb, fs->root.mnt, root, root_sb->s_magic == OVERLAYFS_SUPER_MAGIC,
				   &trunc);
		ev->root_len = append_path(ev, &off, pb, start, DW_ROOT_MAX, &trunc);
		if (trunc)
			ev->flags |= DW_EXEC_ROOT_TRUNCATED;
	}

	start = build_path(pb, fmnt, file->f_path.dentry,
			   ev->fs_magic == OVERLAYFS_SUPER_MAGIC, &trunc);
	ev->path_len = append_path(ev, &off, pb, start, DW_PATH_MAX - 1, &trunc);
	if (trunc)
		ev->flags |= DW_EXEC_PATH_TRUNCATED;
	if (pb->pseudo)
		ev->flags |= DW_EXEC_PSEUDO;

	const char *filename = bprm->filename;
	const char *interp = bprm->interp;
	ev->filename_len = append_kstr(ev, &off, filename, DW_FILENAME_MAX);
	ev->interp_len = 0;
	if (interp != filename) {
		ev->flags |= DW_EXEC_INTERP;
		ev->interp_len = append_kstr(ev, &off, interp, DW_INTERP_MAX);
	}

	struct dentry *pwd = fs->pwd.dentry;
	struct super_block *cwd_sb = pwd->d_sb;
	ev->cwd_dev = cwd_sb->s_dev;
	ev->cwd_len = 0;
	if (pwd == root && fs->pwd.mnt == fs->root.mnt && !(ev->flags & DW_EXEC_ROOT_TRUNCATED)) {
		/* The same walk from the same place: user space copies the root's path. */
		ev->flags |= DW_EXEC_CWD_IS_ROOT;
	} else {
		start = build_path(pb, fs->pwd.mnt, pwd, cwd_sb->s_magic == OVERLAYFS_SUPER_MAGIC,
				   &trunc);
		ev->cwd_len = append_path(ev, &off, pb, start, DW_CWD_MAX, &trunc);
		if (trunc)
			ev->flags |= DW_EXEC_CWD_TRUNCATED;
	}

	struct mm_struct *mm = task->mm;
	trunc = 0;
	ev->args_len = append_user(ev, &off, mm->arg_start, mm->arg_end, DW_ARGS_MAX, &trunc);
	if (trunc)
		ev->flags |= DW_EXEC_ARGS_TRUNCATED;
	trunc = 0;
	ev->env_len = append_user(ev, &off, mm->env_start, mm->env_end, DW_ENV_MAX, &trunc);
	if (trunc)
		ev->flags |= DW_EXEC_ENV_TRUNCATED;


	/* Enforcement: stop in the kernel what user space cannot stop in time. */
	__u32 *flags_p = bpf_map_lookup_elem(&enforce, &mnt_ns);
	struct dw_enforce_config *cfg = bpf_map_lookup_elem(&enforce_config, &zero);
	/* Failing closed and the agent is gone (its heartbeat is stale): see below. */
	int dead = cfg && cfg->dead_after_ns &&
		   bpf_ktime_get_boot_ns() - cfg->heartbeat_ns > cfg->dead_after_ns;
	__u32 eflags = 0;
	if (flags_p)
		eflags = *flags_p;
	else if (cfg && !dead)
		/* Unknown namespaces are held only while an agent is there to place them: held
		 * without one, every new namespace of the host would stop for good. */
		eflags = cfg->unknown;
	int hold = 0;
	if (eflags) {
		int memfd = (ev->flags & DW_EXEC_PSEUDO) &&
			    (ev->fs_magic == TMPFS_MAGIC || ev->fs_magic == HUGETLBFS_MAGIC);
		if ((eflags & DW_ENFORCE_KILL_MEMFD) && memfd) {
			if (!bpf_send_signal(DW_SIGKILL)) {
				ev->flags |= DW_EXEC_KILLED;
				stat_inc(DW_STAT_KILLED);
			}
		} else {
			hold = eflags & DW_ENFORCE_HOLD_ALL;
			if (!hold && (eflags & DW_ENFORCE_HOLD_SUSPECT)) {
				struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
				hold = dw_is_suspect((__u64)BPF_CORE_READ(d, d_name.name),
						     BPF_CORE_READ(bprm, argc), ev->fs_magic,
						     ev->root_len + ev->filename_len + ev->interp_len +
							     ev->path_len + ev->cwd_len + ev->args_len,
						     ev->env_len);
			}
			if (hold)
				ev->flags |= DW_EXEC_HELD;
		}
	}
	/* No agent alive and failing closed (on_agent_death: hold): in prevent-mode namespaces,
	 * hold what would have been held, and every exec of a file not provably the image's
	 * (overlay upper layer, or not overlay). Nobody reads the ring buffer: the pid goes to
	 * `orphans` for the next agent. If it cannot be recorded, kill rather than let it run.
	 * Interpreters are not held then: the next agent judges an orphan by its executable
	 * only, and every `sh -c` (health checks) would stop until it comes. */
	if (dead && (eflags & DW_ENFORCE_KILL_MEMFD) && !(ev->flags & DW_EXEC_KILLED) &&
	    ((hold && hold != DW_SUSPECT_INTERP) || (ev->flags & DW_EXEC_OVL_UPPER) ||
	     ev->fs_magic != OVERLAYFS_SUPER_MAGIC)) {
		__u64 now = bpf_ktime_get_boot_ns();
		__u32 pid = ev->pid;
		if (bpf_map_update_elem(&orphans, &pid, &now, BPF_ANY) == 0 &&
		    !bpf_send_signal(DW_SIGSTOP)) {
			stat_inc(DW_STAT_ORPHANED);
		} else {
			bpf_send_signal(DW_SIGKILL);
			stat_inc(DW_STAT_KILLED);
		}
		return 0;
	}
	if (dead)
		ev->flags &= ~DW_EXEC_HELD;

	__u64 size = offsetof(struct dw_exec_event, data) + (off & (DW_DATA_SIZE - 1));
	/* A held or killed process waits for user space's verdict or alert: wake it now. */
	if (dw_ring_output(&events, ev, size, ev->flags & (DW_EXEC_HELD | DW_EXEC_KILLED))) {
		/* Never hold what user space will not hear of: it would stay stopped. The loss
		 * is counted and reported. */
		stat_inc(DW_STAT_LOST);
		return 0;
	}
	stat_inc(DW_STAT_SENT);
	/* Held only once the record is on its way; if the signal fails, user space's SIGCONT
	 * or SIGKILL for the record is harmless. */
	if ((ev->flags & DW_EXEC_HELD) && !bpf_send_signal(DW_SIGSTOP))
		stat_inc(DW_STAT_HELD);
	return 0;
}
