//! fanotify notices are parsed from raw bytes read from the kernel: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    driftwatch_sensor::fanotify::parse_notices(data, &mut out);
});
