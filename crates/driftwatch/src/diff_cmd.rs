//! `driftwatch diff CONTAINER`: what a container changed compared with its image, as a
//! grouped table or JSON, with exit status 0 (no drift), 1 (drift) or 2 (error).
//!
//! Also home of [`Target`]: finding a container by name or id and its overlay layers, which
//! `driftwatch capture` shares. Layers come from the kernel's record of the root mount
//! (`/proc/<pid>/mountinfo`, any engine) when the container runs, else from the engine.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use driftwatch_image::{
    ChangeKind, ContainerPath, Diff, DiffError, DiffOptions, DiffStats, DiffWarning, Differ,
    FileDiff, FileKind, MetadataChange, PackageChange, PackageChangeKind,
};
use driftwatch_model::{ContainerId, ContainerMeta, OverlayLayers};
use driftwatch_runtime::{
    ContainerRecord, DockerConfig, DockerSource, EngineSource, MountTable,
    container_from_proc_cgroup, resolve_layer_paths,
};
use serde::Serialize;

/// Docker's overlay2 home, for layer paths it writes relative to it in mount options.
const DOCKER_OVERLAY_HOME: &str = "/var/lib/docker/overlay2";
/// How long the engine may take to answer one question.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Progress shows once a walk has taken this long (small containers print nothing).
const PROGRESS_AFTER: Duration = Duration::from_millis(500);

/// Exit status: something drifted.
pub const EXIT_DRIFT: i32 = 1;
/// Exit status: the diff could not be made.
pub const EXIT_ERROR: i32 = 2;

#[derive(clap::Args)]
pub struct DiffArgs {
    /// Container name, id or unique id prefix; running or stopped.
    container: String,
    /// One JSON object on stdout: `files` (path, change, kind, classes, hashes...),
    /// `packages`, `counts`, `warnings`.
    #[arg(long)]
    json: bool,
    /// Only this class of paths: `executables` (ELF, scripts, shared libraries),
    /// `packages` (package databases and the package-level diff), `config` (under /etc).
    /// The exit status then says whether this class drifted.
    #[arg(long, value_enum, value_name = "CLASS")]
    only: Option<Only>,
    /// Also list copy-ups that changed nothing and directories changed only by their entries
    /// (the JSON output always has every path).
    #[arg(long)]
    all: bool,
    /// Do not hash added files (files also in the image are still hashed: that is how a
    /// copy-up is told from a modification). Faster on cold caches; no `hash` for them.
    #[arg(long)]
    no_hash_added: bool,
    /// Docker's (or podman's) API socket, for names, image identity and stopped containers.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
}

/// A class of paths `--only` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    Executables,
    Packages,
    Config,
}

pub fn run(args: DiffArgs) -> anyhow::Result<i32> {
    match diff(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("driftwatch diff: {e:#}");
            Ok(EXIT_ERROR)
        }
    }
}

fn diff(args: &DiffArgs) -> anyhow::Result<i32> {
    let target = Target::resolve(&args.container, &args.docker_socket)?;
    let options = DiffOptions {
        hash_added: !args.no_hash_added,
        ..DiffOptions::default()
    };
    let diff = target.diff(options, std::io::stderr().is_terminal())?;
    let report = DiffReport::new(&target, &diff, args.only);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &report).context("writing JSON")?;
        writeln!(out).context("writing JSON")?;
    } else {
        report.write_table(&mut out, args.all).context("writing")?;
        for w in report.warnings {
            eprintln!("driftwatch diff: warning: {}: {}", w.path, w.message);
        }
    }
    out.flush().context("writing")?;
    Ok(if report.drifted { EXIT_DRIFT } else { 0 })
}

/// A container found by name or id, with the overlay layers its root filesystem is made of.
pub struct Target {
    pub id: ContainerId,
    /// Without Docker's leading `/`; empty when no engine named it.
    pub name: String,
    /// What the engine says, when one answered.
    pub record: Option<ContainerRecord>,
    /// The engine's whole inspect answer (`docker inspect`), when one answered.
    pub raw_inspect: Option<serde_json::Value>,
    /// A live process of the container (its init when the engine said), when it runs.
    pub pid: Option<u32>,
    pub layers: OverlayLayers,
    /// Where the layers came from: `/proc/<pid>/mountinfo` or the engine's record.
    pub layers_from: String,
    /// Why the engine did not answer, when it did not.
    pub engine_problem: Option<String>,
    docker_socket: PathBuf,
}

