//! npm packages: `node_modules/**/package.json`.

use super::{Package, package_name};

/// `name` and `version` of an installed package's `package.json`; `None` when either is
/// missing (nested `package.json` files that only set `"type"`) or the JSON is invalid.
pub fn parse_npm_package_json(bytes: &[u8]) -> Option<Package> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        name: Option<String>,
        version: Option<String>,
    }
    let m: Manifest = serde_json::from_slice(bytes).ok()?;
    Some(Package {
        name: package_name(m.name?)?,
        version: m.version?,
        arch: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_version() {
        let p =
            parse_npm_package_json(br#"{"name":"left-pad","version":"1.3.0","x":[1]}"#).unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("left-pad", "1.3.0"));
        assert!(parse_npm_package_json(br#"{"type":"module"}"#).is_none());
        assert!(parse_npm_package_json(b"{not json").is_none());
    }

    /// Like apk's fuzz finding: `"name": ""` is no package.
    #[test]
    fn an_empty_name_is_no_package() {
        assert!(parse_npm_package_json(br#"{"name":"","version":"1.0.0"}"#).is_none());
        assert!(parse_npm_package_json(br#"{"name":" ","version":"1.0.0"}"#).is_none());
    }
}
