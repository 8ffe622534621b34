//! Each field read from events carrying the model's facts, as Falco would print it.

use super::*;
use crate::fields::field;

#[test]
fn paths_split() {
    assert_eq!(
        (dirname("/etc/passwd"), basename("/etc/passwd")),
        ("/etc", "passwd")
    );
    assert_eq!((dirname("/x"), basename("/x")), ("/", "x"));
    assert_eq!(dirname("x"), "");
}

fn net_event(kind: EventKind, local: (&str, u16), remote: (&str, u16)) -> Event {
    Event {
        num: 0,
        time_ns: 1,
        kind,
        process: Default::default(),
        container: None,
        file: None,
        net: Some(driftwatch_model::NetRef {
            l4proto: "tcp".into(),
            local_ip: local.0.into(),
            local_port: local.1,
            remote_ip: remote.0.into(),
            remote_port: remote.1,
        }),
        drift: None,
    }
}

fn get(name: &str, ev: &Event) -> String {
    get_arg(name, FieldArg::None, ev)
}

fn get_arg(name: &str, arg: FieldArg, ev: &Event) -> String {
    let f = FieldRef {
        info: field(name).unwrap(),
        arg,
    };
    let mut scratch = String::new();
    match extract(&f, ev, &mut scratch) {
        Val::Missing => "<NA>".into(),
        Val::Str(v) => v.into(),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
    }
}

fn key(k: &str) -> FieldArg {
    FieldArg::Key(k.into())
}

/// An exec with every process fact the model has, in a container with mounts and labels.
fn rich_exec() -> Event {
    use driftwatch_model::{ContainerId, Engine, ImageRef, Mount, Process};
    let mut c = ContainerMeta::unknown(ContainerId::new(&"ab".repeat(32)).unwrap());
    c.engine = Engine::Docker;
    c.name = "web".into();
    c.image = ImageRef::parse("nginx:1.27");
    c.privileged = Some(false);
    c.started_ns = Some(1_000_000_000);
    c.labels.insert("team".into(), "a".into());
    c.labels.insert("tier".into(), String::new());
    c.labels
        .insert("io.kubernetes.pod.name".into(), "web-0".into());
    c.mounts = vec![Mount {
        source: "/srv/data".into(),
        dest: "/data".into(),
        mode: "z".into(),
        rw: true,
        propagation: "rprivate".into(),
    }];
    Event {
        num: 42,
        time_ns: 1_795_852_800_123_456_789,
        kind: EventKind::Execve,
        process: Process {
            pid: 100,
            ppid: 90,
            uid: 33,
            gid: 34,
            user_name: "www-data".into(),
            name: "sh".into(),
            exepath: "/bin/dash".into(),
            argv: vec!["sh".into(), "-c".into(), "id".into()],
            cwd: "/srv".into(),
            ancestors: vec!["bash".into(), "sshd".into()],
            pexepath: "/bin/bash".into(),
            pargv: vec!["-bash".into(), "-l".into()],
            ancestor_pids: vec![90, 80],
            ancestor_exepaths: vec!["/bin/bash".into(), String::new()],
            loginuid: Some(1000),
            loginname: "alice".into(),
            group_name: "www-data".into(),
            vpid: Some(12),
            sid: Some(90),
            sname: "bash".into(),
            vpgid: Some(12),
            vpgid_name: "sh".into(),
            cap_permitted: Some(0),
            cap_effective: Some(1 << 12 | 1 << 13),
            start_ns: Some(1_795_852_800_000_000_000),
            exe_ino: Some(777),
            exe_ctime_ns: Some(1_795_852_799_000_000_000),
            exe_mtime_ns: Some(1_795_852_798_000_000_000),
            ..Default::default()
        },
        container: Some(c.into()),
        file: None,
        net: None,
        drift: None,
    }
}

