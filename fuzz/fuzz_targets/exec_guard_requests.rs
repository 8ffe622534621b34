//! fanotify permission requests (prevention's exec guard) are parsed from raw bytes read from
//! the kernel: no input may panic. Each accepted record owns its descriptor and would close
//! it on drop, so the fuzzer lets the descriptors go unclosed: arbitrary bytes must not close
//! its own files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    driftwatch_sensor::exec_guard::parse_requests(data, &mut out);
    for r in out {
        // `into_raw_fd`: the descriptor is let go without closing it, the rest of the
        // record is freed (forgetting the whole Vec leaked it on every run: out of memory
        // after a few minutes).
        assert!(std::os::fd::IntoRawFd::into_raw_fd(r.file) >= 0);
    }
});
