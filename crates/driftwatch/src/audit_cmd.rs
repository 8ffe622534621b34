//! `driftwatch audit PATH...`: Kubernetes manifests checked for drift-preventing posture, as a
//! table, JSON or SARIF, with an exit status for CI. The checks live in `driftwatch-audit`.

use std::io::Write;
use std::path::PathBuf;

use driftwatch_audit::{FindingSeverity, Report, report};

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Manifest files (multi-document YAML, JSON, `kubectl get -o yaml` Lists, `helm template`
    /// output), directories (walked for *.yaml, *.yml, *.json) or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// `table` (grouped by workload, with fixes), `json` (one object: files, documents,
    /// workloads, findings, errors, notes, summary) or `sarif` (SARIF 2.1.0 for code scanning).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Exit 1 when a finding is at or above this severity; `never` exits 0 unless some input
    /// could not be audited (exit 2).
    #[arg(long, value_enum, default_value = "warning", value_name = "SEVERITY")]
    fail_on: FailOn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    Info,
    Warning,
    Error,
    Never,
}

impl FailOn {
    fn severity(self) -> Option<FindingSeverity> {
        match self {
            FailOn::Info => Some(FindingSeverity::Info),
            FailOn::Warning => Some(FindingSeverity::Warning),
            FailOn::Error => Some(FindingSeverity::Error),
            FailOn::Never => None,
        }
    }
}

fn print(args: &AuditArgs, r: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Table => out.write_all(report::table(r).as_bytes())?,
        Format::Json => writeln!(out, "{:#}", report::json(r))?,
        Format::Sarif => writeln!(out, "{:#}", report::sarif(r))?,
    }
    out.flush()
}

pub fn run(args: AuditArgs) -> anyhow::Result<i32> {
    let r = driftwatch_audit::input::audit_paths(&args.paths);
    // Errors are in every format's output; on a terminal-free CI log the table's stdout may
    // be captured away, so they also go to stderr (the machine formats keep stdout clean).
    if args.format != Format::Table {
        for e in &r.errors {
            eprintln!("driftwatch audit: {e}");
        }
    }
    if let Err(e) = print(&args, &r) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("driftwatch audit: writing the report: {e}");
        }
        return Ok(2);
    }
    Ok(r.exit_code(args.fail_on.severity()))
}
