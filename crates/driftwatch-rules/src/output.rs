//! Rule outputs: `%field` placeholders (also `%proc.aname[2]`) resolved at load time and
//! filled per alert, with `<NA>` for missing values; plus the typed `output_fields`. An
//! alert's text and fields are Falco's: `HH:MM:SS.nnnnnnnnn: Priority ` before the output,
//! `evt.time` among the fields, `%container.info` expanded.

use std::collections::BTreeMap;

use driftwatch_model::{Alert, Event, Priority};

use crate::compile::Compiler;
use crate::fields::{FieldArg, FieldRef, FieldType, Val, extract};
use crate::parser::parse_field_token;
use crate::source::Text;

#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    Field(usize),
}

/// What `%container.info` stands for: Falco's default substitution from 0.37 to 0.40
/// (`container_id=%container.id container_name=%container.name`), the first two of the fields
/// Falco 0.41+ appends through its container plugin's suggested output instead
/// ([`crate::SUGGESTED_OUTPUT`]). Falco's old
/// `-pk`/`-pc` options, which put Kubernetes fields there, have no counterpart: driftwatch
/// adds the pod's fields to the `output_fields` of every alert about a pod ([`POD_FIELDS`]).
const CONTAINER_INFO: [(&str, &str); 2] = [
    ("container_id=", "container.id"),
    (" container_name=", "container.name"),
];

/// The fields Falco adds to every alert's `output_fields` from its output prefix.
const PREFIX_FIELDS: [&str; 1] = ["evt.time"];

/// A parsed output format.
#[derive(Clone, Debug, Default)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// Distinct fields, in order of first use.
    fields: Vec<FieldRef>,
    /// `output_fields` that the text does not print (`append_output`'s `extra_fields`).
    extra: Vec<(String, Extra)>,
}

/// Folded YAML keeps line breaks before more-indented lines; an alert is one line.
fn squash(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut ws = String::new();
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            pending_space = true;
            ws.clear();
        } else if c.is_whitespace() {
            ws.push(c);
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
                ws.clear();
            } else if !ws.is_empty() {
                out.push_str(&ws);
                ws.clear();
            }
            out.push(c);
        }
    }
    if pending_space {
        out.push(' ');
    } else {
        out.push_str(&ws);
    }
    out
}

impl Template {
    /// Parses an output; unknown fields are reported through the compiler. `None` on errors.
    pub(crate) fn parse(
        text: &Text,
        c: &mut Compiler<'_>,
        files: &[crate::source::SourceFile],
    ) -> Option<Template> {
        let s = text.text.as_str();
        let mut t = Template::default();
        let mut lit = String::new();
        let mut ok = true;
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            let Some(pct) = rest.find('%') else {
                lit.push_str(rest);
                break;
            };
            lit.push_str(&rest[..pct]);
            i += pct + 1;
            if s[i..].starts_with('%') {
                lit.push('%');
                i += 1;
                continue;
            }
            match parse_field_token(&s[i..]) {
                Some((name, None, len)) if name == "container.info" => {
                    let pos = text.map(i - 1, files);
                    for (label, field) in CONTAINER_INFO {
                        lit.push_str(label);
                        match c.output_field(field, None, pos) {
                            Some(f) => {
                                t.parts.push(Part::Lit(squash(&std::mem::take(&mut lit))));
                                let idx = t.field_index(f);
                                t.parts.push(Part::Field(idx));
                            }
                            None => ok = false,
                        }
                    }
                    i += len;
                }
                Some((name, arg, len)) => {
                    let pos = text.map(i - 1, files);
                    match c.output_field(&name, arg, pos) {
                        Some(f) => {
                            if !lit.is_empty() {
                                t.parts.push(Part::Lit(squash(&std::mem::take(&mut lit))));
                            }
                            let idx = t.field_index(f);
                            t.parts.push(Part::Field(idx));
                        }
                        None => ok = false,
                    }
                    i += len;
                }
                None => lit.push('%'),
            }
        }
        if !lit.is_empty() {
            t.parts.push(Part::Lit(squash(&lit)));
        }
        // Trim the ends.
        if let Some(Part::Lit(first)) = t.parts.first_mut() {
            *first = first.trim_start().to_string();
        }
        if let Some(Part::Lit(last)) = t.parts.last_mut() {
            *last = last.trim_end().to_string();
        }
        ok.then_some(t)
    }

    /// Falco's append of a format to an output (`append_output`): a space, then `other`.
    pub(crate) fn append(&mut self, other: &Template) {
        self.parts.push(Part::Lit(" ".into()));
        for p in &other.parts {
            match p {
                Part::Lit(s) => self.parts.push(Part::Lit(s.clone())),
                Part::Field(i) => {
                    let idx = self.field_index(other.fields[*i].clone());
                    self.parts.push(Part::Field(idx));
                }
            }
        }
    }

    /// Whether the text prints `field` (without an argument).
    pub(crate) fn prints(&self, field: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.info.name == field && matches!(f.arg, FieldArg::None))
    }

    /// An `output_fields` entry the text does not print; a later one of the same name wins.
    pub(crate) fn add_extra_field(&mut self, name: &str, x: Extra) {
        self.extra.retain(|(n, _)| n != name);
        self.extra.push((name.to_string(), x));
    }

    /// The index of `f` among the distinct fields, added if new.
    fn field_index(&mut self, f: FieldRef) -> usize {
        match self.fields.iter().position(|x| *x == f) {
            Some(idx) => idx,
            None => {
                self.fields.push(f);
                self.fields.len() - 1
            }
        }
    }

    /// An alert's `output` as Falco writes it: the time of day and the priority, then the
    /// rule's output with its placeholders filled in.
    pub(crate) fn render_alert(&self, ev: &Event, priority: Priority) -> String {
        let mut out = Alert::output_prefix(ev.time_ns, priority);
        out.push_str(&self.render(ev));
        out
    }

    /// The output with placeholders filled in.
    pub(crate) fn render(&self, ev: &Event) -> String {
        let mut out = String::new();
        let mut scratch = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(i) => {
                    let f = &self.fields[*i];
                    push_text(&mut out, f, extract(f, ev, &mut scratch));
                }
            }
        }
        out
    }

    /// Every field of the output with its typed value (`null` when missing), the fields of
    /// Falco's output prefix ([`PREFIX_FIELDS`]: `evt.time`, nanoseconds since the epoch as
    /// Falco's JSON has it), and for an event in a pod the pod's fields ([`POD_FIELDS`])
    /// whatever the output names.
    pub(crate) fn output_fields(&self, ev: &Event) -> BTreeMap<String, serde_json::Value> {
        let mut scratch = String::new();
        let mut out: BTreeMap<String, serde_json::Value> = self
            .fields
            .iter()
            .map(|f| {
                (
                    f.display_name(),
                    json_value(f, extract(f, ev, &mut scratch)),
                )
            })
            .collect();
        for name in PREFIX_FIELDS {
            if let Some(info) = crate::fields::field(name) {
                let f = FieldRef {
                    info,
                    arg: FieldArg::None,
                };
                out.insert(
                    name.to_string(),
                    json_value(&f, extract(&f, ev, &mut scratch)),
                );
            }
        }
        for (name, x) in &self.extra {
            out.insert(name.clone(), x.value(ev));
        }
        if ev.container.as_deref().is_some_and(|c| c.k8s.is_some()) {
            for name in POD_FIELDS {
                if out.contains_key(name) {
                    continue;
                }
                let Some(info) = crate::fields::field(name) else {
                    continue;
                };
                let f = FieldRef {
                    info,
                    arg: FieldArg::None,
                };
                let v = json_value(&f, extract(&f, ev, &mut scratch));
                if !v.is_null() && v != "" {
                    out.insert(name.to_string(), v);
                }
            }
        }
        out
    }
}

