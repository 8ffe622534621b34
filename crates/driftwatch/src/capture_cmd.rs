//! `driftwatch capture CONTAINER -o bundle.tar.zst`: an evidence bundle an investigator can
//! trust (diff, drifted files, processes, sockets, config, alerts, sha256 manifest), taken
//! without changing the container and while it runs; `--verify` checks one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use driftwatch_evidence::capture::{CaptureOptions, verify as verify_bundle};

use crate::diff_cmd::{EXIT_DRIFT, EXIT_ERROR};

/// Where `driftwatch run --json-out` conventionally writes.
const DEFAULT_ALERTS: &str = "/var/log/driftwatch/alerts.json";

#[derive(clap::Args)]
pub struct CaptureArgs {
    /// Container name, id or unique id prefix; running or stopped.
    #[arg(required_unless_present = "verify", conflicts_with = "verify")]
    container: Option<String>,
    /// The bundle to write (zstd-compressed tar). Written to a temporary file and renamed
    /// when complete.
    #[arg(short, long, value_name = "FILE", required_unless_present = "verify")]
    output: Option<PathBuf>,
    /// Check a bundle against its manifest instead: exit 0 when every file matches, 1 naming
    /// each mismatch, 2 when the bundle cannot be read.
    #[arg(long, value_name = "BUNDLE")]
    verify: Option<PathBuf>,
    /// Drifted files larger than this are listed, not stored (executables and libraries are
    /// always stored): `64K`, `16MiB`, `1G` (binary), `10MB` (decimal), or bytes.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = driftwatch_config::parse_size)]
    max_file_size: u64,
    /// The agent's Falco JSON alert lines to take this container's alerts from (default:
    /// /var/log/driftwatch/alerts.json when it exists).
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Keep at most this many of the container's most recent alerts.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_alerts: usize,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Docker's (or podman's) API socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
}

pub fn run(args: CaptureArgs) -> anyhow::Result<i32> {
    if let Some(bundle) = &args.verify {
        return Ok(verify(bundle));
    }
    match capture(&args) {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("driftwatch capture: {e:#}");
            Ok(EXIT_ERROR)
        }
    }
}

fn verify(path: &Path) -> i32 {
    match verify_bundle(path) {
        Err(e) => {
            eprintln!("driftwatch capture --verify: {e:#}");
            EXIT_ERROR
        }
        Ok(v) if v.problems.is_empty() => {
            let m = v.manifest.as_ref();
            println!(
                "{}: OK, {} files match the manifest (container {}, captured {})",
                path.display(),
                v.ok,
                m.map(|m| m.container_id.as_str()).unwrap_or("?"),
                m.map(|m| m.created.as_str()).unwrap_or("?"),
            );
            0
        }
        Ok(v) => {
            for p in &v.problems {
                println!("MISMATCH {p}");
            }
            eprintln!(
                "driftwatch capture --verify: {}: {} problems, {} files match",
                path.display(),
                v.problems.len(),
                v.ok
            );
            EXIT_DRIFT
        }
    }
}

fn capture(args: &CaptureArgs) -> anyhow::Result<()> {
    let container = args.container.as_deref().unwrap_or_default();
    let Some(out) = args.output.as_deref() else {
        anyhow::bail!("-o FILE is required");
    };
    let alerts = match &args.alerts {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from(DEFAULT_ALERTS)).filter(|p| p.exists()),
    };
    let opts = CaptureOptions {
        docker_socket: args.docker_socket.clone(),
        max_file_size: args.max_file_size,
        alerts,
        max_alerts: args.max_alerts,
        force: args.force,
        progress: std::io::stderr().is_terminal(),
        max_entries: driftwatch_image::DiffOptions::default().max_entries,
    };
    let s = driftwatch_evidence::capture(container, out, &opts)?;
    println!(
        "captured {} into {}: {} entries; {} drifted files stored ({} listed only), \
         {} processes, {} sockets, {} alerts; bundle sha256 {}",
        s.label,
        out.display(),
        s.entries,
        s.stored,
        s.listed_only,
        s.processes,
        s.sockets,
        s.alerts,
        s.sha256,
    );
    for w in &s.warnings {
        eprintln!("driftwatch capture: warning: {w}");
    }
    Ok(())
}
