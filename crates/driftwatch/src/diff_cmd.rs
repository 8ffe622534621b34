//! `driftwatch diff CONTAINER`: what a container changed compared with its image, as a
//! grouped table or JSON, with exit status 0 (no drift), 1 (drift) or 2 (error).
//!
//! Finding the container and the report itself live in `driftwatch-evidence`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use driftwatch_evidence::{DiffReport, Target};
use driftwatch_image::DiffOptions;
use serde::Serialize;

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
    only: Option<OnlyArg>,
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
pub enum OnlyArg {
    Executables,
    Packages,
    Config,
}

impl From<OnlyArg> for driftwatch_evidence::Only {
    fn from(o: OnlyArg) -> Self {
        match o {
            OnlyArg::Executables => driftwatch_evidence::Only::Executables,
            OnlyArg::Packages => driftwatch_evidence::Only::Packages,
            OnlyArg::Config => driftwatch_evidence::Only::Config,
        }
    }
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
    let report = DiffReport::new(&target, &diff, args.only.map(Into::into));
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
        for t in report.truncated {
            eprintln!("driftwatch diff: warning: {t}");
        }
    }
    out.flush().context("writing")?;
    Ok(if report.drifted { EXIT_DRIFT } else { 0 })
}
