//! `driftwatch config`: check a configuration file, show the effective configuration, print
//! the reference of every key.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use driftwatch_config::{DEFAULT_CONFIG_FILE, LoadError};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file as `driftwatch run` would read it: unknown keys, wrong
    /// types, invalid values, and the files it names (rules, enforcement policy, playbooks,
    /// approved list). Every problem is printed as FILE:LINE:COL with the line and a caret.
    /// Exit 0: valid, 1: invalid, 2: unreadable.
    #[command(after_help = "Examples:
  driftwatch config validate
  driftwatch config validate ./config.yaml
  driftwatch config validate new.yaml && sudo cp new.yaml /etc/driftwatch/config.yaml && sudo systemctl reload driftwatch")]
    Validate {
        /// The file [default: /etc/driftwatch/config.yaml].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Print the effective configuration: every key, the file's values over the embedded
    /// defaults; keys set by the file are marked `# from FILE:LINE`. The output is itself a
    /// valid configuration file.
    #[command(after_help = "Examples:
  driftwatch config show
  driftwatch config show --config ./config.yaml
  driftwatch config show --json | jq .config.enforcement
  driftwatch config show > /tmp/effective.yaml && driftwatch config validate /tmp/effective.yaml")]
    Show {
        /// The file [default: /etc/driftwatch/config.yaml when it exists, else the embedded
        /// defaults].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// JSON: {"file", "config", "from_file": {"KEY": "FILE:LINE:COL"}}.
        #[arg(long)]
        json: bool,
    },
    /// Print the reference of every key: type, default, whether SIGHUP reloads it, meaning
    /// (Markdown, as docs/config.md).
    #[command(after_help = "Examples:
  driftwatch config reference | less
  driftwatch config reference > config-reference.md")]
    Reference {
        /// Print the commented example configuration file instead (every key at its
        /// default).
        #[arg(long)]
        example: bool,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<i32> {
    match cmd {
        ConfigCommand::Validate { file } => Ok(validate(file.as_deref())),
        ConfigCommand::Show { config, json } => show(config.as_deref(), json),
        ConfigCommand::Reference { example } => {
            if example {
                print!("{}", driftwatch_config::example_yaml());
            } else {
                print!("{}", driftwatch_config::reference_markdown());
            }
            Ok(0)
        }
    }
}

fn validate(file: Option<&Path>) -> i32 {
    let path = file.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    // The default file may be absent (the agent then runs on the defaults); a named one not.
    let loaded = match driftwatch_config::load(Some(path)) {
        Ok(l) => l,
        Err(LoadError::Unreadable { error, .. })
            if file.is_none() && error.kind() == std::io::ErrorKind::NotFound =>
        {
            println!(
                "{DEFAULT_CONFIG_FILE} does not exist: the agent runs on the embedded defaults"
            );
            return 0;
        }
        Err(e @ LoadError::Unreadable { .. }) => {
            eprintln!("driftwatch config validate: {e}");
            return 2;
        }
        Err(LoadError::Invalid { path, diagnostics }) => {
            for d in &diagnostics {
                eprintln!("{}\n", d.render());
            }
            eprintln!(
                "{}: invalid ({} problem{})",
                path.display(),
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            return 1;
        }
    };
    let errors = driftwatch_daemon::check_named_files(&loaded);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}\n");
        }
        eprintln!(
            "{}: the files it names do not load ({} problem{})",
            path.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return 1;
    }
    // Keys of the table, not the keys inside list items (`outputs.http[0].url`).
    let n = loaded.set.keys().filter(|k| !k.contains('[')).count();
    println!(
        "{}: valid ({n} key{} set, the others at their defaults)",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    0
}

fn show(file: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    let loaded = match driftwatch_config::load(file) {
        Ok(l) => l,
        Err(e @ LoadError::Unreadable { .. }) => {
            eprintln!("driftwatch config show: {e}");
            return Ok(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    if json {
        println!("{:#}", driftwatch_config::show_json(&loaded));
    } else {
        print!("{}", driftwatch_config::show_yaml(&loaded));
    }
    Ok(0)
}
