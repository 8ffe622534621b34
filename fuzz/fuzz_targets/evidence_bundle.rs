//! Evidence bundles (`driftwatch capture --verify` reads a file anyone may have altered): the
//! decompressed tar stream is fuzzed; no input may panic or grow memory without bound
//! (`-rss_limit_mb`), and an intact verdict needs a manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let v = driftwatch_evidence::capture::verify_archive("fuzz.tar", data);
    if v.problems.is_empty() {
        assert!(
            v.manifest.is_some(),
            "no problem reported without a manifest"
        );
    }
});
