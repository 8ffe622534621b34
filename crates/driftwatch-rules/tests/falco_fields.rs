//! Falco's fields on driftwatch's events: the upstream rule files name only known fields, and
//! conditions and outputs on the fields driftwatch fills read what Falco would.

mod alloc_count;
mod synthetic;

use alloc_count::allocations;
use driftwatch_model::{EventKind, FileRef, Mount, NetRef};
use driftwatch_rules::{CompileError, Problem, RuleSet, Source};
use synthetic::*;

const UPSTREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/falcosecurity-rules"
);

/// Whether a diagnostic is the field catalogue's: a field unknown or named with the wrong
/// argument, or a value its type cannot take.
fn catalogue_problem(p: &Problem) -> bool {
    matches!(
        p,
        Problem::Compile(
            CompileError::UnknownField { .. }
                | CompileError::MissingArg { .. }
                | CompileError::UnexpectedArg { .. }
                | CompileError::BadIndex { .. }
                | CompileError::NotANetwork { .. }
                | CompileError::NotANumber { .. }
                | CompileError::NotABool { .. }
                | CompileError::BadOperator { .. }
        )
    )
}

#[test]
fn upstream_rule_files_name_only_known_fields() {
    let files = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
        "falco-deprecated_rules.yaml",
        "application_rules.yaml",
    ];
    let mut together = Vec::new();
    for name in files {
        let text = std::fs::read_to_string(format!("{UPSTREAM}/{name}")).unwrap();
        let src = Source::new(name, &text);
        if name.starts_with("falco") && name != "falco-deprecated_rules.yaml" {
            together.push(src.clone());
        }
        let problems: Vec<String> = match RuleSet::load_with_defaults(&[src]) {
            Ok(_) => Vec::new(),
            Err(ds) => ds
                .iter()
                .filter(|d| catalogue_problem(&d.message))
                .map(|d| d.to_string())
                .collect(),
        };
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
    }
    if let Err(ds) = RuleSet::load_with_defaults(&together) {
        let problems: Vec<String> = ds
            .iter()
            .filter(|d| catalogue_problem(&d.message))
            .map(|d| d.to_string())
            .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

const RULES: &str = r#"
- list: private_networks
  items: ['"10.0.0.0/8"', '"172.16.0.0/12"', '"192.168.0.0/16"']
- rule: login uid unset
  desc: d
  condition: evt.type = execve and user.loginuid = -1
  output: "loginuid=%user.loginuid type=%evt.type caps=%thread.cap_effective"
  priority: info
- rule: parent command line
  desc: d
  condition: evt.type = execve and proc.pcmdline = "bash -c ./x" and proc.pexe = bash and proc.acmdline[1] = "bash -c ./x"
  output: o
  priority: info
- rule: admin capability
  desc: d
  condition: evt.type = execve and thread.cap_effective contains CAP_SYS_ADMIN and not thread.cap_permitted exists
  output: o
  priority: info
- rule: session and group
  desc: d
  condition: evt.type = execve and proc.is_sid_leader = false and proc.sname = bash and proc.is_vpgid_leader = true and proc.vpgid.name = x and thread.vtid = 7
  output: o
  priority: info
- rule: ancestry
  desc: d
  condition: evt.type = execve and proc.aexepath[2] = /usr/bin/containerd-shim and proc.apid[1] = 4000 and proc.aexepath = /bin/bash and proc.aexe[1] = bash
  output: o
  priority: info
- rule: mounts
  desc: d
  condition: >
    evt.type = execve and container.privileged = true
    and container.mount.dest[/var/run/docker.sock] = /var/run/docker.sock
    and container.mount.dest[/ro*] = /host/root
    and container.mount.rdwr[0] = true and container.mount.source[/host/root] = /root
    and container.mount.dest[/proc*] = "<NA>" and container.mount[/nothing] = none
  output: "mounts=%container.mounts"
  priority: info
- rule: ptrace request
  desc: d
  condition: evt.type = execve and evt.arg.request contains PTRACE
  output: o
  priority: info
- rule: truncating open
  desc: d
  condition: >
    evt.type in (open, openat) and evt.is_open_write = true and evt.arg.flags contains O_TRUNC
    and fd.num >= 0 and evt.res = SUCCESS and evt.rawres = 0 and fd.type = file
    and evt.arg[2] = /etc/passwd and evt.arg.path = /etc/passwd and fd.typechar = f
    and evt.type.is.openat = 1 and evt.category = file
  output: "type=%evt.type args=%evt.args"
  priority: info
- rule: creat only
  desc: d
  condition: evt.type = creat
  output: o
  priority: info
- rule: setuid bit
  desc: d
  condition: evt.type = chmod and evt.arg.mode contains S_ISUID and evt.rawarg.mode = 2541
  output: o
  priority: info
- rule: outbound public
  desc: d
  condition: >
    evt.type = connect and fd.net = "10.0.0.0/8" and not fd.snet in (private_networks)
    and fd.ip != "0.0.0.0" and fd.port = 443 and fd.proto = 40000 and fd.sproto = "443" and fd.cnet in ("10.0.0.0/24", "fd00::/8")
    and fd.connected = true and fd.is_server = false
  output: o
  priority: info
- rule: any client network
  desc: d
  condition: evt.type in (connect, listen) and fd.cnet = "0.0.0.0/0"
  output: o
  priority: info
"#;

fn rules() -> RuleSet {
    match RuleSet::load(&[Source::new("t.yaml", RULES)]) {
        Ok(l) => l.ruleset,
        Err(ds) => panic!(
            "{}",
            ds.iter().map(|d| d.render()).collect::<Vec<_>>().join("\n")
        ),
    }
}

fn falco_exec() -> driftwatch_model::Event {
    let mut e = exec("/tmp/x", &["./x"], "bash");
    let p = &mut e.process;
    p.pargv = vec!["bash".into(), "-c".into(), "./x".into()];
    p.ancestors = vec!["bash".into(), "containerd-shim".into()];
    p.ancestor_exepaths = vec!["/bin/bash".into(), "/usr/bin/containerd-shim".into()];
    p.ancestor_pids = vec![4000, 3000];
    p.loginuid = Some(u32::MAX);
    p.cap_effective = Some((1 << 21) | 1);
    p.sid = Some(4000);
    p.sname = "bash".into();
    p.vpid = Some(7);
    p.vpgid = Some(7);
    p.vpgid_name = "x".into();
    let mut c = (*e.container.take().unwrap()).clone();
    c.privileged = Some(true);
    c.mounts = vec![
        Mount {
            source: "/var/run/docker.sock".into(),
            dest: "/var/run/docker.sock".into(),
            mode: String::new(),
            rw: true,
            propagation: "rprivate".into(),
        },
        Mount {
            source: "/root".into(),
            dest: "/host/root".into(),
            mode: "ro".into(),
            rw: false,
            propagation: String::new(),
        },
    ];
    e.container = Some(c.into());
    e
}

fn output(rs: &RuleSet, rule: &str, e: &driftwatch_model::Event) -> String {
    rs.alert(rs.find(rule).unwrap(), e, "h").output
}

#[test]
fn exec_fields_read_what_falco_would() {
    let rs = rules();
    let e = falco_exec();
    let mut got = fired(&rs, &e);
    got.sort();
    assert_eq!(
        got,
        [
            "admin capability",
            "ancestry",
            "login uid unset",
            "mounts",
            "parent command line",
            "session and group"
        ]
    );
    let o = output(&rs, "login uid unset", &e);
    assert!(
        o.ends_with("loginuid=-1 type=execve caps=CAP_CHOWN CAP_SYS_ADMIN"),
        "{o}"
    );
    let o = output(&rs, "mounts", &e);
    assert!(
        o.ends_with(
            "mounts=/var/run/docker.sock:/var/run/docker.sock::true:rprivate,/root:/host/root:ro:false:"
        ),
        "{o}"
    );
    // Without the facts, the tests on them are false (and not-exists true).
    let bare = exec("/tmp/x", &["./x"], "bash");
    assert!(fired(&rs, &bare).is_empty(), "{:?}", fired(&rs, &bare));
}

#[test]
fn file_events_are_falcos_calls_with_their_arguments() {
    let rs = rules();
    let mut open = file_event(EventKind::Open, "/etc/passwd", true, "/bin/sh");
    open.file.as_mut().unwrap().flags = 0o1 | 0o1000;
    assert_eq!(fired(&rs, &open), ["truncating open"]);
    let o = output(&rs, "truncating open", &open);
    assert!(
        o.ends_with("type=openat args=name=/etc/passwd flags=O_TRUNC|O_WRONLY"),
        "{o}"
    );
    // `creat` names the Creat kind alone; `open`/`openat` both kinds.
    let mut creat = open.clone();
    creat.kind = EventKind::Creat;
    let mut got = fired(&rs, &creat);
    got.sort();
    assert_eq!(got, ["creat only", "truncating open"]);

    let chmod = driftwatch_model::Event {
        kind: EventKind::Chmod,
        file: Some(FileRef {
            path: "/usr/bin/x".into(),
            mode: Some(0o4755),
            ..Default::default()
        }),
        ..open.clone()
    };
    assert_eq!(fired(&rs, &chmod), ["setuid bit"]);
    let mut plain = chmod.clone();
    plain.file.as_mut().unwrap().mode = Some(0o755);
    assert!(fired(&rs, &plain).is_empty());
}

#[test]
fn networks_test_both_ends_and_either_side() {
    let rs = rules();
    let mut c = exec("/usr/bin/curl", &["curl"], "sh");
    c.kind = EventKind::Connect;
    c.net = Some(NetRef {
        l4proto: "tcp".into(),
        local_ip: "10.0.0.2".into(),
        local_port: 40000,
        remote_ip: "93.184.216.34".into(),
        remote_port: 443,
    });
    let mut got = fired(&rs, &c);
    got.sort();
    assert_eq!(got, ["any client network", "outbound public"]);
    // To a private address: `fd.snet in (private_networks)` holds.
    let mut private = c.clone();
    private.net.as_mut().unwrap().remote_ip = "192.168.1.1".into();
    assert_eq!(fired(&rs, &private), ["any client network"]);
    // A listener has no client: `fd.cnet` is missing, so every test on it is false.
    let mut l = c.clone();
    l.kind = EventKind::Listen;
    assert!(fired(&rs, &l).is_empty());
}

/// The first error loading a rule with this condition.
fn condition_error(condition: &str) -> String {
    let text =
        format!("- rule: r\n  desc: d\n  condition: {condition}\n  output: o\n  priority: info\n");
    match RuleSet::load(&[Source::new("n.yaml", &text)]) {
        Ok(_) => panic!("{condition} loads"),
        Err(ds) => ds[0].to_string(),
    }
}

#[test]
fn bad_networks_and_unfilled_fields() {
    let e = condition_error("evt.type = connect and fd.snet = example.com");
    assert!(
        e.starts_with("n.yaml:3:47: `example.com` is not a network"),
        "{e}"
    );
    let e = condition_error("evt.type = connect and fd.net contains 10");
    assert!(e.contains("operator `contains`"), "{e}");
    // Known, but an argument no driftwatch event has: the rule loads inactive, saying why.
    let rs = rules();
    let r = rs.rule(rs.find("ptrace request").unwrap());
    assert!(!r.active);
    let reason = r.inactive_reason.as_deref().unwrap_or_default();
    assert_eq!(
        reason,
        "needs evt.arg[request], which driftwatch does not fill"
    );
    for active in ["truncating open", "setuid bit", "login uid unset"] {
        let r = rs.rule(rs.find(active).unwrap());
        assert!(r.active, "{active}: {:?}", r.inactive_reason);
    }
}

/// The fields Falco's rules test on every exec, file and network event (parent command line,
/// capabilities, login uid, arguments, networks, mounts) are read without allocating once the
/// thread's scratch buffer is warm.
#[test]
fn matching_on_falco_fields_does_not_allocate() {
    let rs = rules();
    let exec = falco_exec();
    let mut open = file_event(EventKind::Open, "/etc/passwd", true, "/bin/sh");
    open.file.as_mut().unwrap().flags = 0o1 | 0o1000;
    let mut connect = exec.clone();
    connect.kind = EventKind::Connect;
    connect.net = Some(NetRef {
        l4proto: "tcp".into(),
        local_ip: "10.0.0.2".into(),
        local_port: 40000,
        remote_ip: "93.184.216.34".into(),
        remote_port: 443,
    });
    let events = [exec, open, connect];
    let mut out = Vec::with_capacity(16);
    for e in &events {
        rs.matches(e, &mut out);
    }
    let mut fired = 0;
    let allocations = allocations(|| {
        for _ in 0..100 {
            for e in &events {
                rs.matches(e, &mut out);
                fired += out.len();
            }
        }
    });
    assert_eq!(fired, 100 * 9, "the rules fire as in the other tests");
    assert_eq!(allocations, 0, "{allocations} allocations in 300 matches");
}
