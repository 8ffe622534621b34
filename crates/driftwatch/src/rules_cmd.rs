//! `driftwatch rules ...`: validate rule files, list the effective rules, and replay recorded
//! events through them, loading rules exactly as the agent does (defaults, then rules.d).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use driftwatch_rules::{Diagnostic, RuleSet, Source};

/// Where the agent reads users' rule files from, after the embedded defaults.
pub const DEFAULT_RULES_DIR: &str = "/etc/driftwatch/rules.d";

/// Which rule files to load, in order: the embedded defaults, `*.yaml` of the rules
/// directory (sorted by name), then the files named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleFiles {
    /// Directory of users' rule files, loaded after the defaults in name order (skipped when
    /// it does not exist).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RULES_DIR)]
    pub rules_dir: PathBuf,
    /// Do not load the rules directory.
    #[arg(long)]
    pub no_rules_dir: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Check rule files and print every problem as FILE:LINE:COL with the offending line.
    ///
    /// Loads the embedded default rules, the rules directory and then FILE... in that order,
    /// as the agent would. Exits non-zero on any error; warnings are printed but do not fail.
    /// A directory argument stands for its *.yaml files in name order.
    ///
    /// Examples:
    ///   driftwatch rules validate /etc/driftwatch/rules.d/50-local.yaml
    ///   driftwatch rules validate --no-rules-dir ./my_rules.yaml ./more_rules/
    #[command(verbatim_doc_comment)]
    Validate {
        /// Rule files (YAML) or directories of them.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        load: RuleFiles,
    },
    /// List the effective rules: name, priority, enabled, active, tags and the file that
    /// defined them; an inactive rule (one that can never be true on driftwatch's events)
    /// with the reason.
    ///
    /// Examples:
    ///   driftwatch rules list
    ///   driftwatch rules list --explain ./my_rules.yaml
    ///   driftwatch rules list --inactive --json ./falco_rules.yaml
    #[command(verbatim_doc_comment)]
    List {
        /// Extra rule files, loaded after the rules directory.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Also print each rule's compiled condition (macros and lists expanded).
        #[arg(long)]
        explain: bool,
        /// One JSON object per line: name, priority, enabled, active, inactive_reason, tags,
        /// file, event_types.
        #[arg(long)]
        json: bool,
        /// Only the active rules.
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        /// Only the inactive rules.
        #[arg(long)]
        inactive: bool,
        #[command(flatten)]
        load: RuleFiles,
    },
    /// Replay recorded events through the rules and print the alerts as Falco JSON lines.
    ///
    /// EVENTS is a JSON-lines file as `driftwatch run --record` writes it (one event per line;
    /// `-` reads standard input). Lines that are not events are reported with their line
    /// number on standard error and skipped.
    ///
    /// Examples:
    ///   driftwatch rules test --events /tmp/events.jsonl
    ///   driftwatch rules test --events /tmp/events.jsonl --rules ./candidate.yaml --no-rules-dir
    #[command(verbatim_doc_comment)]
    Test {
        /// Recorded events, JSON lines.
        #[arg(long, value_name = "EVENTS")]
        events: PathBuf,
        /// Extra rule files, loaded after the rules directory.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Hostname put in the alerts (default: this machine's).
        #[arg(long)]
        hostname: Option<String>,
        #[command(flatten)]
        load: RuleFiles,
    },
    /// List every field a rule may name, like `falco --list=syscall`: name, Falco type,
    /// argument, whether driftwatch fills it (and on which events), description.
    ///
    /// Fields driftwatch never fills are known, so Falco's rules naming them load; a rule that
    /// needs one can never fire and loads inactive.
    ///
    /// Examples:
    ///   driftwatch rules fields
    ///   driftwatch rules fields --unfilled
    ///   driftwatch rules fields --json | jq '.[] | select(.class == "fd")'
    #[command(verbatim_doc_comment)]
    Fields {
        /// One JSON array of fields instead of text.
        #[arg(long)]
        json: bool,
        /// Only the fields driftwatch fills.
        #[arg(long, conflicts_with = "unfilled")]
        filled: bool,
        /// Only the fields driftwatch never fills.
        #[arg(long)]
        unfilled: bool,
    },
}

