//! Response playbooks on the command line: `driftwatch run --playbook` (the responder as an
//! alert sink), `driftwatch actions`, `driftwatch release` and `driftwatch playbook validate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftwatch_config::parse_duration;
use driftwatch_response::actions::engine::{ContainerEngine, NodeEngines};
use driftwatch_response::actions::kube::KubeApi;
use driftwatch_response::{
    ActionLog, ActionRecord, DEFAULT_ACTIONS_LOG, LoadError, PlaybookSet, read_records,
};

/// Where the Kubernetes API is, for pod actions (NetworkPolicy, delete/evict, labels).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KubeArgs {
    /// Use this kubeconfig's current context for pod actions [config (run):
    /// response.kubeconfig].
    #[arg(long, value_name = "FILE", conflicts_with = "in_cluster")]
    kubeconfig: Option<PathBuf>,
    /// Use the pod's service account (the agent runs as a DaemonSet) for pod actions
    /// [config (run): response.in_cluster].
    #[arg(long)]
    in_cluster: bool,
}

impl KubeArgs {
    /// The client, when asked for. Without one, pod alerts get the node-local actions only.
    pub fn client(&self) -> anyhow::Result<Option<Arc<dyn KubeApi>>> {
        driftwatch_daemon::kube_client_for(self.kubeconfig.as_deref(), self.in_cluster)
    }

    /// `driftwatch run`'s layer of these flags over the configuration file.
    pub fn flag_settings(&self) -> Vec<driftwatch_config::FlagSetting> {
        let mut f = Vec::new();
        crate::flag_layer::set(
            &mut f,
            "--kubeconfig",
            "response.kubeconfig",
            self.kubeconfig.as_deref().map(crate::flag_layer::path_text),
        );
        crate::flag_layer::switch(
            &mut f,
            self.in_cluster,
            "--in-cluster",
            "response.in_cluster",
            true,
        );
        f
    }
}

#[derive(clap::Args)]
pub struct ActionsArgs {
    /// Only actions on this container (name, or id prefix).
    #[arg(long, value_name = "CONTAINER")]
    container: Option<String>,
    /// Only actions started within this long (`90s`, `30m`, `2h`, `1d`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<Duration>,
    /// One JSON record per line, as stored.
    #[arg(long)]
    json: bool,
    /// The actions log `driftwatch run --actions-log` writes.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_ACTIONS_LOG)]
    actions_log: PathBuf,
}

fn about(r: &ActionRecord, container: &str) -> bool {
    let c = container.to_ascii_lowercase();
    r.container.name == container
        || (c.len() >= 4 && r.container.id.starts_with(&c))
        || (!r.container.k8s_pod.is_empty() && r.container.k8s_pod == container)
}

