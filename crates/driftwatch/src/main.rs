//! The `driftwatch` command line: runs the agent and its tools.

mod audit_cmd;
mod baseline_cmd;
mod capture_cmd;
mod diff_cmd;
mod doctor;
mod respond_cmd;
mod rules_cmd;
mod run;
mod serve;
mod verify_cmd;

use clap::{Parser, Subcommand};

/// Runtime drift detection for Linux containers: a container should run exactly what its
/// image holds; anything else is drift.
#[derive(Parser)]
#[command(name = "driftwatch", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch every container on this host and alert on drift (needs root).
    #[command(after_help = "Examples:
  sudo driftwatch run
  sudo driftwatch run --json-out /var/log/driftwatch/alerts.json
  sudo driftwatch run --rules ./my_rules.yaml --record /tmp/events.jsonl
  sudo driftwatch run --playbook /etc/driftwatch/playbook.yaml --json-out /var/log/driftwatch/alerts.json")]
    Run(Box<run::RunArgs>),
    /// Print what this host supports and what that means for detection.
    #[command(after_help = "Example:\n  sudo driftwatch doctor")]
    Doctor(doctor::DoctorArgs),
    /// Validate, list and test rule files (Falco's rule YAML), as the agent would load them.
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// Compare a container's filesystem with its image: added, deleted, modified (content or
    /// metadata only) paths, executables, libraries, config, packages. Exit 0: no drift,
    /// 1: drift, 2: error.
    #[command(after_help = "Examples:
  sudo driftwatch diff web
  sudo driftwatch diff 3f2a1b9c --json | jq '.files[] | select(.change == \"added\")'
  sudo driftwatch diff web --only executables || echo 'new code in web'")]
    Diff(diff_cmd::DiffArgs),
    /// Write an evidence bundle of a container (diff, drifted files, processes, sockets,
    /// config, alerts, with a sha256 manifest), or verify one. Read-only; the container keeps
    /// running.
    #[command(after_help = "Examples:
  sudo driftwatch capture web -o web-evidence.tar.zst
  sudo driftwatch capture web -o web.tar.zst --max-file-size 1MiB --alerts /var/log/driftwatch/alerts.json
  driftwatch capture --verify web-evidence.tar.zst")]
    Capture(capture_cmd::CaptureArgs),
    /// Show, export, import and reset the per-image network baselines (what each image's
    /// containers listen on and connect to, learned by `driftwatch run`).
    #[command(subcommand)]
    Baseline(baseline_cmd::BaselineCommand),
    /// Show the actions response playbooks took (or skipped, or dry-ran): when, on which
    /// container, for which alert, with what result.
    #[command(after_help = "Examples:
  sudo driftwatch actions
  sudo driftwatch actions --container web --since 1h
  sudo driftwatch actions --json | jq 'select(.result == \"failed\")'")]
    Actions(respond_cmd::ActionsArgs),
    /// Undo containment of a container: remove its network isolation (and a pod's deny-all
    /// NetworkPolicy) and thaw it if frozen. Recorded in the actions log.
    #[command(after_help = "Examples:
  sudo driftwatch release web
  sudo driftwatch release 3f2a1b9c4d5e")]
    Release(respond_cmd::ReleaseArgs),
    /// Check Kubernetes manifests for the settings that keep containers from drifting:
    /// read-only root filesystem, no privilege escalation, non-root, images pinned by digest,
    /// bounded emptyDirs, no privileged containers or added capabilities, no hostPath, and
    /// namespaces enforcing the restricted Pod Security Standard. Exit 0: nothing at or above
    /// --fail-on, 1: findings, 2: unreadable or invalid input.
    #[command(after_help = "Examples:
  driftwatch audit deploy/
  driftwatch audit app.yaml --fail-on error
  helm template my-release ./chart | driftwatch audit -
  kubectl get deploy,sts,ds,cronjob,ns -A -o yaml | driftwatch audit - --format json | jq '.findings[] | select(.rule == \"DW-K8S-004\")'
  driftwatch audit k8s/ --format sarif > driftwatch.sarif   # upload to code scanning

Rules: DW-K8S-001 readOnlyRootFilesystem, 002 allowPrivilegeEscalation, 003 runAsNonRoot,
004 image digest, 005 emptyDir sizeLimit, 006 privileged, 007 capabilities.add,
008 capabilities.drop ALL, 009 hostPath, 010 namespace Pod Security label,
011 namespace not in the input (info).")]
    Audit(audit_cmd::AuditArgs),
    /// Check response playbook files.
    #[command(subcommand)]
    Playbook(respond_cmd::PlaybookCommand),
    /// Check running containers' images against an approved digest list (unapproved,
    /// unknown, started from a mutable tag) and image layers on disk against their
    /// digests. Exit 0: all approved and intact, 1: a finding, 2: error.
    #[command(after_help = "Examples:
  sudo driftwatch verify --approved approved.txt
  sudo driftwatch verify --approved approved.json --json
  sudo driftwatch verify --approved k8s/deployment.yaml --allow-mutable
  sudo driftwatch verify --layers --cache /var/lib/driftwatch/layers.json
  sudo driftwatch verify --layers --image nginx:1.27")]
    Verify(verify_cmd::VerifyArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(*a),
        Command::Doctor(a) => doctor::run(a),
        Command::Rules(c) => rules_cmd::run(c),
        Command::Diff(a) => diff_cmd::run(a),
        Command::Capture(a) => capture_cmd::run(a),
        Command::Baseline(c) => baseline_cmd::run(c),
        Command::Actions(a) => respond_cmd::actions(a),
        Command::Release(a) => respond_cmd::release(a),
        Command::Playbook(c) => respond_cmd::playbook(c),
        Command::Audit(a) => audit_cmd::run(a),
        Command::Verify(a) => verify_cmd::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("driftwatch: {e:#}");
            std::process::exit(1);
        }
    }
}
