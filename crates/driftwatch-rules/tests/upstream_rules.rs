//! Falco's own rule files (vendored, unchanged: `tests/data/falcosecurity-rules/SOURCE.md`)
//! load on top of driftwatch's defaults with zero errors, alone and all together in Falco's
//! order; the rules driftwatch can see are active, the others inactive with the reason; and
//! the report in `docs/rules.md` is the one these files give today.

mod synthetic;

use std::collections::BTreeMap;

use driftwatch_model::EventKind;
use driftwatch_rules::{LoadedRules, RuleSet, Severity, Source};
use synthetic::*;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/falcosecurity-rules/"
);

/// The vendored files in the order Falco loads them, with what Falco calls them.
const FILES: [(&str, &str); 5] = [
    ("falco_rules.yaml", "stable"),
    ("falco-incubating_rules.yaml", "incubating"),
    ("falco-sandbox_rules.yaml", "sandbox"),
    ("falco-deprecated_rules.yaml", "archive: deprecated"),
    ("application_rules.yaml", "archive: application"),
];

fn source(file: &str) -> Source {
    let text = std::fs::read_to_string(format!("{DIR}{file}"))
        .unwrap_or_else(|e| panic!("{DIR}{file}: {e}"));
    Source::new(file, text)
}

/// The defaults, then `files`; every error rendered on failure.
fn load(files: &[&str]) -> LoadedRules {
    let sources: Vec<Source> = files.iter().map(|f| source(f)).collect();
    match RuleSet::load_with_defaults(&sources) {
        Ok(l) => l,
        Err(ds) => {
            let errors: Vec<String> = ds
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.render())
                .collect();
            panic!("{} error(s):\n{}", errors.len(), errors.join("\n"));
        }
    }
}

fn all_files() -> Vec<&'static str> {
    FILES.iter().map(|(f, _)| *f).collect()
}

#[test]
fn each_upstream_file_loads_alone_on_top_of_the_defaults() {
    for (file, _) in FILES {
        let l = load(&[file]);
        assert!(
            l.ruleset.rules().any(|(_, r)| r.source_file == file)
                || file == "application_rules.yaml",
            "{file} defines rules"
        );
    }
}

#[test]
fn all_upstream_files_load_together_in_falcos_order() {
    let l = load(&all_files());
    // Inactive rules warn once each, enabled ones only; nothing else is an error.
    for (_, r) in l.ruleset.rules() {
        let warned = l
            .warnings
            .iter()
            .filter(|w| {
                w.to_string()
                    .contains(&format!("rule {:?} is inactive", r.name))
            })
            .count();
        let want = usize::from(!r.active && r.enabled);
        assert_eq!(warned, want, "{}: {:?}", r.name, r.inactive_reason);
        assert_eq!(r.active, r.inactive_reason.is_none(), "{}", r.name);
    }
}

fn info<'a>(l: &'a LoadedRules, name: &str) -> &'a driftwatch_rules::RuleInfo {
    let idx = l
        .ruleset
        .find(name)
        .unwrap_or_else(|| panic!("no rule {name:?}"));
    l.ruleset.rule(idx)
}

#[test]
fn rules_on_what_driftwatch_sees_are_active() {
    let l = load(&all_files());
    for name in [
        "Terminal shell in container",
        "Drop and execute new binary in container",
        "Netcat Remote Code Execution in Container",
        "Execution from /dev/shm",
        "Fileless execution via memfd_create",
        "Launch Package Management Process in Container",
        "Write below etc",
        "Write below binary dir",
        "Clear Log Activities",
        "Create Symlink Over Sensitive Files",
    ] {
        let r = info(&l, name);
        assert!(r.active, "{name} should be active: {:?}", r.inactive_reason);
    }
}

#[test]
fn rules_on_what_driftwatch_does_not_trace_are_inactive_with_the_reason() {
    let l = load(&all_files());
    for (name, reason) in [
        (
            "PTRACE attached to process",
            "needs ptrace events, which driftwatch does not trace",
        ),
        (
            "PTRACE anti-debug attempt",
            "needs ptrace events, which driftwatch does not trace",
        ),
        (
            "Non sudo setuid",
            "needs setuid events, which driftwatch does not trace",
        ),
        (
            "Read sensitive file untrusted",
            "needs file reads (evt.is_open_read), which driftwatch does not see",
        ),
    ] {
        let r = info(&l, name);
        assert!(!r.active, "{name} should be inactive");
        assert_eq!(r.inactive_reason.as_deref(), Some(reason), "{name}");
    }
}

