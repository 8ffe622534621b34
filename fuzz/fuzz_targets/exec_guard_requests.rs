//! fanotify permission requests (prevention's exec guard) are parsed from raw bytes read from
//! the kernel: no input may panic. Each accepted record owns its descriptor and would close
//! it on drop, so the fuzzer forgets them: arbitrary bytes must not close its own files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    driftwatch_sensor::exec_guard::parse_requests(data, &mut out);
    for r in &out {
        assert!(std::os::fd::AsRawFd::as_raw_fd(&r.file) >= 0);
    }
    std::mem::forget(out);
});
