//! apk's `/lib/apk/db/installed`: the installed Alpine packages and the files each owns.

use base64::Engine as _;

use super::{
    DigestAlgo, Ecosystem, FileDigest, OwnedFile, Package, PackageFiles, field, owned_path,
    package_name, stanzas, text,
};

/// One package per stanza: `P:` name, `V:` version, `A:` architecture. A stanza without a
/// name is skipped.
pub fn parse_apk_installed(bytes: &[u8]) -> Vec<Package> {
    stanzas(bytes, b':')
        .filter_map(|s| {
            let name = package_name(text(field(&s, b"P")?))?;
            Some(Package {
                name,
                version: text(field(&s, b"V").unwrap_or_default()),
                arch: field(&s, b"A").map(text),
            })
        })
        .collect()
}

/// Every package with its files: `F:` names a directory (relative to `/`), each `R:` after
/// it a file in that directory, and a `Z:` right after an `R:` the file's digest (`Q1` and
/// the base64 of its SHA-1; other prefixes are not digests we know and are ignored). A file
/// before any `F:`, or whose path is not clean (`..`, `/` in the name), is skipped.
pub fn parse_apk_files(bytes: &[u8]) -> Vec<PackageFiles> {
    stanzas(bytes, b':')
        .filter_map(|s| {
            let name = package_name(text(field(&s, b"P")?))?;
            let package = Package {
                name,
                version: text(field(&s, b"V").unwrap_or_default()),
                arch: field(&s, b"A").map(text),
            };
            let mut files: Vec<OwnedFile> = Vec::new();
            let mut dir: Option<Vec<u8>> = None;
            let mut last_was_file = false;
            for (k, v) in &s {
                match *k {
                    b"F" => {
                        dir = Some(v.to_vec());
                        last_was_file = false;
                    }
                    b"R" => {
                        last_was_file = false;
                        let Some(d) = dir.as_deref() else { continue };
                        if v.is_empty() || v.contains(&b'/') {
                            continue;
                        }
                        let mut abs = Vec::with_capacity(d.len() + v.len() + 2);
                        abs.push(b'/');
                        abs.extend_from_slice(d);
                        if !d.is_empty() {
                            abs.push(b'/');
                        }
                        abs.extend_from_slice(v);
                        if let Some(path) = owned_path(&abs) {
                            files.push(OwnedFile {
                                path,
                                digest: None,
                                mode: None,
                            });
                            last_was_file = true;
                        }
                    }
                    b"Z" if last_was_file => {
                        if let Some(f) = files.last_mut() {
                            f.digest = apk_digest(v);
                        }
                        last_was_file = false;
                    }
                    _ => {}
                }
            }
            Some(PackageFiles {
                ecosystem: Ecosystem::Apk,
                package,
                files,
            })
        })
        .collect()
}

/// `Q1<base64 of the SHA-1>` as hex.
fn apk_digest(v: &[u8]) -> Option<FileDigest> {
    let b64 = v.strip_prefix(b"Q1")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (raw.len() == 20).then(|| FileDigest {
        algo: DigestAlgo::Sha1,
        hex: raw.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_by_stanza() {
        let db = b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\n";
        let p = parse_apk_installed(db);
        let got: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got, [("musl", "1.2.4-r2"), ("busybox", "1.36.1-r5")]);
    }

    /// Fuzz finding (package_db, apk): a stanza whose `P:` is empty was returned as a
    /// package named "". It is skipped; the stanzas around it still count.
    #[test]
    fn a_stanza_with_an_empty_name_is_skipped() {
        let db = b"P:\nV:1.0\n\nP:musl\nV:1.2.4-r2\n\nP:   \n\ny:\0\n";
        let p = parse_apk_installed(db);
        let got: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(got, ["musl"]);
    }

    /// The layout `apk add` writes (busybox and a script package), with digests of known
    /// bytes: each `Z:` belongs to the `R:` before it, in the `F:` directory before that.
    #[test]
    fn files_and_sha1_digests() {
        let db = b"C:Q1abc=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nS:500\nF:bin\nR:busybox\n\
a:0:0:755\nZ:Q1dmimoFh19a6GJ5qhb4KiKYPJvig=\nR:sh\na:0:0:777\nZ:Q1SHd3/ccUBIXMi2PKZ5yNd2G4pDA=\n\
F:etc\nF:etc/busybox-paths.d\nR:busybox\n\n\
P:hello\nV:1-r0\nF:usr/bin\nR:hello\nZ:Q1srYsEBoVb18S3XGXz3rpQkFksRU=\nR:../evil\nR:x/y\n\
Z:Q1srYsEBoVb18S3XGXz3rpQkFksRU=\nR:nodigest\nZ:X1junk\n";
        let p = parse_apk_files(db);
        let got: Vec<Vec<(&str, Option<&str>)>> = p
            .iter()
            .map(|p| {
                p.files
                    .iter()
                    .map(|f| (f.path.as_str(), f.digest.as_ref().map(|d| d.hex.as_str())))
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            [
                vec![
                    (
                        "/bin/busybox",
                        Some("7668a6a05875f5ae86279aa16f82a22983c9be28")
                    ),
                    ("/bin/sh", Some("487777fdc7140485cc8b63ca679c8d7761b8a430")),
                    ("/etc/busybox-paths.d/busybox", None),
                ],
                vec![
                    (
                        "/usr/bin/hello",
                        Some("b2b62c101a156f5f12dd7197cf7ae9424164b115")
                    ),
                    ("/usr/bin/nodigest", None),
                ],
            ]
        );
        let d = p[1].files[0].digest.clone().unwrap();
        assert!(d.matches(&b"#!/bin/sh\necho hi\n"[..]).unwrap());
        assert_eq!(
            (p[1].package.name.as_str(), p[1].package.version.as_str()),
            ("hello", "1-r0")
        );
        assert!(parse_apk_files(b"\xff\0\nF:..\nR:x\n").is_empty());
    }
}
