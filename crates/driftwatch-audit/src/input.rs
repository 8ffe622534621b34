//! The I/O of an audit: paths (files, directories walked for `*.yaml`, `*.yml`, `*.json`,
//! `-` for standard input) read with the size cap, then handed to [`Audit`].

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Audit, InputError, InputErrorKind, MAX_FILE_BYTES, Report};

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["yaml", "yml", "json"].contains(&e.to_ascii_lowercase().as_str()))
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> InputError {
    InputError {
        file: path.display().to_string(),
        document: None,
        line: None,
        column: None,
        message: InputErrorKind::Read(e.to_string()),
    }
}

/// The manifest files under `dir`, sorted; hidden entries (`.git`) are skipped and symbolic
/// links to directories are not followed (no loops).
fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return errors.push(read_error(dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, files, errors),
            Ok(_) if is_manifest(&p) && p.is_file() => files.push(p),
            Ok(_) => {}
            Err(e) => errors.push(read_error(&p, e)),
        }
    }
}

fn read_capped(mut r: impl Read, path: &Path, audit: &mut Audit) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    match r.by_ref().take(MAX_FILE_BYTES + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > MAX_FILE_BYTES => {
            audit.add_error(InputError {
                message: InputErrorKind::TooLarge {
                    size: buf.len() as u64,
                    max: MAX_FILE_BYTES,
                },
                ..read_error(path, "")
            });
            None
        }
        Ok(_) => Some(buf),
        Err(e) => {
            audit.add_error(read_error(path, e));
            None
        }
    }
}

/// Audits `paths`: each a file (any name), a directory, or `-` for standard input.
pub fn audit_paths(paths: &[PathBuf]) -> Report {
    let mut audit = Audit::new();
    for path in paths {
        if path.as_os_str() == "-" {
            if let Some(bytes) = read_capped(std::io::stdin().lock(), Path::new("-"), &mut audit) {
                audit.add_source("<stdin>", &bytes);
            }
            continue;
        }
        let files = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let (mut files, mut errors) = (Vec::new(), Vec::new());
                walk(path, &mut files, &mut errors);
                errors.into_iter().for_each(|e| audit.add_error(e));
                if files.is_empty() {
                    audit.add_error(read_error(path, "no *.yaml, *.yml or *.json files in it"));
                }
                files
            }
            Ok(_) => vec![path.clone()],
            Err(e) => {
                audit.add_error(read_error(path, e));
                continue;
            }
        };
        for file in files {
            match std::fs::metadata(&file) {
                Ok(m) if m.len() > MAX_FILE_BYTES => {
                    audit.add_error(InputError {
                        message: InputErrorKind::TooLarge {
                            size: m.len(),
                            max: MAX_FILE_BYTES,
                        },
                        ..read_error(&file, "")
                    });
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    audit.add_error(read_error(&file, e));
                    continue;
                }
            }
            let bytes = match std::fs::File::open(&file) {
                Ok(f) => read_capped(f, &file, &mut audit),
                Err(e) => {
                    audit.add_error(read_error(&file, e));
                    None
                }
            };
            if let Some(bytes) = bytes {
                audit.add_source(&file.display().to_string(), &bytes);
            }
        }
    }
    audit.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_for_manifests_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/x.yaml"), "kind: Pod\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "kind: Service\n").unwrap();
        std::fs::write(sub.join("b.JSON"), "{\"kind\": \"ConfigMap\"}").unwrap();
        std::fs::write(sub.join("c.yml"), "kind: Secret\n").unwrap();
        std::fs::write(sub.join("README.md"), "# not yaml: [").unwrap();
        let r = audit_paths(&[dir.path().to_path_buf()]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.files, 3);
        let kinds: Vec<_> = r.notes.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["Service", "ConfigMap", "Secret"]);
    }

    #[test]
    fn missing_and_empty_paths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let r = audit_paths(&[dir.path().join("nope.yaml"), dir.path().to_path_buf()]);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert_eq!(r.exit_code(None), 2);
        assert!(r.errors[0].to_string().contains("nope.yaml: cannot read"));
    }
}
