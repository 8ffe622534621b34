//! Falco's loader semantics that upstream rule files and users' tuning files rely on, checked
//! against Falco's `rule_loader_reader.cpp`: version items in both forms, plugin requirements,
//! redefinition, and every `override` key.

mod synthetic;

use driftwatch_rules::{RuleSet, Severity, Source};
use synthetic::*;

const BASE: &str = "- list: l\n  items: [a]\n- macro: m\n  condition: proc.name in (l)\n- rule: r\n  desc: d\n  condition: evt.type = execve and m\n  output: first %proc.name\n  priority: warning\n  tags: [one]\n  exceptions:\n    - name: by_parent\n      fields: [proc.pname]\n      values: [[init]]\n";

fn load2(second: &str) -> RuleSet {
    RuleSet::load(&[Source::new("a.yaml", BASE), Source::new("b.yaml", second)])
        .unwrap_or_else(|ds| panic!("{}", ds[0].render()))
        .ruleset
}

fn fires(rs: &RuleSet, name: &str, parent: &str) -> bool {
    fired(rs, &exec(&format!("/bin/{name}"), &[name], parent)).contains(&"r".to_string())
}

#[test]
fn required_engine_version_in_both_forms() {
    for ok in [
        "- required_engine_version: 2\n",
        "- required_engine_version: 0.57.0\n",
        "- required_engine_version: '0.31'\n",
    ] {
        RuleSet::load(&[Source::new("v.yaml", ok)]).unwrap_or_else(|ds| panic!("{ok}: {ds:?}"));
    }
    let ds = RuleSet::load(&[Source::new("v.yaml", "- required_engine_version: 0.58.0\n")])
        .err()
        .expect("too new");
    assert_eq!(
        ds[0].to_string(),
        "v.yaml:1:28: these rules require engine version 0.58.0, this engine is 0.57.0"
    );
}

#[test]
fn required_plugin_versions_load_with_a_warning() {
    let text = "- required_plugin_versions:\n    - name: container\n      version: 0.4.0\n      alternatives:\n        - name: k8smeta\n          version: 0.1.0\n";
    let loaded = RuleSet::load(&[Source::new("p.yaml", text)]).expect("loads");
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].severity, Severity::Warning);
    assert!(
        loaded.warnings[0]
            .to_string()
            .starts_with("p.yaml:1:3: key \"required_plugin_versions\""),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn a_redefinition_replaces_the_list_macro_or_rule() {
    let rs = load2("- list: l\n  items: [b]\n");
    assert!(!fires(&rs, "a", "sh") && fires(&rs, "b", "sh"));
    let rs = load2("- macro: m\n  condition: proc.name = c\n");
    assert!(!fires(&rs, "a", "sh") && fires(&rs, "c", "sh"));
    let rs = load2(
        "- rule: r\n  desc: d\n  condition: evt.type = execve and proc.name = d\n  output: o\n  priority: info\n",
    );
    assert!(!fires(&rs, "a", "sh") && fires(&rs, "d", "sh"));
    // The redefinition has no exceptions: the old one is gone with it.
    assert!(fires(&rs, "d", "init"));
}

#[test]
fn every_override_key_appends_or_replaces() {
    let rs = load2(
        "- rule: r\n  desc: more\n  output: '(again)'\n  tags: [two]\n  condition: or proc.name = z\n  override:\n    desc: append\n    output: append\n    tags: append\n    condition: append\n",
    );
    let info = rs.rule(rs.find("r").unwrap());
    assert_eq!(info.desc, "d more");
    assert_eq!(info.tags, ["one", "two"]);
    assert!(fires(&rs, "z", "sh"));
    let a = exec("/bin/a", &["a"], "sh");
    assert_eq!(
        rs.alert(rs.find("r").unwrap(), &a, "h").output,
        "08:00:00.123456789: Warning first a (again)"
    );

    let rs = load2(
        "- rule: r\n  desc: new\n  output: second\n  tags: [two]\n  condition: evt.type = execve and proc.name = y\n  priority: critical\n  enabled: false\n  warn_evttypes: false\n  skip-if-unknown-filter: true\n  override:\n    desc: replace\n    output: replace\n    tags: replace\n    condition: replace\n    priority: replace\n    enabled: replace\n    warn_evttypes: replace\n    skip-if-unknown-filter: replace\n",
    );
    let info = rs.rule(rs.find("r").unwrap());
    assert_eq!(
        (info.desc.as_str(), info.tags.as_slice(), info.enabled),
        ("new", &["two".to_string()][..], false)
    );
    assert_eq!(info.priority, driftwatch_model::Priority::Critical);

    // Exceptions: appending to an existing exception by name adds values; a new one is added.
    let rs = load2(
        "- rule: r\n  exceptions:\n    - name: by_parent\n      values: [[bash]]\n    - name: by_name\n      fields: proc.name\n      values: [a]\n  override:\n    exceptions: append\n",
    );
    assert!(!fires(&rs, "a", "sh"), "by_name");
    let rs = load2(
        "- list: l\n  items: [b]\n  override:\n    items: append\n- rule: r\n  exceptions:\n    - name: by_parent\n      values: [[bash]]\n  override:\n    exceptions: append\n",
    );
    assert!(!fires(&rs, "b", "init") && !fires(&rs, "b", "bash") && fires(&rs, "b", "sh"));
    // Replacing exceptions drops the old ones.
    let rs = load2(
        "- rule: r\n  exceptions:\n    - name: other\n      fields: proc.pname\n      values: [zsh]\n  override:\n    exceptions: replace\n",
    );
    assert!(fires(&rs, "a", "init") && !fires(&rs, "a", "zsh"));
    // A macro's condition appended and replaced.
    let rs =
        load2("- macro: m\n  condition: or proc.name = q\n  override:\n    condition: append\n");
    assert!(fires(&rs, "a", "sh") && fires(&rs, "q", "sh"));
    let rs = load2("- macro: m\n  condition: proc.name = q\n  override:\n    condition: replace\n");
    assert!(!fires(&rs, "a", "sh") && fires(&rs, "q", "sh"));
}

#[test]
fn exceptions_with_comps_and_values_as_falco_writes_them() {
    let rs = load2(
        "- rule: r\n  exceptions:\n    - name: pairs\n      fields: [proc.name, proc.pname]\n      comps: [=, startswith]\n      values:\n        - [a, syst]\n        - [a, cron]\n  override:\n    exceptions: append\n",
    );
    assert!(!fires(&rs, "a", "systemd") && !fires(&rs, "a", "crond"));
    assert!(fires(&rs, "a", "sh"));
}