/// Runs a `rules` subcommand; returns the process exit code.
pub fn run(cmd: RulesCommand) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with its output streams, for tests.
pub fn run_with(
    cmd: RulesCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match cmd {
        RulesCommand::Validate { files, load } => validate(&files, &load, out),
        RulesCommand::List {
            files,
            explain,
            json,
            active,
            inactive,
            load,
        } => {
            let only = match (active, inactive) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            list(
                &files,
                &load,
                ListOpts {
                    explain,
                    json,
                    only,
                },
                out,
                err,
            )
        }
        RulesCommand::Test {
            events,
            rules,
            hostname,
            load,
        } => test(&events, &rules, &load, hostname, out, err),
        RulesCommand::Fields {
            json,
            filled,
            unfilled,
        } => fields(json, filled, unfilled, out),
    }
}

/// The sources the agent would load, then `extra`.
fn sources(load: &RuleFiles, extra: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut paths = Vec::new();
    if !load.no_rules_dir && load.rules_dir.is_dir() {
        paths.extend(yaml_files(&load.rules_dir)?);
    }
    for p in extra {
        if p.is_dir() {
            paths.extend(yaml_files(p)?);
        } else {
            paths.push(p.clone());
        }
    }
    // A file named on the command line that is also in the rules directory loads once.
    let mut seen = Vec::new();
    let mut out = driftwatch_rules::default_sources();
    for p in paths {
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read rule file {}", p.display()))?;
        out.push(Source::new(p.display().to_string(), text));
    }
    Ok(out)
}

fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read rules directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn print_diagnostics(ds: &[Diagnostic], out: &mut dyn Write) -> anyhow::Result<()> {
    for d in ds {
        writeln!(out, "{}", d.render())?;
    }
    Ok(())
}

fn load(
    load: &RuleFiles,
    extra: &[PathBuf],
    diag_out: &mut dyn Write,
) -> anyhow::Result<Option<RuleSet>> {
    let sources = sources(load, extra)?;
    match RuleSet::load(&sources) {
        Ok(l) => {
            print_diagnostics(&l.warnings, diag_out)?;
            Ok(Some(l.ruleset))
        }
        Err(ds) => {
            print_diagnostics(&ds, diag_out)?;
            let errors = ds.iter().filter(|d| d.is_error()).count();
            writeln!(
                diag_out,
                "{errors} error(s), {} warning(s)",
                ds.len() - errors
            )?;
            Ok(None)
        }
    }
}

fn validate(files: &[PathBuf], opts: &RuleFiles, out: &mut dyn Write) -> anyhow::Result<i32> {
    let sources = match sources(opts, files) {
        Ok(s) => s,
        Err(e) => {
            writeln!(out, "error: {e:#}")?;
            return Ok(2);
        }
    };
    match RuleSet::load(&sources) {
        Ok(l) => {
            print_diagnostics(&l.warnings, out)?;
            let enabled = l.ruleset.rules().filter(|(_, r)| r.enabled).count();
            let active = l.ruleset.rules().filter(|(_, r)| r.active).count();
            writeln!(
                out,
                "{} rules: {active} active, {} inactive",
                l.ruleset.len(),
                l.ruleset.len() - active
            )?;
            writeln!(
                out,
                "ok: {} rules ({enabled} enabled) from {} files, {} warning(s)",
                l.ruleset.len(),
                sources.len(),
                l.warnings.len()
            )?;
            Ok(0)
        }
        Err(ds) => {
            print_diagnostics(&ds, out)?;
            let errors = ds.iter().filter(|d| d.is_error()).count();
            writeln!(out, "{errors} error(s), {} warning(s)", ds.len() - errors)?;
            Ok(1)
        }
    }
}

/// How `rules list` prints.
struct ListOpts {
    explain: bool,
    json: bool,
    /// Only active (`Some(true)`) or only inactive (`Some(false)`) rules.
    only: Option<bool>,
}

