//! The command line as the last configuration layer (embedded defaults < file < flags): a
//! flag names the key it sets, its value goes through the key table's parser and the file's
//! checks, and a problem is told at the flag and its value (`--ring-mib 3: ...`) where a
//! file's would be at `FILE:LINE:COL`. No check is written twice.

use std::collections::BTreeMap;

use driftwatch_yaml::{Node, NodeKind};

use crate::keys::{Access, KEYS};
use crate::load::{Cx, FlagError, Loaded, check};
use crate::schema::Config;

/// One key a command-line flag sets.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagSetting {
    /// The flag as it is spelled (`--ring-mib`).
    pub flag: &'static str,
    /// The key it sets (`sensor.ring_mib`).
    pub key: &'static str,
    pub value: FlagValue,
}

/// What a flag gives its key.
#[derive(Clone, Debug, PartialEq)]
pub enum FlagValue {
    /// One value in the key's grammar, as the file would write it (`8`, `5m`, `/path`,
    /// `prevent`, `true`).
    Scalar(String),
    /// A list replacing the file's (`--containerd-namespaces`).
    List(Vec<String>),
    /// Items added after the file's list (`--rules`, `--http-out` URLs, `--protect`).
    Append(Vec<String>),
}

impl FlagSetting {
    pub fn scalar(flag: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        FlagSetting {
            flag,
            key,
            value: FlagValue::Scalar(value.into()),
        }
    }

    /// `--flag value` as the user gave it (a switch shows alone).
    fn shown(&self) -> String {
        let items = match &self.value {
            FlagValue::Scalar(v) if v == "true" || v == "false" => return self.flag.to_string(),
            FlagValue::Scalar(v) => return format!("{} {v}", self.flag),
            FlagValue::List(v) | FlagValue::Append(v) => v,
        };
        format!("{} {}", self.flag, items.join(","))
    }
}

/// The flags over a loaded configuration, checked as the file is. Every problem, not the
/// first.
pub fn with_flags(loaded: &Loaded, flags: &[FlagSetting]) -> Result<Loaded, Vec<FlagError>> {
    let file = loaded.file.as_ref().map_or_else(
        || "the embedded defaults".to_string(),
        |f| f.display().to_string(),
    );
    let mut cx = Cx {
        file: &file,
        // A relative path on the command line is relative to where the command runs.
        base: None,
        diags: Vec::new(),
        set: loaded.set.clone(),
        flags: BTreeMap::new(),
        flag_errors: Vec::new(),
    };
    let mut config = loaded.config.clone();
    for f in flags {
        let shown = f.shown();
        let Some(key) = KEYS.iter().find(|k| k.path == f.key) else {
            cx.flag_errors.push(FlagError {
                at: shown,
                message: format!("{}: not a configuration key", f.key),
            });
            continue;
        };
        match apply(&mut cx, &key.access, f, &mut config) {
            Ok(added) => {
                for k in added {
                    cx.flags.insert(k, shown.clone());
                }
                cx.flags.insert(f.key.to_string(), shown);
            }
            Err(message) => cx.flag_errors.push(FlagError {
                at: shown,
                message: format!("{}: {message}", f.key),
            }),
        }
    }
    check(&config, &mut cx);
    let mut errors = cx.flag_errors;
    errors.extend(cx.diags.into_iter().map(|d| FlagError {
        at: format!("{}:{}:{}", d.file, d.line, d.col),
        message: d.message,
    }));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Loaded {
        config,
        file: loaded.file.clone(),
        set: loaded.set.clone(),
        flags: cx.flags,
    })
}

/// The node the file would hold for this value, typed as the key expects (a flag's `8` is
/// a number for `sensor.ring_mib`, a string for a path).
fn node(access: &Access<Config>, text: &str) -> Node {
    let kind = match access {
        Access::Bool(..) => match text {
            "true" => NodeKind::Bool(true),
            "false" => NodeKind::Bool(false),
            _ => NodeKind::Str(text.into()),
        },
        Access::U32(..) | Access::Count(..) | Access::Size(..) => text
            .parse::<i64>()
            .map_or_else(|_| NodeKind::Str(text.into()), NodeKind::Int),
        _ => NodeKind::Str(text.into()),
    };
    Node::at_start(kind)
}

/// Sets `f`'s key in `config`; returns the keys of list items it added
/// (`outputs.http[2].url`), for the checks of each item.
fn apply(
    cx: &mut Cx<'_>,
    access: &Access<Config>,
    f: &FlagSetting,
    config: &mut Config,
) -> Result<Vec<String>, String> {
    let seq = |items: &[String]| {
        Node::at_start(NodeKind::Seq(
            items
                .iter()
                .map(|s| match access {
                    // A receiver is a mapping; the flag gives its URL.
                    Access::HttpList(..) => Node::at_start(NodeKind::Map(vec![(
                        Node::at_start(NodeKind::Str("url".into())),
                        Node::at_start(NodeKind::Str(s.clone())),
                    )])),
                    _ => Node::at_start(NodeKind::Str(s.clone())),
                })
                .collect(),
        ))
    };
    match &f.value {
        FlagValue::Scalar(v) => cx.value(access, &node(access, v), f.key, config)?,
        FlagValue::List(items) => cx.value(access, &seq(items), f.key, config)?,
        FlagValue::Append(items) => {
            // Parsed alone, then put after what the file gave.
            let mut before = config.clone();
            cx.value(access, &seq(items), f.key, config)?;
            match access {
                Access::StrList(_, set) => {
                    let new = std::mem::take(set(config));
                    *set(config) = std::mem::take(set(&mut before));
                    set(config).extend(new);
                }
                Access::PathList(_, set) => {
                    let new = std::mem::take(set(config));
                    *set(config) = std::mem::take(set(&mut before));
                    set(config).extend(new);
                }
                Access::HttpList(_, set) => {
                    let first = set(&mut before).len();
                    let new = std::mem::take(set(config));
                    *set(config) = std::mem::take(set(&mut before));
                    set(config).extend(new);
                    return Ok((first..set(config).len())
                        .map(|i| format!("{}[{i}].url", f.key))
                        .collect());
                }
                _ => return Err("takes one value, not a list".into()),
            }
        }
    }
    Ok(Vec::new())
}
