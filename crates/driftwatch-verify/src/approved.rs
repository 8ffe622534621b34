//! The approved-image list.
//!
//! Three shapes, told apart by content:
//! - **Lines** (also a YAML list): one entry per line, `# comments`, an optional leading
//!   `- `, optional quotes. An entry is a digest (`sha256:<64 hex>` or the bare 64 hex) or a
//!   pinned reference (`registry/repo[:tag]@sha256:<64 hex>`).
//! - **JSON**: an array of such strings.
//! - **Kubernetes manifests** (a line starting `apiVersion:` or `kind:`): every `image:`
//!   field pinned with `@sha256:` is an entry; an unpinned one approves nothing and is
//!   reported as a warning with its line.
//!
//! Every bad entry is reported, each as a positioned `driftwatch_yaml::Diagnostic`
//! (`FILE:LINE:COL: error: what is wrong`, the line and a caret).

use std::fmt;
use std::path::{Path, PathBuf};

pub use driftwatch_yaml::{Diagnostic, LoadError};

/// One approved image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ApprovedEntry {
    /// Any image whose id or repository digest is this (`sha256:...`).
    Digest(String),
    /// This repository at this digest (`repository` normalized: no `docker.io/library/`).
    Reference { repository: String, digest: String },
}

impl fmt::Display for ApprovedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApprovedEntry::Digest(d) => f.write_str(d),
            ApprovedEntry::Reference { repository, digest } => write!(f, "{repository}@{digest}"),
        }
    }
}

/// An approved entry and where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub line: usize,
    pub value: T,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApprovedList {
    pub file: PathBuf,
    pub entries: Vec<Located<ApprovedEntry>>,
    /// Manifest `image:` fields not pinned by digest (they approve nothing).
    pub unpinned: Vec<Located<String>>,
}

/// `sha256:<64 lowercase hex>`, from either spelling; `None` if it is not one.
pub fn normalize_digest(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Docker Hub's spellings of one repository made the same: `docker.io/library/nginx`,
/// `index.docker.io/library/nginx` and `nginx` are all `nginx`.
pub fn normalize_repository(repo: &str) -> String {
    let r = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|p| repo.strip_prefix(p))
        .unwrap_or(repo);
    r.strip_prefix("library/").unwrap_or(r).to_string()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['/', ':', '.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
}

/// Splits `repo[:tag]` into the repository (the tag dropped), minding registry ports.
fn repository_of(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    }
}

/// One entry's text → the entry, or why it is not one.
pub fn parse_entry(text: &str) -> Result<ApprovedEntry, String> {
    if let Some(d) = normalize_digest(text) {
        return Ok(ApprovedEntry::Digest(d));
    }
    if let Some((name, digest)) = text.split_once('@') {
        let Some(digest) = normalize_digest(digest) else {
            return Err(if digest.contains(':') && !digest.starts_with("sha256:") {
                "only sha256 digests are supported".into()
            } else {
                "the digest is not sha256:<64 hex digits>".into()
            });
        };
        if !valid_name(name) {
            return Err("not a valid image name before `@`".into());
        }
        return Ok(ApprovedEntry::Reference {
            repository: normalize_repository(repository_of(name)),
            digest,
        });
    }
    if text.starts_with("sha256:") {
        return Err("the digest is not sha256:<64 hex digits>".into());
    }
    if valid_name(text) {
        return Err("a tag or name is not a digest: pin it as REPOSITORY@sha256:...".into());
    }
    Err("not a digest (sha256:...) or a REPOSITORY@sha256:... reference".into())
}

/// Removes a `#` comment (at the start or after a space) and surrounding quotes.
fn clean(line: &str) -> &str {
    let mut s = line;
    if let Some(i) = s
        .find('#')
        .filter(|&i| i == 0 || s[..i].ends_with([' ', '\t']))
    {
        s = &s[..i];
    }
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(s)
        .trim()
}

fn is_manifest(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("apiVersion:") || l.starts_with("kind:")
    })
}

impl ApprovedList {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ApprovedList, LoadError> {
        let text = std::fs::read(path).map_err(|error| LoadError::Unreadable {
            what: "the approved list",
            path: path.to_path_buf(),
            error,
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = text_line_of(before);
            let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            LoadError::Invalid {
                path: path.to_path_buf(),
                diagnostics: vec![Diagnostic::error(
                    path.display().to_string(),
                    line as u64,
                    col as u64,
                    "not UTF-8 text".into(),
                )],
            }
        })?;
        Self::parse(path, &text).map_err(|diagnostics| LoadError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    }

