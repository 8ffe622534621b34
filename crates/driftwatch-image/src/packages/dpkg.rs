//! dpkg's `/var/lib/dpkg/status`: the installed Debian packages.

use super::{Package, field, package_name, stanzas, text};

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
