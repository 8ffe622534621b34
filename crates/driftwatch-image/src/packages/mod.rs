//! Package databases and manifests (dpkg, apk, rpm, Python dist-info, npm), parsed without I/O,
//! and the package-level diff of a container against its image.

mod apk;
mod dpkg;
mod npm;
mod owners;
mod python;
pub mod rpm;

use std::collections::BTreeMap;

use serde::Serialize;

pub use apk::{parse_apk_files, parse_apk_installed};
pub use dpkg::{DPKG_INFO_DIR, dpkg_info_stems, parse_dpkg_files, parse_dpkg_status};
pub use npm::parse_npm_package_json;
pub use owners::{
    MAX_OWNED_PATHS, Owner, OwnerIndex, PackageDigest, RPM_DATABASES, read_owned_files,
};
pub use python::{normalize_python_name, parse_python_metadata};

/// A packaging system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ecosystem {
    Dpkg,
    Apk,
    Rpm,
    Python,
    Npm,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Dpkg => "dpkg",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
        }
    }
}

/// One installed package as a database records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Architecture, where the database records one (dpkg, apk, rpm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// The digest algorithms package managers record for their files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestAlgo {
    /// dpkg's `info/PKG.md5sums`, and rpm's older headers.
    Md5,
    /// apk's `Z:Q1...` lines (base64 of the SHA-1).
    Sha1,
    /// rpm's `FILEDIGESTS` with `FILEDIGESTALGO` 8 (the default since rpm 4.6 on RHEL).
    Sha256,
    Sha384,
    Sha512,
}

/// A package manager's own digest of a file it installed, as lowercase hex (apk's base64 is
/// converted), so "modified against the package" does not depend on the image's layers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FileDigest {
    pub algo: DigestAlgo,
    pub hex: String,
}

impl FileDigest {
    /// Whether `reader`'s bytes have this digest. Reads to the end: callers bound the file.
    pub fn matches(&self, mut reader: impl std::io::Read) -> std::io::Result<bool> {
        use sha2::Digest as _;
        fn run<D: sha2::Digest>(mut d: D, r: &mut dyn std::io::Read) -> std::io::Result<String> {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => d.update(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(d.finalize().iter().map(|b| format!("{b:02x}")).collect())
        }
        let r: &mut dyn std::io::Read = &mut reader;
        let got = match self.algo {
            DigestAlgo::Md5 => run(md5::Md5::new(), r)?,
            DigestAlgo::Sha1 => run(sha1::Sha1::new(), r)?,
            DigestAlgo::Sha256 => run(sha2::Sha256::new(), r)?,
            DigestAlgo::Sha384 => run(sha2::Sha384::new(), r)?,
            DigestAlgo::Sha512 => run(sha2::Sha512::new(), r)?,
        };
        Ok(got.eq_ignore_ascii_case(&self.hex))
    }
}

/// One file a package installed, as its database lists it. `path` is absolute inside the
/// container (`/usr/bin/curl`), the name exactly as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OwnedFile {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<FileDigest>,
    /// The mode the package gave it, where the database records one (rpm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// An installed package with the files it owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageFiles {
    pub ecosystem: Ecosystem,
    pub package: Package,
    pub files: Vec<OwnedFile>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageChangeKind {
    Added,
    Removed,
    /// Same package, other version (or architecture).
    Changed,
}

/// A package added, removed or changed in the container compared with its image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub ecosystem: Ecosystem,
    pub change: PackageChangeKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Version in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
    /// Version in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where it is recorded: the database path, the site-packages or package directory.
    pub location: String,
}

/// Packages seen on one side, keyed so the two sides pair up:
/// `(ecosystem, location, name, arch)`.
type Key = (Ecosystem, String, String, Option<String>);

/// Collects packages of the image and of the container from the manifests that changed,
/// then says what changed.
#[derive(Debug, Default)]
pub struct PackageDiffBuilder {
    image: BTreeMap<Key, String>,
    current: BTreeMap<Key, String>,
}

impl PackageDiffBuilder {
    /// Records packages found in the image (`in_image`) or in the container.
    pub fn add(&mut self, eco: Ecosystem, location: &str, in_image: bool, pkgs: Vec<Package>) {
        let side = if in_image {
            &mut self.image
        } else {
            &mut self.current
        };
        for p in pkgs {
            let name = match eco {
                Ecosystem::Python => normalize_python_name(&p.name),
                _ => p.name,
            };
            side.insert((eco, location.to_string(), name, p.arch), p.version);
        }
    }