#[test]
fn process_fields_from_the_model() {
    let e = rich_exec();
    for (name, arg, want) in [
        ("proc.pcmdline", FieldArg::None, "bash -l"),
        ("proc.pexe", FieldArg::None, "-bash"),
        ("proc.aexe", FieldArg::Index(1), "-bash"),
        ("proc.aexe", FieldArg::Index(2), "<NA>"),
        // Without an index, as libsinsp prints them: the ancestors from the parent up (of
        // whose argv driftwatch knows the parent's), and the process's own pid.
        ("proc.aexe", FieldArg::None, "-bash"),
        ("proc.acmdline", FieldArg::None, "bash -l"),
        ("proc.aname", FieldArg::None, "bash sshd"),
        ("proc.apid", FieldArg::None, "100"),
        ("proc.acmdline", FieldArg::Index(0), "sh -c id"),
        ("proc.aargs", FieldArg::Index(1), "-l"),
        ("proc.args", FieldArg::Index(2), "id"),
        ("proc.exeline", FieldArg::None, "sh -c id"),
        ("proc.cmdnargs", FieldArg::None, "2"),
        ("proc.cmdlenargs", FieldArg::None, "4"),
        ("proc.aexepath", FieldArg::Index(0), "/bin/dash"),
        ("proc.aexepath", FieldArg::Index(1), "/bin/bash"),
        ("proc.aexepath", FieldArg::Index(2), "<NA>"),
        ("proc.apid", FieldArg::Index(2), "80"),
        ("proc.apid", FieldArg::Index(3), "<NA>"),
        ("proc.vpid", FieldArg::None, "12"),
        ("proc.sid", FieldArg::None, "90"),
        ("proc.sname", FieldArg::None, "bash"),
        ("proc.is_sid_leader", FieldArg::None, "false"),
        ("proc.vpgid", FieldArg::None, "12"),
        ("proc.vpgid.name", FieldArg::None, "sh"),
        ("proc.is_vpgid_leader", FieldArg::None, "true"),
        ("proc.duration", FieldArg::None, "123456789"),
        ("proc.pid.ts", FieldArg::None, "1795852800000000000"),
        ("proc.exe_ino", FieldArg::None, "777"),
        ("proc.exe_ino.ctime", FieldArg::None, "1795852799000000000"),
        ("proc.exe_ino.mtime", FieldArg::None, "1795852798000000000"),
        (
            "proc.exe_ino.ctime_duration_proc_start",
            FieldArg::None,
            "1000000000",
        ),
        (
            "thread.cap_effective",
            FieldArg::None,
            "CAP_NET_ADMIN CAP_NET_RAW",
        ),
        ("thread.cap_permitted", FieldArg::None, ""),
        ("thread.cap_inheritable", FieldArg::None, "<NA>"),
        ("thread.tid", FieldArg::None, "100"),
        ("thread.vtid", FieldArg::None, "12"),
        ("thread.ismain", FieldArg::None, "true"),
        ("user.loginuid", FieldArg::None, "1000"),
        ("user.loginname", FieldArg::None, "alice"),
        ("group.name", FieldArg::None, "www-data"),
        ("group.gid", FieldArg::None, "34"),
        ("proc.aenv", FieldArg::None, "<NA>"),
    ] {
        assert_eq!(get_arg(name, arg.clone(), &e), want, "{name} {arg:?}");
    }
    let mut unset = e.clone();
    unset.process.loginuid = Some(u32::MAX);
    assert_eq!(get("user.loginuid", &unset), "-1");
    unset.process.loginuid = None;
    unset.process.pargv.clear();
    assert_eq!(get("user.loginuid", &unset), "<NA>");
    assert_eq!(get("proc.pcmdline", &unset), "<NA>");
    // Thread facts are the exec's: a file event's thread is not recorded.
    let mut file = e.clone();
    file.kind = EventKind::Unlink;
    assert_eq!(get("thread.tid", &file), "<NA>");
}

