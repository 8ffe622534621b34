//! Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` headers.

use super::{Package, field, package_name, stanzas, text};

/// `Name` and `Version` from the metadata headers (the body after the blank line is ignored).
pub fn parse_python_metadata(bytes: &[u8]) -> Option<Package> {
    let headers = stanzas(bytes, b':').next()?;
    let name = package_name(text(field(&headers, b"Name")?))?;
    // A name of separators only (`Name: -._`) normalises to "": no distribution is named so.
    if normalize_python_name(&name).is_empty() {
        return None;
    }
    Some(Package {
        name,
        version: text(field(&headers, b"Version").unwrap_or_default()),
        arch: None,
    })
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers() {
        let m = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\n\n\
Name: not-this\n";
        let p = parse_python_metadata(m).unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("requests", "2.31.0")
        );
        assert!(parse_python_metadata(b"Summary: no name\n").is_none());
        assert_eq!(
            normalize_python_name("Zope.Interface__x"),
            "zope-interface-x"
        );
    }

    /// Like apk's fuzz finding: an empty `Name:`, or one of separators only (which
    /// normalises to ""), is no distribution.
    #[test]
    fn an_empty_name_is_no_distribution() {
        assert!(parse_python_metadata(b"Name:\nVersion: 1.0\n").is_none());
        assert!(parse_python_metadata(b"Name: -._\nVersion: 1.0\n").is_none());
        assert!(parse_python_metadata(b"Name: a\nVersion: 1.0\n").is_some());
    }
}