/// What the engine said about a name or id.
enum EngineLookup {
    Found {
        raw: Box<bollard::models::ContainerInspectResponse>,
        record: Option<Box<ContainerRecord>>,
    },
    NotFound,
    Unavailable(String),
}

impl Target {
    /// Finds `arg` (a name, an id or a unique id prefix): the engine first, then, for a
    /// running container of any engine, the cgroups of the host's processes.
    pub fn resolve(arg: &str, docker_socket: &Path) -> anyhow::Result<Target> {
        let valid = !arg.is_empty()
            && arg.len() <= 256
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            bail!("{arg:?} is not a container name or id");
        }
        let lookup = engine_lookup(arg, docker_socket);
        let (id, name, record, raw, engine_problem) = match lookup {
            EngineLookup::Found { raw, record } => {
                let id = raw
                    .id
                    .as_deref()
                    .and_then(|i| ContainerId::new(i).ok())
                    .ok_or_else(|| anyhow!("container {arg}: the engine's answer has no id"))?;
                let name = raw
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                let raw = serde_json::to_value(&*raw).ok();
                (id, name, record.map(|r| *r), raw, None)
            }
            other => {
                let problem = match other {
                    EngineLookup::Unavailable(why) => Some(why),
                    _ => None,
                };
                let id = find_running_by_prefix(arg).map_err(|e| match &problem {
                    Some(why) => anyhow!("{e} ({why})"),
                    None => e,
                })?;
                (id, String::new(), None, None, problem)
            }
        };
        let label = label(&id, &name);
        let running_pid = record
            .as_ref()
            .filter(|r| r.running)
            .and_then(|r| r.pid)
            .filter(|p| Path::new(&format!("/proc/{p}")).exists());
        let pid = running_pid.or_else(|| container_pids(&id).into_iter().next());
        let (layers, layers_from) = match pid {
            Some(pid) => match layers_from_proc(pid) {
                Ok(l) => (l, format!("/proc/{pid}/mountinfo")),
                Err(LayersProblem::NotOverlay(fstype)) => bail!(
                    "container {label}: its root filesystem is {fstype}, not overlay: driftwatch \
                     diff needs overlay storage (Docker's overlay2, containerd's overlayfs)"
                ),
                Err(LayersProblem::Unreadable(why)) => {
                    match record.as_ref().and_then(|r| r.layers.clone()) {
                        Some(l) => (l, "the engine's record".to_string()),
                        None => bail!("container {label}: {why}"),
                    }
                }
            },
            None => match record.as_ref().and_then(|r| r.layers.clone()) {
                Some(l) => (l, "the engine's record (not running)".to_string()),
                None => {
                    let driver = raw
                        .as_ref()
                        .and_then(|r| r["GraphDriver"]["Name"].as_str())
                        .unwrap_or("unknown");
                    bail!(
                        "container {label}: storage driver {driver}, not overlay: driftwatch \
                         diff needs overlay storage (Docker's overlay2)"
                    )
                }
            },
        };
        Ok(Target {
            id,
            name,
            record,
            raw_inspect: raw,
            pid,
            layers,
            layers_from,
            engine_problem,
            docker_socket: docker_socket.to_path_buf(),
        })
    }

    /// `name (short id)`, or the short id alone.
    pub fn label(&self) -> String {
        label(&self.id, &self.name)
    }

    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    pub fn meta(&self) -> Option<&ContainerMeta> {
        self.record.as_ref().map(|r| &r.meta)
    }

    /// Diffs the writable layer against the image's, showing progress on stderr when
    /// `progress` and the walk takes a while. Reads only.
    pub fn diff(&self, options: DiffOptions, progress: bool) -> anyhow::Result<Diff> {
        let start = Instant::now();
        let shown = Mutex::new(None::<Instant>);
        let show = |s: &DiffStats| {
            if start.elapsed() < PROGRESS_AFTER {
                return;
            }
            let mut last = shown.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
                return;
            }
            *last = Some(Instant::now());
            eprint!(
                "\r\x1b[Kdiffing {}: {} entries, {} changes, {} MB hashed",
                self.label(),
                s.entries,
                s.changes,
                s.bytes_hashed >> 20
            );
        };
        let mut differ = Differ::new(&self.layers).options(options);
        if progress {
            differ = differ.progress(&show);
        }
        let result = differ.run();
        if shown.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            eprint!("\r\x1b[K");
        }
        let diff = result.map_err(|e| match e {
            DiffError::LayerVanished { host } => anyhow!(
                "container {}: layer directory {} vanished during the diff (container removed?)",
                self.label(),
                host.display()
            ),
            DiffError::Io(e) => anyhow!("container {}: {e}", self.label()),
        })?;
        self.check_still_there()?;
        Ok(diff)
    }

    /// A container removed while its layer was read leaves a walk that met empty
    /// directories, not errors: ask again once done. Docker marks a container `removing`
    /// before it deletes the layer, so a removal that began during the walk shows here.
    fn check_still_there(&self) -> anyhow::Result<()> {
        let vanished = || {
            anyhow!(
                "container {}: removed during the diff (layer directory {} is going away); the result would be incomplete",
                self.label(),
                self.layers.upper.display()
            )
        };
        if std::fs::symlink_metadata(&self.layers.upper).is_err() {
            return Err(vanished());
        }
        if self.raw_inspect.is_none() {
            return Ok(());
        }
        match engine_lookup(self.id.as_str(), &self.docker_socket) {
            EngineLookup::NotFound => Err(vanished()),
            EngineLookup::Found { raw, .. } => {
                use bollard::models::ContainerStateStatusEnum as S;
                match raw.state.and_then(|s| s.status) {
                    Some(S::REMOVING | S::DEAD) => Err(vanished()),
                    _ => Ok(()),
                }
            }
            // The engine went away meanwhile: the layer directory is still there.
            EngineLookup::Unavailable(_) => Ok(()),
        }
    }
}

