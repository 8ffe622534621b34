//! Falco's `append_output` on loaded rules: which rules an entry matches (source, tags, rule),
//! `extra_output` in the text, `extra_fields` in `output_fields` only, `suggested_output` as
//! Falco 0.41+ appends its container plugin's fields, and positioned errors for bad formats.

mod synthetic;

use driftwatch_rules::{
    AppendOutput, ExtraField, RuleSet, SUGGESTED_OUTPUT, Source, check_output_format,
};
use serde_json::json;
use synthetic::*;

const RULES: &str = "\
- rule: Shell in container
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: Shell (user=%user.name)
  priority: notice
  tags: [container, shell]
- rule: Shell seen
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: Seen %proc.name
  priority: info
  tags: [shell]
- rule: Shell with its container
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: Shell in %container.name (container_id=%container.id)
  priority: info
";

fn messages(append: &[AppendOutput]) -> Vec<(String, driftwatch_model::Alert)> {
    let loaded = RuleSet::load_appending(&[Source::new("t.yaml", RULES)], append)
        .unwrap_or_else(|ds| panic!("{}", ds[0].render()));
    let rs = loaded.ruleset;
    let e = exec("/bin/sh", &["sh"], "bash");
    rs.evaluate(&e, "h")
        .into_iter()
        .map(|a| (a.message().to_string(), a))
        .collect()
}

fn text_of(all: &[(String, driftwatch_model::Alert)], rule: &str) -> String {
    all.iter()
        .find(|(_, a)| a.rule == rule)
        .map(|(m, _)| m.clone())
        .unwrap_or_else(|| panic!("no alert of {rule}"))
}

#[test]
fn extra_output_goes_to_the_rules_an_entry_matches() {
    let all = messages(&[
        AppendOutput {
            extra_output: "on %proc.pid".into(),
            ..Default::default()
        },
        AppendOutput {
            source: Some("syscall".into()),
            tags: vec!["container".into(), "shell".into()],
            extra_output: "tagged".into(),
            ..Default::default()
        },
        AppendOutput {
            rule: Some("Shell seen".into()),
            extra_output: "named".into(),
            ..Default::default()
        },
        // Another source, or a tag the rule lacks: nothing.
        AppendOutput {
            source: Some("k8s_audit".into()),
            extra_output: "audit".into(),
            ..Default::default()
        },
        AppendOutput {
            tags: vec!["shell".into(), "network".into()],
            extra_output: "network".into(),
            ..Default::default()
        },
    ]);
    assert_eq!(
        text_of(&all, "Shell in container"),
        "Shell (user=root) on 4242 tagged"
    );
    assert_eq!(text_of(&all, "Shell seen"), "Seen sh on 4242 named");
    assert_eq!(
        text_of(&all, "Shell with its container"),
        "Shell in web (container_id=3f4a5b6c7d8e) on 4242"
    );
    // The appended fields are output fields, as every field of Falco's output format.
    let (_, a) = all.iter().find(|(_, a)| a.rule == "Shell seen").unwrap();
    assert_eq!(a.output_fields["proc.pid"], json!(4242));
    assert!(a.output.ends_with(": Informational Seen sh on 4242 named"));
}

#[test]
fn extra_fields_are_output_fields_only() {
    let all = messages(&[AppendOutput {
        rule: Some("Shell seen".into()),
        extra_fields: vec![
            ExtraField::Formatted {
                name: "home_directory".into(),
                format: "/home/%user.name".into(),
            },
            ExtraField::Field("proc.pid".into()),
            ExtraField::Field("proc.aname[2]".into()),
        ],
        ..Default::default()
    }]);
    let (text, a) = all.iter().find(|(_, a)| a.rule == "Shell seen").unwrap();
    assert_eq!(text, "Seen sh");
    // A format is a string; a field keeps its type, as in Falco's JSON.
    assert_eq!(a.output_fields["home_directory"], json!("/home/root"));
    assert_eq!(a.output_fields["proc.pid"], json!(4242));
    assert_eq!(a.output_fields["proc.aname[2]"], json!("runc:[2:INIT]"));
    let (_, other) = all
        .iter()
        .find(|(_, a)| a.rule == "Shell in container")
        .unwrap();
    assert!(!other.output_fields.contains_key("home_directory"));
}

