//! A CPU profile made readable with no third-party tool: `perf script` output folded into
//! stacks (one line per distinct stack with its sample count, as stackcollapse-perf does),
//! drawn as a flame graph SVG, and the functions with the most samples as text. The
//! flame graph crates on crates.io are CDDL, which deny.toml does not accept.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Distinct stacks, root first (the thread's name is the root), frames joined by `;`, with
/// their sample counts.
pub type Folded = BTreeMap<String, u64>;

/// Folds `perf script` output: a header line per sample (`comm pid[/tid] ...`), then one
/// line per frame, leaf first (`\t addr symbol+0xoff (dso)`), then a blank line.
pub fn fold_perf_script(text: &str) -> Folded {
    let mut folded = Folded::new();
    let mut frames: Vec<String> = Vec::new();
    let mut comm: Option<String> = None;
    let mut flush = |comm: &mut Option<String>, frames: &mut Vec<String>| {
        if let Some(c) = comm.take() {
            let mut stack = vec![c];
            stack.extend(frames.drain(..).rev());
            *folded.entry(stack.join(";")).or_default() += 1;
        }
        frames.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut comm, &mut frames);
        } else if line.starts_with(char::is_whitespace) {
            if comm.is_some() {
                frames.push(frame_name(line.trim()));
            }
        } else {
            flush(&mut comm, &mut frames);
            comm = Some(sample_comm(line));
        }
    }
    flush(&mut comm, &mut frames);
    folded
}

/// The thread name of a sample header: the words before the first `pid` or `pid/tid`.
fn sample_comm(header: &str) -> String {
    let words: Vec<&str> = header.split_whitespace().collect();
    let is_pid = |w: &str| {
        !w.is_empty()
            && w.split('/')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let end = words.iter().position(|w| is_pid(w)).unwrap_or(1);
    clean(&words[..end.max(1).min(words.len())].join(" "))
}

/// `55d5c1 symbol+0x12 (/usr/bin/x)` → `symbol`; an unknown symbol is named by its file.
fn frame_name(line: &str) -> String {
    let rest = line.split_once(' ').map_or("", |(_, r)| r.trim());
    let (sym, dso) = match rest.rsplit_once(" (") {
        Some((s, d)) => (s.trim(), d.trim_end_matches(')')),
        None => (rest, ""),
    };
    let sym = match sym.rfind("+0x") {
        Some(i) => &sym[..i],
        None => sym,
    };
    if sym.is_empty() || sym == "[unknown]" {
        let file = dso.rsplit('/').next().unwrap_or(dso);
        let file = file.trim_start_matches('[').trim_end_matches(']');
        return clean(&format!(
            "[{}]",
            if file.is_empty() { "unknown" } else { file }
        ));
    }
    clean(sym)
}

/// `;` separates frames in a folded line.
fn clean(s: &str) -> String {
    s.replace(';', ":")
}

/// One function's samples: where it was the leaf (self) and anywhere on the stack (total).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionCost {
    pub name: String,
    pub self_samples: u64,
    pub total_samples: u64,
}

/// The `n` functions with the most samples of their own, thread roots left out.
pub fn top_functions(folded: &Folded, n: usize) -> Vec<FunctionCost> {
    let mut by_fn: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (stack, &count) in folded {
        let frames: Vec<&str> = stack.split(';').skip(1).collect();
        let mut seen: Vec<&str> = Vec::new();
        for f in &frames {
            if !seen.contains(f) {
                seen.push(f);
                by_fn.entry(f).or_default().1 += count;
            }
        }
        if let Some(leaf) = frames.last() {
            by_fn.entry(leaf).or_default().0 += count;
        }
    }
    let mut v: Vec<FunctionCost> = by_fn
        .into_iter()
        .map(|(name, (s, t))| FunctionCost {
            name: name.to_string(),
            self_samples: s,
            total_samples: t,
        })
        .collect();
    v.sort_by(|a, b| {
        (b.self_samples, b.total_samples, &a.name).cmp(&(a.self_samples, a.total_samples, &b.name))
    });
    v.truncate(n);
    v
}

/// The text report of [`top_functions`], with each function's share of all samples.
pub fn top_functions_text(folded: &Folded, n: usize) -> String {
    let total: u64 = folded.values().sum();
    let pct = |x: u64| 100.0 * x as f64 / total.max(1) as f64;
    let mut out = format!("{total} samples\n  self%  total%  function\n");
    for f in top_functions(folded, n) {
        let _ = writeln!(
            out,
            "{:>6.2} {:>7.2}  {}",
            pct(f.self_samples),
            pct(f.total_samples),
            f.name
        );
    }
    out
}

#[derive(Default)]
struct Node {
    samples: u64,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn depth(&self) -> usize {
        1 + self.children.values().map(Node::depth).max().unwrap_or(0)
    }
}

const WIDTH: f64 = 1200.0;
const PAD: f64 = 10.0;
const FRAME_H: f64 = 16.0;
const TOP: f64 = 40.0;
/// Roughly the width of one character of the 12 px monospace labels.
const CHAR_W: f64 = 7.2;

