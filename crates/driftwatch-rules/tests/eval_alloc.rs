//! Matching allocates nothing once warm, measured with a counting allocator: the shipped rules,
//! and rules with transformers and field-to-field comparisons (their scratch buffers are reused).

mod synthetic;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use driftwatch_model::EventKind;
use synthetic::*;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn matching_allocates_nothing_once_warm() {
    let rs = load(
        "- rule: transformed\n  desc: d\n  condition: >\n    spawned_process and (tolower(basename(proc.exepath)) = curl\n    or len(proc.cmdline) > 1000 or toupper(proc.aname) = NODE\n    or proc.name = val(proc.pname) or b64(proc.env[TOKEN]) contains secret)\n  output: o\n  priority: notice\n",
    );
    let mut curl = exec("/usr/bin/CURL", &["CURL", "-s", "http://x"], "node");
    curl.process.env.push("TOKEN=c2VjcmV0".into());
    let events = [
        curl,
        exec("/bin/sh", &["sh", "-c", "id"], "node"),
        exec("/usr/sbin/nginx", &["nginx"], "containerd-shim"),
        file_event(EventKind::Open, "/etc/passwd", true, "/usr/bin/vi"),
        file_event(EventKind::Rename, "/usr/bin/x", true, "/usr/bin/mv"),
    ];
    let mut out = Vec::with_capacity(32);
    // Warm up: the thread's scratch buffers grow to their working size.
    for e in &events {
        rs.matches(e, &mut out);
    }
    rs.matches(&events[0], &mut out);
    assert!(
        out.iter().any(|i| rs.rule(*i).name == "transformed"),
        "the transformer rule fires on the first event"
    );
    let n = allocations(|| {
        for _ in 0..10 {
            for e in &events {
                rs.matches(e, &mut out);
            }
        }
    });
    assert_eq!(n, 0, "matching allocated {n} times");
}
