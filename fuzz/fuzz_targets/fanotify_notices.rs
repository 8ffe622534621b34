//! fanotify notices are parsed from raw bytes read from the kernel: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    // The descriptors an event carries are returned, never closed by the parser: these
    // are not ours to close.
    let _fds = driftwatch_sensor::fanotify::parse_notices(data, &mut out);
});
