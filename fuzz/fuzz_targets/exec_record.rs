//! Kernel exec records are decoded from raw ring-buffer bytes: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = driftwatch_sensor::ExecRecord::decode(data);
});