pub fn actions(args: ActionsArgs) -> anyhow::Result<i32> {
    if !args.actions_log.exists() {
        eprintln!(
            "driftwatch actions: {} does not exist: no action recorded yet (driftwatch run --playbook FILE records them)",
            args.actions_log.display()
        );
        return Ok(0);
    }
    let (records, bad) = read_records(&args.actions_log)?;
    let cutoff = args
        .since
        .map(|d| driftwatch_model::clock::now_ns().saturating_sub(d.as_nanos() as u64));
    let shown: Vec<&ActionRecord> = records
        .iter()
        .filter(|r| args.container.as_deref().is_none_or(|c| about(r, c)))
        .filter(|r| cutoff.is_none_or(|t| r.start_ns >= t))
        .collect();
    if args.json {
        for r in &shown {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", table(&shown));
    }
    if bad > 0 {
        eprintln!(
            "driftwatch actions: {bad} lines of {} are not action records (skipped)",
            args.actions_log.display()
        );
    }
    Ok(0)
}

/// The readable view: one line per action, oldest first.
fn table(records: &[&ActionRecord]) -> String {
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            let who = match (r.container.name.as_str(), r.container.k8s_pod.as_str()) {
                (_, pod) if !pod.is_empty() => format!("{}/{pod}", r.container.k8s_namespace),
                ("", _) => r.container.id.chars().take(12).collect(),
                (name, _) => name.to_string(),
            };
            let result = if r.dry_run && r.result == driftwatch_response::Outcome::DryRun {
                "dry-run".to_string()
            } else {
                r.result.as_str().to_string()
            };
            let what = [r.detail.as_deref(), r.reason.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            let why = match (&r.playbook, &r.alert) {
                (Some(p), Some(a)) => format!("{p} ({})", a.rule),
                (Some(p), None) => p.clone(),
                (None, _) => "(manual)".into(),
            };
            [
                r.time.get(..19).unwrap_or(&r.time).replace('T', " "),
                who,
                r.action.clone(),
                result,
                why,
                what.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            ]
        })
        .collect();
    let head = [
        "TIME (UTC)",
        "CONTAINER",
        "ACTION",
        "RESULT",
        "PLAYBOOK (RULE)",
        "DETAIL",
    ];
    let mut width = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r.iter()).take(5) {
            *w = (*w).max(c.chars().count().min(60));
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(width[i].saturating_sub(c.chars().count()) + 2));
            }
        }
        out.push('\n');
    };
    line(&head.map(String::from), &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    if rows.is_empty() {
        out.push_str("(no actions)\n");
    }
    out
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// Container name, id or unique id prefix (running).
    container: String,
    /// Where the release is recorded (the same log `driftwatch run --actions-log` writes).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_ACTIONS_LOG)]
    actions_log: PathBuf,
    /// Docker's (or podman's) API socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// containerd's API socket, for a pod's container (default:
    /// /run/containerd/containerd.sock, else dockerd's, when present).
    #[arg(long, value_name = "PATH")]
    containerd_socket: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeArgs,
}

pub fn release(args: ReleaseArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "`driftwatch release` needs root: it enters the container's network namespace and cgroup"
        );
    }
    let log = ActionLog::open(&args.actions_log)?;
    // Every engine of the node: a pod's container is unknown to Docker.
    let engine = NodeEngines::connect(
        Some(&args.docker_socket),
        args.containerd_socket
            .or_else(driftwatch_runtime::ContainerdConfig::find_socket)
            .map(|socket| driftwatch_runtime::ContainerdConfig {
                socket,
                ..Default::default()
            }),
    );
    let kube = args.kube.client()?;
    let record = driftwatch_response::release::release(
        &args.container,
        engine.as_ref().map(|e| e as &dyn ContainerEngine),
        kube.as_deref(),
        &log,
    )
    .map_err(anyhow::Error::msg)?;
    println!("{}", record.detail.as_deref().unwrap_or_default());
    match record.reason {
        Some(e) => {
            eprintln!("driftwatch release: {e}");
            Ok(1)
        }
        None => Ok(0),
    }
}

#[derive(clap::Subcommand)]
pub enum PlaybookCommand {
    /// Load playbook files as `driftwatch run --playbook` would and print every problem as
    /// FILE:LINE:COL: message with the offending line. Exit 1 on any problem.
    #[command(
        after_help = "Example:\n  driftwatch playbook validate /etc/driftwatch/playbook.yaml"
    )]
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn playbook(cmd: PlaybookCommand) -> anyhow::Result<i32> {
    let PlaybookCommand::Validate { files } = cmd;
    let mut failed = false;
    for f in &files {
        match PlaybookSet::load_file(f) {
            Ok(set) => {
                let actions: usize = set.playbooks.iter().map(|p| p.actions.len()).sum();
                println!(
                    "{}: OK, {} playbooks, {actions} actions, {} exceptions",
                    f.display(),
                    set.playbooks.len(),
                    set.exceptions.len()
                );
            }
            Err(LoadError::Invalid {
                diagnostics: errs, ..
            }) => {
                failed = true;
                for e in &errs {
                    println!("{}", e.render());
                }
                eprintln!("{}: {} problems", f.display(), errs.len());
            }
            Err(e) => {
                failed = true;
                eprintln!(
                    "driftwatch playbook validate: {}",
                    anyhow::Error::new(e).context("loading")
                );
            }
        }
    }
    Ok(i32::from(failed))
}