/// A flame graph of `folded`: the root at the bottom, each frame as wide as its samples,
/// children in name order; hover shows the name, samples and share.
pub fn render_svg(folded: &Folded, title: &str) -> String {
    let mut root = Node::default();
    for (stack, &count) in folded {
        root.samples += count;
        let mut node = &mut root;
        for f in stack.split(';') {
            node = node.children.entry(f.to_string()).or_default();
            node.samples += count;
        }
    }
    let depth = root.depth();
    let height = TOP + depth as f64 * FRAME_H + 2.0 * PAD;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">
<style>text {{ font-family: monospace; font-size: 12px; fill: #000 }} rect:hover {{ stroke: #000 }}</style>
<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#f8f8f8"/>
<text x="{}" y="24" text-anchor="middle" style="font-size:16px">{}</text>
"##,
        WIDTH / 2.0,
        xml_escape(&format!("{title} ({} samples)", root.samples))
    );
    let scale = (WIDTH - 2.0 * PAD) / root.samples.max(1) as f64;
    let bottom = height - PAD;
    let total = root.samples.max(1);
    let mut draw = vec![(&root, String::from("all"), PAD, 0usize)];
    while let Some((node, name, x, level)) = draw.pop() {
        let w = node.samples as f64 * scale;
        if w < 0.1 {
            continue;
        }
        let y = bottom - (level + 1) as f64 * FRAME_H;
        let label = format!(
            "{name} ({} samples, {:.2}%)",
            node.samples,
            100.0 * node.samples as f64 / total as f64
        );
        let _ = write!(
            svg,
            r#"<g><title>{}</title><rect x="{x:.2}" y="{y:.1}" width="{w:.2}" height="{}" fill="{}" rx="2"/>"#,
            xml_escape(&label),
            FRAME_H - 1.0,
            color(&name)
        );
        let fits = ((w - 6.0) / CHAR_W).floor().max(0.0) as usize;
        if fits >= 3 {
            let shown: String = if name.chars().count() <= fits {
                name.clone()
            } else {
                name.chars().take(fits - 2).chain("..".chars()).collect()
            };
            let _ = write!(
                svg,
                r#"<text x="{:.2}" y="{:.1}">{}</text>"#,
                x + 3.0,
                y + FRAME_H - 4.5,
                xml_escape(&shown)
            );
        }
        svg.push_str("</g>\n");
        let mut cx = x;
        for (child_name, child) in &node.children {
            draw.push((child, child_name.clone(), cx, level + 1));
            cx += child.samples as f64 * scale;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// A warm color fixed by the name, so a function keeps its color between graphs.
fn color(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let r = 205 + (h % 50);
    let g = (h >> 8) % 230;
    let b = (h >> 16) % 55;
    format!("rgb({r},{g},{b})")
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of `perf script` output from `perf record -g` (default fields).
    const SCRIPT: &str = "\
dw-exec 1234/1240 [001] 100.000001:    1001001 cpu-clock:
\t    55d5c1 driftwatch_agent::pipeline::handle+0x12 (/usr/bin/driftwatch)
\t    55d500 driftwatch_agent::pipeline::run+0x40 (/usr/bin/driftwatch)
\t    7f0001 start_thread+0x9 (/usr/lib/x86_64-linux-gnu/libc.so.6)

dw-exec 1234/1240 [001] 100.001002:    1001001 cpu-clock:
\t    55d5c1 driftwatch_agent::pipeline::handle+0x12 (/usr/bin/driftwatch)
\t    55d500 driftwatch_agent::pipeline::run+0x40 (/usr/bin/driftwatch)
\t    7f0001 start_thread+0x9 (/usr/lib/x86_64-linux-gnu/libc.so.6)

tokio runtime w 1234/1241 [000] 100.002003:    1001001 cpu-clock:
\t    7f0100 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55d600 a<b;c>::poll+0x1 (/usr/bin/driftwatch)
\t    000001 [unknown] ([unknown])

";

    #[test]
    fn perf_script_folds_into_root_first_stacks_per_thread() {
        let f = fold_perf_script(SCRIPT);
        assert_eq!(
            f,
            Folded::from([
                (
                    "dw-exec;start_thread;driftwatch_agent::pipeline::run;driftwatch_agent::pipeline::handle"
                        .to_string(),
                    2
                ),
                ("tokio runtime w;[unknown];a<b:c>::poll;[libc.so.6]".to_string(), 1),
            ])
        );
    }

    #[test]
    fn top_functions_count_self_at_the_leaf_and_total_once_per_stack() {
        let f = Folded::from([
            ("t;main;a;b".to_string(), 3),
            ("t;main;a".to_string(), 1),
            ("t;main;b;b".to_string(), 2),
        ]);
        let top = top_functions(&f, 10);
        let get = |n: &str| top.iter().find(|c| c.name == n).cloned().unwrap();
        assert_eq!((get("b").self_samples, get("b").total_samples), (5, 5));
        assert_eq!((get("a").self_samples, get("a").total_samples), (1, 4));
        assert_eq!(
            (get("main").self_samples, get("main").total_samples),
            (0, 6)
        );
        assert_eq!(top[0].name, "b");
        assert!(
            top.iter().all(|c| c.name != "t"),
            "thread roots are not functions"
        );
        let text = top_functions_text(&f, 2);
        assert!(text.starts_with("6 samples\n"), "{text}");
        assert!(text.contains(" 83.33   83.33  b\n"), "{text}");
    }

    #[test]
    fn the_svg_has_one_frame_per_node_sized_by_samples_and_escapes_names() {
        let f = Folded::from([
            ("t;main;a<T>".to_string(), 3),
            ("t;main;b&c".to_string(), 1),
        ]);
        let svg = render_svg(&f, "agent \"x\"");
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        // all, t, main, a<T>, b&c
        assert_eq!(svg.matches(r#"rx="2""#).count(), 5, "{svg}");
        assert!(
            svg.contains("<title>a&lt;T&gt; (3 samples, 75.00%)</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>b&amp;c (1 samples, 25.00%)</title>"),
            "{svg}"
        );
        assert!(svg.contains("agent &quot;x&quot; (4 samples)"), "{svg}");
        // The root spans the whole width between the pads; a<T> three quarters of it.
        assert!(
            svg.contains(r#"<rect x="10.00" y="98.0" width="1180.00""#),
            "{svg}"
        );
        assert!(svg.contains(r#"width="885.00""#), "{svg}");
    }
}
