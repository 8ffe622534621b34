//! Fuzzes the rule loader on top of the default rules: any file loads or yields diagnostics.
#![no_main]

use driftwatch_rules::{RuleSet, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let mut sources = driftwatch_rules::default_sources();
    sources.push(Source::new("fuzz.yaml", text));
    if let Err(ds) = RuleSet::load(&sources) {
        for d in ds {
            let _ = d.render();
        }
    }
});
