//! Shell integration generated from the command tree itself, so it never disagrees with
//! `--help`: completion scripts (`driftwatch completions SHELL`) and man pages
//! (`driftwatch man --dir DIR`).

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

pub fn completions<C: CommandFactory>(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = C::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(0)
}

pub fn man<C: CommandFactory>(args: ManArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut cmd = C::command();
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, &args.dir, &mut written)?;
    for p in &written {
        println!("{}", p.display());
    }
    Ok(0)
}

/// One page for `cmd` (named `driftwatch-rules-validate` for a nested command), then its
/// subcommands'. clap_mangen lists a command's subcommands under their own page names.
fn write_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(page.get_filename());
    let mut buf = Vec::new();
    page.render(&mut buf)
        .with_context(|| format!("rendering the man page of `{}`", cmd.get_name()))?;
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // A built command carries each subcommand's display name (`driftwatch-rules`), which
        // clap_mangen uses for the title and the file name.
        let full = format!(
            "{}-{}",
            cmd.get_display_name().unwrap_or(cmd.get_name()),
            sub.get_name()
        );
        let sub = sub
            .clone()
            .display_name(full.clone())
            .bin_name(full.replace('-', " "));
        write_pages(&sub, dir, written)?;
    }
    Ok(())
}