#[test]
fn an_inactive_rule_is_never_evaluated() {
    // A read of a sensitive file by an untrusted program would satisfy the rule's condition
    // if it were evaluated; driftwatch never reports reads, so the rule is not evaluated.
    let l = load(&all_files());
    assert!(!info(&l, "Read sensitive file untrusted").active);
    let e = file_event(EventKind::Open, "/etc/shadow", false, "/usr/bin/cat");
    let fired = fired(&l.ruleset, &e);
    assert!(
        !fired.iter().any(|n| n == "Read sensitive file untrusted"),
        "{fired:?}"
    );
}

/// Per file: the rules it defines (loaded alone on top of the defaults), active and inactive,
/// and the inactive ones by reason; with the totals.
fn report() -> (String, usize, usize) {
    let mut out =
        String::from("| file | rules | active | inactive |\n| --- | ---: | ---: | ---: |\n");
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut total, mut total_active) = (0, 0);
    for (file, what) in FILES {
        let l = load(&[file]);
        let rules: Vec<_> = l
            .ruleset
            .rules()
            .filter(|(_, r)| r.source_file == file)
            .map(|(_, r)| r)
            .collect();
        let active = rules.iter().filter(|r| r.active).count();
        total += rules.len();
        total_active += active;
        out.push_str(&format!(
            "| `{file}` ({what}) | {} | {active} | {} |\n",
            rules.len(),
            rules.len() - active
        ));
        for r in rules.iter().filter(|r| !r.active) {
            by_reason
                .entry(r.inactive_reason.clone().unwrap_or_default())
                .or_default()
                .push(format!("{} ({what})", r.name));
        }
    }
    out.push_str(&format!(
        "| all | {total} | {total_active} | {} |\n\nInactive rules by reason:\n\n| reason | rules |\n| --- | --- |\n",
        total - total_active
    ));
    for (reason, mut rules) in by_reason {
        rules.sort();
        out.push_str(&format!(
            "| {} | {} |\n",
            reason.replace('|', "\\|"),
            rules.join(", ").replace('|', "\\|")
        ));
    }
    (out, total, total_active)
}

const START: &str = "<!-- upstream-rules-report: start -->\n";
const END: &str = "<!-- upstream-rules-report: end -->";

#[test]
fn the_report_in_docs_rules_md_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md");
    let doc = std::fs::read_to_string(path).expect("docs/rules.md");
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        panic!("{path} has no {START:?} ... {END:?} section");
    };
    let (table, total, active) = report();
    let want = format!(
        "<!-- Generated by crates/driftwatch-rules/tests/upstream_rules.rs; regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules --test upstream_rules`. -->\n\n{table}"
    );
    // The README's one line about it carries the totals.
    let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(readme_path).expect("README.md");
    let line = format!("{active} of their {total} rules are active here");
    let readme_ok = readme.contains(&line);
    if !readme_ok && std::env::var_os("UPDATE_DOCS").is_some() {
        let (s, e) = (
            readme.find(" of their ").expect("README line"),
            readme.find(" rules are active here").expect("README line"),
        );
        let start = readme[..s]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let new = format!(
            "{}{line}{}",
            &readme[..start],
            &readme[e + " rules are active here".len()..]
        );
        std::fs::write(readme_path, new).expect("write README.md");
    } else {
        assert!(
            readme_ok,
            "README.md should say {line:?}: regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules --test upstream_rules`"
        );
    }
    let have = &doc[s + START.len()..e];
    if have != want && std::env::var_os("UPDATE_DOCS").is_some() {
        let new = format!("{}{START}{want}{}", &doc[..s], &doc[e..]);
        std::fs::write(path, new).expect("write docs/rules.md");
        return;
    }
    assert!(
        have == want,
        "{path}'s upstream report is stale: regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules --test upstream_rules`\n--- have\n{have}\n--- want\n{want}"
    );
}
