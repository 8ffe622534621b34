//! `driftwatch alerts`: the stored alerts, filtered, as lines for people or Falco JSON, and
//! `--follow` for new ones; plus the sink that stores the agent's alerts (`driftwatch run`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use driftwatch_model::Priority;
use driftwatch_store::{AlertQuery, AlertReader, AlertSource, Order, RuleMatch, StoredAlert};

#[derive(clap::Args)]
pub struct AlertsArgs {
    /// Alerts from this long ago (`90s`, `30m`, `1h`, `2d`) or this time (RFC 3339,
    /// `2026-11-28T12:00:00Z`) on.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    since: Option<i64>,
    /// Alerts before this long ago or this time (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    until: Option<i64>,
    /// Only this container: its name, or a prefix of its id.
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Only this rule: its exact name or any part of it.
    #[arg(long, value_name = "RULE")]
    rule: Option<String>,
    /// Only alerts carrying this tag (`binary_drift`, `network_drift`, ...).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Only this priority or a more severe one (emergency, alert, critical, error, warning,
    /// notice, informational, debug).
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    priority: Option<Priority>,
    /// At most this many (the newest), 0 for all.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    /// One Falco JSON alert per line, as `run --json-out` writes them.
    #[arg(long)]
    json: bool,
    /// After the matching alerts, print new ones as they are stored, until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// The database `driftwatch run` stores alerts in (opened read-only).
    #[arg(long, value_name = "PATH", default_value = driftwatch_store::DEFAULT_PATH)]
    db: PathBuf,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
        .map_err(|e: driftwatch_model::PriorityParseError| e.to_string())
}

/// `30m` ago or an RFC 3339 time, as ns since the epoch.
fn parse_when(s: &str) -> Result<i64, String> {
    if let Some(t) = driftwatch_model::clock::parse_time_ns(s) {
        return Ok(i64::try_from(t).unwrap_or(i64::MAX));
    }
    let bad = || {
        format!(
            "`{s}` is neither a duration (90s, 30m, 1h, 2d) nor an RFC 3339 time (2026-11-28T12:00:00Z)"
        )
    };
    let ago = driftwatch_config::parse_duration(s).map_err(|_| bad())?;
    let ago_ns = i64::try_from(ago.as_nanos()).unwrap_or(i64::MAX);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Ok(now.saturating_sub(ago_ns))
}

/// Control characters of attacker-chosen strings (file names, process arguments, container
/// names) are shown escaped: they cannot forge lines or send terminal escapes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Two lines per alert: id, time, priority, container and rule; then the output, indented,
/// without Falco's time and priority prefix (the first line has them already).
fn human(s: &StoredAlert) -> String {
    let a = &s.alert;
    let id = s.container_id();
    let container = match (s.field("container.name"), id) {
        ("", "") => "host".to_string(),
        ("", id) => id.to_string(),
        (name, "") => name.to_string(),
        (name, id) => format!("{name} ({id})"),
    };
    let time = a.time.get(..23).unwrap_or(&a.time).replace('T', " ");
    format!(
        "#{}  {time}  {:<8}  {}  {}\n    {}\n",
        s.id,
        a.priority.as_str(),
        escape(&container),
        escape(&a.rule),
        escape(a.message())
    )
}

fn print(out: &mut impl Write, alerts: &[StoredAlert], json: bool) -> io::Result<()> {
    for s in alerts {
        if json {
            writeln!(out, "{}", s.alert.to_json_line())?;
        } else {
            out.write_all(human(s).as_bytes())?;
        }
    }
    out.flush()
}

