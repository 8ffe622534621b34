//! apk's `/lib/apk/db/installed`: the installed Alpine packages.

use super::{Package, field, stanzas, text};

/// One package per stanza: `P:` name, `V:` version, `A:` architecture.
pub fn parse_apk_installed(bytes: &[u8]) -> Vec<Package> {
    stanzas(bytes, b':')
        .filter_map(|s| {
            let name = field(&s, b"P")?;
            Some(Package {
                name: text(name),
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
}
