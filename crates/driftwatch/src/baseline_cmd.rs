//! `driftwatch baseline show|export|import|reset`: the agent's per-image network baselines,
//! read and edited on disk (a running agent takes a changed file over within seconds).

use std::path::{Path, PathBuf};

use anyhow::Context;
use driftwatch_agent::{BaselineFile, DEFAULT_BASELINE_FILE, ImageBaseline};

#[derive(clap::Subcommand)]
pub enum BaselineCommand {
    /// Print each image's baseline: learning or enforced, listeners, destinations.
    #[command(after_help = "Examples:
  driftwatch baseline show
  driftwatch baseline show app:1 --json")]
    Show {
        /// Only these images (image id, id prefix, or repository:tag).
        images: Vec<String>,
        #[command(flatten)]
        file: FileArg,
        /// The entries as JSON, in the file's format.
        #[arg(long)]
        json: bool,
    },
    /// Write the baselines (all, or the images named) as JSON to FILE or stdout.
    #[command(after_help = "Example (staging, then production):
  driftwatch baseline export -o web.json web:2.3
  driftwatch baseline import web.json      # enforced from the start")]
    Export {
        images: Vec<String>,
        #[command(flatten)]
        file: FileArg,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Merge a baseline file (from `export`, possibly edited) into this host's. Imported
    /// images are enforced at once: their learning window is over.
    #[command(after_help = "Examples:
  sudo driftwatch baseline import web.json
  sudo driftwatch baseline import --replace web.json --baseline-file /var/lib/driftwatch/baselines.json")]
    Import {
        /// The file to import.
        input: PathBuf,
        #[command(flatten)]
        file: FileArg,
        /// Replace an image's entry instead of adding to it.
        #[arg(long)]
        replace: bool,
    },
    /// Forget the baselines of the images named (or of every image with --all): they learn
    /// again from their next container.
    #[command(after_help = "Examples:
  sudo driftwatch baseline reset web:2.3
  sudo driftwatch baseline reset --all")]
    Reset {
        images: Vec<String>,
        #[command(flatten)]
        file: FileArg,
        #[arg(long, conflicts_with = "images")]
        all: bool,
    },
}

#[derive(clap::Args)]
pub struct FileArg {
    /// The agent's baseline file (`driftwatch run --baseline-file`).
    #[arg(long = "baseline-file", value_name = "FILE", default_value = DEFAULT_BASELINE_FILE)]
    path: PathBuf,
}

fn matches(key: &str, img: &ImageBaseline, wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            key == w
                || img.image == *w
                || (w.len() >= 6 && key.trim_start_matches("sha256:").starts_with(w.as_str()))
        })
}

fn select(file: &BaselineFile, wanted: &[String], path: &Path) -> anyhow::Result<BaselineFile> {
    let images: std::collections::BTreeMap<_, _> = file
        .images
        .iter()
        .filter(|(k, v)| matches(k, v, wanted))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for w in wanted {
        if !file
            .images
            .iter()
            .any(|(k, v)| matches(k, v, std::slice::from_ref(w)))
        {
            anyhow::bail!("{}: no baseline for image {w}", path.display());
        }
    }
    Ok(BaselineFile {
        images,
        ..BaselineFile::default()
    })
}

fn rfc3339(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn render(file: &BaselineFile, now: u64) -> String {
    let mut out = String::new();
    if file.images.is_empty() {
        out.push_str("no baselines yet\n");
    }
    for (key, img) in &file.images {
        let state = if img.learning(now) {
            format!("learning until {}", rfc3339(img.learn_until))
        } else {
            format!("enforced since {}", rfc3339(img.learn_until))
        };
        let name = if img.image.is_empty() {
            key
        } else {
            &img.image
        };
        out.push_str(&format!("{name} ({key}): {state}\n"));
        let list = |set: &std::collections::BTreeSet<String>| {
            if set.is_empty() {
                "-".to_string()
            } else {
                set.iter().cloned().collect::<Vec<_>>().join(" ")
            }
        };
        out.push_str(&format!("  listeners:    {}\n", list(&img.listeners)));
        out.push_str(&format!("  destinations: {}\n", list(&img.destinations)));
    }
    out
}

pub fn run(cmd: BaselineCommand) -> anyhow::Result<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match cmd {
        BaselineCommand::Show { images, file, json } => {
            let data = BaselineFile::load(&file.path)?;
            let sel = select(&data, &images, &file.path)?;
            if json {
                print!("{}", sel.to_json());
            } else {
                print!("{}", render(&sel, now));
            }
        }
        BaselineCommand::Export {
            images,
            file,
            output,
        } => {
            let data = BaselineFile::load(&file.path)?;
            let sel = select(&data, &images, &file.path)?;
            match output {
                Some(o) => {
                    std::fs::write(&o, sel.to_json())
                        .with_context(|| format!("writing {}", o.display()))?;
                    eprintln!(
                        "exported {} image baseline(s) to {}",
                        sel.images.len(),
                        o.display()
                    );
                }
                None => print!("{}", sel.to_json()),
            }
        }
        BaselineCommand::Import {
            input,
            file,
            replace,
        } => {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading baseline file {}", input.display()))?;
            let incoming = BaselineFile::parse(&text, &input)?;
            let mut data = BaselineFile::load(&file.path)?;
            let n = data.import(incoming, now, replace);
            data.save(&file.path)?;
            eprintln!(
                "imported {n} image baseline(s) into {} (enforced from now)",
                file.path.display()
            );
        }
        BaselineCommand::Reset { images, file, all } => {
            if images.is_empty() && !all {
                anyhow::bail!("name the images to reset, or pass --all");
            }
            let mut data = BaselineFile::load(&file.path)?;
            let gone = select(&data, &images, &file.path)?;
            data.images.retain(|k, _| !gone.images.contains_key(k));
            data.save(&file.path)?;
            eprintln!(
                "reset {} image baseline(s) in {}",
                gone.images.len(),
                file.path.display()
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BaselineFile {
        let mut f = BaselineFile::default();
        f.images.insert(
            "sha256:0123456789ab".into(),
            ImageBaseline {
                image: "web:2".into(),
                first_seen: 0,
                learn_until: 300,
                listeners: ["9090/tcp".to_string()].into(),
                destinations: ["10.0.0.5:5432/tcp".to_string()].into(),
            },
        );
        f
    }

    #[test]
    fn selects_by_name_id_or_prefix_and_names_the_missing() {
        let f = sample();
        let p = Path::new("/x/b.json");
        for w in ["web:2", "sha256:0123456789ab", "012345"] {
            assert_eq!(select(&f, &[w.into()], p).unwrap().images.len(), 1, "{w}");
        }
        let e = select(&f, &["db:1".into()], p).unwrap_err().to_string();
        assert_eq!(e, "/x/b.json: no baseline for image db:1");
    }

    #[test]
    fn renders_state_and_entries() {
        let text = render(&sample(), 100);
        assert_eq!(
            text,
            "web:2 (sha256:0123456789ab): learning until 1970-01-01T00:05:00Z\n  \
             listeners:    9090/tcp\n  destinations: 10.0.0.5:5432/tcp\n"
        );
        assert!(render(&sample(), 400).contains("enforced since"));
    }
}
