//! Falco's current condition language (libsinsp's filter parser): transformers, `val()`,
//! byte operators, list names without parentheses and quoted field arguments, evaluated on
//! synthetic events.

mod synthetic;

use driftwatch_rules::{Diagnostic, RuleSet, Severity, Source};
use synthetic::*;

fn rule(cond: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: notice\n")
}

fn try_load(text: &str) -> Result<RuleSet, Vec<Diagnostic>> {
    RuleSet::load_with_defaults(&[Source::new("t.yaml", text)]).map(|l| l.ruleset)
}

fn matches_cond(cond: &str, e: &driftwatch_model::Event) -> bool {
    let rs = try_load(&rule(cond)).unwrap_or_else(|ds| panic!("{cond}: {}", ds[0].render()));
    fired(&rs, e).iter().any(|n| n == "r")
}

/// The first error's `LINE:COL: message`.
fn error(cond: &str) -> String {
    let ds = match try_load(&rule(cond)) {
        Ok(_) => panic!("expected an error for {cond}"),
        Err(ds) => ds,
    };
    let d = ds
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error");
    format!("{}:{}: {}", d.line, d.col, d.message)
}

#[test]
fn transformers_on_the_left_nested_as_falco_allows() {
    let mut e = exec("/usr/bin/CuRl", &["CuRl", "-s", "http://x"], "bash");
    e.process.env.push("TOKEN=aGVsbG8gd29ybGQ=".into());
    e.process.ancestors = vec!["bash".into(), "node".into()];
    let yes = [
        "tolower(proc.name) = curl",
        "toupper(proc.name) = CURL",
        "tolower(proc.exepath) endswith /curl",
        "basename(proc.exepath) = CuRl",
        "tolower(basename(proc.exepath)) = curl",
        "toupper( tolower(proc.name) ) in (CURL, WGET)",
        "len(proc.name) = 4",
        "len(proc.exepath) > 10",
        "len(proc.aname) = 4",
        "b64(proc.env[TOKEN]) = 'hello world'",
        "b64(proc.env[TOKEN]) startswith hello",
        "tolower(proc.aname) = node",
        "not tolower(proc.name) = wget",
        "tolower(proc.name) != wget",
        "tolower(proc.name) exists",
    ];
    for c in yes {
        assert!(matches_cond(c, &e), "should match: {c}");
    }
    let no = [
        "tolower(proc.name) = CuRl",
        "len(proc.name) = 5",
        "b64(proc.env[NOPE]) exists",
        "b64(proc.name) = x",
        "tolower(proc.name) != curl",
        "tolower(proc.aname) = zsh",
        "len(proc.aname) = 2",
    ];
    for c in no {
        assert!(!matches_cond(c, &e), "should not match: {c}");
    }
}

#[test]
fn val_compares_two_fields_of_the_same_event() {
    let mut e = exec("/usr/bin/sh", &["sh"], "sh");
    e.process.pexepath = "/usr/bin/sh".into();
    assert!(matches_cond("proc.name = val(proc.pname)", &e));
    assert!(matches_cond("proc.exepath = val(proc.pexepath)", &e));
    assert!(!matches_cond("proc.exepath != val(proc.pexepath)", &e));
    assert!(matches_cond("proc.pid > val(proc.ppid)", &e));
    assert!(matches_cond("proc.exepath endswith val(proc.name)", &e));
    assert!(matches_cond(
        "proc.exepath contains basename(proc.pexepath)",
        &e
    ));
    assert!(matches_cond("toupper(proc.name) = toupper(proc.pname)", &e));
    assert!(matches_cond("proc.name in val(proc.pname)", &e));
    // A missing side makes the comparison false, `!=` included, as a missing field does.
    let host = on_host(exec("/bin/ls", &["ls"], "bash"));
    assert!(!matches_cond(
        "container.image.tag = val(container.image.tag)",
        &host
    ));
    assert!(!matches_cond(
        "container.image.tag != val(proc.name)",
        &host
    ));
}

