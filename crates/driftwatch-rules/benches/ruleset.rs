//! Throughput of the whole default ruleset on a realistic event mix (mostly benign container
//! execs and file events, a few drifts), and the time to load and compile the default rules.
//!
//! `CARGO_TARGET_DIR=/work/target-rules cargo bench -p driftwatch-rules --bench ruleset`
//! Goals: >= 2,000,000 events/s/core; load + compile < 50 ms.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

mod bench_process;

use bench_process::app_process;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use driftwatch_model::{
    ContainerId, ContainerMeta, DriftFinding, DriftKind, DriftSubject, Engine, Event, EventKind,
    FileRef, ImageRef, Process, Verdict,
};
use driftwatch_rules::{RuleSet, default_sources};

fn container(i: usize) -> Arc<ContainerMeta> {
    Arc::new(ContainerMeta {
        privileged: None,
        mounts: Vec::new(),
        started_ns: None,
        id: ContainerId::new(&format!("{i:064x}")).unwrap(),
        engine: Engine::Containerd,
        name: format!("app-{i}"),
        image: ImageRef::parse("registry.example.com/team/app:1.4.2@sha256:0123"),
        labels: BTreeMap::new(),
        k8s: None,
        entrypoint: vec!["/app/server".into()],
    })
}

/// 100 events: 30 benign execs, 60 file events (mostly reads and log/tmp writes), 5 network,
/// 5 drifted or suspicious.
fn mix() -> Vec<Event> {
    let c: Vec<_> = (0..4).map(container).collect();
    let env = [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/home/app",
        "LANG=C.UTF-8",
        "APP_ENV=prod",
    ];
    let mut out = Vec::new();
    let ev =
        |kind, p: Process, i: usize, file: Option<FileRef>, drift: Option<DriftFinding>| Event {
            num: 0,
            time_ns: 1_795_852_800_000_000_000 + i as u64,
            kind,
            process: p,
            container: Some(c[i % 4].clone()),
            file,
            net: None,
            drift,
        };
    let execs: [(&str, &[&str], &str); 6] = [
        (
            "/usr/bin/python3",
            &["python3", "/app/worker.py", "--queue", "jobs"],
            "server",
        ),
        (
            "/usr/local/bin/node",
            &["node", "/app/index.js"],
            "containerd-shim",
        ),
        (
            "/usr/bin/curl",
            &["curl", "-s", "http://localhost:8080/health"],
            "server",
        ),
        (
            "/bin/gzip",
            &["gzip", "-9", "/var/log/app/old.log"],
            "logrotate",
        ),
        ("/usr/bin/env", &["env"], "server"),
        (
            "/app/server",
            &["/app/server", "--port", "8080"],
            "containerd-shim",
        ),
    ];
    for i in 0..30 {
        let (exe, argv, parent) = execs[i % execs.len()];
        out.push(ev(
            EventKind::Execve,
            app_process(exe, argv, parent, &env),
            i,
            None,
            None,
        ));
    }
    let files: [(EventKind, &str, bool); 6] = [
        (EventKind::Open, "/app/config/settings.json", false),
        (
            EventKind::Open,
            "/usr/lib/python3.11/json/__init__.py",
            false,
        ),
        (EventKind::Open, "/var/log/app/app.log", true),
        (EventKind::Open, "/tmp/upload-1234", true),
        (EventKind::Unlink, "/tmp/upload-1234", false),
        (EventKind::Open, "/etc/hosts", false),
    ];
    for i in 0..60 {
        let (kind, path, write) = files[i % files.len()];
        let file = FileRef {
            flags: 0,
            mode: None,
            target: None,
            owner: None,
            path: path.into(),
            old_path: None,
            write,
            typechar: 'f',
        };
        out.push(ev(
            kind,
            app_process("/app/server", &["/app/server"], "containerd-shim", &env),
            i,
            Some(file),
            None,
        ));
    }
    for i in 0..5 {
        let kind = if i % 2 == 0 {
            EventKind::Connect
        } else {
            EventKind::Listen
        };
        out.push(ev(
            kind,
            app_process("/app/server", &["/app/server"], "containerd-shim", &env),
            i,
            None,
            None,
        ));
    }
    // Suspicious: a drifted binary, a shell from the app, a package manager, an /etc write,
    // a preload.
    let mut p = app_process("/tmp/xmrig", &["/tmp/xmrig", "-o", "pool:3333"], "sh", &env);
    p.exe_upper_layer = true;
    let d = DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Binary,
        subject: DriftSubject::Exe,
        verdict: Verdict::Added,
        path: "/tmp/xmrig".into(),
        hash: None,
        image_hash: None,
        detail: None,
    };
    out.push(ev(EventKind::Execve, p, 0, None, Some(d)));
    out.push(ev(
        EventKind::Execve,
        app_process("/bin/sh", &["sh", "-c", "id"], "node", &env),
        1,
        None,
        None,
    ));
    out.push(ev(
        EventKind::Execve,
        app_process(
            "/usr/bin/apt-get",
            &["apt-get", "install", "nmap"],
            "bash",
            &env,
        ),
        2,
        None,
        None,
    ));
    let f = FileRef {
        flags: 0,
        mode: None,
        target: None,
        owner: None,
        path: "/etc/passwd".into(),
        old_path: None,
        write: true,
        typechar: 'f',
    };
    out.push(ev(
        EventKind::Open,
        app_process("/bin/sh", &["sh"], "node", &env),
        3,
        Some(f),
        None,
    ));
    // The preload rule fires on the agent's finding about the library, not on the variable.
    let preload = DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Binary,
        subject: DriftSubject::Preload,
        verdict: Verdict::Added,
        path: "/tmp/x.so".into(),
        hash: None,
        image_hash: None,
        detail: None,
    };
    out.push(ev(
        EventKind::Execve,
        app_process("/usr/bin/id", &["id"], "sh", &["LD_PRELOAD=/tmp/x.so"]),
        4,
        None,
        Some(preload),
    ));
    out
}

fn bench(c: &mut Criterion) {
    let rs = RuleSet::load(&default_sources()).unwrap().ruleset;
    let events = mix();
    let mut hits = Vec::with_capacity(16);
    let alerts: usize = events
        .iter()
        .map(|e| {
            rs.matches(e, &mut hits);
            hits.len()
        })
        .sum();
    assert_eq!(alerts, 5, "the mix has five suspicious events");

    let mut g = c.benchmark_group("default_ruleset");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("match_event_mix", |b| {
        b.iter(|| {
            let mut n = 0;
            for e in &events {
                rs.matches(black_box(e), &mut hits);
                n += hits.len();
            }
            black_box(n)
        })
    });
    g.finish();

    c.bench_function("load_and_compile_default_rules", |b| {
        let sources = default_sources();
        b.iter(|| black_box(RuleSet::load(black_box(&sources)).unwrap().ruleset.len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