    /// Parses a list's text; `file` only names it in errors (no I/O).
    pub fn parse(file: &Path, text: &str) -> Result<ApprovedList, Vec<Diagnostic>> {
        let mut list = ApprovedList {
            file: file.to_path_buf(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        let name = file.display().to_string();
        // `part` is where on the line the problem is (the line itself: its first non-blank).
        let err = |line: usize, part: &str, message: String| {
            let raw = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
            let col = raw
                .find(part.trim())
                .map_or(1, |i| raw[..i].chars().count() + 1);
            Diagnostic::error(name.as_str(), line as u64, col as u64, message).with_source(text)
        };
        let first = text.trim_start().chars().next();
        if matches!(first, Some('[' | '{')) {
            let items: Vec<serde_json::Value> = match serde_json::from_str(text) {
                Ok(serde_json::Value::Array(a)) => a,
                Ok(_) => {
                    let line =
                        text_line_of(&text.as_bytes()[..text.len() - text.trim_start().len()]);
                    return Err(vec![err(
                        line,
                        text.trim_start(),
                        "a JSON list must be an array of strings".into(),
                    )]);
                }
                Err(e) => {
                    return Err(vec![
                        Diagnostic::error(
                            name.as_str(),
                            e.line() as u64,
                            e.column() as u64,
                            format!("invalid JSON ({e})"),
                        )
                        .with_source(text),
                    ]);
                }
            };
            for item in items {
                let (shown, parsed) = match &item {
                    serde_json::Value::String(s) => (s.clone(), parse_entry(s.trim())),
                    other => (other.to_string(), Err("not a string".into())),
                };
                // serde_json keeps no positions of values: find the item's text.
                let line = text
                    .find(&shown)
                    .map_or(1, |i| text_line_of(&text.as_bytes()[..i]));
                match parsed {
                    Ok(value) => list.entries.push(Located { line, value }),
                    Err(m) => errors.push(err(line, &shown, m)),
                }
            }
        } else if is_manifest(text) {
            for (i, raw) in text.lines().enumerate() {
                let l = raw.trim_start();
                let l = l.strip_prefix("- ").map_or(l, str::trim_start);
                let Some(v) = l.strip_prefix("image:") else {
                    continue;
                };
                let v = clean(v);
                if v.is_empty() {
                    continue; // a block value or a template: nothing to pin here
                }
                if v.contains('@') {
                    match parse_entry(v) {
                        Ok(value) => list.entries.push(Located { line: i + 1, value }),
                        Err(m) => errors.push(err(i + 1, v, m)),
                    }
                } else {
                    list.unpinned.push(Located {
                        line: i + 1,
                        value: v.to_string(),
                    });
                }
            }
        } else {
            for (i, raw) in text.lines().enumerate() {
                let l = clean(raw);
                let l = l.strip_prefix("- ").map_or(l, clean);
                if l.is_empty() || l == "---" || l == "-" {
                    continue;
                }
                match parse_entry(l) {
                    Ok(value) => list.entries.push(Located { line: i + 1, value }),
                    Err(m) => errors.push(err(i + 1, l, m)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(list)
    }
}

/// The 1-based line at the end of `before`.
fn text_line_of(before: &[u8]) -> usize {
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn parse(text: &str) -> Result<ApprovedList, Vec<Diagnostic>> {
        ApprovedList::parse(Path::new("approved.txt"), text)
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn entries(l: &ApprovedList) -> Vec<(usize, String)> {
        l.entries
            .iter()
            .map(|e| (e.line, e.value.to_string()))
            .collect()
    }

    #[test]
    fn lines_with_comments_quotes_and_yaml_dashes() {
        let text = format!(
            "# approved images\n{A}\n\n  - \"{B}\"   # bare hex\n\
             docker.io/library/nginx:1.27@{A}\nregistry.example.com:5000/team/app@sha256:{B}\n"
        );
        let l = parse(&text).unwrap();
        assert_eq!(
            entries(&l),
            [
                (2, A.to_string()),
                (4, format!("sha256:{B}")),
                (5, format!("nginx@{A}")),
                (6, format!("registry.example.com:5000/team/app@sha256:{B}")),
            ]
        );
    }

    #[test]
    fn garbage_is_reported_on_every_line_with_its_number() {
        let text = format!("{A}\nnginx:latest\nsha256:1234\nnginx@sha512:{B}\n\u{1F600} junk\n");
        assert_eq!(
            errors(&text),
            [
                "approved.txt:2:1: a tag or name is not a digest: pin it as REPOSITORY@sha256:...",
                "approved.txt:3:1: the digest is not sha256:<64 hex digits>",
                "approved.txt:4:1: only sha256 digests are supported",
                "approved.txt:5:1: not a digest (sha256:...) or a REPOSITORY@sha256:... reference",
            ]
        );
        assert_eq!(
            parse(&text).unwrap_err()[1].render(),
            "approved.txt:3:1: error: the digest is not sha256:<64 hex digits>\n3 | sha256:1234\n  | ^"
        );
    }

    #[test]
    fn json_array_and_json_errors_with_line_and_column() {
        let l = parse(&format!("[\n  \"{A}\",\n  \"busybox@{A}\"\n]")).unwrap();
        assert_eq!(entries(&l), [(2, A.into()), (3, format!("busybox@{A}"))]);
        let e = &errors("[\n  \"x\",\n  nope\n]")[0];
        assert!(e.starts_with("approved.txt:3:4: invalid JSON"), "{e}");
        assert_eq!(
            errors(&format!("[\n\"{A}\",\n 42]")),
            ["approved.txt:3:2: not a string"]
        );
        let e = &errors("{\"a\": 1}")[0];
        assert!(e.contains("must be an array"), "{e}");
    }

    #[test]
    fn kubernetes_manifests_give_their_pinned_images() {
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      \
             containers:\n      - name: web\n        image: nginx@{A}\n      - image: \"redis:7\"\n\
             ---\napiVersion: v1\nkind: Pod\nspec:\n  initContainers:\n  - image: ghcr.io/x/y:1@sha256:{B}\n"
        );
        let l = parse(&text).unwrap();
        assert_eq!(
            entries(&l),
            [
                (8, format!("nginx@{A}")),
                (15, format!("ghcr.io/x/y@sha256:{B}"))
            ]
        );
        assert_eq!(
            l.unpinned,
            [Located {
                line: 9,
                value: "redis:7".into()
            }]
        );
        assert_eq!(
            errors("kind: Pod\nspec:\n  containers:\n  - image: app@sha256:zz\n"),
            ["approved.txt:4:12: the digest is not sha256:<64 hex digits>"]
        );
    }

    #[test]
    fn binary_garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"sha256:x\n\xff\xfe\x00junk").unwrap();
        let e = ApprovedList::load(&p).unwrap_err().to_string();
        assert!(e.ends_with(":2:1: error: not UTF-8 text"), "{e}");
        let e = ApprovedList::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: No such file"), "{e}");
    }
}
