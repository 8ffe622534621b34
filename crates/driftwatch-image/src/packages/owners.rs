//! Which package owns a path: every package database of one root (dpkg, apk, rpm) folded
//! into one bounded index, built once per image (or per state of a container's databases)
//! and asked once per alert.

use std::collections::HashMap;

use serde::Serialize;

use super::{
    DPKG_INFO_DIR, Ecosystem, FileDigest, Package, PackageFiles, dpkg_info_stems, parse_apk_files,
    parse_dpkg_files, parse_dpkg_status,
};

/// Paths an index holds at most. A Debian image with a desktop's worth of packages owns
/// about 150 000; past this the index is marked truncated and later packages are not
/// indexed (their files have no known owner), so a hostile database costs bounded memory.
pub const MAX_OWNED_PATHS: usize = 500_000;

/// dpkg's `status`, the apk database and a package's `.list`/`.md5sums` are read capped by
/// the caller; these are the paths asked for.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const APK_INSTALLED: &str = "/lib/apk/db/installed";
/// rpm's databases, newest format first, where rpm 4.16+ (`/usr/lib/sysimage/rpm`, SUSE and
/// Fedora) and older releases (`/var/lib/rpm`) keep them.
pub const RPM_DATABASES: [&str; 6] = [
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages.db",
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages",
    "/var/lib/rpm/Packages",
];

/// Every package with its files, for one ecosystem, reading the database's files through
/// `read` (a container path to its bytes; `None` when absent, not a regular file or over
/// the caller's cap). Ecosystems without a file database (Python, npm) have none here.
pub fn read_owned_files(
    eco: Ecosystem,
    read: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
) -> Vec<PackageFiles> {
    match eco {
        Ecosystem::Dpkg => {
            let Some(status) = read(DPKG_STATUS) else {
                return Vec::new();
            };
            parse_dpkg_status(&status)
                .into_iter()
                .filter_map(|pkg| {
                    let (stem, list) = dpkg_info_stems(&pkg).into_iter().find_map(|stem| {
                        read(&format!("{DPKG_INFO_DIR}/{stem}.list")).map(|l| (stem, l))
                    })?;
                    let sums = read(&format!("{DPKG_INFO_DIR}/{stem}.md5sums"));
                    Some(parse_dpkg_files(pkg, &list, sums.as_deref()))
                })
                .collect()
        }
        Ecosystem::Apk => read(APK_INSTALLED)
            .map(|b| parse_apk_files(&b))
            .unwrap_or_default(),
        // The first database found: an image has one (a converted one may leave the old
        // file behind, which rpm no longer reads either).
        Ecosystem::Rpm => RPM_DATABASES
            .iter()
            .find_map(|db| {
                let bytes = read(db)?;
                let wal = read(&format!("{db}{}", super::rpm::WAL_SUFFIX));
                super::rpm::try_parse_rpmdb(&bytes, wal.as_deref())
            })
            .unwrap_or_default(),
        Ecosystem::Python | Ecosystem::Npm => Vec::new(),
    }
}

/// The package that owns a path, and its digest of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub ecosystem: Ecosystem,
    pub package: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<FileDigest>,
}

/// How a file compares with its package's own digest of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageDigest {
    Match,
    Mismatch,
    /// No owner, no digest recorded, or the file could not be read.
    Unknown,
}

impl PackageDigest {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageDigest::Match => "match",
            PackageDigest::Mismatch => "mismatch",
            PackageDigest::Unknown => "unknown",
        }
    }
}

/// Path → owning package over every database of one root.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    packages: Vec<(Ecosystem, Package)>,
    files: HashMap<Box<str>, (u32, Option<FileDigest>)>,
    truncated: bool,
}