    /// Changes, sorted by ecosystem, location and name.
    pub fn finish(self) -> Vec<PackageChange> {
        let mut out = Vec::new();
        let change = |key: &Key, kind, image: Option<&String>, now: Option<&String>| {
            let (eco, loc, name, arch) = key.clone();
            PackageChange {
                ecosystem: eco,
                change: kind,
                name,
                arch,
                image_version: image.cloned(),
                version: now.cloned(),
                location: loc,
            }
        };
        for (k, v) in &self.current {
            match self.image.get(k) {
                None => out.push(change(k, PackageChangeKind::Added, None, Some(v))),
                Some(iv) if iv != v => {
                    out.push(change(k, PackageChangeKind::Changed, Some(iv), Some(v)))
                }
                Some(_) => {}
            }
        }
        for (k, iv) in &self.image {
            if !self.current.contains_key(k) {
                out.push(change(k, PackageChangeKind::Removed, Some(iv), None));
            }
        }
        out.sort_by(|a, b| {
            (a.ecosystem, &a.location, &a.name, &a.arch).cmp(&(
                b.ecosystem,
                &b.location,
                &b.name,
                &b.arch,
            ))
        });
        out
    }
}

/// Parses one package database or manifest.
pub fn parse(eco: Ecosystem, bytes: &[u8]) -> Vec<Package> {
    match eco {
        Ecosystem::Dpkg => parse_dpkg_status(bytes),
        Ecosystem::Apk => parse_apk_installed(bytes),
        Ecosystem::Python => parse_python_metadata(bytes).into_iter().collect(),
        Ecosystem::Npm => parse_npm_package_json(bytes).into_iter().collect(),
        Ecosystem::Rpm => rpm::parse_rpm_packages(bytes, None),
    }
}

/// Splits RFC 822-like stanzas (dpkg status, apk installed) into `(field, value)` lists.
/// Continuation lines (starting with a space or tab) are dropped: we read one-line fields.
fn stanzas(bytes: &[u8], sep: u8) -> impl Iterator<Item = Vec<(&[u8], &[u8])>> {
    bytes
        .split(|b| *b == b'\n')
        .chain(std::iter::once(&b""[..]))
        .scan(Vec::new(), move |cur: &mut Vec<(&[u8], &[u8])>, line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                return Some(Some(std::mem::take(cur)).filter(|s| !s.is_empty()));
            }
            if line[0] != b' '
                && line[0] != b'\t'
                && let Some(i) = line.iter().position(|b| *b == sep)
            {
                cur.push((&line[..i], trim(&line[i + 1..])));
            }
            Some(None)
        })
        .flatten()
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn field<'a>(stanza: &[(&[u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    stanza
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path a package database claims, when it is a clean absolute path: valid UTF-8, starting
/// with `/`, without empty, `.` or `..` components, NUL or newline; `/` itself (dpkg's `/.`)
/// is not a file anyone owns. A trailing `/` is dropped.
fn owned_path(b: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.strip_suffix('/').unwrap_or(s);
    let rest = s.strip_prefix('/')?;
    if rest.is_empty() || s.contains(['\0', '\n']) {
        return None;
    }
    rest.split('/')
        .all(|c| !c.is_empty() && c != "." && c != "..")
        .then(|| s.to_string())
}

/// A record's package name, or `None` when the name field is empty or blank: such a record
/// is damaged (every packaging system requires a name), and is skipped rather than reported
/// as a package called "" (which would pair every nameless record of the image and the
/// container under one key and show up in `driftwatch diff` as a package without a name).
fn package_name(name: String) -> Option<String> {
    (!name.trim().is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            arch: None,
        }
    }

    #[test]
    fn added_removed_changed() {
        let mut b = PackageDiffBuilder::default();
        b.add(
            Ecosystem::Npm,
            "/a",
            true,
            vec![p("x", "1"), p("y", "1"), p("same", "1")],
        );
        b.add(
            Ecosystem::Npm,
            "/a",
            false,
            vec![p("x", "2"), p("z", "1"), p("same", "1")],
        );
        let got: Vec<_> = b
            .finish()
            .into_iter()
            .map(|c| (c.change, c.name, c.image_version, c.version))
            .collect();
        use PackageChangeKind::*;
        assert_eq!(
            got,
            [
                (Changed, "x".into(), Some("1".into()), Some("2".into())),
                (Removed, "y".into(), Some("1".into()), None),
                (Added, "z".into(), None, Some("1".into())),
            ]
        );
    }

    #[test]
    fn python_names_pair_across_spellings() {
        let mut b = PackageDiffBuilder::default();
        b.add(Ecosystem::Python, "/site", true, vec![p("Foo_Bar", "1.0")]);
        b.add(Ecosystem::Python, "/site", false, vec![p("foo.bar", "1.1")]);
        let c = b.finish();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].change, c[0].name.as_str()),
            (PackageChangeKind::Changed, "foo-bar")
        );
    }
}
