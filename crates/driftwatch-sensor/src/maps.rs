//! The BPF maps whose entries are keyed per container, mount namespace, cgroup or process:
//! counted from user space for the agent's metrics (`bpf_map_entries` in `--stats-json`,
//! `driftwatch_bpf_map_entries` on /metrics), so that churn that leaks entries shows. Ring
//! buffers and arrays have a fixed size and are not listed.
//!
//! Counting walks the map in batches (`BPF_MAP_LOOKUP_BATCH`: a few syscalls for thousands
//! of entries, and a walk by bucket that a concurrent delete does not restart), bounded by
//! the map's `max_entries`. It runs when the counters are read (a scrape, the stats at
//! exit), never per event.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

/// Entries asked for per `BPF_MAP_LOOKUP_BATCH` call. A hash map's batch ends at a bucket
/// boundary, so the kernel often returns fewer; a bucket longer than the batch fails with
/// ENOSPC, and the batch is then doubled.
const BATCH: usize = 256;

/// One per-key map of a loaded program, shared with the threads that read the counters.
#[derive(Clone)]
pub struct CountedMap {
    name: &'static str,
    map: Arc<MapHandle>,
}

impl std::fmt::Debug for CountedMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CountedMap({})", self.name)
    }
}

/// A map's size at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntries {
    /// The map's name in the BPF object (`enforce`, `orphans`).
    pub name: &'static str,
    pub entries: u64,
    /// `max_entries`: an LRU map never holds more (it evicts the least recently used).
    pub capacity: u32,
}

