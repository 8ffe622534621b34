//! Falco's upstream rule files through the real binary: `rules validate` and `rules list`
//! accept them as Falco loads them (stable, incubating, sandbox, then the archive), and a real
//! agent starts with them, warning once per inactive rule.

use std::path::PathBuf;
use std::process::Command;

use driftwatch_testkit::*;

const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// The vendored upstream files in Falco's loading order.
fn upstream_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../driftwatch-rules/tests/data/falcosecurity-rules"
    ));
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
        "falco-deprecated_rules.yaml",
        "application_rules.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect()
}

fn rules_cmd(sub: &[&str]) -> (i32, String, String) {
    let out = Command::new(DRIFTWATCH)
        .arg("rules")
        .args(sub)
        .arg("--no-rules-dir")
        .args(upstream_files())
        .output()
        .expect("running driftwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_falcos_files_and_counts_active_and_inactive_rules() {
    let (code, out, err) = rules_cmd(&["validate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(": error: "), "{out}");
    let summary = out
        .lines()
        .find(|l| l.contains(" rules: ") && l.ends_with(" inactive"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let nums: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let [total, active, inactive] = nums[..] else {
        panic!("{summary}")
    };
    assert_eq!(total, active + inactive, "{summary}");
    assert!(active > 50 && inactive > 0, "{summary}");
    assert!(
        out.contains("rule \"PTRACE attached to process\" is inactive: it needs ptrace events, which driftwatch does not trace"),
        "{out}"
    );
}

#[test]
fn list_json_shows_inactive_rules_with_their_reason() {
    let (code, out, err) = rules_cmd(&["list", "--json", "--inactive"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["active"], false, "{r}");
        assert!(
            r["inactive_reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("needs ") || s.starts_with("its ")),
            "{r}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r["name"] == "PTRACE attached to process"),
        "{out}"
    );
    let (_, out, _) = rules_cmd(&["list", "--json", "--active"]);
    let active: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        active
            .iter()
            .any(|r| r["name"] == "Terminal shell in container" && r["active"] == true)
    );
}

#[test]
fn the_agent_starts_with_falcos_files() {
    if !require(&[Requirement::Bpf]) {
        return;
    }
    let files = upstream_files();
    let mut args: Vec<&str> = Vec::new();
    for f in &files {
        args.push("--rules");
        args.push(f.to_str().expect("utf-8 path"));
    }
    let mut agent = AgentProcess::start(DRIFTWATCH, &args);
    let log = agent.log();
    assert!(
        log.iter().any(|l| l
            .contains("rule \"PTRACE attached to process\" is inactive: it needs ptrace events")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains(": error: ")), "{log:#?}");
    agent.stop();
}
