//! apk's `/lib/apk/db/installed`: the installed Alpine packages.

use super::{Package, field, package_name, stanzas, text};

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
}