#[test]
fn event_fields_and_times() {
    let e = rich_exec();
    for (name, arg, want) in [
        ("evt.num", FieldArg::None, "42"),
        ("evt.type", FieldArg::None, "execve"),
        ("syscall.type", FieldArg::None, "execve"),
        ("evt.type.is", key("execveat"), "1"),
        ("evt.type.is", key("openat"), "0"),
        ("evt.category", FieldArg::None, "process"),
        ("evt.res", FieldArg::None, "SUCCESS"),
        ("evt.rawres", FieldArg::None, "0"),
        ("evt.failed", FieldArg::None, "false"),
        ("evt.source", FieldArg::None, "syscall"),
        ("evt.time.s", FieldArg::None, "08:00:00"),
        (
            "evt.time.iso8601",
            FieldArg::None,
            "2026-11-28T08:00:00.123456789Z",
        ),
        (
            "evt.datetime",
            FieldArg::None,
            "2026-11-28 08:00:00.123456789",
        ),
        ("evt.datetime.s", FieldArg::None, "2026-11-28 08:00:00"),
        ("evt.rawtime.s", FieldArg::None, "1795852800"),
        ("evt.rawtime.ns", FieldArg::None, "123456789"),
        ("evt.arg", key("exe"), "sh"),
        ("evt.arg", FieldArg::Index(1), "sh"),
        ("evt.arg", FieldArg::Index(2), "-c id"),
        ("evt.arg", key("loginuid"), "1000"),
        ("evt.rawarg", key("uid"), "33"),
        ("evt.arg", key("request"), "<NA>"),
        ("evt.arg", FieldArg::Index(99), "<NA>"),
    ] {
        assert_eq!(get_arg(name, arg.clone(), &e), want, "{name} {arg:?}");
    }
    let args = get("evt.args", &e);
    assert!(
        args.starts_with("res=0 exe=sh args=-c id tid=100 pid=100 ptid=90 cwd=/srv comm=sh"),
        "{args}"
    );
    let mut c = e.clone();
    c.kind = EventKind::Container;
    assert_eq!(get("syscall.type", &c), "<NA>");
    assert_eq!(get("evt.args", &c), "<NA>");
    assert_eq!(get("evt.category", &c), "internal");
    assert_eq!(get("evt.res", &c), "SUCCESS");
}

#[test]
fn container_fields_from_the_model() {
    let e = rich_exec();
    for (name, arg, want) in [
        ("container.privileged", FieldArg::None, "false"),
        (
            "container.mounts",
            FieldArg::None,
            "/srv/data:/data:z:true:rprivate",
        ),
        (
            "container.mount",
            FieldArg::Index(0),
            "/srv/data:/data:z:true:rprivate",
        ),
        ("container.mount", FieldArg::Index(1), "none"),
        (
            "container.mount",
            key("/srv/*"),
            "/srv/data:/data:z:true:rprivate",
        ),
        ("container.mount", key("/srv"), "none"),
        ("container.mount.dest", key("/srv/d?ta"), "/data"),
        ("container.mount.source", key("/data"), "/srv/data"),
        ("container.mount.source", key("/srv/data"), "<NA>"),
        ("container.mount.mode", FieldArg::Index(0), "z"),
        ("container.mount.rdwr", FieldArg::Index(0), "true"),
        ("container.mount.propagation", key("*"), "rprivate"),
        ("container.start_ts", FieldArg::None, "1000000000"),
        ("container.duration", FieldArg::None, "1795852799123456789"),
        ("container.label", key("team"), "a"),
        ("container.label", key("tier"), ""),
        ("container.label", key("nope"), "<NA>"),
        ("container.labels", FieldArg::None, "team:a, tier"),
        ("container.image", FieldArg::None, "nginx:1.27"),
        ("container.healthcheck", FieldArg::None, "<NA>"),
        ("k8s.pod.id", FieldArg::None, "<NA>"),
    ] {
        assert_eq!(get_arg(name, arg.clone(), &e), want, "{name} {arg:?}");
    }
    let host = Event {
        container: None,
        ..e
    };
    assert_eq!(get("container.privileged", &host), "<NA>");
    assert_eq!(
        get_arg("container.mount", FieldArg::Index(0), &host),
        "<NA>"
    );
    assert_eq!(get("container.id", &host), "host");
}

#[test]
fn file_fields_of_each_change() {
    use driftwatch_model::FileRef;
    let mut e = rich_exec();
    e.kind = EventKind::Rename;
    e.file = Some(FileRef {
        path: "/etc/b".into(),
        old_path: Some("/etc/a".into()),
        typechar: 'f',
        ..Default::default()
    });
    for (name, want) in [
        ("evt.type", "renameat2"),
        ("fd.num", "0"),
        ("fd.type", "file"),
        ("fd.nameraw", "/etc/b"),
        ("fd.name_changed", "false"),
        ("fd.containername", "abababababab:/etc/b"),
        ("fd.containerdirectory", "abababababab:/etc"),
        ("fs.path.name", "/etc/b"),
        ("fs.path.source", "/etc/a"),
        ("fs.path.target", "/etc/b"),
        ("evt.is_open_write", "<NA>"),
        ("fd.is_server", "<NA>"),
    ] {
        assert_eq!(get(name, &e), want, "{name}");
    }
    e.kind = EventKind::Open;
    e.file = Some(FileRef {
        path: "/x".into(),
        write: true,
        flags: 0o2 | 0o100,
        mode: Some(0o755),
        ..Default::default()
    });
    for (name, want) in [
        ("evt.type", "openat"),
        ("evt.is_open_read", "true"),
        ("evt.is_open_write", "true"),
        ("evt.is_open_create", "true"),
        ("evt.is_open_exec", "true"),
        ("fs.path.source", "<NA>"),
    ] {
        assert_eq!(get(name, &e), want, "{name}");
    }
    if let Some(f) = e.file.as_mut() {
        f.mode = Some(0o644);
    }
    assert_eq!(get("evt.is_open_exec", &e), "false");
    e.kind = EventKind::Mkdir;
    e.file = Some(FileRef {
        path: "/bin/d".into(),
        typechar: 'd',
        ..Default::default()
    });
    assert_eq!(get("fd.type", &e), "directory");
    assert_eq!(get("evt.type", &e), "mkdirat");
}

