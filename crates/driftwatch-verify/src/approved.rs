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
//! Every bad entry is reported, each as `FILE:LINE: what is wrong: `the text``.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// One bad line of the list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}{}: {message}: `{snippet}`", file.display(), col.map(|c| format!(":{c}")).unwrap_or_default())]
pub struct ListError {
    pub file: PathBuf,
    pub line: usize,
    pub col: Option<usize>,
    pub message: String,
    pub snippet: String,
}

/// Every bad line of a list, or the reason it could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListErrors {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ListError>),
}

const MAX_SNIPPET: usize = 80;

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > MAX_SNIPPET {
        format!("{}...", s.chars().take(MAX_SNIPPET).collect::<String>())
    } else {
        s.to_string()
    }
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
    pub fn load(path: &Path) -> Result<ApprovedList, ListErrors> {
        let text = std::fs::read(path).map_err(|source| ListErrors::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            let line = text_line_of(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
            ListErrors::Invalid(vec![ListError {
                file: path.to_path_buf(),
                line,
                col: None,
                message: "not UTF-8 text".into(),
                snippet: String::new(),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Parses a list's text; `file` only names it in errors (no I/O).
    pub fn parse(file: &Path, text: &str) -> Result<ApprovedList, ListErrors> {
        let mut list = ApprovedList {
            file: file.to_path_buf(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        let err = |line: usize, col: Option<usize>, message: String, s: &str| ListError {
            file: file.to_path_buf(),
            line,
            col,
            message,
            snippet: snippet(s),
        };
        let first = text.trim_start().chars().next();
        if matches!(first, Some('[' | '{')) {
            let items: Vec<serde_json::Value> = match serde_json::from_str(text) {
                Ok(serde_json::Value::Array(a)) => a,
                Ok(_) => {
                    let line =
                        text_line_of(&text.as_bytes()[..text.len() - text.trim_start().len()]);
                    return Err(ListErrors::Invalid(vec![err(
                        line,
                        None,
                        "a JSON list must be an array of strings".into(),
                        text.lines().nth(line - 1).unwrap_or_default(),
                    )]));
                }
                Err(e) => {
                    return Err(ListErrors::Invalid(vec![err(
                        e.line(),
                        Some(e.column()),
                        format!("invalid JSON ({e})"),
                        text.lines()
                            .nth(e.line().saturating_sub(1))
                            .unwrap_or_default(),
                    )]));
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
                    Err(m) => errors.push(err(line, None, m, &shown)),
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
                        Err(m) => errors.push(err(i + 1, None, m, raw)),
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
                    Err(m) => errors.push(err(i + 1, None, m, raw)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(ListErrors::Invalid(errors));
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

    fn parse(text: &str) -> Result<ApprovedList, ListErrors> {
        ApprovedList::parse(Path::new("approved.txt"), text)
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
        let ListErrors::Invalid(errs) = parse(&text).unwrap_err() else {
            panic!("not Invalid");
        };
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "approved.txt:2: a tag or name is not a digest: pin it as REPOSITORY@sha256:...: `nginx:latest`",
                "approved.txt:3: the digest is not sha256:<64 hex digits>: `sha256:1234`",
                &format!("approved.txt:4: only sha256 digests are supported: `nginx@sha512:{B}`"),
                "approved.txt:5: not a digest (sha256:...) or a REPOSITORY@sha256:... reference: `\u{1F600} junk`",
            ]
        );
    }

    #[test]
    fn json_array_and_json_errors_with_line_and_column() {
        let l = parse(&format!("[\n  \"{A}\",\n  \"busybox@{A}\"\n]")).unwrap();
        assert_eq!(entries(&l), [(2, A.into()), (3, format!("busybox@{A}"))]);
        let e = parse("[\n  \"x\",\n  nope\n]").unwrap_err().to_string();
        assert!(e.starts_with("approved.txt:3:4: invalid JSON"), "{e}");
        let e = parse(&format!("[\n\"{A}\",\n 42]"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "approved.txt:3: not a string: `42`");
        let e = parse("{\"a\": 1}").unwrap_err().to_string();
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
        let e = parse("kind: Pod\nspec:\n  containers:\n  - image: app@sha256:zz\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "approved.txt:4: the digest is not sha256:<64 hex digits>: `- image: app@sha256:zz`"
        );
    }

    #[test]
    fn binary_garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"sha256:x\n\xff\xfe\x00junk").unwrap();
        let e = ApprovedList::load(&p).unwrap_err().to_string();
        assert!(e.ends_with(":2: not UTF-8 text: ``"), "{e}");
        let e = ApprovedList::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: No such file"), "{e}");
    }
}