impl CountedMap {
    pub(crate) fn new(name: &'static str, map: Arc<MapHandle>) -> CountedMap {
        CountedMap { name, map }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Counts the entries now (see the module's doc for the cost).
    pub fn entries(&self) -> MapEntries {
        MapEntries {
            name: self.name,
            entries: count_entries(self.map.as_ref()) as u64,
            capacity: self.map.max_entries(),
        }
    }
}

/// Every (key, value) of a hash map, at most `max_entries` of them: in batches, or key by
/// key where the kernel has no batch operations for the map (before 5.6).
pub(crate) fn entries_of(map: &dyn MapCore) -> Vec<(Vec<u8>, Vec<u8>)> {
    match lookup_batched(map, BATCH) {
        Ok(all) => all,
        Err(_) => entries_by_key(map),
    }
}

/// The whole map through `BPF_MAP_LOOKUP_BATCH`, until the kernel says ENOENT.
///
/// Not libbpf-rs's `lookup_batch` iterator: it takes a batch shorter than asked for as the
/// last one, but a hash map's batch stops at the bucket that does not fit, so the iterator
/// stops early (a fresh machine counted 510 of 1,000 entries; with batches of 7, 13).
fn lookup_batched(
    map: &dyn MapCore,
    first_batch: usize,
) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use libbpf_rs::libbpf_sys;
    use std::os::fd::AsRawFd;

    let key_size = map.key_size() as usize;
    let value_size = map.value_size() as usize;
    let cap = map.max_entries() as usize;
    let mut batch = first_batch.clamp(1, cap.max(1));
    let mut keys = vec![0u8; batch * key_size];
    let mut values = vec![0u8; batch * value_size];
    // The kernel's position token (a bucket index for hash maps): in from the last call's out.
    let mut token_in = [0u8; 8];
    let mut token_out = [0u8; 8];
    let mut started = false;
    let opts = libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    let mut out = Vec::new();
    // Every call but the last returns at least one entry or doubles the batch, so this ends;
    // the bound guards against a kernel that never says ENOENT.
    for _ in 0..(2 * cap + 64) {
        let mut count = batch as u32;
        // SAFETY: the key and value buffers hold `batch` entries each, `count` says so, the
        // tokens are 8 bytes (a hash map's token is 4) and `opts` is initialised.
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                map.as_fd().as_raw_fd(),
                if started {
                    token_in.as_mut_ptr().cast()
                } else {
                    std::ptr::null_mut()
                },
                token_out.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let errno = if ret < 0 { -ret } else { 0 };
        match errno {
            0 | libc::ENOENT => {
                let n = (count as usize).min(batch);
                for i in 0..n {
                    out.push((
                        keys[i * key_size..(i + 1) * key_size].to_vec(),
                        values[i * value_size..(i + 1) * value_size].to_vec(),
                    ));
                }
                if errno == libc::ENOENT || out.len() >= cap {
                    out.truncate(cap);
                    return Ok(out);
                }
                token_in = token_out;
                started = true;
            }
            libc::ENOSPC if batch < cap => {
                batch = (batch * 2).min(cap);
                keys.resize(batch * key_size, 0);
                values.resize(batch * value_size, 0);
            }
            libc::EINTR => {}
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
    }
    Err(std::io::Error::other(
        "the batch lookup did not reach the end of the map",
    ))
}

/// Key by key: one syscall per key. A concurrent delete can restart the walk from the first
/// key: duplicates are dropped, and the walk stops after twice the capacity.
fn entries_by_key(map: &dyn MapCore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cap = map.max_entries() as usize;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for key in map.keys().take(cap.saturating_mul(2)) {
        if seen.insert(key.clone())
            && let Ok(Some(v)) = map.lookup(&key, MapFlags::ANY)
        {
            out.push((key, v));
        }
    }
    out
}

fn count_entries(map: &dyn MapCore) -> usize {
    entries_of(map).len()
}

/// Reads per-CPU `u64` counters of a stats map (`key` → `slot`), each summed over CPUs.
/// A key that cannot be read leaves its slot as it was.
pub(crate) fn read_percpu_counters(map: &dyn MapCore, slots: &[(u32, &AtomicU64)]) {
    for (key, slot) in slots {
        if let Ok(Some(per_cpu)) = map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY) {
            let sum: u64 = per_cpu
                .iter()
                .filter_map(|v| {
                    v.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_ne_bytes)
                })
                .sum();
            slot.store(sum, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_testkit::Requirement;
    use libbpf_rs::MapType;

    fn kernel_map(kind: MapType, max: u32) -> Option<MapHandle> {
        if !driftwatch_testkit::require(&[Requirement::Root("creates BPF maps")]) {
            return None;
        }
        let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        Some(MapHandle::create(kind, Some("dw_test"), 4, 8, max, &opts).unwrap())
    }

    /// A real kernel map: counted exactly (more entries than one batch).
    #[test]
    fn counts_a_kernel_map() {
        // A plain hash: an LRU map may evict before it is full (per-CPU free lists; a fresh CI
        // machine counted 767 of 1,000 in a 4,096-entry LRU), which would make exact counts
        // flaky. Counting does not depend on the type.
        let Some(map) = kernel_map(MapType::Hash, 4096) else {
            return;
        };
        let map = Arc::new(map);
        let counted = CountedMap::new("dw_test", map.clone());
        assert_eq!(counted.entries().entries, 0);
        assert_eq!(counted.entries().capacity, 4096);
        for k in 0u32..1000 {
            let at = u64::from(k);
            map.update(&k.to_ne_bytes(), &at.to_ne_bytes(), MapFlags::ANY)
                .unwrap();
        }
        assert_eq!(counted.entries().entries, 1000);
        map.delete(&0u32.to_ne_bytes()).unwrap();
        assert_eq!(counted.entries().entries, 999);
    }

    /// Small batches stop at bucket boundaries and come back short many times before the
    /// end (libbpf-rs's iterator saw 13 of 1,000 entries with batches of 7, 447 with 64); a
    /// batch of 1 meets buckets of two or more and has to grow. Every entry is still seen
    /// exactly once, and the key walk finds the same set.
    #[test]
    fn short_and_overflowing_batches_see_every_entry_once() {
        let Some(map) = kernel_map(MapType::Hash, 4096) else {
            return;
        };
        for k in 0u32..1000 {
            map.update(&k.to_ne_bytes(), &u64::from(k).to_ne_bytes(), MapFlags::ANY)
                .unwrap();
        }
        let want: HashSet<u32> = (0..1000).collect();
        let keys_of = |all: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<u32> {
            all.iter()
                .map(|(k, v)| {
                    let key = u32::from_ne_bytes(k[..4].try_into().unwrap());
                    assert_eq!(
                        u64::from(key),
                        u64::from_ne_bytes(v[..8].try_into().unwrap())
                    );
                    key
                })
                .collect()
        };
        for batch in [1, 7, 64, 256, 5000] {
            let got = keys_of(lookup_batched(&map, batch).unwrap());
            assert_eq!(got.len(), 1000, "batch {batch}");
            assert_eq!(
                got.into_iter().collect::<HashSet<u32>>(),
                want,
                "batch {batch}"
            );
        }
        let walked = keys_of(entries_by_key(&map));
        assert_eq!(walked.into_iter().collect::<HashSet<u32>>(), want);
        // An empty map: the first call says ENOENT with nothing.
        let empty = kernel_map(MapType::Hash, 16).unwrap();
        assert!(lookup_batched(&empty, 4).unwrap().is_empty());
    }

    /// The count is bounded by the capacity: an LRU map over its size is counted at most full.
    #[test]
    fn an_lru_map_is_counted_at_most_full() {
        let Some(map) = kernel_map(MapType::LruHash, 64) else {
            return;
        };
        for k in 0u32..1000 {
            map.update(&k.to_ne_bytes(), &0u64.to_ne_bytes(), MapFlags::ANY)
                .unwrap();
        }
        let n = CountedMap::new("dw_test", Arc::new(map)).entries().entries;
        assert!((1..=64).contains(&n), "{n} entries in a 64-entry LRU map");
    }
}
