//! Matching allocates nothing once warm, measured with a counting allocator: the shipped rules,
//! and rules with transformers and field-to-field comparisons (their scratch buffers are reused).

mod alloc_count;
mod synthetic;

use alloc_count::allocations;
use driftwatch_model::EventKind;
use synthetic::*;

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
