//! The engine on small rule files: every operator, the rule-file schema, overrides and
//! appends, exceptions, outputs, and every kind of bad input as a positioned diagnostic.

mod synthetic;

use driftwatch_model::{EventKind, Priority};
use driftwatch_rules::{Diagnostic, Problem, RuleSet, Severity, Source};
use synthetic::*;

fn rule(cond: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: notice\n")
}

/// Loads `text` (as `t.yaml`) on top of the defaults.
fn try_load(text: &str) -> Result<RuleSet, Vec<Diagnostic>> {
    RuleSet::load_with_defaults(&[Source::new("t.yaml", text)]).map(|l| l.ruleset)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match try_load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(ds) => ds
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

/// The single error's `LINE:COL: message`.
fn error(text: &str) -> String {
    let es = errors(text);
    assert_eq!(
        es.len(),
        1,
        "{:#?}",
        es.iter().map(|d| d.render()).collect::<Vec<_>>()
    );
    format!("{}:{}: {}", es[0].line, es[0].col, es[0].message)
}

fn matches_cond(cond: &str, e: &driftwatch_model::Event) -> bool {
    let rs = try_load(&rule(cond)).unwrap_or_else(|ds| panic!("{cond}: {}", ds[0].render()));
    fired(&rs, e).iter().any(|n| n == "r")
}

#[test]
fn every_operator() {
    let mut e = exec("/usr/bin/curl", &["curl", "-s", "http://x"], "bash");
    e.process.ancestors = vec!["bash".into(), "node".into(), "containerd-shim".into()];
    e.process.env.push("HOME=/root".into());
    let yes = [
        "proc.name = curl",
        "proc.name == curl",
        "proc.name != wget",
        "proc.pid < 5000",
        "proc.pid <= 4242",
        "proc.pid > 4000",
        "proc.pid >= 4242",
        "proc.pid = 4242",
        "proc.pid != 1",
        "proc.cmdline contains '-s http'",
        "proc.cmdline icontains 'CURL -S'",
        "proc.exepath startswith /usr/",
        "proc.exepath endswith /curl",
        "proc.exepath glob '/usr/*/c?rl'",
        "proc.exepath iglob '/USR/*'",
        "proc.exepath pmatch (/usr/bin, /opt)",
        "proc.name in (wget, curl)",
        "proc.name intersects (curl)",
        "proc.pid in (1, 4242)",
        "proc.name exists",
        "proc.exepath regex '/usr/bin/c.*'",
        "proc.aname[2] = node",
        "proc.aname[0] = curl",
        "proc.aname = containerd-shim",
        "proc.aname in (node)",
        "proc.aname != node",
        "proc.env[HOME] = /root",
        "proc.env contains 'HOME='",
        "proc.args = '-s http://x'",
        "proc.exe = curl",
        "container.image = nginx:1.27",
        "k8s.ns.name = prod",
        "proc.is_exe_upper_layer = false",
        "proc.is_exe_upper_layer != true",
        "not proc.name = wget",
        "(proc.name = wget or proc.name = curl) and not (proc.pid = 1)",
        "evt.type = execve and evt.dir = <",
        "evt.type != open",
        "evt.time > 0",
        "user.uid = 0 and group.gid = 0 and user.name = root",
    ];
    for c in yes {
        assert!(matches_cond(c, &e), "should match: {c}");
    }
    let no = [
        "proc.name = wget",
        "proc.name != curl",
        "proc.pid < 4242",
        "proc.pid > 4242",
        "proc.cmdline contains nope",
        "proc.cmdline icontains NOPE",
        "proc.exepath startswith /bin",
        "proc.exepath endswith wget",
        "proc.exepath glob '/bin/*'",
        "proc.exepath pmatch (/usr/b)",
        "proc.name in (wget)",
        "proc.exepath regex 'bin/curl'",
        "proc.aname[3] = node",
        "proc.aname[9] exists",
        "not proc.aname = node",
        "proc.env[NOPE] exists",
        "fd.name exists",
        "drift.verdict = added",
        "drift.verdict != added",
        "not proc.name exists",
        "evt.type = open",
    ];
    for c in no {
        assert!(!matches_cond(c, &e), "should not match: {c}");
    }
}

#[test]
fn missing_values_are_false_and_print_na() {
    let e = on_host(exec("/bin/ls", &["ls"], "bash"));
    assert!(matches_cond("container.id = host", &e));
    assert!(!matches_cond("container.id != host", &e));
    assert!(!matches_cond("container.image.repository != nginx", &e));
    assert!(matches_cond("not container.image.repository = nginx", &e));
    let rs = try_load("- rule: r\n  desc: d\n  condition: proc.name = ls\n  output: \"img=%container.image.repository pid=%proc.pid a2=%proc.aname[2] up=%proc.is_exe_upper_layer %% 100%\"\n  priority: info\n").unwrap();
    let a = rs.alert(rs.find("r").unwrap(), &e, "h");
    assert_eq!(
        a.output,
        "08:00:00.123456789: Informational img=<NA> pid=4242 a2=runc:[2:INIT] up=false % 100%"
    );
    assert_eq!(
        a.output_fields["container.image.repository"],
        serde_json::Value::Null
    );
    assert_eq!(a.output_fields["proc.pid"], serde_json::json!(4242));
    assert_eq!(
        a.output_fields["proc.is_exe_upper_layer"],
        serde_json::json!(false)
    );
    assert_eq!(
        a.output_fields["proc.aname[2]"],
        serde_json::json!("runc:[2:INIT]")
    );
    assert_eq!(a.priority, Priority::Informational);
    assert_eq!(a.tags, Vec::<String>::new());
}

/// `%proc.aname`, `%proc.aexepath`, `%proc.aexe`, `%proc.acmdline` and `%proc.apid` without
/// an index print what libsinsp extracts (userspace/libsinsp/sinsp_filtercheck_thread.cpp,
/// `TYPE_ANAME`...): the ancestors' values from the parent up, joined by spaces, and for
/// `proc.apid` the process's own pid (`m_argid == -1 ? 0`). driftwatch knows the parent's
/// argv alone: `proc.aexe` and `proc.acmdline` print the parent's. `output_fields` hold the
/// same strings, as Falco's JSON does.
#[test]
fn ancestor_fields_without_an_index_print_as_falco_does() {
    let mut e = exec("/usr/bin/curl", &["curl", "-s"], "bash");
    e.process.ancestors = vec!["bash".into(), "sshd".into(), "systemd".into()];
    e.process.ancestor_exepaths = vec![
        "/usr/bin/bash".into(),
        "/usr/sbin/sshd".into(),
        "/usr/lib/systemd/systemd".into(),
    ];
    e.process.ancestor_pids = vec![4000, 300, 1];
    e.process.pargv = vec!["-bash".into(), "-l".into()];
    let rs = try_load("- rule: r\n  desc: d\n  condition: proc.name = curl\n  output: \"an=%proc.aname ax=%proc.aexepath ae=%proc.aexe ac=%proc.acmdline ap=%proc.apid\"\n  priority: info\n").unwrap();
    let a = rs.alert(rs.find("r").unwrap(), &e, "h");
    assert_eq!(
        a.message(),
        "an=bash sshd systemd ax=/usr/bin/bash /usr/sbin/sshd /usr/lib/systemd/systemd ae=-bash ac=bash -l ap=4242"
    );
    let f = &a.output_fields;
    assert_eq!(f["proc.aname"], serde_json::json!("bash sshd systemd"));
    assert_eq!(
        f["proc.aexepath"],
        serde_json::json!("/usr/bin/bash /usr/sbin/sshd /usr/lib/systemd/systemd")
    );
    assert_eq!(f["proc.aexe"], serde_json::json!("-bash"));
    assert_eq!(f["proc.acmdline"], serde_json::json!("bash -l"));
    assert_eq!(f["proc.apid"], serde_json::json!(4242));
    // The same fields still test every ancestor in conditions.
    assert!(matches_cond("proc.aname = sshd and proc.apid = 300", &e));

    // No known ancestor: Falco prints <NA> for the lists; the pid is the process's own.
    e.process.ancestors.clear();
    e.process.ancestor_exepaths.clear();
    e.process.ancestor_pids.clear();
    e.process.pargv.clear();
    let a = rs.alert(rs.find("r").unwrap(), &e, "h");
    assert_eq!(a.message(), "an=<NA> ax=<NA> ae=<NA> ac=<NA> ap=4242");
    assert_eq!(a.output_fields["proc.aname"], serde_json::Value::Null);
}

#[test]
fn file_fields() {
    let mut e = file_event(EventKind::Rename, "/etc/cron.d/job", false, "/bin/mv");
    e.file.as_mut().unwrap().old_path = Some("/tmp/job".into());
    assert!(matches_cond(
        "fd.directory = /etc/cron.d and fd.filename = job and fd.typechar = f and fd.oldname = /tmp/job",
        &e
    ));
    assert!(!matches_cond("evt.is_open_write exists", &e));
    let w = file_event(EventKind::Open, "/x", true, "/bin/sh");
    assert!(matches_cond(
        "evt.is_open_write = true and evt.is_open_read = false",
        &w
    ));
}

#[test]
fn lists_nest_and_macros_expand() {
    let rs = try_load(&format!(
        "- list: a\n  items: [curl]\n- list: b\n  items: [a, wget]\n- macro: m\n  condition: proc.name in (b)\n- macro: n\n  condition: m and container\n{}",
        rule("n and spawned_process")
    ))
    .unwrap();
    assert_eq!(fired(&rs, &exec("/usr/bin/curl", &["curl"], "sh")), ["r"]);
    assert_eq!(fired(&rs, &exec("/usr/bin/wget", &["wget"], "sh")), ["r"]);
    assert!(fired(&rs, &exec("/usr/bin/a", &["a"], "sh")).is_empty());
    // A quoted item is a string, never a list reference.
    let rs = try_load(&format!(
        "- list: a\n  items: [curl]\n{}",
        rule("spawned_process and proc.name in ('a')")
    ))
    .unwrap();
    assert_eq!(fired(&rs, &exec("/usr/bin/a", &["a"], "sh")), ["r"]);
}

#[test]
fn later_files_override_and_append() {
    let base = "- list: l\n  items: [a]\n- macro: m\n  condition: proc.name in (l)\n- rule: r\n  desc: d\n  condition: evt.type = execve and m\n  output: first %proc.name\n  priority: warning\n  tags: [one]\n";
    let load2 = |second: &str| {
        RuleSet::load(&[Source::new("a.yaml", base), Source::new("b.yaml", second)])
            .unwrap_or_else(|ds| panic!("{}", ds[0].render()))
            .ruleset
    };
    let a = exec("/bin/a", &["a"], "sh");
    let b = exec("/bin/b", &["b"], "sh");
    // Legacy append on a list and a macro.
    let rs = load2("- list: l\n  items: [b]\n  append: true\n");
    assert_eq!((fired(&rs, &a).len(), fired(&rs, &b).len()), (1, 1));
    let rs = load2("- macro: m\n  condition: or proc.name = b\n  append: true\n");
    assert_eq!(fired(&rs, &b).len(), 1);
    // Override: replace the list, append to the condition, replace priority, append tags.
    let rs = load2("- list: l\n  items: [b]\n  override:\n    items: replace\n");
    assert_eq!((fired(&rs, &a).len(), fired(&rs, &b).len()), (0, 1));
    let rs = load2(
        "- rule: r\n  condition: and proc.pid = 1\n  priority: critical\n  tags: [two]\n  output: second\n  override:\n    condition: append\n    priority: replace\n    tags: append\n    output: replace\n",
    );
    assert!(fired(&rs, &a).is_empty());
    let info = rs.rule(rs.find("r").unwrap());
    assert_eq!(info.priority, Priority::Critical);
    assert_eq!(info.tags, ["one", "two"]);
    assert_eq!(info.source_file, "a.yaml");
    let mut a1 = a.clone();
    a1.process.pid = 1;
    assert_eq!(
        rs.alert(rs.find("r").unwrap(), &a1, "h").output,
        "08:00:00.123456789: Critical second"
    );
    // Legacy rule append; enabling and disabling; full redefinition.
    let rs = load2("- rule: r\n  condition: and proc.pid = 1\n  append: true\n");
    assert!(fired(&rs, &a).is_empty());
    let rs = load2("- rule: r\n  enabled: false\n");
    assert!(fired(&rs, &a).is_empty());
    assert!(!rs.rule(rs.find("r").unwrap()).enabled);
    let rs = load2(
        "- rule: r\n  desc: d2\n  condition: evt.type = execve and proc.name = b\n  output: o\n  priority: debug\n",
    );
    assert_eq!((fired(&rs, &a).len(), fired(&rs, &b).len()), (0, 1));
    assert_eq!(rs.len(), 1);
}

#[test]
fn exceptions_long_and_short_form() {
    let text = "- rule: r\n  desc: d\n  condition: spawned_process\n  output: o\n  priority: notice\n  exceptions:\n    - name: by_proc_and_parent\n      fields: [proc.name, proc.pname]\n      comps: [=, in]\n      values:\n        - [curl, [bash, zsh]]\n    - name: short\n      fields: proc.exepath\n      comps: startswith\n      values: [/opt/]\n    - name: short_in\n      fields: proc.name\n      values: [wget, shell_binaries]\n    - name: empty\n      fields: [proc.name]\n";
    let rs = try_load(text).unwrap();
    let r = |e: &driftwatch_model::Event| fired(&rs, e).iter().any(|n| n == "r");
    assert!(!r(&exec("/usr/bin/curl", &["curl"], "bash")));
    assert!(r(&exec("/usr/bin/curl", &["curl"], "node")));
    assert!(!r(&exec("/opt/app/run", &["run"], "node")));
    assert!(!r(&exec("/usr/bin/wget", &["wget"], "node")));
    assert!(!r(&exec("/bin/dash", &["dash"], "node")));
    assert!(r(&exec("/usr/bin/id", &["id"], "node")));
}

#[test]
fn malformed_yaml_is_positioned() {
    assert_eq!(
        error("- rule: x\n  desc: [a, b\n  output: o\n")
            .split(':')
            .next(),
        Some("3")
    );
    let es = errors("- rule: r\n  desc: d\n  desc: e\n");
    assert!(
        es[0]
            .to_string()
            .starts_with("t.yaml:3:3: invalid YAML: duplicate"),
        "{}",
        es[0]
    );
    assert_eq!(
        error("rule: x\n"),
        "1:1: a rules file must be a list of items (`- rule: ...`, `- macro: ...`, `- list: ...`), not a mapping"
    );
    assert_eq!(
        error("- just a string\n"),
        "1:3: each item must be a mapping, not a string"
    );
    assert!(error("- rulez: x\n").starts_with("1:3: unknown item"));
}

#[test]
fn unknown_keys_are_errors_and_all_are_reported() {
    let text = "- rule: r\n  desc: d\n  condition: spawned_process\n  output: o\n  priority: notice\n  severity: high\n  enable: false\n- macro: m\n  condition: container\n  extra: 1\n- list: l\n  items: []\n  itmes: [a]\n";
    let es = errors(text);
    let got: Vec<String> = es.iter().map(|d| format!("{}:{}", d.line, d.col)).collect();
    assert_eq!(got, ["6:3", "7:3", "10:3", "13:3"], "{es:#?}");
    assert!(es[0].to_string().contains("unknown key `severity` in rule"));
    assert!(es.iter().all(|d| matches!(d.message, Problem::Schema(_))));
}

#[test]
fn schema_errors() {
    assert_eq!(
        error("- rule: r\n  desc: d\n  output: o\n  priority: notice\n"),
        "1:3: rule `r` is missing required key `condition`"
    );
    assert!(
        error(&rule("spawned_process").replace("notice", "loud"))
            .starts_with("5:13: unknown priority \"loud\"")
    );
    assert_eq!(
        error("- rule: nope\n  condition: and x\n  append: true\n"),
        "1:3: rule `nope` is appended to or overridden, but no earlier file defines it"
    );
    assert_eq!(
        error("- list: l\n  items: a\n"),
        "2:10: `items` must be a list, not a string"
    );
    assert!(
        error(&format!("{}  enabled: maybe\n", rule("spawned_process")))
            .starts_with("6:12: `enabled` must be true or false")
    );
    assert!(
        error("- list: shell_binaries\n  items: [fish]\n  override:\n    items: prepend\n")
            .starts_with("4:12: `items` cannot be overridden with `prepend`")
    );
    assert!(
        error("- rule: Terminal shell in container\n  override:\n    condition: append\n")
            .contains("`override` names `condition` but the item does not give it")
    );
    assert!(error("- rule: Terminal shell in container\n  priority: debug\n  tags: [x]\n  override:\n    priority: replace\n").starts_with("3:3: key `tags` is given but not listed under `override`"));
    assert!(
        error("- required_engine_version: 9.0.0\n")
            .starts_with("1:28: these rules require engine version 9.0.0")
    );
    assert!(try_load("- required_engine_version: 0.26.0\n- required_engine_version: 12\n").is_ok());
}

#[test]
fn condition_errors_point_into_the_file() {
    // Folded scalar: the unknown field is on line 5, column 9.
    let text = "- rule: r\n  desc: d\n  condition: >\n    spawned_process and\n    not proc.nmae = x\n  output: o\n  priority: notice\n";
    assert_eq!(
        error(text),
        "5:9: unknown field `proc.nmae`; did you mean `proc.name`?"
    );
    assert_eq!(
        error(&rule("spawned_process and nosuchmacro")),
        "3:34: unknown macro `nosuchmacro`"
    );
    assert_eq!(
        error(&rule("shell_binaries")),
        "3:14: unknown macro `shell_binaries` (it is a list: use it inside parentheses, e.g. `proc.name in (NAME)`)"
    );
    assert_eq!(
        error(&rule("\"(spawned_process and (proc.name = a)\"")),
        "3:15: unbalanced parentheses: this `(` is never closed"
    );
    assert_eq!(
        error(&rule("spawned_process)")),
        "3:29: unbalanced parentheses: `)` without a matching `(`"
    );
    assert!(
        error(&rule("proc.pid contains 1"))
            .starts_with("3:23: operator `contains` cannot be used on number field `proc.pid`")
    );
    assert_eq!(
        error(&rule("proc.pid = abc")),
        "3:25: `abc` is not a number, and `proc.pid` is a number field"
    );
    assert!(
        error(&rule("proc.name < b"))
            .starts_with("3:24: operator `<` cannot be used on string field")
    );
    assert_eq!(
        error(&rule("proc.is_exe_writable = yes")),
        "3:37: `yes` is not true or false, and `proc.is_exe_writable` is a bool field"
    );
    assert_eq!(
        error(&rule("proc.name = (a, b)")),
        "3:26: operator `=` needs a value"
    );
    assert!(error(&rule("proc.name regex '('")).starts_with("3:30: invalid regex \"(\""));
    assert!(error(&rule("proc.name glob '[a'")).starts_with("3:29: invalid glob"));
    assert_eq!(
        error(&rule("proc.name[1] = a")),
        "3:14: field `proc.name` takes no argument"
    );
    assert_eq!(
        error(&rule("proc.aname[x] = a")),
        "3:14: field `proc.aname` takes a number as argument, not `x`"
    );
    assert_eq!(error(&rule("proc.name = 'a")), "3:26: unterminated string");
}

#[test]
fn recursive_macros_and_lists() {
    let es = errors("- macro: a\n  condition: b\n- macro: b\n  condition: a and container\n");
    assert_eq!(es.len(), 1, "{es:#?}");
    assert_eq!(
        es[0].to_string(),
        "t.yaml:4:14: macro `a` is recursive: a -> b -> a"
    );
    let es = errors("- macro: a\n  condition: a\n");
    assert_eq!(
        es[0].to_string(),
        "t.yaml:2:14: macro `a` is recursive: a -> a"
    );
    let es = errors(&format!(
        "- list: x\n  items: [y]\n- list: y\n  items: [x]\n{}",
        rule("proc.name in (x)")
    ));
    assert!(
        es[0]
            .to_string()
            .contains("list `x` is recursive: x -> y -> x"),
        "{}",
        es[0]
    );
}

#[test]
fn exception_errors() {
    let base = "- rule: r\n  desc: d\n  condition: spawned_process\n  output: o\n  priority: notice\n  exceptions:\n";
    assert!(error(&format!("{base}    - name: e\n      fields: [proc.name, proc.pname]\n      values:\n        - [a]\n")).starts_with("10:11: exception value has 1 entries but `fields` names 2"));
    assert!(
        error(&format!(
            "{base}    - name: e\n      fields: [proc.nam]\n      values:\n        - [a]\n"
        ))
        .starts_with("8:16: unknown field `proc.nam`")
    );
    assert!(error(&format!("{base}    - name: e\n      fields: [proc.name]\n      comps: [like]\n      values:\n        - [a]\n")).starts_with("9:15: unknown comparison operator `like`"));
    assert!(
        error(&format!("{base}    - name: e\n      values: [a]\n"))
            .starts_with("7:13: exception `e` has no `fields`")
    );
    assert!(
        error(&format!(
            "{base}    - name: e\n      fields: [proc.pid]\n      values:\n        - [abc]\n"
        ))
        .starts_with("10:12: `abc` is not a number")
    );
    assert!(
        error(&format!("{base}    - fields: [proc.name]\n"))
            .starts_with("7:7: an exception needs a `name`")
    );
    let es = errors(&format!("{base}    - name: e\n      field: [proc.name]\n"));
    assert!(
        es[0]
            .to_string()
            .starts_with("t.yaml:8:7: unknown key `field` in exception"),
        "{}",
        es[0]
    );
}

#[test]
fn output_errors() {
    let text = "- rule: r\n  desc: d\n  condition: spawned_process\n  output: >\n    a=%proc.name\n    b=%proc.nope\n  priority: notice\n";
    assert_eq!(
        error(text),
        "6:7: unknown field `proc.nope`; did you mean `proc.name`?"
    );
}

#[test]
fn warnings_do_not_fail() {
    let loaded = RuleSet::load_with_defaults(&[Source::new(
        "w.yaml",
        "- rule: every\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: info\n\
         - rule: audit\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: info\n  source: k8s_audit\n\
         - rule: unknown\n  desc: d\n  condition: spawned_process and proc.no_such_field = x\n  output: o\n  priority: info\n  skip-if-unknown-filter: true\n\
         - rule: never\n  desc: d\n  condition: evt.type = ptrace\n  output: o\n  priority: info\n\
         - rule: quiet\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: info\n  warn_evttypes: false\n",
    )])
    .unwrap();
    let w: Vec<String> = loaded.warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 4, "{w:#?}");
    assert!(w[0].starts_with("w.yaml:1:9: rule \"every\" does not restrict evt.type"));
    assert!(w[1].contains("source \"k8s_audit\""));
    assert!(w[2].contains("skipped because of `skip-if-unknown-filter: true`"));
    assert!(w[3].contains(
        "rule \"never\" is inactive: it needs ptrace events, which driftwatch does not trace"
    ));
    assert!(
        loaded
            .warnings
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
    assert!(loaded.ruleset.find("audit").is_none() && loaded.ruleset.find("unknown").is_none());
    assert!(loaded.ruleset.find("quiet").is_some());
}

#[test]
fn errors_in_several_files_are_all_collected() {
    let ds = RuleSet::load_with_defaults(&[
        Source::new(
            "a.yaml",
            "- rule: a\n  desc: d\n  condition: proc.nme = x\n  output: o\n  priority: info\n",
        ),
        Source::new("b.yaml", "- list: [\n"),
        Source::new("c.yaml", "- macro: m\n  condition: (proc.name = x\n"),
    ])
    .err()
    .unwrap();
    let files: Vec<&str> = ds
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.as_str())
        .collect();
    assert_eq!(files, ["b.yaml", "c.yaml", "a.yaml"]);
    let r = ds.iter().find(|d| d.file == "c.yaml").unwrap().render();
    assert_eq!(
        r,
        "c.yaml:2:14: error: unbalanced parentheses: this `(` is never closed\n2 |   condition: (proc.name = x\n  |              ^"
    );
}

