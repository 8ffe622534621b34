//! Evidence bundles: an archive an investigator can trust (diff, drifted files, processes,
//! sockets, config, alerts, sha256 manifest), taken without changing the container and while
//! it runs; and checking one. Used by `driftwatch capture` and the playbooks' `capture` action.

mod bundle;
mod procs;
mod sockets;

pub use bundle::{
    FORMAT, MANIFEST, MAX_MANIFEST_BYTES, Manifest, ManifestEntry, Verification, verify,
    verify_archive,
};

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use driftwatch_fs::{InContainer, Limit, Root};
use driftwatch_image::{
    ChangeKind, ContainerPath, DiffOptions, FileDiff, FileKind, Judge, name_fields,
};
use driftwatch_model::{ContainerMeta, OverlayLayers};
use driftwatch_runtime::MountTable;
use serde::Serialize;

use crate::report::{DiffReport, human_size};
use crate::target::{Target, container_pids};

/// How to capture.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Docker's (or podman's) API socket.
    pub docker_socket: PathBuf,
    /// Drifted files larger than this are listed, not stored (executables and libraries are
    /// always stored).
    pub max_file_size: u64,
    /// The agent's Falco JSON alert lines to take this container's alerts from.
    pub alerts: Option<PathBuf>,
    /// Keep at most this many of the container's most recent alerts.
    pub max_alerts: usize,
    /// Overwrite the output file if it exists.
    pub force: bool,
    /// Show the diff's progress on stderr when it takes a while.
    pub progress: bool,
    /// Entries the diff walks at most ([`DiffOptions::max_entries`]); the bundle says when
    /// the walk stopped there. The CLI takes the default; the agent's capture action a lower
    /// one ([`AGENT_CAPTURE_MAX_ENTRIES`]), since it runs inside the agent.
    pub max_entries: u64,
}

/// The capture action's walk cap inside the agent: the diff is held in memory (about 500
/// bytes an entry), so a container cannot make one capture cost the agent more than tens of
/// MiB by filling its writable layer with entries.
pub const AGENT_CAPTURE_MAX_ENTRIES: u64 = 100_000;

/// What a capture stored.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `name (short id)`.
    pub label: String,
    pub entries: usize,
    /// The bundle's own sha256.
    pub sha256: String,
    pub stored: usize,
    pub listed_only: usize,
    pub processes: usize,
    pub sockets: usize,
    pub alerts: usize,
    /// Problems the diff met (path: message), not fatal.
    pub warnings: Vec<String>,
}

/// `container.json`: the engine's record and raw inspect, and where the layers are.
#[derive(Serialize)]
struct ContainerDoc<'a> {
    id: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a ContainerMeta>,
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at_ns: Option<u64>,
    env: &'a [String],
    exposed_ports: &'a [String],
    layers: &'a OverlayLayers,
    layers_from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_problem: Option<&'a str>,
    /// The engine's whole answer (`docker inspect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    inspect: Option<&'a serde_json::Value>,
}

/// `files.json`: every drifted regular file and whether its bytes are in the bundle.
#[derive(Serialize)]
struct FileRecord<'a> {
    #[serde(flatten, serialize_with = "name_fields::path")]
    path: &'a ContainerPath,
    change: ChangeKind,
    size: Option<u64>,
    /// blake3 from the diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    blake3: Option<&'a str>,
    /// Where the bytes are in the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// Why the bytes are not in the bundle, or are incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// The image layer and package the file came from.
    #[serde(flatten)]
    provenance: &'a driftwatch_model::Provenance,
}

#[derive(Serialize)]
struct ProcessesDoc {
    /// Found by cgroup (`/proc/*/cgroup` naming the container).
    pids: Vec<u32>,
    processes: Vec<procs::ProcessInfo>,
}

#[derive(Serialize)]
struct SocketsDoc {
    /// The process whose network namespace was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_of_pid: Option<u32>,
    sockets: Vec<sockets::SocketInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

const README: &str = "driftwatch evidence bundle (format driftwatch-capture/1)

manifest.json   size and sha256 of every other file here (check: driftwatch capture --verify)
container.json  the engine's record and raw inspect, image identity, overlay layers
diff.json       the container's filesystem against its image (driftwatch diff --json)
files.json      every drifted regular file: stored here (sha256) or why not
files/...       the drifted files' bytes, at their container path (names escaped: \\n, \\xNN)
processes.json  the container's processes (pid, ppid, user, exe, exe sha256 and verdict, cmdline)
processes.txt   the same as a tree
sockets.json    TCP/UDP sockets of the container's network namespace, with owning pids
alerts.jsonl    the agent's recent Falco JSON alerts for this container
";

/// Captures `container` (a name, id or unique id prefix) into the bundle `out`, written to a
/// temporary sibling and renamed into place only when complete.
pub fn capture(container: &str, out: &Path, opts: &CaptureOptions) -> anyhow::Result<Summary> {
    if let Some(p) = &opts.alerts
        && !p.exists()
    {
        bail!("alerts file {}: does not exist", p.display());
    }
    let target = Target::resolve(container, &opts.docker_socket)?;
    let created = procs::now_rfc3339();
    // Hashes of every drifted file go into the evidence.
    let diff = target.diff(
        DiffOptions {
            max_entries: opts.max_entries,
            ..DiffOptions::default()
        },
        opts.progress,
    )?;
    let report = DiffReport::new(&target, &diff, None);
    let mut w = bundle::BundleWriter::create(out, opts.force)?;
    let result = write_bundle(opts, &target, &report, opts.alerts.as_deref(), &mut w);
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            w.abandon();
            return Err(e);
        }
    };
    let (entries, sha) = w.finish(created, target.id.to_string())?;
    summary.label = target.label();
    summary.entries = entries;
    summary.sha256 = sha;
    summary.warnings = report
        .truncated
        .iter()
        .map(|t| format!("diff {t}"))
        .chain(
            report
                .warnings
                .iter()
                .map(|w| format!("{}: {}", w.path, w.message)),
        )
        .collect();
    Ok(summary)
}