fn list(
    files: &[PathBuf],
    opts: &RuleFiles,
    how: ListOpts,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Some(rs) = load(opts, files, err)? else {
        return Ok(1);
    };
    let shown: Vec<_> = rs
        .rules()
        .filter(|(_, r)| how.only.is_none_or(|a| r.active == a))
        .collect();
    if how.json {
        for (idx, r) in shown {
            let mut v = serde_json::json!({
                "name": r.name,
                "priority": r.priority.as_str(),
                "enabled": r.enabled,
                "active": r.active,
                "inactive_reason": r.inactive_reason,
                "tags": r.tags,
                "file": r.source_file,
                "event_types": r.event_types,
            });
            if how.explain {
                v["condition"] = serde_json::Value::String(rs.explain(idx));
            }
            writeln!(out, "{v}")?;
        }
        return Ok(0);
    }
    let width = shown.iter().map(|(_, r)| r.name.len()).max().unwrap_or(4);
    writeln!(
        out,
        "{:width$}  {:13}  {:7}  {:6}  {:30}  TAGS",
        "RULE", "PRIORITY", "ENABLED", "ACTIVE", "FILE"
    )?;
    for (idx, r) in shown {
        writeln!(
            out,
            "{:width$}  {:13}  {:7}  {:6}  {:30}  {}",
            r.name,
            r.priority.as_str(),
            if r.enabled { "yes" } else { "no" },
            if r.active { "yes" } else { "no" },
            r.source_file,
            r.tags.join(",")
        )?;
        if let Some(reason) = &r.inactive_reason {
            writeln!(out, "    inactive: {reason}")?;
        }
        if how.explain {
            writeln!(out, "    events: {}", r.event_types.join(", "))?;
            writeln!(out, "    condition: {}", rs.explain(idx))?;
        }
    }
    Ok(0)
}

fn this_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

fn test(
    events: &Path,
    rules: &[PathBuf],
    opts: &RuleFiles,
    hostname: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Some(rs) = load(opts, rules, err)? else {
        return Ok(1);
    };
    let hostname = hostname.unwrap_or_else(this_hostname);
    let reader: Box<dyn BufRead> = if events == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(events)
            .with_context(|| format!("cannot open events file {}", events.display()))?;
        Box::new(BufReader::new(f))
    };
    let name = events.display().to_string();
    let (mut n_events, mut n_alerts, mut n_bad) = (0usize, 0usize, 0usize);
    let mut hits = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: driftwatch_model::Event = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                n_bad += 1;
                writeln!(err, "{name}:{}: not an event, skipped: {e}", i + 1)?;
                continue;
            }
        };
        n_events += 1;
        rs.matches(&event, &mut hits);
        for &idx in &hits {
            writeln!(out, "{}", rs.alert(idx, &event, &hostname).to_json_line())?;
            n_alerts += 1;
        }
    }
    writeln!(
        err,
        "{n_events} event(s), {n_alerts} alert(s), {n_bad} bad line(s)"
    )?;
    Ok(0)
}