/// The fields every alert about a pod carries, as Falco's `append_output` (formerly `-pk`)
/// adds them: playbooks act on the pod by them (evict takes the uid as a precondition) and
/// consumers group by them, whether or not a rule's output prints them. Alerts about other
/// containers carry only what their output names.
pub const POD_FIELDS: [&str; 4] = [
    "k8s.ns.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.pod.labels",
];

fn push_text(out: &mut String, f: &FieldRef, v: Val<'_>) {
    match v {
        Val::Missing => out.push_str("<NA>"),
        Val::Str(s) => push_escaped(out, s),
        Val::Num(n) if f.info.ty == FieldType::Time => {
            let ns = u64::try_from(n).unwrap_or(0);
            // Falco's `%evt.time` is the time of day; other time fields print in full.
            if f.info.name == "evt.time" {
                out.push_str(&Alert::format_clock(ns))
            } else {
                out.push_str(&Alert::format_time(ns))
            }
        }
        Val::Num(n) => out.push_str(&n.to_string()),
        Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
    }
}

/// A value in the text of an alert: control characters escaped (`\n`, `\u{1b}`), so a name
/// or argument from a container cannot break the line or drive a terminal. `output_fields`
/// carry the value itself.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

pub(crate) fn json_value(_f: &FieldRef, v: Val<'_>) -> serde_json::Value {
    match v {
        Val::Missing => serde_json::Value::Null,
        Val::Str(s) => serde_json::Value::String(s.to_string()),
        Val::Num(n) => serde_json::Value::from(n),
        Val::Bool(b) => serde_json::Value::Bool(b),
    }
}

#[cfg(test)]
mod tests {
    use super::squash;

    #[test]
    fn values_in_the_text_have_control_characters_escaped() {
        let mut out = String::new();
        super::push_escaped(&mut out, "/tmp/we ird\nname\t\u{1b}[31m\u{9b}\\ \u{FFFD}");
        assert_eq!(out, "/tmp/we ird\\nname\\t\\u{1b}[31m\\u{9b}\\ \u{FFFD}");
    }

    #[test]
    fn squash_folds_line_breaks_only() {
        assert_eq!(squash("a  b\n   c\n"), "a  b c ");
        assert_eq!(squash("(x=1\n y=2)"), "(x=1 y=2)");
    }
}

/// An extra field of Falco's `append_output`, resolved (parsed in `append_output`).
#[derive(Clone, Debug)]
pub(crate) enum Extra {
    Formatted(Template),
    Field(FieldRef),
}

impl Extra {
    pub(crate) fn value(&self, ev: &Event) -> serde_json::Value {
        match self {
            Extra::Formatted(t) => serde_json::Value::String(t.render(ev)),
            Extra::Field(f) => {
                let mut scratch = String::new();
                json_value(f, extract(f, ev, &mut scratch))
            }
        }
    }
}