#[test]
fn network_fields_follow_falcos_client_server_roles() {
    let c = net_event(EventKind::Connect, ("10.0.0.2", 40000), ("10.0.0.5", 5432));
    let got: Vec<String> = [
        "fd.name",
        "fd.l4proto",
        "fd.typechar",
        "fd.sockfamily",
        "fd.cip",
        "fd.cport",
        "fd.sip",
        "fd.sport",
        "fd.lip",
        "fd.lport",
        "fd.rip",
        "fd.rport",
    ]
    .iter()
    .map(|f| get(f, &c))
    .collect();
    assert_eq!(
        got,
        [
            "10.0.0.2:40000->10.0.0.5:5432",
            "tcp",
            "4",
            "ip",
            "10.0.0.2",
            "40000",
            "10.0.0.5",
            "5432",
            "10.0.0.2",
            "40000",
            "10.0.0.5",
            "5432"
        ]
    );
    let l = net_event(EventKind::Listen, ("::", 8081), ("", 0));
    for (name, want) in [
        ("fd.type", "ipv4"),
        ("fd.num", "0"),
        ("fd.connected", "true"),
        ("fd.is_server", "false"),
        ("fd.name_changed", "true"),
        ("fd.containername", "host:10.0.0.2:40000->10.0.0.5:5432"),
        ("fd.cnet", "10.0.0.2"),
        ("fd.snet", "10.0.0.5"),
        ("evt.arg.tuple", "<NA>"),
    ] {
        if let Some(arg) = name.strip_prefix("evt.arg.") {
            assert_eq!(
                get_arg("evt.arg", key(arg), &c),
                "10.0.0.2:40000->10.0.0.5:5432"
            );
        } else {
            assert_eq!(get(name, &c), want, "{name}");
        }
    }
    let got: Vec<String> = [
        "fd.name",
        "fd.typechar",
        "fd.sip",
        "fd.sport",
        "fd.cip",
        "fd.cport",
        "fd.rip",
        "fd.rport",
        "fd.directory",
    ]
    .iter()
    .map(|f| get(f, &l))
    .collect();
    assert_eq!(
        got,
        [
            "[::]:8081",
            "6",
            "::",
            "8081",
            "<NA>",
            "<NA>",
            "<NA>",
            "<NA>",
            "<NA>"
        ]
    );
}