fn label(id: &ContainerId, name: &str) -> String {
    if name.is_empty() {
        id.short().to_string()
    } else {
        format!("{name} ({})", id.short())
    }
}

fn engine_lookup(arg: &str, socket: &Path) -> EngineLookup {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return EngineLookup::Unavailable(format!("tokio runtime: {e}")),
    };
    rt.block_on(async {
        let socket_s = socket.to_string_lossy();
        let docker = match bollard::Docker::connect_with_unix(
            &socket_s,
            ENGINE_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        ) {
            Ok(d) => d,
            Err(e) => {
                return EngineLookup::Unavailable(format!(
                    "docker: cannot connect to {}: {e}",
                    socket.display()
                ));
            }
        };
        let inspect = tokio::time::timeout(ENGINE_TIMEOUT, docker.inspect_container(arg, None));
        let raw = match inspect.await {
            Err(_) => {
                return EngineLookup::Unavailable(format!(
                    "docker: no answer at {} within {} s",
                    socket.display(),
                    ENGINE_TIMEOUT.as_secs()
                ));
            }
            Ok(Ok(raw)) => raw,
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => return EngineLookup::NotFound,
            Ok(Err(e)) => {
                return EngineLookup::Unavailable(format!(
                    "docker at {}: {}",
                    socket.display(),
                    innermost(&e)
                ));
            }
        };
        let record = match raw.id.as_deref().map(ContainerId::new) {
            Some(Ok(id)) => {
                let source = DockerSource::new(DockerConfig {
                    socket: socket.to_path_buf(),
                    timeout: ENGINE_TIMEOUT,
                    ..DockerConfig::default()
                });
                source.inspect(&id).await.ok().map(Box::new)
            }
            _ => None,
        };
        EngineLookup::Found {
            raw: Box::new(raw),
            record,
        }
    })
}

/// The last error in a source chain: the OS's reason rather than "client error (Connect)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Every running container on this host by its cgroup, with its processes' pids (sorted,
/// so the first is the oldest still-running pid, usually the init).
pub fn running_containers() -> BTreeMap<ContainerId, Vec<u32>> {
    let mut out: BTreeMap<ContainerId, Vec<u32>> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that exits while we look is simply not listed.
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            continue;
        };
        if let Some(m) = container_from_proc_cgroup(&text) {
            out.entry(m.id).or_default().push(pid);
        }
    }
    for pids in out.values_mut() {
        pids.sort_unstable();
    }
    out
}

/// The pids of a running container's processes (empty when it does not run).
pub fn container_pids(id: &ContainerId) -> Vec<u32> {
    running_containers().remove(id).unwrap_or_default()
}