/// Falco 0.41+'s default (`append_output: [{suggested_output: true}]`) appends its container
/// plugin's suggested fields to every syscall rule; driftwatch does so to the rules that do not
/// print the container's id and name already.
#[test]
fn suggested_output_appends_the_container_plugins_fields_as_falco_does() {
    let all = messages(&AppendOutput::falco_default());
    assert_eq!(
        text_of(&all, "Shell seen"),
        "Seen sh container_id=3f4a5b6c7d8e container_name=web container_image_repository=nginx container_image_tag=1.27 k8s_pod_name=web-0 k8s_ns_name=prod"
    );
    assert_eq!(
        text_of(&all, "Shell with its container"),
        "Shell in web (container_id=3f4a5b6c7d8e)"
    );
    let (_, a) = all.iter().find(|(_, a)| a.rule == "Shell seen").unwrap();
    for f in [
        "container.id",
        "container.name",
        "container.image.repository",
        "container.image.tag",
        "k8s.pod.name",
        "k8s.ns.name",
    ] {
        assert!(
            a.output_fields.contains_key(f),
            "{f}: {:?}",
            a.output_fields
        );
        assert!(SUGGESTED_OUTPUT.contains(&format!("={}", '%'.to_string() + f)));
    }
    // Without the entry, nothing is appended (the rules crate's own default).
    let plain = messages(&[]);
    assert_eq!(text_of(&plain, "Shell seen"), "Seen sh");
}

/// The default rules print the container's id and name: Falco's default leaves them as
/// they are; Falco's own rules (which print neither) get the six fields.
#[test]
fn the_default_rules_keep_their_outputs_under_falcos_default() {
    let plain = RuleSet::load_with_defaults(&[]).unwrap().ruleset;
    let appended = RuleSet::load_with_defaults_appending(&[], &AppendOutput::falco_default())
        .unwrap()
        .ruleset;
    let e = exec("/usr/bin/apt-get", &["apt-get", "install", "x"], "bash");
    let a: Vec<String> = plain
        .evaluate(&e, "h")
        .into_iter()
        .map(|a| a.output)
        .collect();
    let b: Vec<String> = appended
        .evaluate(&e, "h")
        .into_iter()
        .map(|a| a.output)
        .collect();
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn bad_formats_are_errors_naming_the_entry() {
    let errs = match RuleSet::load_appending(
        &[Source::new("t.yaml", RULES)],
        &[AppendOutput {
            extra_output: "on CPU %evt.cpux".into(),
            extra_fields: vec![ExtraField::Field("not a field".into())],
            ..Default::default()
        }],
    ) {
        Ok(_) => panic!("loaded with an unknown field"),
        Err(ds) => ds,
    };
    let rendered: Vec<String> = errs
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.col, d.message))
        .collect();
    assert!(
        rendered
            .iter()
            .any(|r| r.starts_with("append_output[0].extra_output:1:8: ") && r.contains("evt.cpux")),
        "{rendered:#?}"
    );
    assert!(
        rendered
            .iter()
            .any(|r| r.starts_with("append_output[0].extra_fields[0]:1:1: ")
                && r.contains("not a field")),
        "{rendered:#?}"
    );
    // The configuration checks the same way when it loads.
    assert!(check_output_format("x", "on CPU %evt.cpu", false).is_empty());
    assert_eq!(check_output_format("x", "%evt.cpux", false).len(), 1);
    assert!(check_output_format("x", "proc.aname[2]", true).is_empty());
    assert_eq!(check_output_format("x", "proc.nope", true).len(), 1);
}
