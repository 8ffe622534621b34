//! `driftwatch verify`: every running container's image against an approved list, and the
//! image layers on disk against their digests (Docker's overlay2 layers against their
//! tar-split; with `--containerd-socket`, containerd's containers' overlayfs snapshots
//! against the layer blobs in its content store). Exit 0: all approved and intact, 1: a
//! finding, 2: error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use driftwatch_model::Engine;
use driftwatch_runtime::{
    ContainerRecord, ContainerdConfig, ContainerdSource, DockerConfig, DockerSource, EngineSource,
};
use driftwatch_verify::approved::ApprovedList;
use driftwatch_verify::assess::{Assessment, ImageFacts, assess};
use driftwatch_verify::{
    LayerCache, LayerLocation, LayerReport, check_layer, locate_layers, locate_snapshot_layers,
};
use serde::Serialize;

const EXIT_FINDING: i32 = 1;
const EXIT_ERROR: i32 = 2;

#[derive(Args)]
pub struct VerifyArgs {
    /// Approved images: one digest or REPO@sha256:... per line (`#` comments), a JSON or
    /// YAML list of them, or Kubernetes manifests (their pinned `image:` fields).
    #[arg(long, value_name = "FILE")]
    approved: Option<PathBuf>,
    /// Check every layer of the running containers' images on disk against its digest.
    #[arg(long)]
    layers: bool,
    /// Check only these images' layers (name, tag or id; repeatable), running or not.
    #[arg(long, value_name = "IMAGE", requires = "layers")]
    image: Vec<String>,
    /// Started from a tag rather than a digest is not a finding (still shown).
    #[arg(long)]
    allow_mutable: bool,
    /// Remember intact layers here (stat fingerprints) so the next run skips reading them.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// One JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Docker's API socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// Docker's data root (layers are under `image/overlay2` and `overlay2`).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/docker")]
    docker_root: PathBuf,
    /// Verify containerd's running containers too, through this API socket (their layers are
    /// overlayfs snapshots, checked against the content store's blobs).
    #[arg(long, value_name = "PATH")]
    containerd_socket: Option<PathBuf>,
    /// containerd namespaces asked (repeatable) [default: k8s.io, default; and moby when
    /// Docker is not asked].
    #[arg(
        long = "containerd-namespace",
        value_name = "NS",
        requires = "containerd_socket"
    )]
    containerd_namespaces: Vec<String>,
    /// Ask only containerd, not Docker.
    #[arg(long, requires = "containerd_socket")]
    no_docker: bool,
    /// Bound on each engine call.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    timeout: u64,
}

/// `driftwatch run`'s image verification options (over the file's `verify` section).
#[derive(Args)]
pub struct AgentVerifyArgs {
    /// Alert when a container starts from an image not in this list (same formats as
    /// `driftwatch verify --approved`), or from a mutable tag [config: verify.approved].
    #[arg(long, value_name = "FILE")]
    approved: Option<PathBuf>,
    /// How often the layers of the images seen are checked again on disk (each new image
    /// is checked once when first seen): `6h`, `30m`, `1d` [config:
    /// verify.layer_check_interval, default 6h].
    #[arg(long, value_name = "DURATION", value_parser = driftwatch_config::parse_duration)]
    layer_check_interval: Option<Duration>,
    /// Do not check image layers on disk [config: verify.layers].
    #[arg(long)]
    no_layer_check: bool,
    /// Docker's data root, for image layers [config: verify.docker_root, default
    /// /var/lib/docker].
    #[arg(long = "docker-root", value_name = "DIR")]
    docker_root: Option<PathBuf>,
}

impl AgentVerifyArgs {
    /// `driftwatch run`'s layer of these flags over the file's `verify` section.
    pub fn flag_settings(&self) -> Vec<driftwatch_config::FlagSetting> {
        let mut f = Vec::new();
        let path = |p: &Option<PathBuf>| p.as_deref().map(crate::flag_layer::path_text);
        crate::flag_layer::set(
            &mut f,
            "--approved",
            "verify.approved",
            path(&self.approved),
        );
        crate::flag_layer::set(
            &mut f,
            "--layer-check-interval",
            "verify.layer_check_interval",
            self.layer_check_interval
                .map(driftwatch_config::format_duration),
        );
        crate::flag_layer::switch(
            &mut f,
            self.no_layer_check,
            "--no-layer-check",
            "verify.layers",
            false,
        );
        crate::flag_layer::set(
            &mut f,
            "--docker-root",
            "verify.docker_root",
            path(&self.docker_root),
        );
        f
    }
}

#[derive(Serialize)]
struct ContainerRow {
    id: String,
    name: String,
    image: String,
    image_id: Option<String>,
    repo_digests: Vec<String>,
    #[serde(flatten)]
    assessment: Assessment,
}

#[derive(Serialize)]
struct ImageLayers {
    /// The container whose snapshot directories were checked (containerd).
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    image: String,
    image_id: String,
    layers: Vec<LayerReport>,
}

