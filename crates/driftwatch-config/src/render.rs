//! Writing a configuration out, from the key table: the effective configuration as YAML
//! (`config show`, which parses back to the same [`Config`]) or JSON, the reference
//! (`docs/config.md`) and the commented example file (`docs/config.example.yaml`).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::keys::{Access, HTTP_KEYS, KEYS, Key, SECTIONS};
use crate::load::Loaded;
use crate::schema::{Config, HttpOutput};
use crate::units::{format_duration, format_size};

/// A value as YAML: inline (`8`, `[a, b]`), or block lines (a non-empty receiver list).
enum Text {
    Inline(String),
    Block(Vec<String>),
}

/// A YAML scalar for a string: plain when it reads back as the same string, else quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@+,=".contains(c))
        && !s.starts_with(['-', '.', '@', ','])
        && driftwatch_yaml::parse(&format!("k: {s}\n"), driftwatch_yaml::ParseLimits::CONFIG)
            .ok()
            .flatten()
            .and_then(|n| n.get("k").and_then(|v| v.as_str().map(|v| v == s)))
            .unwrap_or(false);
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

fn text<T>(access: &Access<T>, t: &T) -> Text {
    Text::Inline(match access {
        Access::Bool(get, _) => get(t).to_string(),
        Access::U32(get, _) => get(t).to_string(),
        Access::Count(get, _) => get(t).to_string(),
        Access::Size(get, _) => format_size(*get(t)),
        Access::Duration(get, _) => format_duration(*get(t)),
        Access::Str(get, _) => yaml_str(get(t)),
        Access::Path(get, _) => yaml_str(&get(t).to_string_lossy()),
        Access::OptPath(get, _) => match get(t) {
            Some(p) => yaml_str(&p.to_string_lossy()),
            None => "null".into(),
        },
        Access::StrList(get, _) => list(get(t).iter().map(|s| yaml_str(s))),
        Access::PathList(get, _) => list(get(t).iter().map(|p| yaml_str(&p.to_string_lossy()))),
        Access::StrMap(get, _) => format!(
            "{{{}}}",
            get(t)
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_str(k), yaml_str(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Access::Choice { get, .. } => get(t).to_string(),
        Access::HttpList(get, _) => {
            let items = get(t);
            if items.is_empty() {
                return Text::Inline("[]".into());
            }
            let mut lines = Vec::new();
            for item in items {
                for (i, k) in HTTP_KEYS.iter().enumerate() {
                    let Text::Inline(v) = text(&k.access, item) else {
                        continue;
                    };
                    let lead = if i == 0 { "- " } else { "  " };
                    lines.push(format!("{lead}{}: {v}", k.path));
                }
            }
            return Text::Block(lines);
        }
        Access::AppendOutputList(get, _) => {
            let items = get(t);
            if items.is_empty() {
                return Text::Inline("[]".into());
            }
            return Text::Block(crate::append_output::yaml_lines(items));
        }
    })
}

fn json<T>(access: &Access<T>, t: &T) -> Value {
    match access {
        Access::Bool(get, _) => Value::Bool(*get(t)),
        Access::U32(get, _) => Value::from(*get(t)),
        Access::Count(get, _) => Value::from(*get(t)),
        Access::Size(get, _) => Value::from(*get(t)),
        Access::Duration(get, _) => Value::from(format_duration(*get(t))),
        Access::Str(get, _) => Value::from(get(t).clone()),
        Access::Path(get, _) => Value::from(get(t).to_string_lossy().into_owned()),
        Access::OptPath(get, _) => get(t).as_ref().map_or(Value::Null, |p| {
            Value::from(p.to_string_lossy().into_owned())
        }),
        Access::StrList(get, _) => Value::from(get(t).clone()),
        Access::PathList(get, _) => Value::from(
            get(t)
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        ),
        Access::StrMap(get, _) => Value::Object(
            get(t)
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect(),
        ),
        Access::Choice { get, .. } => Value::from(get(t)),
        Access::HttpList(get, _) => Value::Array(
            get(t)
                .iter()
                .map(|item| {
                    Value::Object(
                        HTTP_KEYS
                            .iter()
                            .map(|k| (k.path.to_string(), json(&k.access, item)))
                            .collect(),
                    )
                })
                .collect(),
        ),
        Access::AppendOutputList(get, _) => crate::append_output::to_json(get(t)),
    }
}

enum Walk {
    /// A mapping opens: depth, its name, its dotted path.
    Header(usize, &'static str, String),
    /// A key at its depth.
    Leaf(usize, &'static Key<Config>),
}

/// The keys in order, with a header where each mapping opens.
fn walk_sections() -> Vec<Walk> {
    let mut out = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    for k in KEYS {
        let segs: Vec<&'static str> = k.path.split('.').collect();
        let parents = &segs[..segs.len() - 1];
        let common = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for (d, seg) in parents.iter().enumerate().skip(common) {
            out.push(Walk::Header(d, seg, parents[..=d].join(".")));
            open.push(seg);
        }
        out.push(Walk::Leaf(parents.len(), k));
    }
    out
}

/// The effective configuration as YAML, every key with its value; keys the file set are
/// marked `# from FILE:LINE`.
pub fn show_yaml(loaded: &Loaded) -> String {
    let mut out = String::new();
    match &loaded.file {
        Some(f) => {
            let _ = writeln!(
                out,
                "# The effective configuration: {} over the embedded defaults.\n# Keys marked \"from\" are set by the file; the others are defaults.",
                f.display()
            );
        }
        None => out.push_str("# The effective configuration: the embedded defaults (no file).\n"),
    }
    let file = loaded
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    for w in walk_sections() {
        let (d, k) = match w {
            Walk::Header(d, name, _) => {
                let _ = writeln!(out, "{}{name}:", "  ".repeat(d));
                continue;
            }
            Walk::Leaf(d, k) => (d, k),
        };
        {
            let name = k.path.rsplit('.').next().unwrap_or(k.path);
            let indent = "  ".repeat(d);
            let mark = loaded
                .set
                .get(k.path)
                .map(|p| format!("  # from {file}:{}", p.line))
                .unwrap_or_default();
            match text(&k.access, &loaded.config) {
                Text::Inline(v) => {
                    let _ = writeln!(out, "{indent}{name}: {v}{mark}");
                }
                Text::Block(lines) => {
                    let _ = writeln!(out, "{indent}{name}:{mark}");
                    for l in lines {
                        let _ = writeln!(out, "{indent}  {l}");
                    }
                }
            }
        }
    }
    out
}

/// The effective configuration as JSON: `{"file", "config", "from_file"}`; `from_file`
/// maps each key the file set to `FILE:LINE:COL`.
pub fn show_json(loaded: &Loaded) -> Value {
    let mut root = Map::new();
    for k in KEYS {
        let segs: Vec<&str> = k.path.split('.').collect();
        let mut m = &mut root;
        for s in &segs[..segs.len() - 1] {
            m = m
                .entry(s.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("sections are objects");
        }
        m.insert(
            segs[segs.len() - 1].to_string(),
            json(&k.access, &loaded.config),
        );
    }
    let file = loaded.file.as_ref().map(|f| f.display().to_string());
    let from: Map<String, Value> = loaded
        .set
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                Value::from(format!(
                    "{}:{}:{}",
                    file.as_deref().unwrap_or(""),
                    p.line,
                    p.col
                )),
            )
        })
        .collect();
    serde_json::json!({
        "file": file,
        "config": Value::Object(root),
        "from_file": Value::Object(from),
    })
}

fn section_doc(path: &str) -> Option<&'static str> {
    SECTIONS.iter().find(|(p, _)| *p == path).map(|(_, d)| *d)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The commented example: every section, every key commented out at its default with its
/// meaning above it. As is, it parses to the embedded defaults with no key set.
pub fn example_yaml() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "# driftwatch configuration (/etc/driftwatch/config.yaml).\n\
         #\n\
         # Every key is shown commented out at its embedded default: uncomment and change what\n\
         # you need. Precedence: `driftwatch run` flags > this file > embedded defaults.\n\
         # Check a change with `driftwatch config validate`, see the result with\n\
         # `driftwatch config show`, apply it with `systemctl reload driftwatch` (SIGHUP): keys\n\
         # marked [restart] need a restart. Reference: docs/config.md (`driftwatch config reference`).\n\
         # Durations: 90s, 5m, 1h, 30d. Sizes: 512KiB, 100MiB, 1GiB, or bytes.\n\
         # Generated from crates/driftwatch-config/src/keys.rs; do not edit by hand.\n",
    );
    for w in walk_sections() {
        let (d, k) = match w {
            Walk::Header(d, name, path) => {
                let indent = "  ".repeat(d);
                out.push('\n');
                if let Some(doc) = section_doc(&path) {
                    for l in wrap(doc, 88 - indent.len()) {
                        let _ = writeln!(out, "{indent}# {l}");
                    }
                }
                let _ = writeln!(out, "{indent}{name}:");
                continue;
            }
            Walk::Leaf(d, k) => (d, k),
        };
        {
            let indent = "  ".repeat(d);
            let name = k.path.rsplit('.').next().unwrap_or(k.path);
            let tag = if k.reload == crate::keys::Reload::Restart {
                " [restart]"
            } else {
                ""
            };
            for l in wrap(&format!("{}{tag}", k.doc), 88 - indent.len()) {
                let _ = writeln!(out, "{indent}# {l}");
            }
            match text(&k.access, &defaults) {
                Text::Inline(v) => {
                    let _ = writeln!(out, "{indent}# {name}: {v}");
                }
                Text::Block(lines) if matches!(k.access, Access::AppendOutputList(..)) => {
                    let _ = writeln!(out, "{indent}# {name}:");
                    for l in lines {
                        let _ = writeln!(out, "{indent}#   {l}");
                    }
                }
                Text::Block(_) => {}
            }
            if matches!(k.access, Access::HttpList(..)) {
                let example = HttpOutput {
                    url: "http://127.0.0.1:2801/".into(),
                    ..HttpOutput::default()
                };
                let _ = writeln!(out, "{indent}# For example:\n{indent}# {name}:");
                for (i, hk) in HTTP_KEYS.iter().enumerate() {
                    if let Text::Inline(v) = text(&hk.access, &example) {
                        let lead = if i == 0 { "- " } else { "  " };
                        let _ = writeln!(out, "{indent}#   {lead}{}: {v}", hk.path);
                    }
                }
            }
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn md_row<T>(path: &str, k: &Key<T>, default: &T) -> String {
    let def = match text(&k.access, default) {
        Text::Inline(v) => format!("`{v}`"),
        Text::Block(lines) if matches!(k.access, Access::AppendOutputList(..)) => {
            format!("`{}`", lines.join(" "))
        }
        Text::Block(_) => "(see below)".into(),
    };
    format!(
        "| `{path}` | {} | {def} | {} | {} |\n",
        k.access.type_name(),
        k.reload.as_str(),
        md_escape(k.doc)
    )
}

/// The reference: every key with its type, default, reload and meaning.
pub fn reference_markdown() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/driftwatch-config/src/keys.rs: `UPDATE_DOCS=1 cargo test -p driftwatch-config`. Do not edit. -->\n\n\
         driftwatch reads one YAML file: `/etc/driftwatch/config.yaml`, or the file given with\n\
         `driftwatch run --config FILE`. Every key has an embedded default, so no file is needed;\n\
         a missing default file means the defaults, a missing `--config` file is an error.\n\
         Unknown keys are rejected with `FILE:LINE:COL` and the closest known key.\n\n\
         **Precedence:** `driftwatch run` flags > the file > embedded defaults. The\n\
         `DRIFTWATCH_LOG` environment variable overrides `logging.level`.\n\n\
         **Formats:** durations `90s`, `5m`, `1h`, `30d` (`250ms`; `0`); sizes `512KiB`, `100MiB`,\n\
         `1GiB`, `10MB` or a number of bytes. Relative paths are relative to the file's directory.\n\n\
         **Reload:** on SIGHUP (`systemctl reload driftwatch`, `kill -HUP PID`) the agent re-reads\n\
         and validates the file. If it is invalid, the agent keeps running on the previous\n\
         configuration and logs every error. Keys marked `SIGHUP` below are applied at once (rules\n\
         are compiled first, then swapped in between two events); keys marked `restart` are logged\n\
         as \"changed, takes effect after restart\".\n\n\
         **Commands:** `driftwatch config validate [FILE]`, `driftwatch config show [--config FILE]\n\
         [--json]`, `driftwatch config reference` (this page). A commented example with every key\n\
         at its default: [`config.example.yaml`](config.example.yaml).\n",
    );
    let table =
        "| Key | Type | Default | Reload | Description |\n| --- | --- | --- | --- | --- |\n";
    let mut last_table = String::new();
    let mut tops: Vec<&str> = Vec::new();
    for k in KEYS {
        let section = k.path.rsplit_once('.').map_or("", |(s, _)| s);
        let top = section.split('.').next().unwrap_or("");
        if !tops.contains(&top) {
            tops.push(top);
            let _ = write!(out, "\n## `{top}`\n\n");
            if let Some(doc) = section_doc(top) {
                let _ = write!(out, "{doc}\n\n");
            }
            if section == top {
                out.push_str(table);
                last_table = top.to_string();
            }
        }
        let is_list = matches!(k.access, Access::HttpList(..));
        let this_table = if is_list { k.path } else { section };
        if this_table != last_table {
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            let _ = write!(out, "### `{this_table}`\n\n");
            if let Some(doc) = section_doc(this_table) {
                let _ = write!(out, "{doc}\n\n");
            }
            out.push_str(table);
            last_table = this_table.to_string();
        }
        out.push_str(&md_row(k.path, k, &defaults));
        if is_list {
            let item = HttpOutput::default();
            out.push_str("\nEach receiver:\n\n");
            out.push_str(table);
            for hk in HTTP_KEYS {
                out.push_str(&md_row(&format!("{}[].{}", k.path, hk.path), hk, &item));
            }
        }
    }
    out
}
