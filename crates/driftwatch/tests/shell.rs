//! Shell integration generated from the command tree: completion scripts that the shells
//! accept and that complete, and man pages that render without warnings.

use std::path::Path;
use std::process::Command;

use driftwatch_testkit::{Requirement, optional, run_cli};

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_cli(DRIFTWATCH, &["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in ["run", "demo", "audit", "completions", "man", "validate"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = run_cli(DRIFTWATCH, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'tcsh'") && err.contains("bash"),
        "{err}"
    );
}

#[test]
fn bash_accepts_the_completion_and_it_completes() {
    // bash and groff are not test dependencies: skipped without them, in CI too.
    if !optional(Requirement::Tool("bash").check()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("driftwatch.bash");
    std::fs::write(
        &script,
        run_cli(DRIFTWATCH, &["completions", "bash"]).stdout,
    )
    .unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "bash -n: {syntax:?}");
    // Complete `driftwatch ru<TAB>` (run, rules), `driftwatch rules v<TAB>` and a shell name.
    let probe = format!(
        r#"source {}
complete_for() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _driftwatch driftwatch "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}"; echo "${{COMPREPLY[*]}}"; }}
complete_for driftwatch ru
complete_for driftwatch rules v
complete_for driftwatch completions z"#,
        script.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["run rules", "validate", "zsh"], "{out:?}");
}

#[test]
fn man_pages_for_every_command_render_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(DRIFTWATCH, &["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(listed.len(), names.len());
    for want in [
        "driftwatch.1",
        "driftwatch-run.1",
        "driftwatch-rules-validate.1",
        "driftwatch-baseline-export.1",
        "driftwatch-playbook-validate.1",
        "driftwatch-demo.1",
        "driftwatch-completions.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    if !optional(Requirement::Tool("groff").check()) {
        return;
    }
    for n in &names {
        let page = dir.path().join(n);
        let r = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            r.status.success() && r.stderr.is_empty(),
            "groff warnings in {n}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    if Requirement::Tool("man").check().is_ok() {
        let r = Command::new("man")
            .arg("-l")
            .arg(dir.path().join("driftwatch-run.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&r.stdout);
        assert!(r.status.success(), "{r:?}");
        assert!(text.contains("driftwatch-run"), "{text}");
        assert!(text.contains("--json-out"), "{text}");
        assert!(text.contains("Examples:"), "{text}");
    }
}

#[test]
fn man_into_an_unusable_directory_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = run_cli(DRIFTWATCH, &["man", "--dir", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(!Path::new(&file).is_dir());
}