#[test]
fn byte_operators_take_hex_as_falco_writes_it() {
    let e = exec("/usr/bin/curl", &["curl", "\u{7f}ELF"], "bash");
    assert!(matches_cond("proc.args bcontains 7f454c46", &e));
    assert!(matches_cond("proc.args bstartswith 7F45", &e));
    assert!(matches_cond("proc.name bcontains 7572", &e));
    assert!(!matches_cond("proc.name bstartswith 7572", &e));
    assert!(
        error("proc.name bcontains xyz")
            .ends_with("`xyz` is not hex bytes (operator `bcontains` takes e.g. `7f454c46`)")
    );
}

#[test]
fn list_operators_take_a_list_name_without_parentheses() {
    let e = exec("/bin/bash", &["bash"], "node");
    assert!(matches_cond("proc.name in shell_binaries", &e));
    assert!(matches_cond("proc.name intersects (shell_binaries)", &e));
    assert!(!matches_cond("proc.pname in shell_binaries", &e));
}

#[test]
fn field_arguments_in_falcos_forms() {
    let mut e = exec("/usr/bin/curl", &["curl"], "bash");
    e.process.env.push("A B=x".into());
    e.process.env.push("HOME=/root".into());
    assert!(matches_cond("proc.env['HOME'] = /root", &e));
    assert!(matches_cond("proc.env[\"HOME\"] = /root", &e));
    assert!(matches_cond("k8s.pod.label.tier = frontend", &e));
    assert!(matches_cond(
        "k8s.pod.label['app.kubernetes.io/name'] = web",
        &e
    ));
}

#[test]
fn transformer_errors_are_positioned() {
    // `rule(...)` puts the condition at line 3, column 14.
    assert_eq!(
        error("tolower(proc.pid) = 1"),
        "3:14: transformer `tolower` cannot be applied to number `proc.pid` (it takes strings)"
    );
    assert_eq!(
        error("tolower(proc.name = x"),
        "3:14: `tolower(` is not closed: expected `)` after its field"
    );
    assert_eq!(
        error("tolower() = x"),
        "3:22: `tolower(` needs a field, e.g. `tolower(proc.name)`"
    );
    assert!(error("len(proc.name) = abc").contains("`abc` is not a number"));
    assert!(
        error("proc.name = val(proc.pid)")
            .contains("operator `=` cannot compare `proc.name` (string) with `proc.pid` (number)")
    );
    assert!(error("proc.name < val(proc.pname)").contains("cannot compare"));
}

/// `(active, reason)` of rule `r` with `cond`, loaded on the defaults.
fn activity(cond: &str) -> (bool, Option<String>) {
    let rs = try_load(&rule(cond)).unwrap_or_else(|ds| panic!("{cond}: {}", ds[0].render()));
    let r = rs.rule(rs.find("r").expect("rule r"));
    (r.active, r.inactive_reason.clone())
}

#[test]
fn a_rule_that_can_never_be_true_here_is_inactive_with_the_reason() {
    for (cond, reason) in [
        (
            "evt.type = ptrace",
            "needs ptrace events, which driftwatch does not trace",
        ),
        (
            "evt.type in (setuid, setgid) and proc.name = x",
            "needs setgid, setuid events, which driftwatch does not trace",
        ),
        (
            "evt.type = connect and fd.sip.name = example.com",
            "needs fd.sip.name, which driftwatch does not fill",
        ),
        (
            "spawned_process and fd.name = /etc/passwd",
            "needs fd.name on execve events, where driftwatch does not fill it",
        ),
        (
            "evt.type in (open, openat) and evt.is_open_read = true",
            "needs file reads (evt.is_open_read), which driftwatch does not see",
        ),
        (
            "evt.type = openat and evt.res != SUCCESS",
            "needs failed system calls (evt.res), which driftwatch does not report",
        ),
        (
            "evt.type = unlinkat and fd.num < 0",
            "needs failed system calls (fd.num), which driftwatch does not report",
        ),
        (
            "evt.type = execve and evt.rawres != 0",
            "needs failed system calls (evt.rawres), which driftwatch does not report",
        ),
    ] {
        assert_eq!(activity(cond), (false, Some(reason.to_string())), "{cond}");
    }
}

