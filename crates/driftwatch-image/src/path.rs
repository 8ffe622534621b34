//! A path inside a container, kept byte-exact: shown escaped in text so hostile names
//! (newlines, terminal escapes, invalid UTF-8) cannot forge log lines, and exact in JSON.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use driftwatch_model::name::{JsonName, NameBytes};
use serde::{Serialize, Serializer};

/// Symlinks followed in one resolution before giving up, as Linux's `MAXSYMLINKS`.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// An absolute path inside a container, as raw bytes (Linux paths need not be UTF-8).
///
/// `Display` escapes control characters, backslashes and bytes that are not UTF-8 as
/// `\n`, `\\`, `\xNN`, so one path is always one printable line. Serializes as the real
/// name (invalid sequences as U+FFFD); a struct field written with [`name_fields`] also gets
/// the bytes in base64 beside it when the name is not UTF-8 (docs/outputs.md, "Names in JSON").
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerPath(PathBuf);

impl ContainerPath {
    /// The root, `/`.
    pub fn root() -> Self {
        Self(PathBuf::from("/"))
    }

    /// `/` followed by `components` joined with `/`.
    pub fn from_components<S: AsRef<OsStr>>(components: &[S]) -> Self {
        let mut bytes = Vec::with_capacity(64);
        for c in components {
            bytes.push(b'/');
            bytes.extend_from_slice(c.as_ref().as_bytes());
        }
        if bytes.is_empty() {
            bytes.push(b'/');
        }
        Self(PathBuf::from(OsString::from_vec(bytes)))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_os_str().as_bytes()
    }

    /// True when the path is valid UTF-8 (then `to_string_lossy` is exact).
    pub fn is_utf8(&self) -> bool {
        std::str::from_utf8(self.as_bytes()).is_ok()
    }

    /// The path as UTF-8, invalid sequences replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// The escaped form `Display` prints.
    pub fn escaped(&self) -> String {
        self.to_string()
    }

    /// Appends one component.
    pub fn join(&self, name: &OsStr) -> Self {
        let mut bytes = self.as_bytes().to_vec();
        if bytes.last() != Some(&b'/') {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(name.as_bytes());
        Self(PathBuf::from(OsString::from_vec(bytes)))
    }
}

impl From<&Path> for ContainerPath {
    fn from(p: &Path) -> Self {
        Self(p.to_path_buf())
    }
}

impl From<&str> for ContainerPath {
    fn from(p: &str) -> Self {
        Self(PathBuf::from(p))
    }
}

impl fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.as_bytes().utf8_chunks() {
            for ch in chunk.valid().chars() {
                match ch {
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    '\\' => f.write_str("\\\\")?,
                    c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for ContainerPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&JsonName::new(self.as_bytes()).display())
    }
}

impl NameBytes for ContainerPath {
    fn name_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

/// `#[serde(flatten, serialize_with = "name_fields::FIELD")]` for path fields: the field as
/// the real name, plus `FIELD_b64` when it is not UTF-8 (nothing for `None`).
pub mod name_fields {
    use driftwatch_model::name::{NameBytes, serialize_flat};
    use serde::Serializer;

    pub fn path<S: Serializer, P: NameBytes>(p: &P, s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("path", p, s)
    }

    pub fn deleted_with<S: Serializer, P: NameBytes>(p: &P, s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("deleted_with", p, s)
    }

    pub fn symlink_target<S: Serializer, P: NameBytes>(p: &P, s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("symlink_target", p, s)
    }

    pub fn first_at<S: Serializer, P: NameBytes>(p: &P, s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("first_at", p, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_print_on_one_line() {
        let p = ContainerPath::from_components(&[
            OsStr::new("tmp"),
            OsStr::from_bytes(b"a\nb\xff\\c\x1b"),
        ]);
        assert_eq!(p.to_string(), "/tmp/a\\nb\\xff\\\\c\\u{1b}");
        assert!(!p.is_utf8());
        assert_eq!(p.as_bytes(), b"/tmp/a\nb\xff\\c\x1b");
    }

    #[test]
    fn root_and_join() {
        assert_eq!(ContainerPath::from_components::<&str>(&[]).to_string(), "/");
        assert_eq!(
            ContainerPath::root().join(OsStr::new("etc")).to_string(),
            "/etc"
        );
    }
}
