//! Enforcement policies (`driftwatch run --enforce-policy`): any text loads or yields errors,
//! each naming the file; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = driftwatch_agent::EnforcementPolicy::parse(text, "fuzz.yaml") {
        assert!(!errors.is_empty(), "an invalid policy without a diagnostic");
        for d in &errors {
            let shown = d.render();
            assert!(
                shown.starts_with("fuzz.yaml:"),
                "error does not name the file: {shown}"
            );
        }
    }
});