#[test]
fn huge_inputs_are_refused_not_crashed() {
    let big = format!("# {}\n", "x".repeat(driftwatch_rules::MAX_FILE_BYTES));
    assert!(error(&big).contains("more than"));
    let deep = format!(
        "- macro: m\n  condition: {}a{}\n",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    assert!(error(&deep).contains("nest deeper"));
    // Macro bombs: each level doubles the tree.
    let mut text = String::from("- macro: m0\n  condition: proc.name = a\n");
    for i in 1..40 {
        text.push_str(&format!(
            "- macro: m{i}\n  condition: (m{p} and proc.pid > {i}) or (m{p} and proc.pid < {i})\n",
            p = i - 1
        ));
    }
    let es = errors(&text);
    assert!(
        es.iter()
            .any(|d| d.to_string().contains("condition is too large")),
        "{es:#?}"
    );
    // Many rules load fine.
    let many: String = (0..2000)
        .map(|i| rule("spawned_process").replace("rule: r", &format!("rule: r{i}")))
        .collect();
    assert_eq!(try_load(&many).unwrap().len(), 2000 + defaults().len());
}

#[test]
fn matching_does_not_allocate_per_event_once_warm() {
    // Indirect check: the output vector keeps its buffer and is cleared between events.
    let rs = defaults();
    let mut out = Vec::with_capacity(8);
    let e = exec("/bin/sh", &["sh"], "node");
    rs.matches(&e, &mut out);
    let cap = out.capacity();
    rs.matches(
        &exec("/usr/sbin/nginx", &["nginx"], "containerd-shim"),
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(out.capacity(), cap);
}

/// Falco's pod-label fields (libsinsp's `k8s.pod.label` with a required key in brackets or
/// after a dot, `k8s.pod.labels` as `key:value, ...`), in conditions and in alerts.
#[test]
fn pod_labels_in_conditions_and_alerts() {
    let e = exec("/usr/bin/curl", &["curl"], "bash");
    for c in [
        "k8s.pod.label[tier] = frontend",
        "k8s.pod.label[app.kubernetes.io/name] = web",
        "k8s.pod.label.tier = frontend",
        "k8s.pod.label[tier] in (frontend, backend)",
        "k8s.pod.labels contains 'tier:frontend'",
    ] {
        assert!(matches_cond(c, &e), "should match: {c}");
    }
    for c in [
        "k8s.pod.label[nope] exists",
        "k8s.pod.label[tier] = backend",
    ] {
        assert!(!matches_cond(c, &e), "should not match: {c}");
    }
    let rs = try_load("- rule: r\n  desc: d\n  condition: proc.name = curl\n  output: \"pod=%k8s.pod.name tier=%k8s.pod.label[tier] all=%k8s.pod.labels\"\n  priority: info\n").unwrap();
    let a = rs.alert(rs.find("r").unwrap(), &e, "h");
    assert_eq!(
        a.output,
        "08:00:00.123456789: Informational pod=web-0 tier=frontend all=app.kubernetes.io/name:web, tier:frontend"
    );
    assert_eq!(
        a.output_fields["k8s.pod.label[tier]"],
        serde_json::json!("frontend")
    );
    // Outside a pod: missing, like the other k8s fields.
    let host = on_host(exec("/bin/ls", &["ls"], "bash"));
    assert!(!matches_cond("k8s.pod.label[tier] exists", &host));
    assert!(matches_cond("not k8s.pod.labels exists", &host));
    // Falco requires the key.
    assert_eq!(
        error(&rule("k8s.pod.label = x")),
        "3:14: field `k8s.pod.label` needs an argument: `k8s.pod.label[NAME]`"
    );
}

#[test]
fn an_alert_about_a_pod_names_the_pod_whatever_the_output_prints() {
    let rs = load(
        "- rule: quiet\n  desc: d\n  condition: proc.name = xmrig\n  output: ran %proc.name\n  priority: notice\n",
    );
    let in_pod = exec("/tmp/xmrig", &["xmrig"], "sh");
    let a = rs
        .evaluate(&in_pod, "node-1")
        .into_iter()
        .find(|a| a.rule == "quiet")
        .expect("fires");
    assert_eq!(
        a.output, "08:00:00.123456789: Notice ran xmrig",
        "the text is the rule's"
    );
    for (k, v) in [
        ("proc.name", "xmrig"),
        ("k8s.ns.name", "prod"),
        ("k8s.pod.name", "web-0"),
        ("k8s.pod.uid", "uid-1"),
        (
            "k8s.pod.labels",
            "app.kubernetes.io/name:web, tier:frontend",
        ),
    ] {
        assert_eq!(a.output_fields[k], v, "{k}: {:?}", a.output_fields);
    }
    // Outside a pod: only what the output names, and Falco's `evt.time`.
    let mut plain = exec("/tmp/xmrig", &["xmrig"], "sh");
    let mut meta = (*plain.container.clone().unwrap()).clone();
    meta.k8s = None;
    plain.container = Some(std::sync::Arc::new(meta));
    let a = rs
        .evaluate(&plain, "node-1")
        .into_iter()
        .find(|a| a.rule == "quiet")
        .expect("fires");
    assert_eq!(
        a.output_fields.keys().collect::<Vec<_>>(),
        ["evt.time", "proc.name"]
    );
}