impl OwnerIndex {
    /// Reads every ecosystem's file database through `read` (see [`read_owned_files`]).
    pub fn read(read: &mut dyn FnMut(&str) -> Option<Vec<u8>>) -> OwnerIndex {
        let mut all = Vec::new();
        for eco in [Ecosystem::Dpkg, Ecosystem::Apk, Ecosystem::Rpm] {
            all.extend(read_owned_files(eco, read));
        }
        OwnerIndex::from_packages(all)
    }

    /// Indexes packages in order. A path two packages claim keeps its first owner (dpkg's
    /// own answer for shared directories), unless only a later one records a digest: that
    /// one installed the content.
    pub fn from_packages(pkgs: impl IntoIterator<Item = PackageFiles>) -> OwnerIndex {
        let mut ix = OwnerIndex::default();
        for p in pkgs {
            let Ok(n) = u32::try_from(ix.packages.len()) else {
                ix.truncated = true;
                break;
            };
            for f in p.files {
                if ix.files.len() >= MAX_OWNED_PATHS && !ix.files.contains_key(f.path.as_str()) {
                    ix.truncated = true;
                    break;
                }
                match ix.files.get_mut(f.path.as_str()) {
                    Some(slot) => {
                        if slot.1.is_none() && f.digest.is_some() {
                            *slot = (n, f.digest);
                        }
                    }
                    None => {
                        ix.files.insert(f.path.into_boxed_str(), (n, f.digest));
                    }
                }
            }
            ix.packages.push((p.ecosystem, p.package));
            if ix.truncated {
                break;
            }
        }
        ix
    }

    /// Paths indexed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Some package's files were left out ([`MAX_OWNED_PATHS`]).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The owner of `path` (absolute, symlinks resolved). On merged-`/usr` systems a
    /// package may list `/bin/bash` for what resolves to `/usr/bin/bash`, and the reverse:
    /// the other spelling is tried too.
    pub fn owner(&self, path: &str) -> Option<Owner> {
        let hit = self
            .files
            .get(path)
            .or_else(|| usr_alias(path).and_then(|p| self.files.get(p.as_str())))?;
        let (eco, pkg) = &self.packages[hit.0 as usize];
        Some(Owner {
            ecosystem: *eco,
            package: pkg.name.clone(),
            version: pkg.version.clone(),
            digest: hit.1.clone(),
        })
    }
}

/// `/usr/bin/x` ↔ `/bin/x` (and `sbin`, `lib`, `lib32`, `lib64`, `libx32`): the merged-`/usr`
/// spellings of one file.
fn usr_alias(path: &str) -> Option<String> {
    const DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
    if let Some(rest) = path.strip_prefix("/usr/") {
        let top = rest.split('/').next()?;
        return DIRS.contains(&top).then(|| format!("/{rest}"));
    }
    let top = path.strip_prefix('/')?.split('/').next()?;
    DIRS.contains(&top).then(|| format!("/usr{path}"))
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests read the crate's own fixtures with std::fs"
)]
mod tests {
    use std::path::Path;

    use super::super::{DigestAlgo, OwnedFile};
    use super::*;