/// An event of `kind` carrying every fact the model has for it.
fn rich_event(kind: EventKind) -> Event {
    use driftwatch_model::{FileRef, KubernetesMeta};
    let mut e = rich_exec();
    e.kind = kind;
    e.process.env = vec!["PATH=/bin".into()];
    e.process.cap_inheritable = Some(0);
    e.process.pexepath = "/bin/bash".into();
    e.process.tty = 34816;
    let mut c = (**e.container.as_ref().unwrap()).clone();
    c.image.id = Some("sha256:ef01".into());
    c.image.digest = Some("sha256:abcd".into());
    c.k8s = Some(KubernetesMeta {
        namespace: "prod".into(),
        pod_name: "web-0".into(),
        pod_uid: "uid-1".into(),
        container_name: "web".into(),
        labels: [("app".to_string(), "web".to_string())].into(),
    });
    e.container = Some(c.into());
    let file = |typechar| FileRef {
        path: "/etc/x".into(),
        typechar,
        ..Default::default()
    };
    e.file = match kind {
        EventKind::Open | EventKind::Creat => Some(FileRef {
            write: true,
            flags: 0o1 | 0o100,
            mode: Some(0o644),
            ..file('f')
        }),
        EventKind::Rename => Some(FileRef {
            old_path: Some("/etc/w".into()),
            ..file('f')
        }),
        EventKind::Chmod => Some(FileRef {
            mode: Some(0o4755),
            ..file('f')
        }),
        EventKind::Chown => Some(FileRef {
            owner: Some((1, 2)),
            ..file('f')
        }),
        EventKind::Mkdir => Some(FileRef {
            mode: Some(0o755),
            ..file('d')
        }),
        EventKind::Symlink => Some(FileRef {
            target: Some("/etc/shadow".into()),
            ..file('l')
        }),
        EventKind::Unlink => Some(file('f')),
        _ => None,
    };
    if matches!(kind, EventKind::Listen | EventKind::Connect) {
        e.net = Some(driftwatch_model::NetRef {
            l4proto: "tcp".into(),
            local_ip: "10.0.0.2".into(),
            local_port: 8080,
            remote_ip: if kind == EventKind::Connect {
                "10.0.0.9".into()
            } else {
                String::new()
            },
            remote_port: 443,
        });
    }
    e
}

/// A field's table row is a promise the inactive-rule check relies on: a field said to be
/// filled on a kind has a value on an event of that kind that carries the model's facts.
#[test]
fn filled_claims_hold_on_every_kind() {
    use crate::fields::{ArgSpec, FIELDS, Filled};
    for kind in EventKind::ALL {
        let e = rich_event(kind);
        for f in FIELDS {
            // A drift field is filled when the event carries a finding, which these do not.
            if f.filled == Filled::Never || !f.filled.covers(kind) || f.name.starts_with("drift.") {
                continue;
            }
            let arg = match (f.name, f.arg) {
                ("evt.arg" | "evt.rawarg", _)
                    if matches!(kind, EventKind::Open | EventKind::Creat) =>
                {
                    key("flags")
                }
                ("evt.arg" | "evt.rawarg", _) => key("res"),
                ("evt.type.is", _) => key("execve"),
                ("proc.env", _) => key("PATH"),
                ("container.label", _) => key("team"),
                ("k8s.pod.label", _) => key("app"),
                (_, ArgSpec::Index | ArgSpec::IndexOrKey | ArgSpec::IndexOrKeyRequired) => {
                    FieldArg::Index(1.min(usize::from(!f.name.starts_with("container.mount"))))
                }
                (_, ArgSpec::None | ArgSpec::Key) => FieldArg::None,
                (name, ArgSpec::KeyRequired) => panic!("{name}: pick a key"),
            };
            assert_ne!(
                get_arg(f.name, arg.clone(), &e),
                "<NA>",
                "{} {arg:?} on {kind:?}",
                f.name
            );
        }
    }
}

#[test]
fn interpreter_fields_read_the_exec_fact() {
    use driftwatch_model::{InterpreterFamily, InterpreterRun, Invocation, StdinSource};
    let mut e = rich_exec();
    for f in [
        "drift.interpreter",
        "drift.invocation",
        "drift.inline_code",
        "drift.stdin",
        "drift.inline_learned",
    ] {
        assert_eq!(get(f, &e), "<NA>", "{f} on an exec of no interpreter");
    }
    let code = "print(\"a\tb\")\n";
    let mut run = InterpreterRun::new(
        InterpreterFamily::Python,
        &Invocation::Inline { flag: "-c", code },
        false,
        || unreachable!("stdin is asked only for stdin invocations"),
    );
    run.learned = Some(false);
    e.process.interpreter = Some(run);
    assert_eq!(get("drift.interpreter", &e), "python");
    assert_eq!(get("drift.invocation", &e), "inline");
    assert_eq!(get("drift.inline_flag", &e), "-c");
    assert_eq!(get("drift.inline_code", &e), code);
    assert_eq!(get("drift.stdin", &e), "<NA>");
    assert_eq!(get("drift.inline_learned", &e), "false");
    e.process.interpreter = Some(InterpreterRun::new(
        InterpreterFamily::Shell,
        &Invocation::Stdin,
        false,
        || StdinSource::Pipe,
    ));
    assert_eq!(get("drift.invocation", &e), "stdin");
    assert_eq!(get("drift.stdin", &e), "pipe");
    assert_eq!(get("drift.inline_code", &e), "<NA>");
}
