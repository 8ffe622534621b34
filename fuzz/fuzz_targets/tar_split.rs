//! tar-split JSON lines (a layer's tar stream, read by `driftwatch verify`), with the layer's
//! file and whiteout names: no input may panic; errors carry the line they are on.
#![no_main]

use driftwatch_verify::tarsplit::{Entries, Entry, relative_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for item in Entries::new(data) {
        match item {
            Ok((line, Entry::File { name, .. })) => {
                assert!(line <= lines);
                // The relative name drops a leading "./" and the slashes around the rest
                // (`./etc/` → `etc`): a suffix of the name once its trailing '/' are gone.
                let rel = relative_name(&name);
                assert!(
                    !rel.starts_with('/') && !rel.ends_with('/'),
                    "{name:?}: {rel:?}"
                );
                assert!(
                    name.trim_end_matches('/').ends_with(rel),
                    "{name:?}: {rel:?}"
                );
            }
            Ok((line, Entry::Segment(_))) => assert!(line <= lines),
            Err(e) => {
                assert!(e.line <= lines, "error line {} of {lines}", e.line);
                break;
            }
        }
    }
});