fn write_bundle(
    args: &CaptureOptions,
    target: &Target,
    report: &DiffReport<'_>,
    alerts_path: Option<&Path>,
    w: &mut bundle::BundleWriter,
) -> anyhow::Result<Summary> {
    let label = target.label();
    let mut summary = Summary::default();
    w.add_bytes("README.txt", README.as_bytes())?;
    let record = target.record.as_ref();
    w.add_json(
        "container.json",
        &ContainerDoc {
            id: target.id.to_string(),
            name: &target.name,
            meta: target.meta(),
            running: target.running(),
            pid: target.pid,
            started_at_ns: record.and_then(|r| r.started_at_ns),
            env: record.map(|r| r.env.as_slice()).unwrap_or_default(),
            exposed_ports: record
                .map(|r| r.exposed_ports.as_slice())
                .unwrap_or_default(),
            layers: &target.layers,
            layers_from: &target.layers_from,
            engine_problem: target.engine_problem.as_deref(),
            inspect: target.raw_inspect.as_ref(),
        },
    )?;
    w.add_json("diff.json", report)?;

    // The drifted files' bytes, read from the writable layer without following symlinks.
    let upper = Root::layer(label.as_str(), &target.layers.upper)?;
    let mut records = Vec::new();
    for f in report.files.iter().copied().filter(|f| drifted_file(f)) {
        let code = f.class.executable.is_some() || f.class.library;
        let size = f.size.unwrap_or(0);
        let mut rec = FileRecord {
            path: &f.path,
            change: f.change,
            size: f.size,
            blake3: f.hash.as_deref(),
            bundle_path: None,
            sha256: None,
            note: None,
            provenance: &f.provenance,
        };
        if !code && size > args.max_file_size {
            rec.note = Some(format!(
                "not stored: {} is over the {} cap (--max-file-size)",
                human_size(size),
                human_size(args.max_file_size)
            ));
            summary.listed_only += 1;
            records.push(rec);
            continue;
        }
        match upper.open(&InContainer::new(f.path.as_path().as_os_str())) {
            Ok(file) => {
                let (size, mode) = (file.size(), file.mode());
                let file = file.into_file();
                let name = format!("files{}", f.path.escaped());
                let stored = w.add_reader(&name, size, mode, file)?;
                rec.size = Some(size);
                rec.sha256 = Some(stored.sha256);
                rec.note = match (stored.read_error, stored.short_read) {
                    (Some(e), _) => Some(format!("read failed part-way ({e}); the rest is zeros")),
                    (None, true) => Some("shrank while read; the rest is zeros".into()),
                    _ => None,
                };
                rec.bundle_path = Some(name);
                summary.stored += 1;
            }
            Err(e) => {
                rec.note = Some(format!("not stored: {e} (changed since the diff?)"));
                summary.listed_only += 1;
            }
        }
        records.push(rec);
    }
    w.add_json("files.json", &records)?;

    // Processes and sockets, when it runs.
    let pids = container_pids(&target.id);
    if !pids.is_empty() {
        let mounts = driftwatch_fs::host::proc_string(pids[0], "mountinfo")
            .ok()
            .and_then(|t| MountTable::parse(&t).ok());
        let judge = Judge::new();
        let processes =
            procs::read_processes(&label, &pids, &target.layers, mounts.as_ref(), &judge);
        summary.processes = processes.len();
        w.add_bytes("processes.txt", process_tree(&processes).as_bytes())?;
        w.add_json(
            "processes.json",
            &ProcessesDoc {
                pids: pids.clone(),
                processes,
            },
        )?;
        let (sockets, problems) = sockets::read_sockets(pids[0], &pids);
        summary.sockets = sockets.len();
        w.add_json(
            "sockets.json",
            &SocketsDoc {
                netns_of_pid: Some(pids[0]),
                sockets,
                problems,
            },
        )?;
    } else {
        w.add_bytes("processes.txt", b"(not running: no processes)\n")?;
        w.add_json(
            "processes.json",
            &ProcessesDoc {
                pids: Vec::new(),
                processes: Vec::new(),
            },
        )?;
        w.add_json(
            "sockets.json",
            &SocketsDoc {
                netns_of_pid: None,
                sockets: Vec::new(),
                problems: vec!["not running: no network namespace".into()],
            },
        )?;
    }

    let alerts = match alerts_path {
        Some(p) => read_alerts(p, target.id.short(), args.max_alerts)?,
        None => Vec::new(),
    };
    summary.alerts = alerts.len();
    let mut text = String::new();
    for a in &alerts {
        text.push_str(a);
        text.push('\n');
    }
    w.add_bytes("alerts.jsonl", text.as_bytes())?;
    Ok(summary)
}

