//! The README and `docs/` resolve: every relative link names a file of the repository, every
//! `#anchor` a heading of its page (GitHub's slugs), every page is linked from the README, the
//! README's layout lists every crate in dependency order, and no file of the repository cites
//! a document outside it.
//!
//! It lives here because this crate already checks `docs/config.md` against its source and
//! builds in seconds: only `std` is needed, none of the agent's dependencies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pages the links are checked in: the README and every `docs/*.md`, by path relative to
/// the repository root.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let docs = root.join("docs");
    let entries = std::fs::read_dir(&docs).unwrap_or_else(|e| panic!("{}: {e}", docs.display()));
    for entry in entries {
        let name = entry.expect("docs/ entry").file_name();
        let name = name.to_str().expect("docs/ file names are UTF-8");
        if name.ends_with(".md") {
            pages.push(Path::new("docs").join(name));
        }
    }
    pages.sort();
    pages
}

/// Markdown lines outside fenced code blocks, with their 1-based line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// The line with its code spans blanked out (same length, so columns stay right): a link
/// written inside backticks is text, not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else if in_code {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// A link target found in a page, where it was written.
#[derive(Debug)]
struct Link {
    line: usize,
    column: usize,
    target: String,
}

/// Inline links `[text](target)` and images `![alt](target)` of one page.
fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line_no, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut from = 0;
        while let Some(at) = line[from..].find("](") {
            let start = from + at + 2;
            let Some(len) = line[start..].find(')') else {
                break;
            };
            out.push(Link {
                line: line_no,
                column: start + 1,
                target: line[start..start + len].trim().to_string(),
            });
            from = start + len;
        }
    }
    out
}

