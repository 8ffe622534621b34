//! Which process forked each container process (`fork.bpf.c`, `tp_btf/sched_process_fork`):
//! a forked child that never exec'd has no exec record, and once it exits /proc cannot say
//! what it ran either. Its parent can: the child ran the parent's executable with the
//! parent's argv until it exited.

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle};

use crate::load::{SensorError, begin_load, bpf_error};

bpf_skeleton!("fork.skel.rs");

/// The attached fork program and its map; dropping it detaches the program.
///
/// Holds only the link and a descriptor of the map: the program stays loaded as long as its
/// link does, so the BPF object (and the skeleton borrowing it) is closed right after the
/// attach, and lookups need no thread nor lock.
#[derive(Debug)]
pub struct ForkParents {
    _link: Link,
    map: MapHandle,
}

impl ForkParents {
    /// Loads and attaches `tp_btf/sched_process_fork`, recording the forks of processes
    /// outside the mount namespace `host_mnt_ns` (see [`crate::host_mnt_ns`]).
    pub fn start(host_mnt_ns: u32) -> Result<ForkParents, SensorError> {
        begin_load();
        let mut object = MaybeUninit::uninit();
        let mut open = skel::ForkSkelBuilder::default()
            .open(&mut object)
            .map_err(|e| bpf_error("opening the fork BPF object", e))?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.host_mnt_ns = host_mnt_ns;
        }
        let skel = open
            .load()
            .map_err(|e| bpf_error("loading tp_btf/sched_process_fork", e))?;
        let map = MapHandle::try_from(&skel.maps.fork_parents)
            .map_err(|e| bpf_error("opening the fork_parents map", e))?;
        let link = skel
            .progs
            .dw_sched_process_fork
            .attach()
            .map_err(|e| bpf_error("attaching tp_btf/sched_process_fork", e))?;
        Ok(ForkParents { _link: link, map })
    }

    /// How `pid` was forked, if it was forked outside the host's mount namespace since the
    /// program was attached and its slot was not taken since by a later pid (at least
    /// [`FORK_SLOTS`] pids later). A pid reused since is named by its last fork.
    pub fn fork_of(&self, pid: u32) -> Option<Forked> {
        let slot = pid & (FORK_SLOTS - 1);
        let value = self.map.lookup(&slot.to_ne_bytes(), MapFlags::ANY).ok()??;
        if value.len() != std::mem::size_of::<skel::types::dw_fork>() {
            return None;
        }
        // SAFETY: the length was checked; the generated type is plain old data laid out
        // from the BPF object's own BTF, and read_unaligned copes with the buffer's alignment.
        let raw: skel::types::dw_fork = unsafe { std::ptr::read_unaligned(value.as_ptr().cast()) };
        (raw.child_tgid == pid && pid != 0).then_some(Forked {
            parent: raw.parent_tgid,
            vpid: raw.child_vpid,
        })
    }
}

/// Slots of the fork table (keep in sync: bpf/fork.bpf.c:DW_FORK_SLOTS, a power of two).
pub const FORK_SLOTS: u32 = 1 << 17;

/// One fork as `fork.bpf.c` recorded it (its `struct dw_fork`, read through the skeleton's
/// type generated from the object's BTF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forked {
    /// The parent's tgid (host view).
    pub parent: u32,
    /// The child's pid in its own pid namespace.
    pub vpid: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real fork of this test process is recorded with this process as its parent when the
    /// host's namespace is set to one no process is in (so this test's namespace counts as a
    /// container's), and not recorded when it is this test's own.
    #[test]
    fn a_real_fork_names_its_parent_and_the_host_is_skipped() {
        driftwatch_testkit::require!(Root("loading BPF programs"));
        let recorded = ForkParents::start(1).expect("loading the fork program");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let forked = recorded.fork_of(pid).expect("the fork was recorded");
        assert_eq!(forked.parent, std::process::id());
        // This test runs in the host's pid namespace: both views agree.
        assert_eq!(forked.vpid, pid);
        drop(recorded);

        let own = crate::host_mnt_ns().unwrap();
        let skipped = ForkParents::start(own).expect("loading the fork program");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(skipped.fork_of(pid), None);
        assert_eq!(
            skipped.map.max_entries(),
            FORK_SLOTS,
            "keep FORK_SLOTS in sync"
        );
    }
}
