//! The `driftwatch` command line: runs the agent and its tools.

mod alerts_cmd;
mod audit_cmd;
mod baseline_cmd;
mod capture_cmd;
mod config_cmd;
mod demo_cmd;
mod diff_cmd;
mod doctor;
mod flag_layer;
mod health_cmd;
mod progress;
mod respond_cmd;
mod rules_cmd;
mod run;
mod sd_notify;
mod shell_cmd;
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
  sudo driftwatch run --playbook /etc/driftwatch/playbook.yaml --json-out /var/log/driftwatch/alerts.json
  sudo driftwatch run --config ./config.yaml --enforce prevent   # flags > file > defaults
  sudo kill -HUP $(pidof driftwatch)                             # reload the configuration")]
    Run(Box<run::RunArgs>),
    /// Check, show and document the configuration file (/etc/driftwatch/config.yaml).
    #[command(
        subcommand,
        after_help = "Examples:
  driftwatch config validate /etc/driftwatch/config.yaml
  driftwatch config show --config ./config.yaml
  driftwatch config reference --example > /etc/driftwatch/config.yaml"
    )]
    Config(config_cmd::ConfigCommand),
    /// Print what this host supports and what that means for detection.
    #[command(after_help = "Example:\n  sudo driftwatch doctor")]
    Doctor(doctor::DoctorArgs),
    /// Validate, list and test rule files (Falco's rule YAML), as the agent would load them.
    #[command(
        subcommand,
        after_help = "Examples:
  driftwatch rules validate ./my_rules.yaml
  driftwatch rules list
  driftwatch rules test --events /tmp/events.jsonl"
    )]
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
    #[command(
        subcommand,
        after_help = "Examples:
  sudo driftwatch baseline show
  sudo driftwatch baseline export -o web.json web:2.3
  sudo driftwatch baseline reset --all"
    )]
    Baseline(baseline_cmd::BaselineCommand),
    /// Show the alerts `driftwatch run` stored (in /var/lib/driftwatch/driftwatch.db by
    /// default): filtered by time, container, rule, tag and priority, newest last; `--follow`
    /// prints new ones as they come. Read-only: works while the agent runs.
    #[command(after_help = "Examples:
  sudo driftwatch alerts
  sudo driftwatch alerts --since 1h --container web
  sudo driftwatch alerts --since 2026-11-28T08:00:00Z --until 2026-11-28T09:00:00Z --priority critical
  sudo driftwatch alerts --tag binary_drift --rule 'new binary' --limit 0
  sudo driftwatch alerts --json --since 1d | jq -r '.output_fields[\"container.name\"]' | sort | uniq -c
  sudo driftwatch alerts --follow --priority warning
  driftwatch alerts --db ./copy-of-driftwatch.db --container 3f2a1b")]
    Alerts(alerts_cmd::AlertsArgs),
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
    #[command(
        subcommand,
        after_help = "Example:\n  driftwatch playbook validate /etc/driftwatch/playbook.yaml"
    )]
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
    /// See drift detection work in a minute: builds a throwaway image offline, starts the
    /// agent with temporary state, drifts in a throwaway container in every way the agent
    /// detects, shows each alert as it arrives and a summary, then removes the container.
    /// Needs root and a running Docker; nothing is pulled and /var/lib/driftwatch is not
    /// touched. Exit 0 when every drift was detected, 1 otherwise.
    #[command(after_help = "Examples:
  sudo driftwatch demo
  sudo driftwatch demo --keep-image --timeout 30")]
    Demo(demo_cmd::DemoArgs),
    /// Ask a running agent's HTTP API whether it is healthy (GET /healthz on loopback): the
    /// container image's HEALTHCHECK and the DaemonSet's probes. Exit 0 healthy, 1 not.
    #[command(after_help = "Examples:
  driftwatch health
  driftwatch health --address 127.0.0.1:7878 --path /healthz --timeout 2")]
    Health(health_cmd::HealthArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "Examples:
  driftwatch completions bash > /usr/share/bash-completion/completions/driftwatch
  driftwatch completions zsh > \"${fpath[1]}/_driftwatch\"
  driftwatch completions fish > ~/.config/fish/completions/driftwatch.fish
  source <(driftwatch completions bash)")]
    Completions(shell_cmd::CompletionsArgs),
    /// Write the man pages: driftwatch(1) and one page per subcommand (driftwatch-run(1),
    /// driftwatch-rules-validate(1), ...).
    #[command(after_help = "Examples:
  sudo driftwatch man --dir /usr/local/share/man/man1 && man driftwatch-run
  driftwatch man --dir /tmp/man && man -l /tmp/man/driftwatch.1")]
    Man(shell_cmd::ManArgs),
}

