//! The exact bytes of an event's file names that are not UTF-8. The event's strings hold such
//! a name with U+FFFD (rules match strings); the alerts the event raises carry its bytes in
//! the `<field>_b64` siblings of the fields that show it (docs/outputs.md, "Names in JSON").

use driftwatch_model::Alert;
use driftwatch_model::name::JsonName;

/// Fields whose value is the event's path (`fs.path.target*` for a rename or symlink).
const PATH_FIELDS: [&str; 7] = [
    "fd.name",
    "fd.nameraw",
    "fs.path.name",
    "fs.path.nameraw",
    "fs.path.target",
    "fs.path.targetraw",
    "drift.path",
];

/// Fields whose value is the old path of a rename or the target of a symbolic link.
const SOURCE_FIELDS: [&str; 3] = ["fs.path.source", "fs.path.sourceraw", "fd.oldname"];

/// The raw names of one file event, kept only when one of them is not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawNames {
    path: Vec<u8>,
    /// A rename's old path or a symbolic link's target.
    source: Option<Vec<u8>>,
}

impl RawNames {
    /// `None` when every name is UTF-8: the alert's strings are exact then.
    pub fn of(path: &[u8], source: Option<&[u8]>) -> Option<RawNames> {
        let utf8 = |b: &[u8]| std::str::from_utf8(b).is_ok();
        if utf8(path) && source.is_none_or(utf8) {
            return None;
        }
        Some(RawNames {
            path: path.to_vec(),
            source: source.map(<[u8]>::to_vec),
        })
    }

    /// Adds `<field>_b64` beside each field of the alert that shows one of the names. A field
    /// whose string is not that name's display form (a rule's own value) is left alone.
    pub fn annotate(&self, alert: &mut Alert) {
        let (dir, base) = match self.path.iter().rposition(|&b| b == b'/') {
            Some(0) => (&self.path[..1], &self.path[1..]),
            Some(i) => (&self.path[..i], &self.path[i + 1..]),
            None => (&self.path[..0], &self.path[..]),
        };
        let mut names: Vec<(&str, &[u8])> =
            PATH_FIELDS.iter().map(|f| (*f, &self.path[..])).collect();
        names.push(("fd.directory", dir));
        names.push(("fd.filename", base));
        if let Some(source) = &self.source {
            names.extend(SOURCE_FIELDS.iter().map(|f| (*f, &source[..])));
        }
        for (field, bytes) in names {
            let name = JsonName::new(bytes);
            if alert.output_fields.get(field).and_then(|v| v.as_str()) == Some(&name.display()) {
                name.insert_into(&mut alert.output_fields, field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use driftwatch_model::Priority;
    use serde_json::json;

    use super::*;

    fn alert(fields: serde_json::Value) -> Alert {
        Alert::internal(
            "h",
            "r",
            Priority::Warning,
            "o".into(),
            Vec::new(),
            serde_json::from_value(fields).unwrap(),
        )
    }

    #[test]
    fn utf8_names_need_nothing() {
        assert_eq!(RawNames::of(b"/etc/we ird\nname", Some(b"/etc/a\tb")), None);
    }

    #[test]
    fn fields_showing_a_name_that_is_not_utf8_get_its_bytes() {
        let raw = RawNames::of(b"/etc/\xff\xfe.bin", Some(b"/tmp/\x80")).unwrap();
        let mut a = alert(json!({
            "fd.name": "/etc/\u{FFFD}\u{FFFD}.bin",
            "drift.path": "/etc/\u{FFFD}\u{FFFD}.bin",
            "fd.directory": "/etc",
            "fd.filename": "\u{FFFD}\u{FFFD}.bin",
            "fs.path.source": "/tmp/\u{FFFD}",
            "proc.exepath": "/tmp/\u{FFFD}",
            "fs.path.name": "something else",
        }));
        raw.annotate(&mut a);
        let v = serde_json::to_value(&a.output_fields).unwrap();
        let decode = |f| driftwatch_model::name::decode_name(&v, f).unwrap();
        assert_eq!(decode("fd.name"), b"/etc/\xff\xfe.bin");
        assert_eq!(decode("drift.path"), b"/etc/\xff\xfe.bin");
        assert_eq!(decode("fd.filename"), b"\xff\xfe.bin");
        assert_eq!(decode("fs.path.source"), b"/tmp/\x80");
        // UTF-8 already, another process's name, a value that is not the name: untouched.
        for f in ["fd.directory_b64", "proc.exepath_b64", "fs.path.name_b64"] {
            assert!(v.get(f).is_none(), "{f} in {v}");
        }
    }
}
