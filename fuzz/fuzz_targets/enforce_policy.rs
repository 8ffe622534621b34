//! Enforcement policies (`driftwatch run --enforce-policy`): any text loads or yields an error
//! naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = driftwatch_agent::EnforcementPolicy::parse(text, "fuzz.yaml") {
        assert!(e.contains("fuzz.yaml"), "error does not name the file: {e}");
    }
});
