//! `driftwatch baseline show|export|import|reset|approve|revoke`: the agent's per-image
//! network baselines, read and edited where the agent keeps them: the alert store's database
//! when there is one (the default), else the JSON file (a running agent takes a change over
//! within seconds). What raised a drift alert while an image learned is pending, not learned,
//! until `approve`; `revoke` takes one entry out again.

use std::path::PathBuf;

use anyhow::Context;
use std::sync::Arc;

use driftwatch_agent::{
    BaselineBackend, BaselineFile, DEFAULT_BASELINE_FILE, FileBackend, ImageBaseline,
};

#[derive(clap::Subcommand)]
pub enum BaselineCommand {
    /// Print each image's baseline: learning or enforced, listeners, destinations, the
    /// listeners pending approval (alerted while the image learned, not learned), and the
    /// inline code it ran while it learned (interpreter, option, code head, parent).
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
    /// Add entries to an image's baseline: listeners pending approval (alerted while the
    /// image learned), or any listener (PORT/PROTO) or destination (IP:PORT/PROTO). They
    /// are no longer drift.
    #[command(after_help = "Examples:
  sudo driftwatch baseline approve web:2.3 8081/tcp
  sudo driftwatch baseline approve web:2.3 --pending      # every pending listener
  sudo driftwatch baseline approve web:2.3 10.0.0.5:5432/tcp")]
    Approve {
        /// The image (image id, id prefix, or repository:tag).
        image: String,
        /// Listeners (PORT/PROTO) and destinations (IP:PORT/PROTO).
        #[arg(required_unless_present = "pending")]
        entries: Vec<String>,
        /// Every listener pending approval.
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        file: FileArg,
    },
    /// Take entries out of an image's baseline (learned, approved or pending): they are
    /// drift again.
    #[command(
        visible_alias = "forget",
        after_help = "Example:
  sudo driftwatch baseline revoke web:2.3 4444/tcp 10.0.0.9:80/tcp"
    )]
    Revoke {
        /// The image (image id, id prefix, or repository:tag).
        image: String,
        /// Listeners (PORT/PROTO) and destinations (IP:PORT/PROTO).
        #[arg(required = true)]
        entries: Vec<String>,
        #[command(flatten)]
        file: FileArg,
    },
}

#[derive(clap::Args)]
pub struct FileArg {
    /// The agent's baseline file (`driftwatch run --baseline-file`, an agent running without
    /// the store) [default: the store's database when it exists, else
    /// /var/lib/driftwatch/baselines.json].
    #[arg(long = "baseline-file", value_name = "FILE", conflicts_with = "db")]
    file: Option<PathBuf>,
    /// The alert store's database, where the agent keeps baselines when the store is on
    /// [default: /var/lib/driftwatch/driftwatch.db].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

impl FileArg {
    /// The backend the agent uses: the store's database when it exists (or was named), else
    /// the file.
    fn backend(&self) -> anyhow::Result<Arc<dyn BaselineBackend>> {
        if let Some(f) = &self.file {
            return Ok(Arc::new(FileBackend(f.clone())));
        }
        let db = self
            .db
            .clone()
            .unwrap_or_else(|| driftwatch_config::StoreConfig::default().path);
        if self.db.is_some() || db.exists() {
            let store = driftwatch_store::Store::open(&driftwatch_config::StoreConfig {
                path: db,
                ..driftwatch_config::StoreConfig::default()
            })?;
            return Ok(Arc::new(driftwatch_daemon::StoreBaselines(Arc::new(store))));
        }
        Ok(Arc::new(FileBackend(PathBuf::from(DEFAULT_BASELINE_FILE))))
    }
}

fn matches(key: &str, img: &ImageBaseline, wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            key == w
                || img.image == *w
                || (w.len() >= 6 && key.trim_start_matches("sha256:").starts_with(w.as_str()))
        })
}

fn select(file: &BaselineFile, wanted: &[String], place: &str) -> anyhow::Result<BaselineFile> {
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
            anyhow::bail!("{place}: no baseline for image {w}");
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
        if !img.pending_listeners.is_empty() {
            out.push_str(&format!(
                "  pending:      {} (alerted, not learned: driftwatch baseline approve {name} ...)\n",
                list(&img.pending_listeners)
            ));
        }
        if !img.inline_code.is_empty() {
            out.push_str("  inline code:\n");
            for k in &img.inline_code {
                out.push_str(&format!("    {k}\n"));
            }
        }
    }
    out
}

