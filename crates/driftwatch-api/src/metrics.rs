//! Prometheus text exposition format (version 0.0.4), written by hand: each family gets its
//! `# HELP` and `# TYPE` once, label values are escaped, names are checked. Every part of the
//! agent (and the outputs and store, when present) appends its lines to one [`MetricsWriter`].

use std::collections::BTreeSet;
use std::fmt::Write;

/// Anything that adds lines to `/metrics` (the outputs, the store, ...): registered with the
/// binary's view (`ApiContext::metric_sources` in crates/driftwatch/src/serve.rs), called on
/// every scrape. Use family names of your own (`driftwatch_outputs_...`): a family written
/// twice is a bug.
pub trait MetricsSource: Send + Sync {
    fn write_metrics(&self, out: &mut MetricsWriter);
}

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Collects metric families into the text format. Families must not interleave: write all
/// samples of one family before the next (a family started twice is a bug, and panics in
/// debug builds).
#[derive(Default)]
pub struct MetricsWriter {
    out: String,
    families: BTreeSet<String>,
}

/// `name` is a valid metric or label name.
fn valid_name(name: &str, metric: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
    chars.next().is_some_and(first_ok)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':'))
}

fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

impl MetricsWriter {
    pub fn new() -> MetricsWriter {
        MetricsWriter::default()
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(valid_name(name, true), "invalid metric name {name:?}");
        let fresh = self.families.insert(name.to_string());
        debug_assert!(fresh, "metric family {name} written twice");
        if !fresh {
            return;
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k, false), "invalid label name {k:?}");
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// A counter family with one sample per label set (`name` should end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.family(name, "counter", help);
        for (labels, v) in samples {
            self.sample(name, labels, *v as f64);
        }
    }

    /// A counter with no labels.
    pub fn counter1(&mut self, name: &str, help: &str, value: u64) {
        self.counter(name, help, &[(&[], value)]);
    }

    /// A gauge family.
    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
        self.family(name, "gauge", help);
        for (labels, v) in samples {
            self.sample(name, labels, *v);
        }
    }

    /// A gauge with no labels.
    pub fn gauge1(&mut self, name: &str, help: &str, value: f64) {
        self.gauge(name, help, &[(&[], value)]);
    }

    /// A histogram: `buckets` are (upper bound, count of observations ≤ bound), cumulative
    /// or not (`cumulative` says); `+Inf` is added from `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[(f64, u64)],
        cumulative: bool,
        sum: f64,
        count: u64,
    ) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut acc = 0u64;
        for (le, n) in buckets {
            acc = if cumulative { *n } else { acc + n };
            let le = format_value(*le);
            self.sample(&bucket, &[("le", &le)], acc as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Checks one line of the text format: a comment (`# HELP`/`# TYPE` well formed), or
/// `name{labels} value`. For tests of every exposition this crate and its users write.
pub fn check_line(line: &str) -> Result<(), String> {
    if let Some(rest) = line.strip_prefix("# ") {
        let mut parts = rest.splitn(3, ' ');
        let kw = parts.next().unwrap_or_default();
        let name = parts.next().unwrap_or_default();
        let tail = parts.next().unwrap_or_default();
        return match kw {
            "HELP" if valid_name(name, true) => Ok(()),
            "TYPE"
                if valid_name(name, true)
                    && ["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail) =>
            {
                Ok(())
            }
            _ => Err(format!("bad comment line: {line}")),
        };
    }
    if line.starts_with('#') {
        return Ok(());
    }
    let (series, value) = line
        .rsplit_once(' ')
        .ok_or_else(|| format!("no value: {line}"))?;
    let value_ok = matches!(value, "NaN" | "+Inf" | "-Inf") || value.parse::<f64>().is_ok();
    if !value_ok {
        return Err(format!("bad value {value:?}: {line}"));
    }
    let (name, labels) = match series.split_once('{') {
        Some((n, l)) => (
            n,
            Some(
                l.strip_suffix('}')
                    .ok_or_else(|| format!("unclosed labels: {line}"))?,
            ),
        ),
        None => (series, None),
    };
    if !valid_name(name, true) {
        return Err(format!("bad metric name {name:?}: {line}"));
    }
    if let Some(mut l) = labels {
        while !l.is_empty() {
            let (k, rest) = l
                .split_once("=\"")
                .ok_or_else(|| format!("bad label: {line}"))?;
            if !valid_name(k, false) {
                return Err(format!("bad label name {k:?}: {line}"));
            }
            // The value runs to the first unescaped quote.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("unterminated label value: {line}"))?;
            l = &rest[end + 1..];
            l = l.strip_prefix(',').unwrap_or(l);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaping() {
        let mut w = MetricsWriter::new();
        w.counter(
            "dw_alerts_total",
            "Alerts.",
            &[(&[("rule", "a \"quoted\"\nrule\\")], 3)],
        );
        w.gauge1("dw_up", "Up.", 1.0);
        w.histogram(
            "dw_latency_seconds",
            "Latency.",
            &[(0.001, 2), (0.01, 1)],
            false,
            0.5,
            4,
        );
        let text = w.finish();
        for l in text.lines() {
            check_line(l).unwrap();
        }
        assert!(
            text.contains(r#"dw_alerts_total{rule="a \"quoted\"\nrule\\"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("dw_latency_seconds_bucket{le=\"0.01\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("dw_latency_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("dw_latency_seconds_count 4\n"), "{text}");
    }

    #[test]
    fn the_checker_rejects_bad_lines() {
        for bad in [
            "1abc 1",
            "abc",
            "abc{x=\"1} 1",
            "abc{1x=\"1\"} 1",
            "abc one",
            "# TYPE abc nothing",
        ] {
            assert!(check_line(bad).is_err(), "{bad}");
        }
    }
}
