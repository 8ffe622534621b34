//! The container of an exec, found without parsing its cgroup's name or hashing its id each
//! time: an exec loop in one container asks the registry once per change of its entries, and
//! allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use driftwatch_runtime::{CgroupMatch, container_from_cgroup_leaf};

use crate::containers::{ContainerEntry, ContainerRegistry};

/// Cgroups remembered at most; past it the ones of destroyed containers go, then all.
const MAX_CGROUPS: usize = 4096;

/// Per cgroup the kernel reported (its id), what its name says and the registry's entry.
pub struct ContainerLookup {
    slots: HashMap<u64, Slot>,
}

struct Slot {
    /// The names the kernel gave with the id: a slot answers only for the same names, so
    /// that a cached answer is always the one the names would give.
    leaf: String,
    parent: String,
    matched: Option<CgroupMatch>,
    /// The entry and the registry generation it was read at; only a settled one (known to
    /// the engine, mounts read), which the registry would return as it is.
    entry: Option<(u64, Arc<ContainerEntry>)>,
}

impl Default for ContainerLookup {
    fn default() -> Self {
        ContainerLookup::new()
    }
}

impl ContainerLookup {
    pub fn new() -> ContainerLookup {
        ContainerLookup {
            slots: HashMap::new(),
        }
    }

    /// The container of a process in the cgroup `cgroup_id` named `leaf` under `parent`
    /// (`None`: not a container), as [`ContainerRegistry::resolve`] tells it; `pid` is a
    /// process of it, to read its mounts when the registry does not have them yet.
    pub fn lookup(
        &mut self,
        registry: &ContainerRegistry,
        cgroup_id: u64,
        leaf: &str,
        parent: &str,
        pid: u32,
    ) -> Option<Arc<ContainerEntry>> {
        // Read before the registry is asked: a change meanwhile makes the entry stale.
        let generation = registry.generation();
        let fresh = match self.slots.get(&cgroup_id) {
            Some(s) => s.leaf != leaf || s.parent != parent,
            None => true,
        };
        if fresh {
            if self.slots.len() >= MAX_CGROUPS {
                self.slots
                    .retain(|_, s| s.entry.as_ref().is_none_or(|(_, e)| !e.is_destroyed()));
                if self.slots.len() >= MAX_CGROUPS {
                    self.slots.clear();
                }
            }
            let slot = Slot {
                leaf: leaf.to_owned(),
                parent: parent.to_owned(),
                matched: container_from_cgroup_leaf(leaf, Some(parent)),
                entry: None,
            };
            self.slots.insert(cgroup_id, slot);
        }
        let slot = self.slots.get_mut(&cgroup_id)?;
        let m = slot.matched.as_ref()?;
        if let Some((g, e)) = &slot.entry
            && *g == generation
        {
            return Some(e.clone());
        }
        let e = registry.resolve(&m.id, m.engine, pid);
        slot.entry = e.is_settled().then(|| (generation, e.clone()));
        Some(e)
    }

    /// Cgroups remembered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::{ContainerId, ContainerMeta};
    use driftwatch_runtime::ContainerRecord;

    /// This test's own process stands for the container's: its mounts are real.
    fn record(id: &ContainerId) -> ContainerRecord {
        ContainerRecord::of_process(ContainerMeta::unknown(id.clone()), std::process::id())
    }

    fn registry() -> (tokio::runtime::Runtime, ContainerRegistry) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let reg = ContainerRegistry::new(Vec::new(), rt.handle().clone());
        (rt, reg)
    }

    /// A settled entry is the registry's own until the registry changes; then it is asked
    /// again, so a destroyed container is seen as destroyed at its next exec.
    #[test]
    fn the_entry_is_the_registrys_until_the_registry_changes() {
        let (_rt, reg) = registry();
        let id = ContainerId::new(&"d".repeat(64)).unwrap();
        reg.refresh_from_engine(record(&id));
        let leaf = format!("docker-{}.scope", id.as_str());
        let mut lookup = ContainerLookup::new();
        let pid = std::process::id();
        let first = lookup.lookup(&reg, 77, &leaf, "system.slice", pid).unwrap();
        assert!(first.is_settled());
        assert!(Arc::ptr_eq(&first, &reg.get(&id).unwrap()));
        let again = lookup.lookup(&reg, 77, &leaf, "system.slice", pid).unwrap();
        assert!(Arc::ptr_eq(&first, &again));

        // The engine's newer record replaces the entry: the lookup follows.
        reg.refresh_from_engine(record(&id));
        let newer = lookup.lookup(&reg, 77, &leaf, "system.slice", pid).unwrap();
        assert!(!Arc::ptr_eq(&first, &newer));
        assert!(Arc::ptr_eq(&newer, &reg.get(&id).unwrap()));

        reg.mark_destroyed(&id);
        let gone = lookup.lookup(&reg, 77, &leaf, "system.slice", pid).unwrap();
        assert!(gone.is_destroyed());
    }

    /// A cgroup is answered for by its names: the same id with other names (the kernel never
    /// reuses one, but nothing here relies on it) is judged by the new names.
    #[test]
    fn the_names_decide_not_the_id_alone() {
        let (_rt, reg) = registry();
        let id = ContainerId::new(&"e".repeat(64)).unwrap();
        reg.refresh_from_engine(record(&id));
        let mut lookup = ContainerLookup::new();
        let pid = std::process::id();
        assert!(
            lookup
                .lookup(&reg, 5, "user@0.service", "user.slice", pid)
                .is_none()
        );
        let leaf = format!("docker-{}.scope", id.as_str());
        let e = lookup.lookup(&reg, 5, &leaf, "system.slice", pid).unwrap();
        assert_eq!(e.meta.id, id);
        assert!(lookup.lookup(&reg, 5, "init.scope", "", pid).is_none());
        assert_eq!(lookup.len(), 1);
    }

    /// Host cgroups and containers beyond the bound do not grow it.
    #[test]
    fn bounded() {
        let (_rt, reg) = registry();
        let mut lookup = ContainerLookup::new();
        for cg in 0..(MAX_CGROUPS as u64 + 10) {
            assert!(
                lookup
                    .lookup(&reg, cg, "session-1.scope", "user.slice", 1)
                    .is_none()
            );
        }
        assert!(lookup.len() <= MAX_CGROUPS);
    }
}
