//! The `driftwatch` command line: runs the agent and its tools.

mod doctor;
mod run;

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
  sudo driftwatch run --rules ./my_rules.yaml --record /tmp/events.jsonl")]
    Run(run::RunArgs),
    /// Print what this host supports and what that means for detection.
    #[command(after_help = "Example:\n  sudo driftwatch doctor")]
    Doctor(doctor::DoctorArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Doctor(a) => doctor::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("driftwatch: {e:#}");
            std::process::exit(1);
        }
    }
}
