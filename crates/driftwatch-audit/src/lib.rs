//! `driftwatch audit`: Kubernetes manifests checked for the settings that keep a container
//! from drifting (read-only root filesystem, no privilege escalation, non-root, images pinned
//! by digest, bounded emptyDirs, no privileged containers, capabilities dropped, no hostPath)
//! and namespaces enforcing the restricted Pod Security Standard.
//!
//! Read ([`input`]) → split and parse ([`yaml`]) → check ([`check`]) → print ([`report`]).
//! Only [`input`] does I/O; [`Audit::add_source`] audits bytes.

pub mod check;
pub mod input;
pub mod report;
pub mod rule;
pub mod yaml;

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

pub use check::{Finding, InputError, InputErrorKind, Location, Note, ObjectRef};
pub use rule::{FindingSeverity, Rule};

/// Larger files are refused unread: the biggest `kubectl get -A -o yaml` dumps are tens of MB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Collects the results of every file of one run; [`Audit::finish`] adds the checks that need
/// all of them (namespaces).
#[derive(Debug, Default)]
pub struct Audit {
    report: Report,
    declared: BTreeSet<String>,
    uses: Vec<check::NamespaceUse>,
}

/// The result of a run. Its JSON form is documented in docs/kubernetes.md.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub files: usize,
    pub documents: usize,
    pub workloads: usize,
    pub findings: Vec<Finding>,
    pub errors: Vec<InputError>,
    pub notes: Vec<Note>,
}

impl Report {
    /// The exit status for CI: 2 when some input could not be audited, 1 when a finding is at
    /// or above `fail_on` (`None`: never), else 0.
    pub fn exit_code(&self, fail_on: Option<FindingSeverity>) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if fail_on.is_some_and(|min| self.findings.iter().any(|f| f.severity >= min)) {
            1
        } else {
            0
        }
    }

    pub fn count(&self, severity: FindingSeverity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

fn offset_line_col(text: &[u8], offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
    (line, col)
}

impl Audit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records input that could not be read.
    pub fn add_error(&mut self, error: InputError) {
        self.report.errors.push(error);
    }

    /// Audits the contents of one file (`name` is how findings name it).
    pub fn add_source(&mut self, name: &str, bytes: &[u8]) {
        self.report.files += 1;
        let file_error = |message, at: Option<(u64, u64)>| InputError {
            file: name.to_string(),
            document: None,
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            message,
        };
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let e = InputErrorKind::TooLarge {
                size: bytes.len() as u64,
                max: MAX_FILE_BYTES,
            };
            return self.add_error(file_error(e, None));
        }
        if let Some(offset) = bytes.iter().position(|b| *b == 0) {
            let at = offset_line_col(bytes, offset);
            return self.add_error(file_error(InputErrorKind::Binary { offset }, Some(at)));
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.valid_up_to();
                let at = offset_line_col(bytes, offset);
                return self.add_error(file_error(InputErrorKind::NotUtf8 { offset }, Some(at)));
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Parsed on a thread with a known, large stack: the depth budget bounds recursion,
        // this makes sure that bound fits whatever thread the caller is on.
        let parsed = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("driftwatch-audit-parse".into())
                .stack_size(yaml::PARSE_STACK_BYTES)
                .spawn_scoped(s, || audit_text(name, text))
                .map(|h| h.join())
        });
        match parsed {
            Ok(Ok(docs)) => docs.into_iter().for_each(|d| self.add_document(d)),
            Ok(Err(_)) | Err(_) => self.add_error(file_error(
                InputErrorKind::Invalid("the parser failed on this file".to_string()),
                None,
            )),
        }
    }

    fn add_document(&mut self, doc: Result<check::DocAudit, InputError>) {
        self.report.documents += 1;
        match doc {
            Ok(doc) => {
                self.report.workloads += doc.workloads;
                self.report.findings.extend(doc.findings);
                self.report.notes.extend(doc.notes);
                self.report.errors.extend(doc.errors);
                self.declared.extend(doc.declared_namespaces);
                self.uses.extend(doc.namespace_uses);
            }
            Err(e) => self.add_error(e),
        }
    }

    /// Adds, once per namespace, an info finding for the namespaces workloads name that no
    /// Namespace object of the input declares.
    pub fn finish(mut self) -> Report {
        let mut seen = HashSet::new();
        for u in self.uses {
            if self.declared.contains(&u.namespace) || !seen.insert(u.namespace.clone()) {
                continue;
            }
            let rule = Rule::NamespaceNotInInput;
            self.report.findings.push(Finding {
                rule,
                severity: rule.severity(),
                location: u.location,
                object: ObjectRef {
                    kind: "Namespace".to_string(),
                    name: u.namespace.clone(),
                    namespace: None,
                },
                container: None,
                message: format!(
                    "namespace {} not in the input: cannot check its Pod Security label (used by {})",
                    u.namespace, u.object
                ),
                fix: rule.fix(),
            });
        }
        self.report
    }
}

/// Every document of a file, audited (an empty one yields an empty audit).
fn audit_text(name: &str, text: &str) -> Vec<Result<check::DocAudit, InputError>> {
    yaml::split_documents(text)
        .into_iter()
        .map(|raw| match yaml::parse_document(&raw) {
            Ok(Some(root)) => Ok(check::audit_document(
                name,
                raw.index,
                &raw.text,
                raw.source.as_deref(),
                &root,
            )),
            Ok(None) => Ok(check::DocAudit::default()),
            Err(e) => Err(InputError {
                file: name.to_string(),
                document: Some(raw.index),
                line: Some(e.line),
                column: Some(e.col),
                message: InputErrorKind::Syntax(e.message),
            }),
        })
        .collect()
}

/// Audits in-memory sources, as `driftwatch audit` does files: `(name, contents)` pairs.
pub fn audit_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Report {
    let mut audit = Audit::new();
    for (name, bytes) in sources {
        audit.add_source(name, bytes);
    }
    audit.finish()
}

#[cfg(test)]
mod tests;
