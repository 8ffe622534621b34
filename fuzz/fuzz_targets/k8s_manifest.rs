//! Kubernetes manifests (`driftwatch audit`): any bytes give a report (findings or input
//! errors, never a panic), and the report renders as a table, JSON and SARIF.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = driftwatch_audit::audit_sources([("fuzz.yaml", data)]);
    assert_eq!(report.files, 1);
    let _ = driftwatch_audit::report::table(&report);
    let json = driftwatch_audit::report::json(&report);
    serde_json::to_string(&json).expect("the JSON report serializes");
    let _ = driftwatch_audit::report::sarif(&report);
});
