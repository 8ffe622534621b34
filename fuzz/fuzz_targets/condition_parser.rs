//! Fuzzes the condition parser: any text parses or yields a positioned syntax error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err((offset, _)) = driftwatch_rules::check_condition_syntax(text) {
            assert!(offset <= text.len());
        }
    }
});
