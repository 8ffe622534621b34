//! JSON lines files: one write per line, size-based rotation (`alerts.json.1` .. `.N`), and
//! a reopen when the file was moved or removed behind our back (logrotate).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use driftwatch_model::Alert;

use crate::worker::{Deliver, Failure};

/// Alert files hold container names, command lines and paths: owner-only.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o750;

/// An append-only file that rotates by size and follows external rotation.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    /// Rotate before a write would take the file past this; 0: never.
    max_bytes: u64,
    /// Rotated files kept; 0 with `max_bytes` set: the file is simply started afresh.
    max_files: u32,
    file: Option<File>,
    size: u64,
    /// (device, inode) of the open file, to notice a rename or removal of `path`.
    id: (u64, u64),
}

impl RotatingFile {
    /// Opens (creating it and its parent directory) for appending.
    pub fn open(path: &Path, max_bytes: u64, max_files: u32) -> io::Result<RotatingFile> {
        let mut f = RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            max_files,
            file: None,
            size: 0,
            id: (0, 0),
        };
        f.reopen()?;
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(&self.path)?;
        let m = file.metadata()?;
        self.size = m.len();
        self.id = (m.dev(), m.ino());
        self.file = Some(file);
        Ok(())
    }

    /// True when `path` still names the file we have open.
    fn still_current(&self) -> bool {
        self.file.is_some() && fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    fn rotated_name(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.max_files == 0 {
            fs::remove_file(&self.path).or_else(ignore_not_found)?;
        } else {
            fs::remove_file(self.rotated_name(self.max_files)).or_else(ignore_not_found)?;
            for n in (1..self.max_files).rev() {
                fs::rename(self.rotated_name(n), self.rotated_name(n + 1))
                    .or_else(ignore_not_found)?;
            }
            fs::rename(&self.path, self.rotated_name(1)).or_else(ignore_not_found)?;
        }
        self.reopen()
    }

    /// Appends `line` (which ends in a newline) in one write.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if !self.still_current() {
            self.reopen()?;
        }
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("file not open"));
        };
        match file.write_all(line) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                // Start from a fresh open at the next attempt.
                self.file = None;
                Err(e)
            }
        }
    }
}

fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// What each line of a file output holds.
pub(crate) enum LineFormat {
    Falco,
    Defender { hostname: String },
}

pub(crate) struct FileOut {
    pub file: RotatingFile,
    pub format: LineFormat,
}

impl Deliver for FileOut {
    fn deliver(&mut self, alert: &Alert) -> Result<(), Failure> {
        let mut line = match &self.format {
            LineFormat::Falco => alert.to_json_line(),
            LineFormat::Defender { hostname } => {
                crate::defender::document(alert, hostname).to_string()
            }
        };
        line.push('\n');
        self.file
            .write_line(line.as_bytes())
            .map_err(|e| Failure::retry(format!("writing {}: {e}", self.file.path().display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Path) -> Vec<String> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rotation_keeps_max_files_and_loses_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dir/alerts.json");
        let mut f = RotatingFile::open(&p, 100, 3).unwrap();
        let mode = fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        // 30-byte lines: 3 per file; 40 lines rotate 13 times.
        for i in 0..40 {
            f.write_line(format!("{{\"n\":{i:>4},\"pad\":\"xxxxxxxxxx\"}}\n").as_bytes())
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "alerts.json",
                "alerts.json.1",
                "alerts.json.2",
                "alerts.json.3"
            ]
        );
        // The newest lines, in order, oldest file first; every file within max_bytes.
        let mut all = Vec::new();
        for n in [3, 2, 1] {
            let rp = f.rotated_name(n);
            assert!(fs::metadata(&rp).unwrap().len() <= 100);
            all.extend(lines(&rp));
        }
        all.extend(lines(&p));
        let numbers: Vec<u32> = all
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["n"].as_u64().unwrap() as u32
            })
            .collect();
        let expected: Vec<u32> = (40 - numbers.len() as u32..40).collect();
        assert_eq!(numbers, expected);
        assert_eq!(numbers.len(), 10, "3 rotated files of 3 lines + 1 current");
    }

    #[test]
    fn reopens_after_logrotate_moved_or_removed_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        let mut f = RotatingFile::open(&p, 0, 0).unwrap();
        f.write_line(b"one\n").unwrap();
        fs::rename(&p, dir.path().join("alerts.json-20261128")).unwrap();
        f.write_line(b"two\n").unwrap();
        assert_eq!(lines(&p), ["two"]);
        assert_eq!(lines(&dir.path().join("alerts.json-20261128")), ["one"]);
        fs::remove_file(&p).unwrap();
        f.write_line(b"three\n").unwrap();
        assert_eq!(lines(&p), ["three"]);
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_nothing_silently() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "").unwrap();
        // A regular file where the parent directory should be.
        let err = RotatingFile::open(&blocker.join("alerts.json"), 0, 0).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
            ),
            "{err:?}"
        );
    }
}
