//! Approved image lists (`driftwatch verify --approved`): any text loads or yields errors
//! naming the file; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = driftwatch_verify::ApprovedList::parse(Path::new("fuzz.list"), text) {
        for d in &errors {
            let _ = d.render();
        }
    }
});