#[test]
fn what_driftwatch_does_not_fill_is_missing_so_not_of_it_holds() {
    for cond in [
        "spawned_process and not fd.sip.name = example.com",
        "spawned_process and not fd.sip.name exists",
        "evt.type = openat and fd.num >= 0 and evt.res = SUCCESS",
        "evt.type in (execve, ptrace) and proc.name = x",
        "(evt.type = connect and fd.sip.name = x) or (evt.type = connect and fd.sport = 443)",
        "evt.type in (openat, execve) and fd.name = /etc/passwd",
        "evt.type = openat and not evt.is_open_read = true",
    ] {
        assert_eq!(activity(cond), (true, None), "{cond}");
    }
}

#[test]
fn arguments_of_falcos_events_by_name_and_position() {
    let e = file_event(
        driftwatch_model::EventKind::Rename,
        "/usr/bin/new",
        true,
        "/bin/mv",
    );
    let mut e = e;
    if let Some(f) = e.file.as_mut() {
        f.old_path = Some("/tmp/x".into());
    }
    assert!(matches_cond("evt.arg.newpath = /usr/bin/new", &e));
    assert!(matches_cond("evt.arg[newpath] = /usr/bin/new", &e));
    assert!(matches_cond("evt.arg.oldpath = /tmp/x", &e));
    assert!(matches_cond("evt.arg[2] = /tmp/x", &e));
    assert!(matches_cond("basename(evt.arg.oldpath) = x", &e));
    assert!(!matches_cond("evt.arg.nope exists", &e));
    let x = exec("/bin/ls", &["ls"], "sh");
    assert!(matches_cond("evt.rawarg.res = 0", &x));
    assert!(matches_cond("evt.rawarg[res] >= 0", &x));
}

/// An ancestor field without an index (`proc.aname`, `proc.apid`, `proc.aexepath`,
/// `proc.aexe`, `proc.acmdline`) is compared as libsinsp does: its
/// `sinsp_filter_check_thread::compare_nocache` hands it to `compare_full_aname` and siblings
/// (userspace/libsinsp/sinsp_filtercheck_thread.cpp), which walk the ancestors from the parent
/// up (`traverse_parent_state`, userspace/libsinsp/thread_manager.cpp) and are true when
/// `compare_rhs` holds for one of them, whatever the operator: `!=` means "some ancestor
/// differs", `in`/`intersects` "some ancestor is in the list", `exists` "there is an
/// ancestor". The process itself is not an ancestor; no known ancestor makes every test false.
#[test]
fn ancestor_fields_without_an_index_match_any_ancestor_as_libsinsp_does() {
    let mut e = exec("/usr/bin/curl", &["curl", "-s"], "bash");
    e.process.ancestors = vec!["bash".into(), "node".into(), "runc".into()];
    e.process.ancestor_pids = vec![4000, 3000, 1];
    e.process.ancestor_exepaths = vec![
        "/bin/bash".into(),
        "/usr/bin/node".into(),
        "/usr/sbin/runc".into(),
    ];
    e.process.pargv = vec!["bash".into(), "-i".into()];
    let yes = [
        "proc.aname = node",
        "proc.aname != node",
        "proc.aname != bash",
        "proc.aname in (zsh, runc)",
        "proc.aname intersects (zsh, runc)",
        "proc.aname startswith no",
        "proc.aname exists",
        "proc.apid = 3000",
        "proc.apid != 1",
        "proc.apid in (1, 2)",
        "proc.apid intersects (1)",
        "proc.apid < 2",
        "proc.apid exists",
        "proc.aexepath pmatch (/usr/sbin)",
        "proc.aexepath != /bin/bash",
        "proc.aexe = bash",
        "proc.acmdline = 'bash -i'",
        "toupper(proc.aname) in (NODE)",
        "not proc.aname = curl",
        "not proc.aname in (zsh, sh)",
    ];
    for c in yes {
        assert!(matches_cond(c, &e), "should match: {c}");
    }
    let no = [
        // The process itself is not its own ancestor.
        "proc.aname = curl",
        "proc.apid = 4242",
        "proc.aexe = curl",
        "proc.aname in (zsh, sh)",
        "proc.apid > 4000",
        "not proc.aname = node",
        "not proc.aname exists",
        "not proc.apid != 1",
        // driftwatch knows the parent's argv alone: no further ancestor's.
        "proc.aexe = node",
    ];
    for c in no {
        assert!(!matches_cond(c, &e), "should not match: {c}");
    }

    // A process whose ancestors are unknown: every test is false, `!=` and `exists` too.
    let mut orphan = exec("/usr/bin/curl", &["curl"], "bash");
    orphan.process.ancestors.clear();
    orphan.process.ancestor_pids.clear();
    orphan.process.ancestor_exepaths.clear();
    orphan.process.pargv.clear();
    for c in [
        "proc.aname != x",
        "proc.aname exists",
        "proc.apid != 1",
        "proc.apid exists",
        "proc.aexepath != x",
        "proc.aexe exists",
        "proc.acmdline != x",
    ] {
        assert!(!matches_cond(c, &orphan), "no ancestor, no match: {c}");
        assert!(
            matches_cond(&format!("not {c}"), &orphan),
            "no ancestor, `not` holds: {c}"
        );
    }
}

