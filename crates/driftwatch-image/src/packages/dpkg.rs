//! dpkg's `/var/lib/dpkg/status`: the installed Debian packages, and the files each owns
//! (`info/PKG.list`, `info/PKG.md5sums`; multi-arch packages as `PKG:ARCH.list`).

use super::{
    DigestAlgo, Ecosystem, FileDigest, OwnedFile, Package, PackageFiles, field, owned_path,
    package_name, stanzas, text,
};

/// Packages present on the system: every stanza whose `Status` is not `not-installed` or
/// `config-files` (removed, configuration left behind). A stanza without a `Package` name is
/// skipped.
pub fn parse_dpkg_status(bytes: &[u8]) -> Vec<Package> {
    stanzas(bytes, b':')
        .filter_map(|s| {
            let name = package_name(text(field(&s, b"Package")?))?;
            let status = field(&s, b"Status").unwrap_or_default();
            let state = status.split(|b| *b == b' ').rfind(|w| !w.is_empty());
            if matches!(state, Some(b"not-installed" | b"config-files")) {
                return None;
            }
            Some(Package {
                name,
                version: text(field(&s, b"Version").unwrap_or_default()),
                arch: field(&s, b"Architecture").map(text),
            })
        })
        .collect()
}

/// Where dpkg keeps the file lists of installed packages.
pub const DPKG_INFO_DIR: &str = "/var/lib/dpkg/info";

/// The names dpkg may have given `pkg`'s `info` files, most specific first: `NAME:ARCH`
/// (multi-arch `same` packages, and every package of a dpkg that converted its database),
/// then `NAME`.
pub fn dpkg_info_stems(pkg: &Package) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    if let Some(arch) = pkg.arch.as_deref().filter(|a| !a.is_empty()) {
        out.push(format!("{}:{arch}", pkg.name));
    }
    out.push(pkg.name.clone());
    out
}

/// The files `pkg` owns, from its `.list` (one absolute path a line, directories included)
/// and its `.md5sums` (`HEX  relative/path`, when the package ships one). Lines that are not
/// a clean absolute path (`..`, `.`, empty components, not UTF-8) are skipped: a container
/// can write this database, and its claims must not name files outside the listed tree.
/// A digest for a path the list does not have is ignored.
pub fn parse_dpkg_files(pkg: Package, list: &[u8], md5sums: Option<&[u8]>) -> PackageFiles {
    let mut digests = std::collections::HashMap::new();
    for line in md5sums.unwrap_or_default().split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(sp) = line.iter().position(|b| *b == b' ') else {
            continue;
        };
        let (hex, rest) = line.split_at(sp);
        if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
            continue;
        }
        let rel = rest.trim_ascii_start();
        let mut abs = Vec::with_capacity(rel.len() + 1);
        if rel.first() != Some(&b'/') {
            abs.push(b'/');
        }
        abs.extend_from_slice(rel);
        if let Some(path) = owned_path(&abs) {
            digests.entry(path).or_insert_with(|| FileDigest {
                algo: DigestAlgo::Md5,
                hex: text(hex).to_ascii_lowercase(),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    let files = list
        .split(|b| *b == b'\n')
        .filter_map(|line| owned_path(line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|p| seen.insert(p.clone()))
        .map(|path| OwnedFile {
            digest: digests.remove(&path),
            path,
            mode: None,
        })
        .collect();
    PackageFiles {
        ecosystem: Ecosystem::Dpkg,
        package: pkg,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_packages_only() {
        let status = b"Package: bash\nStatus: install ok installed\nPriority: required\n\
Architecture: amd64\nVersion: 5.2.15-2+b2\nDescription: GNU Bourne Again SHell\n \
Bash is an sh-compatible command language interpreter.\n .\n more\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
Package: libc6\r\nStatus: install ok installed\r\nArchitecture: i386\r\nVersion: 2.36-9\r\n";
        let p = parse_dpkg_status(status);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].version.as_str(),
                p[0].arch.as_deref()
            ),
            ("bash", "5.2.15-2+b2", Some("amd64"))
        );
        assert_eq!(
            (p[1].name.as_str(), p[1].arch.as_deref()),
            ("libc6", Some("i386"))
        );
        assert!(parse_dpkg_status(b"").is_empty());
        assert!(parse_dpkg_status(b"\xff\xfe garbage\n\n:\n").is_empty());
    }

    /// Like apk's fuzz finding: `Package:` with an empty value is not a package named "".
    #[test]
    fn a_stanza_with_an_empty_name_is_skipped() {
        let status = b"Package:\nStatus: install ok installed\nVersion: 1\n\n\
Package: bash\nStatus: install ok installed\nVersion: 5.2\n";
        let p = parse_dpkg_status(status);
        let got: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(got, ["bash"]);
    }
}
