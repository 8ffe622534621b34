//! What Falco's upstream rules cost per event: the rules engine's evaluation time for one
//! event of each kind (exec, file create, file write, connect, listen), with the default rules
//! alone and with the defaults plus falcosecurity/rules' stable, incubating and sandbox files
//! loaded in Falco's order, as ns per event (median of rounds) and their ratio, in one run.
//!
//! `cargo bench -p driftwatch-rules --bench falco_cost` (release; `-- --rounds 31` for more).
//! Timings are printed, never asserted.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

mod bench_process;

use bench_process::app_process;
use driftwatch_model::{
    ContainerId, ContainerMeta, Engine, Event, EventKind, FileRef, ImageRef, KubernetesMeta,
    NetRef, Process,
};
use driftwatch_rules::{RuleIdx, RuleSet, Source};

const UPSTREAM: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

const O_WRONLY: u32 = 0o1;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;

fn container() -> Arc<ContainerMeta> {
    Arc::new(ContainerMeta {
        privileged: Some(false),
        mounts: Vec::new(),
        started_ns: Some(1_795_852_000_000_000_000),
        id: ContainerId::new(&format!("{:064x}", 7)).unwrap(),
        engine: Engine::Containerd,
        name: "app".into(),
        image: ImageRef::parse("registry.example.com/team/app:1.4.2@sha256:0123"),
        labels: BTreeMap::new(),
        k8s: Some(KubernetesMeta {
            namespace: "prod".into(),
            pod_name: "app-0".into(),
            pod_uid: "uid-1".into(),
            container_name: "app".into(),
            labels: BTreeMap::from([("app".to_string(), "app".to_string())]),
        }),
        entrypoint: vec!["/app/server".into()],
    })
}

/// A process with the facts the agent fills (parent argv, ancestors, login uid, sessions).
fn process(exe: &str, argv: &[&str]) -> Process {
    let env = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/app"];
    Process {
        ancestors: vec!["server".into(), "containerd-shim".into(), "systemd".into()],
        ancestor_pids: vec![1200, 900, 1],
        ancestor_exepaths: vec![
            "/app/server".into(),
            "/usr/bin/containerd-shim-runc-v2".into(),
            "/usr/lib/systemd/systemd".into(),
        ],
        pexepath: "/app/server".into(),
        pargv: vec!["/app/server".into(), "--port".into(), "8080".into()],
        loginuid: Some(u32::MAX),
        vpid: Some(12),
        sid: Some(1),
        vpgid: Some(12),
        ..app_process(exe, argv, "server", &env)
    }
}

fn event(kind: EventKind, p: Process, file: Option<FileRef>, net: Option<NetRef>) -> Event {
    Event {
        num: 1,
        time_ns: 1_795_852_800_000_000_000,
        kind,
        process: p,
        container: Some(container()),
        file,
        net,
        drift: None,
    }
}

fn file(path: &str, flags: u32) -> FileRef {
    FileRef {
        flags,
        mode: Some(0o644),
        target: None,
        owner: None,
        path: path.into(),
        old_path: None,
        write: true,
        typechar: 'f',
    }
}

/// One benign event per kind, as the agent reports it in a container.
fn events() -> Vec<(&'static str, Event)> {
    let server = || process("/app/server", &["/app/server", "--port", "8080"]);
    let net = |local_port, remote_ip: &str, remote_port| NetRef {
        l4proto: "tcp".into(),
        local_ip: "10.1.2.3".into(),
        local_port,
        remote_ip: remote_ip.into(),
        remote_port,
    };
    vec![
        (
            "exec",
            event(
                EventKind::Execve,
                process(
                    "/usr/bin/python3",
                    &["python3", "/app/worker.py", "--queue", "jobs"],
                ),
                None,
                None,
            ),
        ),
        (
            "file create",
            event(
                EventKind::Creat,
                server(),
                Some(file("/tmp/upload-1234", O_WRONLY | O_CREAT | O_TRUNC)),
                None,
            ),
        ),
        (
            "file write",
            event(
                EventKind::Open,
                server(),
                Some(file("/var/log/app/app.log", O_WRONLY | O_APPEND)),
                None,
            ),
        ),
        (
            "connect",
            event(
                EventKind::Connect,
                server(),
                None,
                Some(net(40000, "10.1.9.9", 5432)),
            ),
        ),
        (
            "listen",
            event(EventKind::Listen, server(), None, Some(net(8080, "", 0))),
        ),
    ]
}