/// Added or modified regular files: the bytes that are not the image's.
fn drifted_file(f: &FileDiff) -> bool {
    f.kind == FileKind::File && matches!(f.change, ChangeKind::Added | ChangeKind::Modified)
}

/// Reads a file inside a running container's root, resolving symlinks inside that root
/// (never the host's), refusing anything but a regular file, at most `cap` bytes.
pub fn read_in_container_root(
    container: &str,
    pid: u32,
    path: &str,
    cap: u64,
) -> Result<Vec<u8>, driftwatch_fs::FsError> {
    Root::of_process(container, pid)?.read(&InContainer::from(path), Limit::Whole(cap))
}

/// The container's alerts (by `output_fields."container.id"`, the short id) from a Falco
/// JSON lines file, the most recent `max` of them, as written.
fn read_alerts(path: &Path, short_id: &str, max: usize) -> anyhow::Result<Vec<String>> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the agent's alerts file, a path the user gave"
    )]
    let f = File::open(path).with_context(|| format!("alerts file {}", path.display()))?;
    let mut keep = VecDeque::new();
    for line in BufReader::new(f).split(b'\n') {
        let line = line.with_context(|| format!("reading alerts file {}", path.display()))?;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue; // a line being written, or not an alert
        };
        let id = v["output_fields"]["container.id"]
            .as_str()
            .unwrap_or_default();
        if !id.is_empty() && (id == short_id || id.starts_with(short_id)) {
            keep.push_back(v.to_string());
            if keep.len() > max {
                keep.pop_front();
            }
        }
    }
    Ok(keep.into())
}

/// The processes as an indented tree, parents before children.
fn process_tree(ps: &[procs::ProcessInfo]) -> String {
    let pids: std::collections::BTreeSet<u32> = ps.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<u32, Vec<&procs::ProcessInfo>> = BTreeMap::new();
    let mut roots = Vec::new();
    for p in ps {
        if pids.contains(&p.ppid) && p.ppid != p.pid {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    let mut out = String::from("PID (host/container) USER VERDICT EXE -- CMDLINE\n");
    fn walk(
        p: &procs::ProcessInfo,
        depth: usize,
        children: &BTreeMap<u32, Vec<&procs::ProcessInfo>>,
        out: &mut String,
    ) {
        if depth > 64 {
            return;
        }
        let user = p
            .user
            .clone()
            .or(p.uid.map(|u| u.to_string()))
            .unwrap_or_else(|| "?".into());
        let verdict = p.exe_verdict.map(|v| v.as_str()).unwrap_or("-");
        let cmd: Vec<String> = p
            .cmdline
            .iter()
            .map(|a| a.escape_debug().to_string())
            .collect();
        out.push_str(&format!(
            "{}{}/{} {user} {verdict} {} -- {}\n",
            "  ".repeat(depth),
            p.pid,
            p.ns_pid
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            p.exe
                .as_deref()
                .map_or("-".into(), |e| driftwatch_fs::escape(
                    e.as_os_str().as_bytes()
                )),
            cmd.join(" ")
        ));
        for c in children.get(&p.pid).into_iter().flatten() {
            walk(c, depth + 1, children, out);
        }
    }
    for r in roots {
        walk(r, 0, &children, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_for_one_container() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(
            &p,
            concat!(
                r#"{"rule":"r1","output_fields":{"container.id":"aaaaaaaaaaaa"}}"#,
                "\n",
                r#"{"rule":"r2","output_fields":{"container.id":"bbbbbbbbbbbb"}}"#,
                "\nnot json\n",
                r#"{"rule":"r3","output_fields":{"container.id":"aaaaaaaaaaaa"}}"#,
                "\n",
                r#"{"rule":"r4","output_fields":{"container.id":"aaaaaaaaaaaa"}}"#,
                "\n",
            ),
        )
        .unwrap();
        let a = read_alerts(&p, "aaaaaaaaaaaa", 2).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a[0].contains("r3") && a[1].contains("r4"), "{a:?}");
    }
}