/// `rules fields`: the field table, grouped by class as `falco --list` groups it.
fn fields(json: bool, filled: bool, unfilled: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    use driftwatch_rules::{FIELD_CLASSES, FIELDS, Filled};
    let shown = || {
        FIELD_CLASSES.iter().flat_map(|class| {
            FIELDS
                .iter()
                .filter(move |f| f.class() == *class)
                .filter(|f| {
                    if filled {
                        f.is_filled()
                    } else {
                        !unfilled || !f.is_filled()
                    }
                })
        })
    };
    if json {
        let rows: Vec<serde_json::Value> = shown()
            .map(|f| {
                let on: Vec<&str> = match f.filled {
                    Filled::Never => Vec::new(),
                    _ => {
                        let mut v: Vec<&str> = f
                            .filled
                            .kinds()
                            .into_iter()
                            .map(driftwatch_rules::evt_type_name)
                            .collect();
                        v.dedup();
                        v
                    }
                };
                serde_json::json!({
                    "name": f.name,
                    "class": f.class(),
                    "type": f.falco_type.as_str(),
                    "value_type": f.ty.as_str(),
                    "arg": f.arg.as_str(),
                    "arg_required": f.arg.required(),
                    "filled": f.is_filled(),
                    "filled_on": on,
                    "description": f.desc,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(0);
    }
    let mut class = None;
    for f in shown() {
        if class != Some(f.class()) {
            let gap = if class.is_some() { "\n" } else { "" };
            class = Some(f.class());
            writeln!(out, "{gap}Field Class: {}\n", f.class())?;
        }
        let name = match f.arg.as_str() {
            "" => f.name.to_string(),
            arg => format!("{}{arg}", f.name),
        };
        writeln!(
            out,
            "{name:<40} {:<8} filled: {}",
            f.falco_type.as_str(),
            f.filled.describe()
        )?;
        writeln!(out, "    {}", f.desc)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dir() -> RuleFiles {
        RuleFiles {
            rules_dir: PathBuf::from("/nonexistent"),
            no_rules_dir: true,
        }
    }

    fn run_cmd(cmd: RulesCommand) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(cmd, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("driftwatch-rules-cmd-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn validate_reports_every_error_positioned() {
        let d = tempdir("validate");
        let bad = write(
            &d,
            "bad.yaml",
            "- rule: r\n  desc: d\n  condition: spawned_process and proc.nme = x\n  output: o\n  priority: loud\n  colour: red\n",
        );
        let (code, out, _) = run_cmd(RulesCommand::Validate {
            files: vec![bad.clone()],
            load: no_dir(),
        });
        assert_eq!(code, 1, "{out}");
        let f = bad.display();
        assert!(
            out.contains(&format!("{f}:6:3: error: unknown key `colour` in rule")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{f}:5:13: error: unknown priority")),
            "{out}"
        );
        assert!(out.contains("3 |   condition: spawned_process and proc.nme = x\n  |                                  ^"), "{out}");
        assert!(out.ends_with("3 error(s), 0 warning(s)\n"), "{out}");

        let good = write(
            &d,
            "good.yaml",
            "- rule: r\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: info\n",
        );
        let (code, out, _) = run_cmd(RulesCommand::Validate {
            files: vec![good],
            load: no_dir(),
        });
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("warning: rule \"r\" does not restrict evt.type"),
            "{out}"
        );
        assert!(out.contains("ok: "), "{out}");
    }

    #[test]
    fn list_shows_effective_rules() {
        let d = tempdir("list");
        let f = write(
            &d,
            "off.yaml",
            "- rule: Terminal shell in container\n  enabled: false\n",
        );
        let (code, out, _) = run_cmd(RulesCommand::List {
            files: vec![f],
            explain: true,
            json: false,
            active: false,
            inactive: false,
            load: no_dir(),
        });
        assert_eq!(code, 0);
        let line = out
            .lines()
            .find(|l| l.starts_with("Terminal shell in container"))
            .unwrap();
        assert!(
            line.contains("Warning")
                && line.contains(" no ")
                && line.contains("container,drift,shell"),
            "{line}"
        );
        assert!(out.contains("Drop and execute new binary in container"));
        assert!(out.contains("    condition: "));
    }

    #[test]
    fn list_shows_inactive_rules_with_their_reason_and_filters() {
        let d = tempdir("inactive");
        let f = write(
            &d,
            "trace.yaml",
            "- rule: Ptrace attach\n  desc: d\n  condition: evt.type = ptrace and proc.name = gdb\n  output: o\n  priority: warning\n",
        );
        let list = |json, active, inactive| {
            run_cmd(RulesCommand::List {
                files: vec![f.clone()],
                explain: false,
                json,
                active,
                inactive,
                load: no_dir(),
            })
        };
        let (code, out, err) = list(false, false, false);
        assert_eq!(code, 0, "{err}");
        assert!(out.lines().next().unwrap().contains("ACTIVE"), "{out}");
        let mut lines = out.lines().skip_while(|l| !l.starts_with("Ptrace attach"));
        let row = lines.next().unwrap();
        assert!(row.contains(" no "), "{row}");
        assert_eq!(
            lines.next(),
            Some("    inactive: needs ptrace events, which driftwatch does not trace")
        );
        assert!(err.contains("rule \"Ptrace attach\" is inactive"), "{err}");

        let (_, out, _) = list(true, false, true);
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "{out}");
        assert_eq!(rows[0]["name"], "Ptrace attach");
        assert_eq!(rows[0]["active"], false);
        assert_eq!(
            rows[0]["inactive_reason"],
            "needs ptrace events, which driftwatch does not trace"
        );

        let (_, out, _) = list(true, true, false);
        assert!(!out.is_empty() && !out.contains("Ptrace attach"), "{out}");
        assert!(
            out.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["active"] == true)
        );

        let (code, out, _) = run_cmd(RulesCommand::Validate {
            files: vec![f.clone()],
            load: no_dir(),
        });
        assert_eq!(code, 0, "{out}");
        let total = driftwatch_rules::RuleSet::load_with_defaults(&[])
            .unwrap()
            .ruleset
            .len()
            + 1;
        assert!(
            out.contains(&format!(
                "{total} rules: {} active, 1 inactive\n",
                total - 1
            )),
            "{out}"
        );
    }

    #[test]
    fn test_replays_events_and_skips_bad_lines() {
        let d = tempdir("test");
        let event = serde_json::json!({
            "time_ns": 1_795_852_800_000_000_000u64,
            "kind": "execve",
            "process": {"pid": 7, "ppid": 1, "uid": 0, "gid": 0, "name": "xmrig", "exepath": "/tmp/xmrig", "argv": ["/tmp/xmrig"]},
            "container": {
                "id": "ab".repeat(32), "engine": "docker", "name": "web",
                "image": {"repository": "nginx", "tag": "1.27", "digest": null, "id": null}
            },
            "drift": {"kind": "binary", "subject": "exe", "verdict": "added", "path": "/tmp/xmrig"}
        });
        let events = write(
            &d,
            "events.jsonl",
            &format!("{event}\nnot json\n\n{event}\n"),
        );
        let (code, out, err) = run_cmd(RulesCommand::Test {
            events,
            rules: vec![],
            hostname: Some("node-1".into()),
            load: no_dir(),
        });
        assert_eq!(code, 0, "{err}");
        let alerts: Vec<driftwatch_model::Alert> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(alerts.len(), 2, "{out}");
        assert_eq!(alerts[0].rule, "Drop and execute new binary in container");
        assert_eq!(alerts[0].hostname, "node-1");
        assert!(
            err.contains("events.jsonl:2: not an event, skipped"),
            "{err}"
        );
        assert!(
            err.contains("2 event(s), 2 alert(s), 1 bad line(s)"),
            "{err}"
        );
    }

    #[test]
    fn fields_lists_the_catalogue_as_text_and_json() {
        let fields = |json, filled, unfilled| {
            run_cmd(RulesCommand::Fields {
                json,
                filled,
                unfilled,
            })
        };
        let (code, text, _) = fields(false, false, false);
        assert_eq!(code, 0);
        assert!(text.starts_with("Field Class: evt\n"), "{text}");
        for class in ["process", "fd", "fs.path", "container", "k8s", "drift"] {
            assert!(
                text.contains(&format!("\nField Class: {class}\n")),
                "{class}"
            );
        }
        let line = text
            .lines()
            .find(|l| l.starts_with("user.loginuid "))
            .unwrap();
        assert!(
            line.contains("INT64") && line.ends_with("filled: yes"),
            "{line}"
        );
        let line = text.lines().find(|l| l.starts_with("evt.arg[")).unwrap();
        assert!(line.contains("[N] or [NAME] required"), "{line}");
        let line = text
            .lines()
            .find(|l| l.starts_with("fd.sip.name "))
            .unwrap();
        assert!(line.ends_with("filled: no"), "{line}");

        let (code, json, _) = fields(true, false, false);
        assert_eq!(code, 0);
        let all: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(all.len(), driftwatch_rules::FIELDS.len());
        let get = |name: &str| all.iter().find(|f| f["name"] == name).unwrap().clone();
        let flags = get("evt.is_open_write");
        assert_eq!(flags["filled_on"], serde_json::json!(["openat"]));
        assert_eq!(flags["type"], "BOOL");
        let net = get("fd.net");
        assert_eq!(
            (net["type"].as_str(), net["class"].as_str()),
            (Some("IPNET"), Some("fd"))
        );
        assert_eq!(get("fdlist.names")["filled"], false);

        let (_, filled, _) = fields(true, true, false);
        let (_, unfilled, _) = fields(true, false, true);
        let filled: Vec<serde_json::Value> = serde_json::from_str(&filled).unwrap();
        let unfilled: Vec<serde_json::Value> = serde_json::from_str(&unfilled).unwrap();
        assert!(filled.iter().all(|f| f["filled"] == true));
        assert!(
            unfilled
                .iter()
                .all(|f| f["filled"] == false && f["filled_on"] == serde_json::json!([]))
        );
        assert_eq!(filled.len() + unfilled.len(), all.len());
    }
}
