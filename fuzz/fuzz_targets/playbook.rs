//! Response playbooks (`driftwatch run --playbook`): any text loads or yields errors that
//! render; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match driftwatch_response::PlaybookSet::parse("fuzz.yaml", text) {
        Ok(set) => {
            let _ = format!("{set:?}");
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "an error without a message");
            for e in errors {
                let _ = e.render();
            }
        }
    }
});