fn upstream_sources() -> Vec<Source> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/falcosecurity-rules/"
    );
    UPSTREAM
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(format!("{dir}{f}"))
                .unwrap_or_else(|e| panic!("{dir}{f}: {e}"));
            Source::new(*f, text)
        })
        .collect()
}

/// ns per `matches` call on `e`, over `iters` calls.
fn time(rs: &RuleSet, e: &Event, iters: u32, hits: &mut Vec<RuleIdx>) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        rs.matches(black_box(e), hits);
        black_box(hits.len());
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Rules that could be evaluated for `e` (enabled, active, of its kind): what the engine walks.
fn candidates(rs: &RuleSet, kind: EventKind) -> usize {
    let probe_kind = kind.as_str();
    rs.rules()
        .filter(|(_, r)| r.enabled && r.active)
        .filter(|(_, r)| r.event_types.contains(&probe_kind))
        .count()
}

fn main() {
    // `cargo bench` passes `--bench`; our own flag is `--rounds N`.
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(15usize)
        .max(1);
    let iters = 20_000u32;
    if args.iter().any(|a| a == "--by-rule") {
        by_rule(iters);
        return;
    }

    let defaults = RuleSet::load_with_defaults(&[]).unwrap().ruleset;
    let t = Instant::now();
    let upstream = RuleSet::load_with_defaults(&upstream_sources())
        .unwrap()
        .ruleset;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "rules: defaults {}, defaults + upstream (stable, incubating, sandbox) {} (load + compile {load_ms:.1} ms)",
        defaults.len(),
        upstream.len()
    );
    println!("{rounds} rounds of {iters} evaluations per event; medians\n");
    println!(
        "| event | defaults ns/event | + upstream ns/event | ratio | rules of its kind (defaults / + upstream) | matched (+ upstream) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    let mut hits = Vec::with_capacity(64);
    for (what, e) in events() {
        // Warm up both (thread-local scratch grows to its working size).
        time(&defaults, &e, iters / 10, &mut hits);
        time(&upstream, &e, iters / 10, &mut hits);
        let (mut d, mut u) = (Vec::new(), Vec::new());
        // Alternate the two sets so drift in machine load hits both alike.
        for _ in 0..rounds {
            d.push(time(&defaults, &e, iters, &mut hits));
            u.push(time(&upstream, &e, iters, &mut hits));
        }
        upstream.matches(&e, &mut hits);
        let matched: Vec<&str> = hits
            .iter()
            .map(|i| upstream.rule(*i).name.as_str())
            .collect();
        let (d, u) = (median(d), median(u));
        println!(
            "| {what} | {d:.0} | {u:.0} | x{:.2} | {} / {} | {} |",
            u / d,
            candidates(&defaults, e.kind),
            candidates(&upstream, e.kind),
            if matched.is_empty() {
                "none".to_string()
            } else {
                matched.join(", ")
            }
        );
    }
}

/// `--by-rule`: each enabled upstream rule alone (every other rule disabled by a tuning file,
/// as a user would), its cost per event of each kind above the defaults' own; the costliest
/// first. To find what dominates.
fn by_rule(iters: u32) {
    let base = upstream_sources();
    let all = RuleSet::load_with_defaults(&base).unwrap().ruleset;
    let names: Vec<String> = all
        .rules()
        .filter(|(_, r)| r.enabled && r.active)
        .map(|(_, r)| r.name.clone())
        .collect();
    let evs = events();
    let mut hits = Vec::with_capacity(64);
    let mut rows = Vec::new();
    for keep in &names {
        let mut tuning = String::new();
        for n in names.iter().filter(|n| *n != keep) {
            tuning.push_str(&format!(
                "- rule: {}\n  enabled: false\n",
                serde_json::to_string(n).unwrap()
            ));
        }
        let mut sources = base.clone();
        sources.push(Source::new("only.yaml", tuning));
        let rs = RuleSet::load_with_defaults(&sources).unwrap().ruleset;
        for (what, e) in &evs {
            let ns = median(
                (0..5)
                    .map(|_| time(&rs, e, iters / 10, &mut hits))
                    .collect(),
            );
            rows.push((ns, *what, keep.clone()));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ns, what, name) in rows.iter().take(25) {
        println!("{ns:8.0} ns  {what:12} {name}");
    }
}
