//! The public engine: load sources (read → merge → compile, collecting every diagnostic),
//! then per event find the matching rules through an index by event type, and build alerts.

use std::cell::RefCell;
use std::collections::HashMap;

use driftwatch_model::{Alert, Event, EventKind, Priority};

use crate::activity;
use crate::append_output::{AppendOutput, Appends};
use crate::compile::Compiler;
use crate::diag::{Diagnostic, Diagnostics, Warning};
use crate::eval::{ALL_KINDS, EvalState, Expr, MEMO_SLOTS, Memo, Scratch, kind_bit};
use crate::loader;
use crate::output::Template;
use crate::source::{Source, SourceFile};
use crate::yaml;

/// Index of a rule in a [`RuleSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleIdx(u32);

impl RuleIdx {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What `rules list` shows about a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// The file that defined the rule (later files may have overridden parts of it).
    pub source_file: String,
    /// The event types the rule can match (`evt.type` values), from its condition.
    pub event_types: Vec<&'static str>,
    /// Whether the rule can ever be true on driftwatch's events. An inactive rule is loaded
    /// and listed but never evaluated.
    pub active: bool,
    /// Why the rule is inactive, in words ("needs ptrace events, which driftwatch does not
    /// trace"); `None` when active.
    pub inactive_reason: Option<String>,
}

struct Rule {
    info: RuleInfo,
    /// The event kinds the rule can match; its condition is only evaluated for those.
    mask: u16,
    expr: Expr,
    output: Template,
}

/// Compiled rules, ready to evaluate.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Enabled rules per event kind, in rule order.
    by_kind: [Box<[u32]>; EventKind::ALL.len()],
}

/// A successful load: the rules and the warnings found on the way.
pub struct LoadedRules {
    pub ruleset: RuleSet,
    pub warnings: Vec<Diagnostic>,
}

thread_local! {
    static STATE: RefCell<EvalState> = const {
        RefCell::new(EvalState { scratch: Scratch::new(), memo: Memo::new() })
    };
}

impl RuleSet {
    /// Loads rule files in order (later files override earlier ones). On any error, returns
    /// every diagnostic found (errors and warnings, in order), not just the first.
    pub fn load(sources: &[Source]) -> Result<LoadedRules, Vec<Diagnostic>> {
        RuleSet::load_appending(sources, &[])
    }

    /// [`RuleSet::load`], then Falco's `append_output` entries applied to the outputs of the
    /// rules they match, once, here.
    pub fn load_appending(
        sources: &[Source],
        append: &[AppendOutput],
    ) -> Result<LoadedRules, Vec<Diagnostic>> {
        let files: Vec<SourceFile> = sources
            .iter()
            .map(|s| SourceFile::new(&s.name, &s.text))
            .collect();
        let mut diags = Diagnostics::default();
        let roots: Vec<Option<yaml::Node>> = files
            .iter()
            .map(|f| match yaml::parse(f) {
                Ok(n) => Some(n),
                Err((off, e)) => {
                    diags.add(f, off, e);
                    None
                }
            })
            .collect();
        let defs = loader::load(&files, &roots, &mut diags);
        let mut append_errors = Vec::new();
        let appends = Appends::resolve(append, &mut append_errors);
        for e in append_errors {
            diags.push(e);
        }
        let mut compiler = Compiler::new(&files, &defs);
        compiler.compile_all_macros();
        for e in compiler.take_errors() {
            diags.push(e);
        }
        let mut rules = Vec::new();
        for def in &defs.rules {
            let file = &files[def.file];
            let name_off = def.name.at.offset;
            if let Some(src) = &def.source
                && src.value != "syscall"
            {
                diags.add(
                    &files[src.at.file],
                    src.at.offset,
                    Warning::UnsupportedSource {
                        rule: def.name.value.clone(),
                        src: src.value.clone(),
                    },
                );
                continue;
            }
            let compiled = compiler.compile_rule(&def.condition, &def.exceptions);
            let output = Template::parse(&def.output, &mut compiler, &files);
            let errors = compiler.take_errors();
            if !errors.is_empty() {
                if def.skip_if_unknown_filter && compiled.only_unknown_fields {
                    let detail = errors
                        .iter()
                        .map(|e| e.message.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    diags.add(
                        file,
                        name_off,
                        Warning::SkippedUnknownFilter {
                            rule: def.name.value.clone(),
                            detail,
                        },
                    );
                } else {
                    for e in errors {
                        diags.push(e);
                    }
                }
                continue;
            }
            let (Some(expr), Some(mut output)) = (compiled.expr, output) else {
                continue;
            };
            appends.apply(&def.name.value, &def.tags, &mut output);
            let (mask, _) = expr.kinds();
            let inactive_reason = activity::inactive_reason(&expr, mask, &compiled.unmapped);
            if let Some(reason) = &inactive_reason {
                // Disabled rules never run anyway: only an enabled one is worth a warning.
                if def.enabled {
                    diags.add(
                        file,
                        name_off,
                        Warning::Inactive {
                            rule: def.name.value.clone(),
                            reason: reason.clone(),
                        },
                    );
                }
            } else if mask == ALL_KINDS && def.warn_evttypes {
                diags.add(
                    file,
                    name_off,
                    Warning::NoEventTypeRestriction {
                        rule: def.name.value.clone(),
                    },
                );
            }
            let event_types = EventKind::ALL
                .iter()
                .filter(|k| mask & kind_bit(**k) != 0)
                .map(|k| k.as_str())
                .collect();
            let expr = expr.strip_kind_checks(mask);
            rules.push(Rule {
                info: RuleInfo {
                    name: def.name.value.clone(),
                    desc: def.desc.text.trim().to_string(),
                    priority: def.priority,
                    tags: def.tags.clone(),
                    enabled: def.enabled,
                    source_file: file.name.clone(),
                    event_types,
                    active: inactive_reason.is_none(),
                    inactive_reason,
                },
                expr,
                mask,
                output,
            });
        }
        if !diags.errors.is_empty() {
            let mut all = diags.errors;
            all.extend(diags.warnings);
            return Err(all);
        }
        Ok(LoadedRules {
            ruleset: RuleSet::index(rules),
            warnings: diags.warnings,
        })
    }

    /// The default ruleset followed by `extra` files, as the agent loads them.
    pub fn load_with_defaults(extra: &[Source]) -> Result<LoadedRules, Vec<Diagnostic>> {
        RuleSet::load_with_defaults_appending(extra, &[])
    }

    /// [`RuleSet::load_with_defaults`] with `append_output` entries, as the agent loads them.
    pub fn load_with_defaults_appending(
        extra: &[Source],
        append: &[AppendOutput],
    ) -> Result<LoadedRules, Vec<Diagnostic>> {
        let mut all = crate::default_sources();
        all.extend_from_slice(extra);
        RuleSet::load_appending(&all, append)
    }

    fn index(mut rules: Vec<Rule>) -> RuleSet {
        // Tests that appear in several rules get a memo slot, so each runs once per event.
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in &mut rules {
            r.expr.for_each_test(&mut |t| {
                let k = t.key();
                if !k.is_empty() {
                    *counts.entry(k).or_default() += 1;
                }
            });
        }
        let mut slots: HashMap<String, u16> = HashMap::new();
        for r in &mut rules {
            r.expr.for_each_test(&mut |t| {
                let k = t.key();
                if counts.get(&k).copied().unwrap_or(0) < 2 {
                    return;
                }
                let next = slots.len();
                if let Some(&s) = slots.get(&k) {
                    t.slot = s;
                } else if next < MEMO_SLOTS {
                    let s = u16::try_from(next).unwrap_or(u16::MAX);
                    slots.insert(k, s);
                    t.slot = s;
                }
            });
        }
        let by_kind = std::array::from_fn(|i| {
            let bit = kind_bit(EventKind::ALL[i]);
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.info.enabled && r.info.active && r.mask & bit != 0)
                .map(|(j, _)| u32::try_from(j).unwrap_or(u32::MAX))
                .collect()
        });
        RuleSet { rules, by_kind }
    }