/// GitHub's anchor for a heading: the rendered text (inline code, emphasis and link targets
/// gone), lower-cased, every character but letters, digits, `-`, `_` and spaces dropped,
/// spaces turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // A link in a heading renders as its text.
    while let Some(open) = rest.find('[') {
        match rest[open..]
            .find("](")
            .and_then(|m| rest[open + m..].find(')').map(|c| (m, c)))
        {
            Some((mid, close)) => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                rest = &rest[open + mid + close + 1..];
            }
            None => break,
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a page, duplicates numbered as GitHub does (`x`, `x-1`, `x-2`).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#').trim());
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `a/b/../c` without touching the file system; `None` when it climbs out of the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Every problem with the links of `pages` (relative paths, text read by `read`), as
/// `page:line:col: what`. `exists` says whether a repository-relative path exists.
fn broken_links(
    pages: &[PathBuf],
    read: &dyn Fn(&Path) -> Option<String>,
    exists: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for page in pages {
        let text = read(page).unwrap_or_else(|| panic!("{}: unreadable", page.display()));
        for link in links(&text) {
            let at = format!("{}:{}:{}", page.display(), link.line, link.column);
            let target = link.target.as_str();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                page.clone()
            } else {
                match normalize(&page.parent().unwrap_or(Path::new("")).join(path)) {
                    Some(file) => file,
                    None => {
                        problems.push(format!("{at}: {target} points outside the repository"));
                        continue;
                    }
                }
            };
            if !exists(&file) {
                problems.push(format!("{at}: {target}: no file {}", file.display()));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            let Some(linked) = read(&file).filter(|_| file.extension().is_some_and(|e| e == "md"))
            else {
                problems.push(format!(
                    "{at}: {target}: #{anchor} in a file that is not markdown"
                ));
                continue;
            };
            if !anchors(&linked).contains(anchor) {
                problems.push(format!(
                    "{at}: {target}: no heading with anchor #{anchor} in {}",
                    file.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn every_link_of_the_readme_and_docs_resolves() {
    let root = repo_root();
    let pages = pages(&root);
    let problems = broken_links(
        &pages,
        &|p| std::fs::read_to_string(root.join(p)).ok(),
        &|p| root.join(p).exists(),
    );
    assert!(
        problems.is_empty(),
        "links that do not resolve:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let linked: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|l| l.target.split('#').next().unwrap_or("").to_string())
        .collect();
    let unlinked: Vec<String> = pages(&root)
        .into_iter()
        .filter(|p| p.starts_with("docs"))
        .map(|p| p.display().to_string())
        .filter(|p| !linked.contains(p))
        .collect();
    assert!(
        unlinked.is_empty(),
        "docs pages the README does not link: {unlinked:?}"
    );
}

/// The crates of the workspace with the workspace crates each depends on (normal and build
/// dependencies; dev-dependencies may point up).
fn crate_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    let dir = root.join("crates");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let manifest = entry.expect("crates/ entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let (mut name, mut deps, mut section) = (None, BTreeSet::new(), String::new());
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            let key = line.split(['=', '.', ' ']).next().unwrap_or("");
            if section == "[package]" && key == "name" {
                name = line.split('"').nth(1).map(str::to_string);
            } else if (section.ends_with("dependencies]") && !section.contains("dev-dependencies"))
                && key.starts_with("driftwatch")
            {
                deps.insert(key.to_string());
            }
        }
        let name = name.unwrap_or_else(|| panic!("{}: no [package] name", manifest.display()));
        graph.insert(name, deps);
    }
    graph
}

/// The crate names of the README's `## Layout` block, in order.
fn layout_crates(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Layout\n"))
        .expect("README.md has a ## Layout section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("crates/"))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_layout_lists_every_crate_in_dependency_order() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let listed = layout_crates(&readme);
    let graph = crate_graph(&root);
    let missing: Vec<&String> = graph.keys().filter(|c| !listed.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "README.md ## Layout omits crates: {missing:?}"
    );
    let mut misordered = Vec::new();
    for (i, name) in listed.iter().enumerate() {
        for dep in graph.get(name).into_iter().flatten() {
            if !listed[..i].contains(dep) {
                misordered.push(format!(
                    "{name} depends on {dep}, which is not listed above it"
                ));
            }
        }
    }
    assert!(
        misordered.is_empty(),
        "README.md ## Layout:\n{}",
        misordered.join("\n")
    );
}

/// Every file of the repository under `dir` (build output, git's and fuzzing's own trees
/// left out), depth first.
fn repository_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("target" | ".git" | "corpus" | "artifacts")
        ) {
            continue;
        }
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            repository_files(&path, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}

#[test]
fn no_file_points_outside_the_repository() {
    let root = repo_root();
    // Spelled in pieces so that this file does not match itself.
    let needles = [
        ["PLATFORM", ".md"].concat(),
        ["/work", "/shared"].concat(),
        ["../", "shared/"].concat(),
    ];
    let mut files = Vec::new();
    repository_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        }; // binary files
        for (i, line) in text.lines().enumerate() {
            for needle in needles.iter().filter(|n| line.contains(n.as_str())) {
                let rel = file.strip_prefix(&root).unwrap_or(&file);
                found.push(format!("{}:{}: {needle}", rel.display(), i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "files that point outside the repository (host facts belong in docs/platform.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    for (heading, want) in [
        (
            "Prevention (`--enforce prevent`)",
            "prevention---enforce-prevent",
        ),
        (
            r#"How it decides "not in the image""#,
            "how-it-decides-not-in-the-image",
        ),
        (
            "Image drift: approved digests and layer integrity",
            "image-drift-approved-digests-and-layer-integrity",
        ),
        ("`rules`", "rules"),
        ("Posture: `driftwatch audit`", "posture-driftwatch-audit"),
        (
            "on_agent_death and [links](x.md)",
            "on_agent_death-and-links",
        ),
    ] {
        assert_eq!(slug(heading), want, "{heading}");
    }
    let page = "# A\n## A\n```\n# not a heading\n```\n## A\n";
    let want: BTreeSet<String> = ["a", "a-1", "a-2"].map(String::from).into();
    assert_eq!(anchors(page), want);
}

#[test]
fn broken_links_are_found_with_their_position() {
    let files: BTreeMap<&str, &str> = [
        (
            "README.md",
            "# Top\nsee [a](docs/a.md#two) and [b](docs/b.md)\n`[c](nope.md)`\n",
        ),
        (
            "docs/a.md",
            "# One\n[up](../README.md#top) [self](#one) [out](../../x.md) [gone](#three)\n",
        ),
    ]
    .into();
    let read = |p: &Path| files.get(p.to_str()?).map(|s| s.to_string());
    let exists = |p: &Path| p.to_str().is_some_and(|p| files.contains_key(p));
    let pages = [PathBuf::from("README.md"), PathBuf::from("docs/a.md")];
    assert_eq!(
        broken_links(&pages, &read, &exists),
        [
            "README.md:2:9: docs/a.md#two: no heading with anchor #two in docs/a.md",
            "README.md:2:32: docs/b.md: no file docs/b.md",
            "docs/a.md:2:43: ../../x.md points outside the repository",
            "docs/a.md:2:62: #three: no heading with anchor #three in docs/a.md",
        ]
    );
}
