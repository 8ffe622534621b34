//! Falco's `append_output` (falco.yaml, Falco 0.39+): text and fields added to the outputs of
//! the rules an entry matches. Resolved once when the rules load, into each rule's output
//! template, so an alert costs what it would if the rule's own output said the same.

use crate::compile::Compiler;
use crate::diag::Diagnostic;
use crate::fields::FieldRef;
use crate::loader::Definitions;
use crate::output::{Extra, Template};
use crate::parser::parse_field_token;
use crate::source::{At, SourceFile, Text};

/// One `append_output` entry, as Falco's falco.yaml writes it:
///
/// ```yaml
/// - match: {source: syscall, tags: [container], rule: Terminal shell in container}
///   extra_output: "on CPU %evt.cpu"
///   extra_fields:
///     - home_directory: "${HOME}"
///     - evt.hostname
///   suggested_output: true
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOutput {
    /// `match.source`: only rules of this source (driftwatch's rules are all `syscall`).
    pub source: Option<String>,
    /// `match.tags`: only rules carrying every one of these tags.
    pub tags: Vec<String>,
    /// `match.rule`: only the rule of this name.
    pub rule: Option<String>,
    /// Appended to the rule's output after a space, `%field`s and all.
    pub extra_output: String,
    /// Added to `output_fields` only, not to the text.
    pub extra_fields: Vec<ExtraField>,
    /// Appends the fields Falco's container plugin suggests ([`SUGGESTED_OUTPUT`]).
    pub suggested_output: bool,
}

/// An `extra_fields` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraField {
    /// `- name: "format"`: the format, placeholders filled in, as a string under `name`.
    Formatted { name: String, format: String },
    /// `- proc.name`: the field's typed value under its own name.
    Field(String),
}

/// What `suggested_output: true` appends: the fields Falco's container plugin marks as
/// suggested output (plugins/container/src/caps/extract/extract.cpp, container plugin 0.2.1+,
/// bundled since Falco 0.41), each as Falco's `format_suggested_field` writes it
/// (`name_with_underscores=%name`), in the plugin's field order.
pub const SUGGESTED_OUTPUT: &str = "container_id=%container.id container_name=%container.name container_image_repository=%container.image.repository container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name";

impl AppendOutput {
    /// Falco's own default (falco.yaml 0.41+): `append_output: [{suggested_output: true}]`.
    pub fn falco_default() -> Vec<AppendOutput> {
        vec![AppendOutput {
            suggested_output: true,
            ..AppendOutput::default()
        }]
    }

    /// Falco's match (rule_loader_compiler.cpp): every condition given holds; none given
    /// matches every rule.
    fn matches(&self, rule: &str, tags: &[String]) -> bool {
        self.source.as_deref().is_none_or(|s| s == "syscall")
            && self.tags.iter().all(|t| tags.contains(t))
            && self.rule.as_deref().is_none_or(|r| r == rule)
    }
}

/// The problems of an output format (`on CPU %evt.cpux`) or, with `field_only`, of a field
/// name (`evt.hostname`), as diagnostics in a text of their own named `name`: empty when it
/// is valid. The configuration checks `append_output` with this when it loads.
pub fn check_output_format(name: &str, format: &str, field_only: bool) -> Vec<Diagnostic> {
    let files = [SourceFile::new(name, format)];
    let defs = Definitions::default();
    let mut c = Compiler::new(&files, &defs);
    let text = synthetic_text(format);
    if field_only {
        field_ref(&text, &mut c, &files);
    } else {
        Template::parse(&text, &mut c, &files);
    }
    c.take_errors()
}

fn synthetic_text(s: &str) -> Text {
    Text::new(
        s,
        At {
            file: 0,
            offset: 0,
            len: s.len(),
        },
    )
}

/// `proc.name` or `proc.aname[2]`, the whole text: a field of the catalogue. Anything else
/// is reported as the unknown field it names.
fn field_ref(text: &Text, c: &mut Compiler<'_>, files: &[SourceFile]) -> Option<FieldRef> {
    let s = text.text.trim();
    let pos = text.map(0, files);
    match parse_field_token(s) {
        Some((name, arg, len)) if len == s.len() => c.output_field(&name, arg, pos),
        _ => c.output_field(s, None, pos),
    }
}

/// The entries, their formats and fields parsed once for every rule.
pub(crate) struct Appends {
    entries: Vec<Resolved>,
    suggested: Option<Template>,
}

struct Resolved {
    entry: AppendOutput,
    extra_output: Option<Template>,
    extra_fields: Vec<(String, Extra)>,
}

impl Appends {
    /// Parses every entry's formats and fields; their problems are errors named after the
    /// entry (`append_output[0].extra_output:1:8: unknown field ...`).
    pub(crate) fn resolve(entries: &[AppendOutput], errors: &mut Vec<Diagnostic>) -> Appends {
        let defs = Definitions::default();
        let mut out = Appends {
            entries: Vec::new(),
            suggested: None,
        };
        let mut parse = |name: String, text: &str, field_only: bool| -> Option<Extra> {
            let files = [SourceFile::new(&name, text)];
            let mut c = Compiler::new(&files, &defs);
            let t = synthetic_text(text);
            let got = if field_only {
                field_ref(&t, &mut c, &files).map(Extra::Field)
            } else {
                Template::parse(&t, &mut c, &files).map(Extra::Formatted)
            };
            errors.extend(c.take_errors());
            got
        };
        if entries.iter().any(|e| e.suggested_output)
            && let Some(Extra::Formatted(t)) = parse(
                "append_output.suggested_output".into(),
                SUGGESTED_OUTPUT,
                false,
            )
        {
            out.suggested = Some(t);
        }
        for (i, e) in entries.iter().enumerate() {
            let extra_output = if e.extra_output.trim().is_empty() {
                None
            } else {
                match parse(
                    format!("append_output[{i}].extra_output"),
                    &e.extra_output,
                    false,
                ) {
                    Some(Extra::Formatted(t)) => Some(t),
                    _ => None,
                }
            };
            let mut extra_fields = Vec::new();
            for (j, f) in e.extra_fields.iter().enumerate() {
                let name = format!("append_output[{i}].extra_fields[{j}]");
                let (key, got) = match f {
                    ExtraField::Formatted { name: key, format } => {
                        (key.clone(), parse(name, format, false))
                    }
                    ExtraField::Field(field) => {
                        (field.trim().to_string(), parse(name, field, true))
                    }
                };
                if let Some(x) = got {
                    extra_fields.push((key, x));
                }
            }
            out.entries.push(Resolved {
                entry: e.clone(),
                extra_output,
                extra_fields,
            });
        }
        out
    }

    /// Applies the entries matching the rule to its output, in order: each entry's
    /// `extra_output`, then its suggested fields, then its fields. Falco appends the suggested
    /// fields to every rule; driftwatch leaves them out of a rule whose output prints the
    /// container's id and name already (its default rules, `%container.info`), where Falco
    /// would print them twice.
    pub(crate) fn apply(&self, rule: &str, tags: &[String], output: &mut Template) {
        for r in &self.entries {
            if !r.entry.matches(rule, tags) {
                continue;
            }
            if let Some(t) = &r.extra_output {
                output.append(t);
            }
            if r.entry.suggested_output
                && let Some(t) = &self.suggested
                && !(output.prints("container.id") && output.prints("container.name"))
            {
                output.append(t);
            }
            for (key, x) in &r.extra_fields {
                output.add_extra_field(key, x.clone());
            }
        }
    }
}
