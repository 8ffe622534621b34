//! The per-exec hot path allocates nothing once warm: the process table (insert, lookup),
//! the container lookup by cgroup and rule evaluation of an event no rule matches. Counted
//! with this binary's own global allocator, per thread (tests run in parallel).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use driftwatch_agent::{ContainerLookup, ContainerRegistry, ProcInfo, ProcTable};
use driftwatch_model::{ContainerId, ContainerMeta, Engine, Event, EventKind, Process};
use driftwatch_runtime::{ContainerRecord, EngineEvent, EngineSource, RuntimeError};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while this thread's locals are torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` made on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

const EVENTS: u32 = 1000;

#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(n, 1);
}

#[test]
fn the_process_table_allocates_nothing_per_exec_once_warm() {
    let mut table = ProcTable::new(4096);
    let infos: Vec<ProcInfo> = (0..3 * EVENTS)
        .map(|_| ProcInfo {
            exepath: "/usr/bin/true".into(),
            name: "true".into(),
            argv: vec!["true".into()],
            ppid: 1,
            ..Default::default()
        })
        .collect();
    let mut infos = infos.into_iter();
    // Warm: the table has grown to hold a loop's pids, and the previous execs of pids that
    // exec'd again within a second.
    for _ in 0..2 {
        for pid in 0..EVENTS {
            table.insert(1000 + pid, infos.next().unwrap());
        }
    }
    let n = allocations(|| {
        for pid in 0..EVENTS {
            // A pid exec'd again (the loop's pids come back), then its parent looked up.
            table.insert(1000 + pid, infos.next().unwrap());
            assert!(table.get(1000 + pid).is_some());
            assert_eq!(table.exepath(1), None);
        }
    });
    assert_eq!(n, 0, "allocations for {EVENTS} inserts and lookups");
}

/// An engine that knows one container, this test's own process (its mounts are read from
/// /proc as a container's are): the registry's settled entry without a container engine
/// running. Everything else about the registry is the real one.
struct OneContainer(ContainerId);

impl EngineSource for OneContainer {
    fn engine(&self) -> Engine {
        Engine::Docker
    }

    fn inspect<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<ContainerRecord, RuntimeError>> {
        let record = (*id == self.0).then(|| {
            ContainerRecord::of_process(ContainerMeta::unknown(id.clone()), std::process::id())
        });
        Box::pin(async move {
            record.ok_or_else(|| RuntimeError::NotFound {
                engine: Engine::Docker,
                id: id.short().to_string(),
            })
        })
    }

    fn list_running(&self) -> BoxFuture<'_, Result<Vec<ContainerRecord>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn events(&self) -> BoxStream<'static, EngineEvent> {
        Box::pin(futures_util::stream::pending())
    }
}

#[test]
fn the_container_lookup_allocates_nothing_per_exec_once_warm() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = ContainerId::new(&"f".repeat(64)).unwrap();
    let registry = ContainerRegistry::new(
        vec![Arc::new(OneContainer(id.clone()))],
        rt.handle().clone(),
    );
    let leaf = format!("docker-{}.scope", id.as_str());
    let mut lookup = ContainerLookup::new();
    let pid = std::process::id();
    // Warm: the first exec asks the engine and reads the mounts.
    let first = lookup
        .lookup(&registry, 42, &leaf, "system.slice", pid)
        .unwrap();
    assert_eq!(first.meta.id, id);
    // A host process's cgroup, once.
    assert!(
        lookup
            .lookup(&registry, 43, "session-1.scope", "user.slice", pid)
            .is_none()
    );
    let n = allocations(|| {
        for _ in 0..EVENTS {
            let e = lookup
                .lookup(&registry, 42, &leaf, "system.slice", pid)
                .unwrap();
            assert!(Arc::ptr_eq(&e, &first));
            assert!(
                lookup
                    .lookup(&registry, 43, "session-1.scope", "user.slice", pid)
                    .is_none()
            );
        }
    });
    assert_eq!(n, 0, "allocations for {EVENTS} container lookups");
    assert_eq!(
        registry
            .stats
            .inspects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn rules_allocate_nothing_for_an_event_no_rule_matches() {
    let rules = driftwatch_rules::RuleSet::load_with_defaults(&[])
        .unwrap()
        .ruleset;
    let event = Event {
        num: 1,
        time_ns: 1,
        kind: EventKind::Execve,
        process: Process {
            pid: 100,
            ppid: 99,
            name: "true".into(),
            exepath: "/usr/bin/true".into(),
            argv: vec!["/bin/true".into()],
            pexepath: "/usr/bin/dash".into(),
            ancestors: vec!["sh".into()],
            cwd: "/".into(),
            ..Default::default()
        },
        container: Some(Arc::new(ContainerMeta::unknown(
            ContainerId::new(&"f".repeat(64)).unwrap(),
        ))),
        file: None,
        net: None,
        drift: None,
    };
    let mut out = Vec::new();
    // Warm: the output vector and the evaluator's scratch space grow once.
    rules.matches(&event, &mut out);
    assert!(out.is_empty(), "an exec of an image binary raises nothing");
    let n = allocations(|| {
        for _ in 0..EVENTS {
            rules.matches(&event, &mut out);
        }
    });
    assert!(out.is_empty());
    assert_eq!(n, 0, "allocations for {EVENTS} evaluations of the rules");
}
