//! dw-bench's command line, no root needed: a misspelt part is refused before anything
//! runs, naming the parts there are.

use std::process::Command;

#[test]
fn an_unknown_part_is_refused_with_the_parts_there_are() {
    let out = Command::new(env!("CARGO_BIN_EXE_dw-bench"))
        .args(["--only", "cots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for word in ["cots", "cost", "syscalls", "prevent"] {
        assert!(err.contains(word), "{word} missing: {err}");
    }
}