fn find_running_by_prefix(prefix: &str) -> anyhow::Result<ContainerId> {
    let lower = prefix.to_ascii_lowercase();
    let matches: Vec<ContainerId> = running_containers()
        .into_keys()
        .filter(|id| id.as_str().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no such container: {prefix}"),
        many => bail!(
            "container id prefix {prefix} is ambiguous: {}",
            many.iter()
                .map(|i| i.short().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

enum LayersProblem {
    NotOverlay(String),
    Unreadable(String),
}

/// The root overlay's layers from the kernel's mount table of a container process.
fn layers_from_proc(pid: u32) -> Result<OverlayLayers, LayersProblem> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LayersProblem::Unreadable(format!("{path}: {e}")))?;
    let table =
        MountTable::parse(&text).map_err(|e| LayersProblem::Unreadable(format!("{path}: {e}")))?;
    match table.root_overlay() {
        Some(l) => resolve_layer_paths(&l, Path::new(DOCKER_OVERLAY_HOME))
            .map_err(|e| LayersProblem::Unreadable(format!("layer directory {e}"))),
        None => {
            let fstype = table
                .find("/")
                .map(|m| {
                    if m.fstype == "overlay" {
                        "a read-only overlay".to_string()
                    } else {
                        m.fstype.clone()
                    }
                })
                .unwrap_or_else(|| "not in its mount table".to_string());
            Err(LayersProblem::NotOverlay(fstype))
        }
    }
}

/// The container as a report names it.
#[derive(Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub running: bool,
    pub layers_from: String,
}

impl ContainerInfo {
    pub fn of(t: &Target) -> ContainerInfo {
        ContainerInfo {
            id: t.id.to_string(),
            name: t.name.clone(),
            image: t.meta().map(|m| m.image.display_name()).unwrap_or_default(),
            image_id: t.meta().and_then(|m| m.image.id.clone()),
            running: t.running(),
            layers_from: t.layers_from.clone(),
        }
    }
}

/// Counts of a (filtered) diff.
#[derive(Serialize, Default)]
pub struct Counts {
    pub added: u64,
    pub deleted: u64,
    pub modified: u64,
    pub metadata: u64,
    pub unchanged: u64,
    pub executables: u64,
    pub libraries: u64,
    pub package_dbs: u64,
    pub config: u64,
    pub packages: u64,
}

/// What `driftwatch diff --json` prints and `driftwatch capture` stores as `diff.json`.
#[derive(Serialize)]
pub struct DiffReport<'a> {
    pub container: ContainerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<Only>,
    /// Anything in this (filtered) view drifted: the exit status is 1.
    pub drifted: bool,
    pub counts: Counts,
    /// Sorted by path bytes.
    pub files: Vec<&'a FileDiff>,
    pub packages: Vec<&'a PackageChange>,
    pub unparsed_package_dbs: &'a [ContainerPath],
    pub warnings: &'a [DiffWarning],
    pub stats: DiffStats,
}

/// True when `--only` keeps this path.
fn keep(f: &FileDiff, only: Option<Only>) -> bool {
    match only {
        None => true,
        Some(Only::Executables) => f.class.executable.is_some() || f.class.library,
        Some(Only::Packages) => f.class.package_db.is_some(),
        Some(Only::Config) => f.class.config,
    }
}

/// A directory listed only because entries inside it changed (or its times moved with
/// them): `docker diff` lists it, the table hides it unless `--all`.
fn is_parent_only(f: &FileDiff) -> bool {
    f.kind == FileKind::Dir
        && matches!(f.change, ChangeKind::Modified | ChangeKind::Metadata)
        && f.image_kind.is_none()
        && f.metadata.is_none_or(|m| !m.mode_or_owner())
}

