//! `/proc/<pid>/mountinfo` and `/proc/<pid>/cgroup` of container processes (a container can
//! create mounts with hostile paths and options): no input may panic; overlay layers and
//! escaped paths are decoded for every mount that parses.
#![no_main]

use driftwatch_runtime::mountinfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(table) = mountinfo::MountTable::parse(&text) {
        for m in table.mounts() {
            let _ = m.kind();
            let _ = m.super_options().count();
            let _ = mountinfo::overlay_layers(m);
            let _ = table.by_id(m.mount_id);
        }
        let _ = table.root_overlay();
        let _ = table.find("/proc/self/root/etc");
    }
    let _ = mountinfo::unescape(&text);
    let _ = driftwatch_runtime::container_from_proc_cgroup(&text);
});
