//! The configuration file (`driftwatch run --config`): any text loads or yields positioned
//! diagnostics that render; a loaded file shown as YAML (`config show`) loads back to the
//! same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match driftwatch_config::parse_str(text, "fuzz.yaml", None) {
        Ok(loaded) => {
            let shown = driftwatch_config::show_yaml(&loaded);
            let again = driftwatch_config::parse_str(&shown, "shown.yaml", None)
                .unwrap_or_else(|ds| panic!("config show output does not load: {ds:?}\n{shown}"));
            assert_eq!(
                driftwatch_config::show_json(&loaded)["config"],
                driftwatch_config::show_json(&again)["config"],
                "config show does not round-trip"
            );
        }
        Err(ds) => {
            assert!(!ds.is_empty(), "an error without a diagnostic");
            for d in ds {
                assert!(d.line >= 1, "diagnostic without a line: {d}");
                let _ = d.render();
            }
        }
    }
});