impl<'a> DiffReport<'a> {
    pub fn new(target: &Target, diff: &'a Diff, only: Option<Only>) -> DiffReport<'a> {
        let files: Vec<&FileDiff> = diff.files.iter().filter(|f| keep(f, only)).collect();
        let packages: Vec<&PackageChange> = match only {
            None | Some(Only::Packages) => diff.packages.iter().collect(),
            _ => Vec::new(),
        };
        let mut c = Counts::default();
        for f in &files {
            match f.change {
                ChangeKind::Added => c.added += 1,
                ChangeKind::Deleted => c.deleted += 1,
                ChangeKind::Modified => c.modified += 1,
                ChangeKind::Metadata => c.metadata += 1,
                ChangeKind::Unchanged => c.unchanged += 1,
            }
            if f.change.is_drift() {
                c.executables += u64::from(f.class.executable.is_some());
                c.libraries += u64::from(f.class.library);
                c.package_dbs += u64::from(f.class.package_db.is_some());
                c.config += u64::from(f.class.config);
            }
        }
        c.packages = packages.len() as u64;
        let drifted = files.iter().any(|f| f.change.is_drift()) || !packages.is_empty();
        DiffReport {
            container: ContainerInfo::of(target),
            only,
            drifted,
            counts: c,
            files,
            packages,
            unparsed_package_dbs: &diff.unparsed_package_dbs,
            warnings: &diff.warnings,
            stats: diff.stats,
        }
    }

    /// The readable view: one group per kind of change, with counts.
    pub fn write_table(&self, out: &mut dyn Write, all: bool) -> std::io::Result<()> {
        let c = &self.container;
        let who = if c.name.is_empty() {
            c.id[..12].to_string()
        } else {
            format!("{} ({})", c.name, &c.id[..12])
        };
        let image = if c.image.is_empty() {
            String::new()
        } else {
            format!(", image {}", c.image)
        };
        let state = if c.running { "running" } else { "not running" };
        writeln!(
            out,
            "container {who}{image}, {state}; layers from {}",
            c.layers_from
        )?;
        if let Some(only) = self.only {
            writeln!(out, "only: {}", format!("{only:?}").to_lowercase())?;
        }
        // Entries of deleted directories are listed in JSON; here, counted under the
        // directory docker lists.
        let mut inside: HashMap<&ContainerPath, u64> = HashMap::new();
        for f in &self.files {
            if let Some(w) = &f.deleted_with {
                *inside.entry(w).or_default() += 1;
            }
        }
        let shown = |f: &&&FileDiff| {
            f.deleted_with.is_none()
                && (all || (f.change != ChangeKind::Unchanged && !is_parent_only(f)))
        };
        let rows: Vec<&&FileDiff> = self.files.iter().filter(shown).collect();
        let width = rows
            .iter()
            .map(|f| display_path(f).chars().count())
            .max()
            .unwrap_or(0)
            .min(60);
        let groups = [
            (ChangeKind::Added, "Added"),
            (
                ChangeKind::Modified,
                "Modified (content differs from the image)",
            ),
            (ChangeKind::Metadata, "Metadata only (same content)"),
            (ChangeKind::Deleted, "Deleted"),
            (ChangeKind::Unchanged, "Copied up, unchanged (not drift)"),
        ];
        for (kind, title) in groups {
            let group: Vec<&&&FileDiff> = rows.iter().filter(|f| f.change == kind).collect();
            if group.is_empty() {
                continue;
            }
            writeln!(out, "\n{title} ({})", group.len())?;
            for f in group {
                let path = display_path(f);
                let pad = width.saturating_sub(path.chars().count());
                let mut cols = vec![kind_tags(f)];
                let detail = detail(f, inside.get(&f.path).copied());
                if !detail.is_empty() {
                    cols.push(detail);
                }
                writeln!(out, "  {path}{}  {}", " ".repeat(pad), cols.join("  "))?;
            }
        }
        if !self.packages.is_empty() {
            writeln!(out, "\nPackages ({})", self.packages.len())?;
            for p in &self.packages {
                let arch = p
                    .arch
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                let version = match (p.change, &p.image_version, &p.version) {
                    (PackageChangeKind::Changed, Some(a), Some(b)) => format!("{a} -> {b}"),
                    (_, _, Some(v)) | (_, Some(v), None) => v.clone(),
                    _ => String::new(),
                };
                let change = match p.change {
                    PackageChangeKind::Added => "added",
                    PackageChangeKind::Removed => "removed",
                    PackageChangeKind::Changed => "changed",
                };
                writeln!(
                    out,
                    "  {:<6} {:<7} {}{arch} {version}   in {}",
                    p.ecosystem.as_str(),
                    change,
                    p.name,
                    p.location
                )?;
            }
        }
        for db in self.unparsed_package_dbs {
            writeln!(out, "  (package database {db} changed; not parsed)")?;
        }
        let n = &self.counts;
        let listed = |k: ChangeKind| rows.iter().filter(|f| f.change == k).count();
        let mut summary = vec![
            format!("{} added", listed(ChangeKind::Added)),
            format!("{} modified", listed(ChangeKind::Modified)),
            format!("{} metadata only", listed(ChangeKind::Metadata)),
            format!("{} deleted", listed(ChangeKind::Deleted)),
        ];
        let within: u64 = inside.values().sum();
        if within > 0 {
            summary.push(format!("{within} entries inside deleted directories"));
        }
        if n.unchanged > 0 && !all {
            summary.push(format!(
                "{} unchanged copy-ups not listed (not drift; --all lists them)",
                n.unchanged
            ));
        }
        let hidden_parents = self
            .files
            .iter()
            .filter(|f| is_parent_only(f) && !all)
            .count();
        if hidden_parents > 0 {
            summary.push(format!(
                "{hidden_parents} parent directories not listed (--all lists them)"
            ));
        }
        writeln!(out)?;
        writeln!(
            out,
            "{}: {}",
            if self.drifted { "DRIFT" } else { "no drift" },
            summary.join(", ")
        )?;
        writeln!(
            out,
            "drifted: {} executables, {} libraries, {} config files, {} package databases; {} package changes",
            n.executables, n.libraries, n.config, n.package_dbs, n.packages
        )
    }
}

fn display_path(f: &FileDiff) -> String {
    if f.kind == FileKind::Dir && f.path.as_bytes() != b"/" {
        format!("{}/", f.path)
    } else {
        f.path.to_string()
    }
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::CharDevice => "char-device",
        FileKind::BlockDevice => "block-device",
        FileKind::Unknown => "unknown",
    }
}

