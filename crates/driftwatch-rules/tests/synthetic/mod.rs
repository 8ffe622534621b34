//! Synthetic events for rule tests: a container, a process, and builders for execs and file
//! changes with or without drift findings.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the builders"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use driftwatch_model::{
    ContainerId, ContainerMeta, DriftFinding, DriftKind, DriftSubject, Engine, Event, EventKind,
    FileRef, ImageRef, KubernetesMeta, Process, Verdict,
};
use driftwatch_rules::{RuleSet, Source};

pub const CID: &str = "3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182";

pub fn container() -> Arc<ContainerMeta> {
    Arc::new(ContainerMeta {
        privileged: None,
        mounts: Vec::new(),
        started_ns: None,
        id: ContainerId::new(CID).unwrap(),
        engine: Engine::Docker,
        name: "web".into(),
        image: ImageRef {
            repository: "nginx".into(),
            tag: "1.27".into(),
            digest: Some("sha256:abcd".into()),
            id: Some("sha256:ef01".into()),
        },
        labels: BTreeMap::new(),
        k8s: Some(KubernetesMeta {
            namespace: "prod".into(),
            pod_name: "web-0".into(),
            pod_uid: "uid-1".into(),
            container_name: "web".into(),
            labels: BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), "web".to_string()),
                ("tier".to_string(), "frontend".to_string()),
            ]),
        }),
        entrypoint: vec!["nginx".into()],
    })
}

pub fn process(exepath: &str, argv: &[&str], parent: &str) -> Process {
    let name = exepath.rsplit('/').next().unwrap_or(exepath);
    Process {
        pid: 4242,
        ppid: 4000,
        uid: 0,
        gid: 0,
        user_name: "root".into(),
        name: name.chars().take(15).collect(),
        exepath: exepath.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/".into(),
        tty: 0,
        ancestors: vec![parent.into(), "runc:[2:INIT]".into()],
        pexepath: String::new(),
        exe_upper_layer: false,
        exe_from_memfd: false,
        exe_writable: false,
        ..Default::default()
    }
}

/// An exec in the container by `parent`.
pub fn exec(exepath: &str, argv: &[&str], parent: &str) -> Event {
    Event {
        num: 0,
        time_ns: 1_795_852_800_123_456_789,
        kind: EventKind::Execve,
        process: process(exepath, argv, parent),
        container: Some(container()),
        file: None,
        net: None,
        drift: None,
    }
}

pub fn on_host(mut e: Event) -> Event {
    e.container = None;
    e
}

/// An exec with a binary-drift finding about `subject`.
pub fn drifted_exec(exepath: &str, subject: DriftSubject, verdict: Verdict, path: &str) -> Event {
    let mut e = exec(exepath, &[exepath, "-x"], "sh");
    e.process.exe_upper_layer = matches!(verdict, Verdict::Added | Verdict::Modified);
    e.drift = Some(DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Binary,
        subject,
        verdict,
        path: path.into(),
        hash: Some("b3:1234".into()),
        image_hash: None,
        detail: None,
    });
    e
}

/// A file event in the container by process `proc_exe`.
pub fn file_event(kind: EventKind, path: &str, write: bool, proc_exe: &str) -> Event {
    Event {
        num: 0,
        time_ns: 1_795_852_800_000_000_000,
        kind,
        process: process(proc_exe, &[proc_exe], "sh"),
        container: Some(container()),
        file: Some(FileRef {
            flags: 0,
            mode: None,
            target: None,
            owner: None,
            path: path.into(),
            old_path: None,
            write,
            typechar: 'f',
        }),
        net: None,
        drift: None,
    }
}

pub fn defaults() -> RuleSet {
    RuleSet::load_with_defaults(&[])
        .expect("default rules load")
        .ruleset
}

pub fn load(extra: &str) -> RuleSet {
    match RuleSet::load_with_defaults(&[Source::new("extra.yaml", extra)]) {
        Ok(l) => l.ruleset,
        Err(ds) => panic!(
            "{}",
            ds.iter().map(|d| d.render()).collect::<Vec<_>>().join("\n")
        ),
    }
}

/// Names of the rules `e` matches.
pub fn fired(rs: &RuleSet, e: &Event) -> Vec<String> {
    let mut out = Vec::new();
    rs.matches(e, &mut out);
    out.into_iter().map(|i| rs.rule(i).name.clone()).collect()
}