    /// Clears `out` and pushes the enabled rules matching `event`, in rule order. Allocates
    /// nothing once `out` and this thread's scratch buffer have grown to their working size.
    pub fn matches(&self, event: &Event, out: &mut Vec<RuleIdx>) {
        out.clear();
        let bit = kind_bit(event.kind);
        let candidates = &self.by_kind[bit.trailing_zeros() as usize];
        if candidates.is_empty() {
            return;
        }
        STATE.with(|st| {
            // Re-entrancy (a rule evaluated from inside another) cannot happen; fall back to a
            // fresh state rather than panic if it ever did.
            let mut fresh;
            let mut guard = st.try_borrow_mut();
            let st: &mut EvalState = match guard.as_deref_mut() {
                Ok(s) => s,
                Err(_) => {
                    fresh = EvalState {
                        scratch: Scratch::new(),
                        memo: Memo::new(),
                    };
                    &mut fresh
                }
            };
            st.memo.clear();
            for &i in candidates.iter() {
                if self.rules[i as usize].expr.eval(event, bit, st) {
                    out.push(RuleIdx(i));
                }
            }
        });
    }

    /// The Falco-format alert of rule `idx` for `event`.
    pub fn alert(&self, idx: RuleIdx, event: &Event, hostname: &str) -> Alert {
        let r = &self.rules[idx.index()];
        Alert {
            time: Alert::format_time(event.time_ns),
            rule: r.info.name.clone(),
            priority: r.info.priority,
            source: "syscall".to_string(),
            hostname: hostname.to_string(),
            output: r.output.render_alert(event, r.info.priority),
            tags: r.info.tags.clone(),
            output_fields: r.output.output_fields(event),
        }
    }

    /// Every alert `event` raises (convenience over [`RuleSet::matches`] + [`RuleSet::alert`]).
    pub fn evaluate(&self, event: &Event, hostname: &str) -> Vec<Alert> {
        let mut idx = Vec::new();
        self.matches(event, &mut idx);
        idx.into_iter()
            .map(|i| self.alert(i, event, hostname))
            .collect()
    }

    pub fn rule(&self, idx: RuleIdx) -> &RuleInfo {
        &self.rules[idx.index()].info
    }

    /// Every loaded rule (enabled or not), in definition order.
    pub fn rules(&self) -> impl Iterator<Item = (RuleIdx, &RuleInfo)> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (RuleIdx(u32::try_from(i).unwrap_or(u32::MAX)), &r.info))
    }

    /// The rule's compiled condition, in evaluation order with macros and lists expanded.
    pub fn explain(&self, idx: RuleIdx) -> String {
        self.rules[idx.index()].expr.to_string()
    }

    /// The enabled, active rules' kind masks and conditions (what `dir_reach` folds).
    pub(crate) fn rule_conditions(&self) -> impl Iterator<Item = (&str, u16, &Expr)> {
        self.rules
            .iter()
            .filter(|r| r.info.enabled && r.info.active)
            .map(|r| (r.info.name.as_str(), r.mask, &r.expr))
    }

    /// Looks a rule up by name.
    pub fn find(&self, name: &str) -> Option<RuleIdx> {
        self.rules().find(|(_, r)| r.name == name).map(|(i, _)| i)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests;