fn main() {
    driftwatch_daemon::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(*a),
        Command::Config(c) => config_cmd::run(c),
        Command::Doctor(a) => doctor::run(a),
        Command::Rules(c) => rules_cmd::run(c),
        Command::Diff(a) => diff_cmd::run(a),
        Command::Capture(a) => capture_cmd::run(a),
        Command::Baseline(c) => baseline_cmd::run(c),
        Command::Alerts(a) => alerts_cmd::run(a),
        Command::Actions(a) => respond_cmd::actions(a),
        Command::Release(a) => respond_cmd::release(a),
        Command::Playbook(c) => respond_cmd::playbook(c),
        Command::Audit(a) => audit_cmd::run(a),
        Command::Verify(a) => verify_cmd::run(a),
        Command::Demo(a) => demo_cmd::run(a),
        Command::Health(a) => health_cmd::run(a),
        Command::Completions(a) => shell_cmd::completions::<Cli>(a),
        Command::Man(a) => shell_cmd::man::<Cli>(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("driftwatch: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and subcommand, depth first, with its full name (`driftwatch rules test`).
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        let name = format!("{prefix}{}", cmd.get_name());
        out.push((name.clone(), cmd.clone()));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &format!("{name} "), out);
        }
    }

    #[test]
    fn every_subcommand_help_has_an_example() {
        let mut all = Vec::new();
        walk(&super::Cli::command(), "", &mut all);
        assert!(all.len() > 20, "the walk found only {} commands", all.len());
        let missing: Vec<String> = all
            .into_iter()
            .skip(1) // the top-level command lists subcommands, not examples
            .filter_map(|(n, mut c)| {
                let help = c.render_long_help().to_string();
                let has = ["Example:", "Examples:", "Example ("]
                    .iter()
                    .any(|e| help.contains(e));
                (!has).then_some(n)
            })
            .collect();
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn the_command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// A flag and the key it sets accept the same spellings (`config::units`): `1d` and
    /// `250ms` as in the file, and a bare number is refused as the file refuses it.
    #[test]
    fn duration_and_size_flags_take_the_config_grammar() {
        use clap::Parser;
        let parses = |args: &[&str]| {
            super::Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        for ok in [
            &["driftwatch", "run", "--learning-window", "1d"][..],
            &["driftwatch", "run", "--dedup-window", "250ms"],
            &["driftwatch", "run", "--layer-check-interval", "30d"],
            &["driftwatch", "actions", "--since", "2d"],
            &[
                "driftwatch",
                "capture",
                "c1",
                "-o",
                "b",
                "--max-file-size",
                "1M",
            ],
            &[
                "driftwatch",
                "capture",
                "c1",
                "-o",
                "b",
                "--max-file-size",
                "16MiB",
            ],
        ] {
            assert_eq!(parses(ok), Ok(()), "{ok:?}");
        }
        let bare = parses(&["driftwatch", "run", "--learning-window", "300"]).unwrap_err();
        assert!(bare.contains("300 has no unit"), "{bare}");
        let long = parses(&[
            "driftwatch",
            "run",
            "--learning-window",
            "99999999999999999999h",
        ]);
        assert!(long.is_err());
    }
}