pub fn run(args: AlertsArgs) -> anyhow::Result<i32> {
    let reader = AlertReader::open(&args.db)?;
    let base = AlertQuery {
        // Before 1970 is before every stored alert.
        since_ns: args.since.map(|t| u64::try_from(t).unwrap_or(0)),
        until_ns: args.until.map(|t| u64::try_from(t).unwrap_or(0)),
        container: args.container.clone(),
        rule: args.rule.clone(),
        rule_match: RuleMatch::Contains,
        tag: args.tag.clone(),
        min_priority: args.priority,
        after_id: None,
        limit: if args.limit == 0 {
            usize::MAX
        } else {
            args.limit
        },
        order: Order::NewestFirst,
    };
    // Where following starts: what was stored before the query, or the newest it printed
    // (newest first, so nothing matching in between is missed).
    let mut last = reader.last_id()?;
    let mut shown = reader.query_alerts(&base)?;
    last = shown.first().map_or(last, |s| s.id.max(last));
    shown.reverse();
    let mut out = io::stdout().lock();
    let result = (|| -> io::Result<()> {
        print(&mut out, &shown, args.json)?;
        if !args.json && !args.follow && shown.is_empty() {
            eprintln!("no stored alert matches ({})", args.db.display());
        }
        if !args.follow {
            return Ok(());
        }
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let new = reader
                .query_alerts(&AlertQuery {
                    after_id: Some(last),
                    order: Order::OldestFirst,
                    limit: 10_000,
                    ..base.clone()
                })
                .map_err(io::Error::other)?;
            // Ids of every alert, matching or not, move `last` on: the next poll starts there.
            last = reader.last_id().map_err(io::Error::other)?.max(last);
            if let Some(l) = new.last() {
                last = last.max(l.id);
            }
            print(&mut out, &new, args.json)?;
        }
    })();
    match result {
        Ok(()) => Ok(0),
        // `driftwatch alerts | head`: a closed pipe ends the output, it is no error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::Alert;

    #[test]
    fn when_takes_durations_and_rfc3339() {
        assert_eq!(
            parse_when("2026-11-28T08:00:00.123456789Z"),
            Ok(1_795_852_800_123_456_789)
        );
        let now = parse_when("0s").unwrap();
        let hour = parse_when("1h").unwrap();
        assert!((now - hour - 3_600_000_000_000).abs() < 1_000_000_000);
        assert!(parse_when("2d").unwrap() < hour);
        let e = parse_when("yesterday").unwrap_err();
        assert!(e.contains("`yesterday`") && e.contains("RFC 3339"), "{e}");
        assert!(parse_when("5w").is_err());
        assert!(parse_when("").is_err());
    }

    #[test]
    fn human_lines_show_the_time_and_priority_once() {
        let t = 1_795_852_800_123_456_789;
        let a = Alert {
            time: Alert::format_time(t),
            rule: "Terminal shell in container".into(),
            priority: Priority::Notice,
            source: "syscall".into(),
            hostname: "h".into(),
            output: format!(
                "{}A shell was spawned",
                Alert::output_prefix(t, Priority::Notice)
            ),
            tags: vec![],
            output_fields: Default::default(),
        };
        let text = human(&StoredAlert {
            id: 7,
            time_ns: t,
            alert: a,
        });
        assert_eq!(
            text,
            "#7  2026-11-28 08:00:00.123  Notice    host  Terminal shell in container\n    A shell was spawned\n"
        );
        assert_eq!(text.matches("08:00:00").count(), 1, "{text}");
        assert_eq!(text.matches("Notice").count(), 1, "{text}");
    }

    #[test]
    fn human_lines_escape_attacker_strings() {
        let a = Alert {
            time: Alert::format_time(0),
            rule: "r".into(),
            priority: Priority::Critical,
            source: "syscall".into(),
            hostname: "h".into(),
            output: "file x\n#2  1970-01-01 fake\x1b[2J".into(),
            tags: vec![],
            output_fields: [("container.name".to_string(), serde_json::json!("we\rb"))]
                .into_iter()
                .collect(),
        };
        let text = human(&StoredAlert {
            id: 1,
            time_ns: 0,
            alert: a,
        });
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
        assert!(text.contains("we\\rb") && text.contains("\\n#2"), "{text}");
    }
}