fn kind_tags(f: &FileDiff) -> String {
    let mut tags = vec![kind_name(f.kind).to_string()];
    if let Some(e) = f.class.executable {
        tags.push(match e {
            driftwatch_image::ExecKind::Elf => "executable(elf)".into(),
            driftwatch_image::ExecKind::Script => "executable(script)".into(),
        });
    }
    if f.class.library {
        tags.push("library".into());
    }
    if let Some(db) = f.class.package_db {
        tags.push(format!("package-db({})", db.as_str()));
    }
    if f.class.config {
        tags.push("config".into());
    }
    tags.join(",")
}

fn detail(f: &FileDiff, inside: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(k) = f.image_kind {
        parts.push(format!("was a {}", kind_name(k)));
    }
    if f.change == ChangeKind::Modified && f.image_kind.is_none() {
        match f.kind {
            FileKind::File => parts.push("content differs".into()),
            FileKind::Symlink => parts.push("target differs".into()),
            FileKind::CharDevice | FileKind::BlockDevice => parts.push("device differs".into()),
            FileKind::Dir => parts.push("entries changed".into()),
            _ => {}
        }
    }
    if let Some(t) = &f.symlink_target {
        parts.push(format!("-> {t}"));
    }
    if let Some(m) = &f.metadata {
        parts.push(metadata_detail(m));
    }
    if let Some(n) = inside.filter(|n| *n > 0) {
        parts.push(format!("and {n} entries inside"));
    }
    if let Some(s) = f.size {
        parts.push(human_size(s));
    }
    parts.join("  ")
}

fn metadata_detail(m: &MetadataChange) -> String {
    let mut v = Vec::new();
    if let Some(c) = m.mode {
        v.push(format!("mode {:04o} -> {:04o}", c.image, c.current));
    }
    if m.uid.is_some() || m.gid.is_some() {
        let img = (
            m.uid.map(|c| c.image).map(|u| u.to_string()),
            m.gid.map(|c| c.image).map(|g| g.to_string()),
        );
        let cur = (
            m.uid.map(|c| c.current).map(|u| u.to_string()),
            m.gid.map(|c| c.current).map(|g| g.to_string()),
        );
        let fmt = |(u, g): (Option<String>, Option<String>)| {
            format!(
                "{}:{}",
                u.unwrap_or_else(|| "=".into()),
                g.unwrap_or_else(|| "=".into())
            )
        };
        v.push(format!("owner {} -> {}", fmt(img), fmt(cur)));
    }
    if m.mtime_ns.is_some() {
        v.push("times".into());
    }
    if m.capabilities {
        v.push("capabilities".into());
    }
    v.join(", ")
}

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
    }
}
