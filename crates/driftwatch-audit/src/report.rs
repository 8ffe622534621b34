//! A [`Report`] printed: a table grouped by workload, JSON, or SARIF 2.1.0 for code scanning.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::{Finding, FindingSeverity, Report, Rule};

/// The table: findings grouped by file, document and object, then by container; the fix of
/// each rule once per group; errors; a summary of what was skipped and counted.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut groups: Vec<(&Finding, Vec<&Finding>)> = Vec::new();
    for f in &r.findings {
        let key = |g: &Finding| {
            (
                g.location.file.clone(),
                g.location.document,
                g.object.clone(),
            )
        };
        match groups.iter_mut().find(|(first, _)| key(first) == key(f)) {
            Some((_, v)) => v.push(f),
            None => groups.push((f, vec![f])),
        }
    }
    for (first, findings) in &groups {
        let source = first
            .location
            .source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} document {}{source}: {}",
            first.location.file, first.location.document, first.object
        );
        let mut containers: Vec<Option<&str>> = Vec::new();
        for f in findings {
            if !containers.contains(&f.container.as_deref()) {
                containers.push(f.container.as_deref());
            }
        }
        for c in containers {
            let indent = match c {
                Some(name) => {
                    let _ = writeln!(out, "  container {name}");
                    "    "
                }
                None => "  ",
            };
            for f in findings.iter().filter(|f| f.container.as_deref() == c) {
                let _ = writeln!(
                    out,
                    "{indent}{:<7} {} {}:{}  {}",
                    f.severity.as_str(),
                    f.rule.id(),
                    f.location.line,
                    f.location.column,
                    f.location.path
                );
                let _ = writeln!(out, "{indent}        {}", f.message);
            }
        }
        let mut rules: Vec<Rule> = findings.iter().map(|f| f.rule).collect();
        rules.sort();
        rules.dedup();
        for rule in rules {
            let _ = writeln!(out, "  fix {}:", rule.id());
            for line in rule.fix().lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
        out.push('\n');
    }
    for e in &r.errors {
        let _ = writeln!(out, "error: {e}");
    }
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &r.notes {
        *skipped.entry(&n.kind).or_default() += 1;
    }
    if !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        let _ = writeln!(out, "not audited (no pods): {}", list.join(", "));
    }
    let _ = writeln!(
        out,
        "{} files, {} documents, {} workloads: {} errors, {} warnings, {} info{}",
        r.files,
        r.documents,
        r.workloads,
        r.count(FindingSeverity::Error),
        r.count(FindingSeverity::Warning),
        r.count(FindingSeverity::Info),
        if r.errors.is_empty() {
            String::new()
        } else {
            format!("; {} inputs could not be audited", r.errors.len())
        }
    );
    out
}

/// The JSON form: the [`Report`] plus a `summary` of counts and `version: 1`.
pub fn json(r: &Report) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("version".into(), json!(1));
        o.insert(
            "summary".into(),
            json!({
                "error": r.count(FindingSeverity::Error),
                "warning": r.count(FindingSeverity::Warning),
                "info": r.count(FindingSeverity::Info),
                "input_errors": r.errors.len(),
            }),
        );
    }
    v
}

fn uri(file: &str) -> String {
    let f = file.strip_prefix("./").unwrap_or(file);
    f.chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// SARIF 2.1.0: one run, every rule in `tool.driver.rules`, one result per finding with a
/// physical location (file, line, column) and the YAML path as a logical location; input
/// errors are tool execution notifications.
pub fn sarif(r: &Report) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.name(),
                "shortDescription": {"text": rule.title()},
                "fullDescription": {"text": rule.why()},
                "help": {"text": format!("{}\n\nFix:\n{}", rule.why(), rule.fix())},
                "defaultConfiguration": {"level": rule.severity().sarif_level()},
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let rule_index = Rule::ALL.iter().position(|x| *x == f.rule).unwrap_or(0);
            let container = f
                .container
                .as_deref()
                .map(|c| format!(" container {c}:"))
                .unwrap_or_default();
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": rule_index,
                "level": f.severity.sarif_level(),
                "message": {"text": format!("{} document {}: {}:{container} {}. Fix:\n{}",
                    f.location.file, f.location.document, f.object, f.message, f.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.location.file)},
                        "region": {"startLine": f.location.line, "startColumn": f.location.column},
                    },
                    "logicalLocations": [{
                        "fullyQualifiedName": format!("document {}/{}", f.location.document, f.location.path),
                        "kind": "member",
                    }],
                }],
                "properties": {
                    "document": f.location.document,
                    "path": f.location.path,
                    "object": f.object,
                    "container": f.container,
                    "fix": f.fix,
                },
            })
        })
        .collect();
    let notifications: Vec<Value> = r
        .errors
        .iter()
        .map(|e| {
            let mut n = json!({
                "level": "error",
                "message": {"text": e.to_string()},
            });
            let mut physical = json!({"artifactLocation": {"uri": uri(&e.file)}});
            if let (Some(l), Some(c)) = (e.line, e.column) {
                physical["region"] = json!({"startLine": l, "startColumn": c});
            }
            n["locations"] = json!([{ "physicalLocation": physical }]);
            n
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "driftwatch",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/driftwatch",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": r.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}