pub fn run(cmd: BaselineCommand) -> anyhow::Result<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match cmd {
        BaselineCommand::Show { images, file, json } => {
            let b = file.backend()?;
            let data = b.load()?;
            let sel = select(&data, &images, &b.describe())?;
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
            let b = file.backend()?;
            let data = b.load()?;
            let sel = select(&data, &images, &b.describe())?;
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
            let b = file.backend()?;
            let mut data = b.load()?;
            let n = data.import(incoming, now, replace);
            b.save(&data)?;
            eprintln!(
                "imported {n} image baseline(s) into {} (enforced from now)",
                b.describe()
            );
        }
        BaselineCommand::Reset { images, file, all } => {
            if images.is_empty() && !all {
                anyhow::bail!("name the images to reset, or pass --all");
            }
            let b = file.backend()?;
            let mut data = b.load()?;
            let gone = select(&data, &images, &b.describe())?;
            data.images.retain(|k, _| !gone.images.contains_key(k));
            b.save(&data)?;
            eprintln!(
                "reset {} image baseline(s) in {}",
                gone.images.len(),
                b.describe()
            );
        }
        BaselineCommand::Approve {
            image,
            entries,
            pending,
            file,
        } => edit_image(&file, &image, "approved", |img| {
            let mut entries = entries;
            if pending {
                entries.extend(img.pending_listeners.iter().cloned());
            }
            img.approve(&entries)
        })?,
        BaselineCommand::Revoke {
            image,
            entries,
            file,
        } => edit_image(&file, &image, "revoked", |img| img.revoke(&entries))?,
    }
    Ok(0)
}

/// Changes the baseline of the one image `wanted` names with `change` (which returns how
/// many entries changed, or every problem) and saves it; `done` says what was done.
fn edit_image(
    file: &FileArg,
    wanted: &str,
    done: &str,
    change: impl FnOnce(&mut ImageBaseline) -> Result<usize, Vec<String>>,
) -> anyhow::Result<()> {
    let b = file.backend()?;
    let mut data = b.load()?;
    let key = one_image(&data, wanted, &b.describe())?;
    let Some(img) = data.images.get_mut(&key) else {
        anyhow::bail!("{}: no baseline for image {wanted}", b.describe());
    };
    let n = change(img)
        .map_err(|e| anyhow::anyhow!("{}: image {wanted}: {}", b.describe(), e.join("; ")))?;
    b.save(&data)?;
    eprintln!(
        "{done} {n} entr{} of {wanted} in {}",
        if n == 1 { "y" } else { "ies" },
        b.describe()
    );
    Ok(())
}

/// The key of the one image `wanted` names; an error when none or several match.
fn one_image(file: &BaselineFile, wanted: &str, place: &str) -> anyhow::Result<String> {
    let sel = select(file, &[wanted.to_string()], place)?;
    let mut keys = sel.images.into_keys();
    match (keys.next(), keys.next()) {
        (Some(k), None) => Ok(k),
        _ => anyhow::bail!("{place}: {wanted} names more than one image; give the image id"),
    }
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
                ..ImageBaseline::default()
            },
        );
        f
    }

    #[test]
    fn selects_by_name_id_or_prefix_and_names_the_missing() {
        let f = sample();
        let p = "/x/b.json";
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
        let mut f = sample();
        f.images.values_mut().for_each(|i| {
            i.inline_code.insert(driftwatch_agent::InlineKey {
                family: driftwatch_model::InterpreterFamily::Shell,
                flag: "-c".into(),
                parent: "containerd-shim".into(),
                head: "curl".into(),
            });
        });
        assert!(
            render(&f, 400)
                .ends_with("  inline code:\n    shell -c \"curl\" (parent \"containerd-shim\")\n"),
            "{}",
            render(&f, 400)
        );
        let mut f = sample();
        f.images.values_mut().for_each(|i| {
            i.pending_listeners.insert("4444/tcp".into());
        });
        assert!(
            render(&f, 400).ends_with(
                "  pending:      4444/tcp (alerted, not learned: driftwatch baseline approve web:2 ...)\n"
            ),
            "{}",
            render(&f, 400)
        );
    }

    #[test]
    fn one_image_refuses_an_ambiguous_name() {
        let mut f = sample();
        let other = f.images["sha256:0123456789ab"].clone();
        f.images.insert("sha256:0123456789cd".into(), other);
        let e = one_image(&f, "web:2", "/b").unwrap_err().to_string();
        assert!(e.contains("more than one image"), "{e}");
        assert_eq!(
            one_image(&f, "0123456789cd", "/b").unwrap(),
            "sha256:0123456789cd"
        );
    }
}