/// The container plugin's fields are single strings, not lists (falcosecurity/plugins,
/// plugins/container/src/caps/extract/extract.cpp declares `container.mounts`,
/// `container.mount.dest` and `k8s.pod.labels` as `FTYPE_STRING` without a list flag). So, as in
/// libsinsp's `sinsp_filter_check::compare_rhs` for a single value
/// (userspace/libsinsp/sinsp_filtercheck.cpp), `in` and `intersects` both ask whether the one
/// value is in the set, and `=` compares the whole string: `k8s.pod.labels` is
/// `key:value, key:value` as printed, not a set of labels.
#[test]
fn container_plugin_fields_are_one_value_each() {
    let mut e = exec("/bin/sh", &["sh"], "bash");
    let mut c = (*e.container.take().unwrap()).clone();
    c.mounts = vec![
        driftwatch_model::Mount {
            source: "/var/run/docker.sock".into(),
            dest: "/var/run/docker.sock".into(),
            mode: String::new(),
            rw: true,
            propagation: "rprivate".into(),
        },
        driftwatch_model::Mount {
            source: "/srv/data".into(),
            dest: "/data".into(),
            mode: "ro".into(),
            rw: false,
            propagation: String::new(),
        },
    ];
    e.container = Some(std::sync::Arc::new(c));
    let yes = [
        "container.mount.dest[/var/run/docker.sock] = /var/run/docker.sock",
        "container.mount.dest[/srv/*] in (/data, /x)",
        "container.mount.dest[/srv/*] intersects (/data)",
        "container.mount.dest[1] = /data",
        "container.mount.source[/data] = /srv/data",
        "container.mounts contains /srv/data",
        "k8s.pod.labels contains 'tier:frontend'",
        "k8s.pod.labels in ('app.kubernetes.io/name:web, tier:frontend')",
        "k8s.pod.label[tier] in (frontend, backend)",
    ];
    for c in yes {
        assert!(matches_cond(c, &e), "should match: {c}");
    }
    let no = [
        // A label is not an element of a list: the field is one string.
        "k8s.pod.labels in ('tier:frontend')",
        "k8s.pod.labels intersects ('tier:frontend')",
        "k8s.pod.labels = 'tier:frontend'",
        "container.mount.dest[/srv/*] in (/srv/data)",
        // No mount from that source: `<NA>`, as the container plugin says (upstream's
        // `sensitive_mount` tests `not container.mount.dest[X] in ("<NA>","N/A")`).
        "not container.mount.dest[/nope] in ('<NA>', 'N/A')",
        "container.mount.dest[/nope] = /x",
    ];
    for c in no {
        assert!(!matches_cond(c, &e), "should not match: {c}");
    }
}
