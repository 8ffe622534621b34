//! Random and mutated input never panics the loader or the condition parser: it loads or it
//! returns positioned diagnostics.

use driftwatch_rules::{RuleSet, Source};
use proptest::prelude::*;

const SEED: &str = include_str!("../../../tests/fixtures/rules/seed_rules.yaml");

fn load(text: &str) {
    if let Err(ds) = RuleSet::load(&[Source::new("f.yaml", text)]) {
        for d in ds {
            let _ = d.render();
        }
    }
}

fn condition_rule(cond: &str) -> String {
    format!(
        "- macro: m\n  condition: proc.name = x\n- list: l\n  items: [a, b]\n- rule: r\n  desc: d\n  condition: {}\n  output: \"%proc.name %proc.aname[2]\"\n  priority: info\n",
        serde_json::to_string(cond).unwrap()
    )
}

const TOKENS: &[&str] = &[
    "and",
    "or",
    "not",
    "(",
    ")",
    "m",
    "l",
    "proc.name",
    "proc.pid",
    "proc.aname[2]",
    "proc.env[HOME]",
    "evt.type",
    "=",
    "!=",
    "<",
    ">=",
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "glob",
    "pmatch",
    "in",
    "intersects",
    "exists",
    "regex",
    "(a, b)",
    "(l)",
    "'x y'",
    "\"q\\\"\"",
    "1",
    "true",
    "<",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "\\",
    "%",
    "é",
    "fd.name",
    "unknown.field",
    "(((",
    ")))",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        load(&text);
        load(&condition_rule(&text));
    }

    #[test]
    fn token_soup_conditions_never_panic(toks in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        load(&condition_rule(&toks.join(" ")));
        load(&condition_rule(&toks.concat()));
    }

    #[test]
    fn mutated_rule_files_never_panic(pos in 0usize..4000, len in 0usize..20, insert in ".{0,10}") {
        let mut text = SEED.to_string();
        let start = pos.min(text.len());
        let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        let mut sources = driftwatch_rules::default_sources();
        sources.push(Source::new("seed.yaml", text));
        let _ = RuleSet::load(&sources);
    }
}
