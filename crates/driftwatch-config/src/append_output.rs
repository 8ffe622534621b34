//! `rules.append_output`: Falco's `append_output` entries (falco.yaml), read in Falco's schema
//! with every problem at `FILE:LINE:COL`, formats and fields checked against the rule engine's
//! field catalogue, and written back for `config show`.

use driftwatch_rules::{AppendOutput, ExtraField, check_output_format};
use driftwatch_yaml::{Node, NodeKind};
use serde_json::{Value, json};

use crate::load::Cx;

const ENTRY_KEYS: [&str; 4] = ["match", "extra_output", "extra_fields", "suggested_output"];
const MATCH_KEYS: [&str; 3] = ["source", "tags", "rule"];

impl Cx<'_> {
    /// The list at `here` (`rules.append_output`); problems inside items are reported here
    /// (the list keeps the items that read), a value that is no list is returned as `Err`.
    pub(crate) fn append_output(
        &mut self,
        v: &Node,
        here: &str,
    ) -> Result<Vec<AppendOutput>, String> {
        let Some(items) = v.as_seq() else {
            return Err(format!(
                "expected a list of entries (each a mapping with match, extra_output, extra_fields, suggested_output), found {}",
                v.describe()
            ));
        };
        let mut list = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{here}[{i}]");
            if let Some(e) = self.append_entry(item, &at) {
                list.push(e);
            }
        }
        Ok(list)
    }

    fn append_entry(&mut self, item: &Node, at: &str) -> Option<AppendOutput> {
        let NodeKind::Map(kv) = &item.kind else {
            self.error(
                item,
                format!("{at}: expected a mapping, found {}", item.describe()),
            );
            return None;
        };
        let mut e = AppendOutput::default();
        let before = self.diags.len();
        for (k, v) in kv {
            let key = k.as_str().unwrap_or("");
            let here = format!("{at}.{key}");
            match key {
                "match" => self.append_match(v, &here, &mut e),
                "extra_output" => match v.as_str() {
                    Some(s) => {
                        self.check_format(v, &here, s, false);
                        e.extra_output = s.to_string();
                    }
                    None => self.error(
                        v,
                        format!("{here}: expected a string, found {}", v.describe()),
                    ),
                },
                "extra_fields" => e.extra_fields = self.extra_fields(v, &here),
                "suggested_output" => match v.kind {
                    NodeKind::Bool(b) => e.suggested_output = b,
                    _ => self.error(
                        v,
                        format!("{here}: expected true or false, found {}", v.describe()),
                    ),
                },
                _ => self.unknown_in(k, at, &ENTRY_KEYS),
            }
        }
        (self.diags.len() == before).then_some(e)
    }

    fn append_match(&mut self, v: &Node, here: &str, e: &mut AppendOutput) {
        let NodeKind::Map(kv) = &v.kind else {
            self.error(
                v,
                format!(
                    "{here}: expected a mapping (source, tags, rule), found {}",
                    v.describe()
                ),
            );
            return;
        };
        for (k, v) in kv {
            let key = k.as_str().unwrap_or("");
            let at = format!("{here}.{key}");
            match (key, v.as_str(), v.as_seq()) {
                ("source", Some(s), _) => e.source = Some(s.to_string()),
                ("rule", Some(s), _) => e.rule = Some(s.to_string()),
                ("tags", _, Some(items)) => {
                    for t in items {
                        match t.as_str() {
                            Some(s) => e.tags.push(s.to_string()),
                            None => self
                                .error(t, format!("{at}: expected a tag, found {}", t.describe())),
                        }
                    }
                }
                ("source" | "rule", None, _) => self.error(
                    v,
                    format!("{at}: expected a string, found {}", v.describe()),
                ),
                ("tags", _, None) => self.error(
                    v,
                    format!("{at}: expected a list of tags, found {}", v.describe()),
                ),
                _ => self.unknown_in(k, here, &MATCH_KEYS),
            }
        }
    }

    /// `- name: "format"` or `- field.name`; a name given twice is an error, as in Falco.
    fn extra_fields(&mut self, v: &Node, here: &str) -> Vec<ExtraField> {
        let Some(items) = v.as_seq() else {
            self.error(
                v,
                format!(
                    "{here}: expected a list (`- name: \"FORMAT\"` or `- field.name`), found {}",
                    v.describe()
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<ExtraField> = Vec::new();
        for (j, item) in items.iter().enumerate() {
            let at = format!("{here}[{j}]");
            let field = match &item.kind {
                NodeKind::Str(s) => {
                    self.check_format(item, &at, s, true);
                    ExtraField::Field(s.clone())
                }
                NodeKind::Map(kv) if kv.len() == 1 => {
                    let (k, f) = &kv[0];
                    let (Some(name), Some(format)) = (k.as_str(), f.as_str()) else {
                        self.error(
                            f,
                            format!(
                                "{at}: expected `name: \"FORMAT\"` with a string format, found {}",
                                f.describe()
                            ),
                        );
                        continue;
                    };
                    self.check_format(f, &at, format, false);
                    ExtraField::Formatted {
                        name: name.to_string(),
                        format: format.to_string(),
                    }
                }
                _ => {
                    self.error(
                        item,
                        format!(
                            "{at}: expected a field name or one `name: \"FORMAT\"`, found {}",
                            item.describe()
                        ),
                    );
                    continue;
                }
            };
            let name = match &field {
                ExtraField::Field(n) | ExtraField::Formatted { name: n, .. } => n.clone(),
            };
            let taken = out.iter().any(|f| match f {
                ExtraField::Field(n) | ExtraField::Formatted { name: n, .. } => *n == name,
            });
            if taken {
                self.error(item, format!("{at}: {name:?} is given twice"));
                continue;
            }
            out.push(field);
        }
        out
    }

    /// A format (or, `field_only`, a field name) checked against the field catalogue.
    fn check_format(&mut self, at: &Node, here: &str, text: &str, field_only: bool) {
        for d in check_output_format(here, text, field_only) {
            self.error(at, format!("{here}: {}", d.message));
        }
    }

    fn unknown_in(&mut self, k: &Node, within: &str, known: &[&str]) {
        let name = k.as_str().map_or_else(|| k.describe(), str::to_string);
        let hint = crate::load::closest(&name, known.iter().copied())
            .map(|c| format!("; did you mean {c:?}?"))
            .unwrap_or_else(|| format!(" (known: {})", known.join(", ")));
        self.error(k, format!("unknown key {name:?} in {within}{hint}"));
    }
}

fn yaml_scalar(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The entries as YAML block lines (`config show`), in Falco's schema.
pub(crate) fn yaml_lines(list: &[AppendOutput]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in list {
        let mut item: Vec<String> = Vec::new();
        let mut m = Vec::new();
        if let Some(s) = &e.source {
            m.push(format!("source: {}", yaml_scalar(s)));
        }
        if !e.tags.is_empty() {
            let tags: Vec<String> = e.tags.iter().map(|t| yaml_scalar(t)).collect();
            m.push(format!("tags: [{}]", tags.join(", ")));
        }
        if let Some(r) = &e.rule {
            m.push(format!("rule: {}", yaml_scalar(r)));
        }
        if !m.is_empty() {
            item.push(format!("match: {{{}}}", m.join(", ")));
        }
        if !e.extra_output.is_empty() {
            item.push(format!("extra_output: {}", yaml_scalar(&e.extra_output)));
        }
        if !e.extra_fields.is_empty() {
            item.push("extra_fields:".into());
            for f in &e.extra_fields {
                item.push(match f {
                    ExtraField::Field(n) => format!("  - {}", yaml_scalar(n)),
                    ExtraField::Formatted { name, format } => {
                        format!("  - {}: {}", yaml_scalar(name), yaml_scalar(format))
                    }
                });
            }
        }
        item.push(format!("suggested_output: {}", e.suggested_output));
        for (i, l) in item.into_iter().enumerate() {
            lines.push(format!("{}{l}", if i == 0 { "- " } else { "  " }));
        }
    }
    lines
}

/// The entries as JSON (`config show --json`), in Falco's schema.
pub(crate) fn to_json(list: &[AppendOutput]) -> Value {
    Value::Array(
        list.iter()
            .map(|e| {
                let fields: Vec<Value> = e
                    .extra_fields
                    .iter()
                    .map(|f| match f {
                        ExtraField::Field(n) => json!(n),
                        ExtraField::Formatted { name, format } => json!({ name: format }),
                    })
                    .collect();
                json!({
                    "match": {"source": e.source, "tags": e.tags, "rule": e.rule},
                    "extra_output": e.extra_output,
                    "extra_fields": fields,
                    "suggested_output": e.suggested_output,
                })
            })
            .collect(),
    )
}