#[derive(Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_list: Option<PathBuf>,
    containers: Vec<ContainerRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<ImageLayers>,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    match verify(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("driftwatch verify: {e:#}");
            Ok(EXIT_ERROR)
        }
    }
}

/// The facts `assess` needs, from an engine record.
pub fn image_facts(r: &ContainerRecord) -> ImageFacts {
    ImageFacts {
        reference: r.runtime_config.image_reference.clone(),
        repository: r.meta.image.repository.clone(),
        image_id: r.meta.image.id.clone(),
        repo_digests: r
            .runtime_config
            .image
            .as_ref()
            .map(|i| i.repo_digests.clone())
            .unwrap_or_default(),
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<i32> {
    if args.approved.is_none() && !args.layers {
        anyhow::bail!("nothing to verify: give --approved FILE, --layers, or both");
    }
    let list = args
        .approved
        .as_deref()
        .map(ApprovedList::load)
        .transpose()?;
    if let Some(l) = &list {
        for u in &l.unpinned {
            eprintln!(
                "driftwatch verify: {}:{}: warning: image `{}` is not pinned by digest and approves nothing",
                l.file.display(),
                u.line,
                u.value
            );
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let docker = (!args.no_docker).then(|| {
        DockerSource::new(DockerConfig {
            socket: args.docker_socket.clone(),
            timeout,
            ..DockerConfig::default()
        })
    });
    let containerd = args.containerd_socket.as_ref().map(|socket| {
        let mut namespaces = args.containerd_namespaces.clone();
        if namespaces.is_empty() {
            namespaces = ContainerdConfig::default().namespaces;
            // Docker's own containers are already listed through Docker.
            if docker.is_some() {
                namespaces.retain(|n| n != "moby");
            }
        }
        ContainerdSource::new(ContainerdConfig {
            socket: socket.clone(),
            namespaces,
            timeout,
            ..ContainerdConfig::default()
        })
    });
    let mut records = Vec::new();
    if let Some(d) = &docker {
        records.extend(
            rt.block_on(d.list_running())
                .context("listing running containers")?,
        );
    }
    if let Some(c) = &containerd {
        records.extend(
            rt.block_on(c.list_running())
                .context("listing containerd's running containers")?,
        );
    }
    records.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));

    let mut containers = Vec::new();
    if let Some(list) = &list {
        for r in &records {
            let facts = image_facts(r);
            containers.push(ContainerRow {
                id: r.meta.id.short().to_string(),
                name: r.meta.name.clone(),
                image: facts.reference.clone(),
                image_id: facts.image_id.clone(),
                repo_digests: facts.repo_digests.clone(),
                assessment: assess(&facts, list),
            });
        }
    }

    let mut images = Vec::new();
    if args.layers {
        // Image id → (shown name, where its layers are). A containerd image's layers are
        // found through one of its containers' snapshots.
        let mut wanted: BTreeMap<String, (String, Wanted)> = BTreeMap::new();
        if args.image.is_empty() {
            for r in &records {
                let (Some(id), Some(cfg)) = (&r.meta.image.id, &r.runtime_config.image) else {
                    eprintln!(
                        "driftwatch verify: {}: the engine gave no image layers; skipped",
                        r.meta.name
                    );
                    continue;
                };
                let how = if r.meta.engine == Engine::Containerd {
                    Wanted::Snapshot(r)
                } else {
                    Wanted::Docker(cfg.diff_ids.clone())
                };
                wanted
                    .entry(id.clone())
                    .or_insert_with(|| (r.runtime_config.image_reference.clone(), how));
            }
        } else {
            let Some(docker) = &docker else {
                anyhow::bail!("--image names Docker images: it needs Docker (drop --no-docker)");
            };
            for name in &args.image {
                let (id, diff_ids) = rt
                    .block_on(docker.image_layers(name))
                    .with_context(|| format!("image {name}"))?;
                wanted.insert(id, (name.clone(), Wanted::Docker(diff_ids)));
            }
        }
        let mut cache = load_cache(args.cache.as_deref())?;
        let mut progress = crate::progress::Progress::stderr();
        let total_images = wanted.len();
        for (n, (id, (name, how))) in wanted.into_iter().enumerate() {
            let (container, locations) = match how {
                Wanted::Docker(diff_ids) => (
                    None,
                    locate_layers(&args.docker_root, &diff_ids)
                        .with_context(|| format!("layers of {name}"))?,
                ),
                Wanted::Snapshot(r) => {
                    let c = &r.meta.name;
                    (
                        Some(c.clone()),
                        snapshot_locations(&rt, containerd.as_ref(), r)
                            .with_context(|| format!("container {c}: layers of {name}"))?,
                    )
                }
            };
            let mut layers = Vec::new();
            for (k, l) in locations.iter().enumerate() {
                progress.show(&format!(
                    "checking layers: image {}/{total_images} {name}, layer {}/{}",
                    n + 1,
                    k + 1,
                    locations.len()
                ));
                let who = container
                    .as_ref()
                    .map_or(String::new(), |c| format!("container {c}: "));
                layers.push(
                    check_layer(l, &mut cache)
                        .with_context(|| format!("{who}layer {} of {name}", l.diff_id))?,
                );
            }
            images.push(ImageLayers {
                container,
                image: name,
                image_id: id,
                layers,
            });
        }
        if let Some(p) = &args.cache {
            let text = serde_json::to_vec(&cache)?;
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
    }

    let finding = containers.iter().any(|c| {
        !matches!(
            c.assessment.status,
            driftwatch_verify::Status::Approved { .. }
        ) || (!args.allow_mutable && c.assessment.mutable_tag.is_some())
    }) || images
        .iter()
        .any(|i| i.layers.iter().any(|l| !l.is_intact()));
    let report = Report {
        approved_list: args.approved.clone(),
        containers,
        images,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tables(&report, list.is_some());
    }
    Ok(if finding { EXIT_FINDING } else { 0 })
}

/// Where an image's layers are found.
enum Wanted<'a> {
    /// Docker's layerdb, by diff ids.
    Docker(Vec<String>),
    /// containerd: this container's snapshot directories and the content store's blobs.
    Snapshot(&'a ContainerRecord),
}

fn snapshot_locations(
    rt: &tokio::runtime::Runtime,
    containerd: Option<&ContainerdSource>,
    r: &ContainerRecord,
) -> anyhow::Result<Vec<LayerLocation>> {
    let source = containerd.context("no containerd socket")?;
    let s = rt.block_on(source.snapshot_layers(&r.meta.id))?;
    Ok(locate_snapshot_layers(
        &s.diff_ids,
        &s.blobs,
        &s.lowers,
        &s.parent,
    )?)
}

fn load_cache(path: Option<&Path>) -> anyhow::Result<LayerCache> {
    let Some(p) = path else {
        return Ok(LayerCache::default());
    };
    match std::fs::read(p) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(c) => Ok(c),
            Err(e) => {
                // A damaged cache only costs a full check.
                eprintln!("driftwatch verify: {}: ignored ({e})", p.display());
                Ok(LayerCache::default())
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LayerCache::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn short_digest(d: &str) -> &str {
    let hex = d.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

fn print_tables(report: &Report, with_list: bool) {
    if with_list {
        let rows: Vec<[String; 5]> = report
            .containers
            .iter()
            .map(|c| {
                let mut status = c.assessment.status_str().to_string();
                if let Some(t) = &c.assessment.mutable_tag {
                    status += &format!(", mutable tag :{t}");
                }
                let by = match &c.assessment.status {
                    driftwatch_verify::Status::Approved { by } => by.clone(),
                    _ => String::new(),
                };
                [
                    c.name.clone(),
                    c.image.clone(),
                    c.image_id
                        .as_deref()
                        .map(short_digest)
                        .unwrap_or("-")
                        .to_string(),
                    status,
                    by,
                ]
            })
            .collect();
        table(
            &["CONTAINER", "IMAGE", "IMAGE ID", "STATUS", "APPROVED BY"],
            &rows,
        );
        if report.containers.is_empty() {
            println!("(no running containers)");
        }
    }
    if !report.images.is_empty() {
        if with_list {
            println!();
        }
        let mut rows = Vec::new();
        for i in &report.images {
            for l in &i.layers {
                let state = if l.is_intact() {
                    if l.cached {
                        "intact (cached)"
                    } else {
                        "intact"
                    }
                    .to_string()
                } else if l.problems.is_empty() {
                    format!(
                        "digest mismatch: {}",
                        l.stream_digest.as_deref().unwrap_or("-")
                    )
                } else {
                    "CHANGED".to_string()
                };
                rows.push([
                    i.image.clone(),
                    short_digest(&l.diff_id).to_string(),
                    l.files.to_string(),
                    format!("{:.0}", l.elapsed.as_secs_f64() * 1e3),
                    state,
                    l.dir.display().to_string(),
                ]);
            }
        }
        table(
            &["IMAGE", "LAYER", "FILES", "MS", "STATE", "DIRECTORY"],
            &rows,
        );
        for i in &report.images {
            for l in &i.layers {
                for p in &l.problems {
                    println!(
                        "{}{}: layer {} ({}): /{} {}{}",
                        i.container
                            .as_ref()
                            .map_or(String::new(), |c| format!("container {c}: ")),
                        i.image,
                        l.diff_id,
                        l.dir.display(),
                        p.path,
                        p.kind.as_str(),
                        match (p.expected_size, p.actual_size) {
                            (Some(e), Some(a)) if e != a => format!(" (size {e} -> {a})"),
                            _ => String::new(),
                        }
                    );
                }
            }
        }
    }
}

fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