    /// Files copied from `driftwatch-test/debian:12`'s `/var/lib/dpkg` (tests/fixtures/dpkg-info).
    fn debian_reader() -> impl FnMut(&str) -> Option<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dpkg-info");
        move |p: &str| {
            let name = p
                .strip_prefix("/var/lib/dpkg/info/")
                .or_else(|| p.strip_prefix("/var/lib/dpkg/"))?;
            std::fs::read(dir.join(name)).ok()
        }
    }

    #[test]
    fn real_dpkg_database_names_owners_and_md5s() {
        let mut read = debian_reader();
        let pkgs = read_owned_files(Ecosystem::Dpkg, &mut read);
        let names: Vec<_> = pkgs.iter().map(|p| p.package.name.as_str()).collect();
        assert_eq!(names, ["bash", "gcc-12-base", "python3.11-minimal"]);
        let ix = OwnerIndex::from_packages(pkgs);
        let py = ix.owner("/usr/bin/python3.11").unwrap();
        assert_eq!(
            (py.ecosystem, py.package.as_str(), py.version.as_str()),
            (Ecosystem::Dpkg, "python3.11-minimal", "3.11.2-6+deb12u8")
        );
        assert_eq!(
            py.digest,
            Some(FileDigest {
                algo: DigestAlgo::Md5,
                hex: "ac2dd2c30f51952d4edc25b205f2ff1b".into()
            })
        );
        // Multi-arch: found through `gcc-12-base:amd64.list`.
        let gcc = ix
            .owner("/usr/share/doc/gcc-12-base/README.Debian.amd64.gz")
            .or_else(|| ix.owner("/usr/share/doc/gcc-12-base"))
            .unwrap();
        assert_eq!(gcc.package, "gcc-12-base");
        // bash lists /bin/bash; on merged /usr the kernel resolves /usr/bin/bash.
        let bash = ix.owner("/usr/bin/bash").unwrap();
        assert_eq!(bash.package, "bash");
        assert_eq!(bash.digest.unwrap().hex, "2a76f5df90ba1375b6e6d825c4a28b2d");
        // A directory is listed (owned) but has no digest; `/` is nobody's.
        assert_eq!(ix.owner("/usr/bin").unwrap().digest, None);
        assert!(ix.owner("/").is_none());
        assert!(ix.owner("/tmp/payload").is_none());
    }

    /// The rpm fixtures (written by rpm, see tests/fixtures/rpm/make.sh): files with rpm's
    /// own digests, from each database format at its path.
    #[test]
    fn rpm_databases_name_owners_and_digests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpm");
        for (fixture, at) in [
            ("image.sqlite", "/var/lib/rpm/rpmdb.sqlite"),
            ("image.Packages", "/var/lib/rpm/Packages"),
            ("image.ndb", "/usr/lib/sysimage/rpm/Packages.db"),
        ] {
            let mut read = |p: &str| (p == at).then(|| std::fs::read(dir.join(fixture)).unwrap());
            let ix = OwnerIndex::read(&mut read);
            let o = ix
                .owner("/usr/bin/hello")
                .unwrap_or_else(|| panic!("{fixture}"));
            assert_eq!(
                (o.ecosystem, o.package.as_str(), o.version.as_str()),
                (Ecosystem::Rpm, "hello", "1.0-1"),
                "{fixture}"
            );
            let d = o.digest.unwrap();
            assert_eq!(d.algo, DigestAlgo::Sha256, "{fixture}");
            assert!(
                d.matches(&b"hello /usr/bin/hello\n"[..]).unwrap(),
                "{fixture}"
            );
            // legacy was built with MD5 file digests.
            let l = ix.owner("/usr/bin/legacy").unwrap().digest.unwrap();
            assert_eq!(l.algo, DigestAlgo::Md5, "{fixture}");
            assert!(
                l.matches(&b"legacy /usr/bin/legacy\n"[..]).unwrap(),
                "{fixture}"
            );
            assert_eq!(
                ix.owner("/usr/share/many/file-300.txt").unwrap().package,
                "many"
            );
        }
    }

    #[test]
    fn digests_match_the_bytes() {
        let d = FileDigest {
            algo: DigestAlgo::Md5,
            hex: "900150983cd24fb0d6963f7d28e17f72".into(),
        };
        assert!(d.matches(&b"abc"[..]).unwrap());
        assert!(!d.matches(&b"abd"[..]).unwrap());
        let s = FileDigest {
            algo: DigestAlgo::Sha1,
            hex: "A9993E364706816ABA3E25717850C26C9CD0D89D".into(),
        };
        assert!(s.matches(&b"abc"[..]).unwrap());
        let s256 = FileDigest {
            algo: DigestAlgo::Sha256,
            hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        };
        assert!(s256.matches(&b"abc"[..]).unwrap());
    }

    #[test]
    fn hostile_dpkg_lists() {
        let pkg = Package {
            name: "evil".into(),
            version: "1".into(),
            arch: None,
        };
        let list = b"/.\n/usr/bin/../../etc/shadow\nrelative/x\n/usr//bin/y\n/usr/./bin/z\n\
/usr/bin/ok\n/usr/bin/ok\n\xff\xfe/bin\n/usr/bin/nul\0x\n\n";
        let sums = b"ac2dd2c30f51952d4edc25b205f2ff1b  usr/bin/ok\n\
zz2dd2c30f51952d4edc25b205f2ff1b  usr/bin/ok\nshort  usr/bin/ok\n\
ac2dd2c30f51952d4edc25b205f2ff1b  ../etc/passwd\n\
ac2dd2c30f51952d4edc25b205f2ff1b  usr/bin/unlisted\n";
        let p = parse_dpkg_files(pkg.clone(), list, Some(sums));
        let paths: Vec<_> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/usr/bin/ok"]);
        assert_eq!(p.files[0].digest.as_ref().unwrap().algo, DigestAlgo::Md5);
        // No md5sums at all (some packages ship none): owned, no digest.
        let p = parse_dpkg_files(pkg, b"/usr/bin/ok\n", None);
        assert_eq!(p.files[0].digest, None);
        // Binary junk: nothing, no panic.
        let junk: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let ix = OwnerIndex::from_packages([parse_dpkg_files(
            Package {
                name: "j".into(),
                version: "1".into(),
                arch: None,
            },
            &junk,
            Some(&junk),
        )]);
        assert!(ix.owner("/usr/bin/ok").is_none());
    }

    fn files(eco: Ecosystem, name: &str, paths: &[(&str, Option<&str>)]) -> PackageFiles {
        PackageFiles {
            ecosystem: eco,
            package: Package {
                name: name.into(),
                version: "1".into(),
                arch: None,
            },
            files: paths
                .iter()
                .map(|(p, d)| OwnedFile {
                    path: (*p).into(),
                    digest: d.map(|h| FileDigest {
                        algo: DigestAlgo::Md5,
                        hex: h.into(),
                    }),
                    mode: None,
                })
                .collect(),
        }
    }

    #[test]
    fn duplicate_owners_keep_the_first_unless_only_a_later_one_has_content() {
        let ix = OwnerIndex::from_packages([
            files(Ecosystem::Dpkg, "a", &[("/x", Some("aa")), ("/d", None)]),
            files(
                Ecosystem::Dpkg,
                "b",
                &[("/x", Some("bb")), ("/d", Some("cc"))],
            ),
        ]);
        assert_eq!(ix.owner("/x").unwrap().package, "a");
        assert_eq!(ix.owner("/d").unwrap().package, "b");
    }

    #[test]
    fn a_huge_database_is_cut_at_the_cap() {
        let many: Vec<String> = (0..MAX_OWNED_PATHS + 10)
            .map(|i| format!("/f{i}"))
            .collect();
        let p = PackageFiles {
            ecosystem: Ecosystem::Apk,
            package: Package {
                name: "big".into(),
                version: "1".into(),
                arch: None,
            },
            files: many
                .iter()
                .map(|p| OwnedFile {
                    path: p.clone(),
                    digest: None,
                    mode: None,
                })
                .collect(),
        };
        let ix = OwnerIndex::from_packages([p, files(Ecosystem::Apk, "late", &[("/late", None)])]);
        assert!(ix.truncated());
        assert_eq!(ix.len(), MAX_OWNED_PATHS);
        assert!(ix.owner("/late").is_none());
    }

    #[test]
    fn usr_merge_spellings() {
        assert_eq!(usr_alias("/usr/bin/x").as_deref(), Some("/bin/x"));
        assert_eq!(
            usr_alias("/lib64/ld.so").as_deref(),
            Some("/usr/lib64/ld.so")
        );
        assert_eq!(usr_alias("/usr/share/x"), None);
        assert_eq!(usr_alias("/etc/x"), None);
    }
}
