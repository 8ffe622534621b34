//! Names taken from containers (paths, link targets) as every JSON driftwatch writes carries
//! them: the real name as a JSON string, and for a name that is not UTF-8 also its bytes in
//! standard base64 in a sibling field `<field>_b64`, so one form round-trips everywhere.
//!
//! JSON escapes control characters itself; text meant for a terminal or a log escapes them
//! separately (`driftwatch_fs::escape`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::ser::{SerializeMap, Serializer};

/// What follows a field's name in the name of its base64 sibling.
pub const B64_SUFFIX: &str = "_b64";

/// A name from a container, borrowed as raw bytes, as JSON carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonName<'a>(&'a [u8]);

impl<'a> JsonName<'a> {
    pub fn new(bytes: &'a [u8]) -> JsonName<'a> {
        JsonName(bytes)
    }

    /// The string of the usual field: the name itself when it is UTF-8, else with each
    /// invalid sequence replaced by U+FFFD.
    pub fn display(self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.0)
    }

    /// The bytes in standard base64, only for a name that is not UTF-8 (the display string
    /// is exact otherwise).
    pub fn b64(self) -> Option<String> {
        std::str::from_utf8(self.0)
            .is_err()
            .then(|| STANDARD.encode(self.0))
    }

    /// Writes `field` and, for a name that is not UTF-8, `field_b64` into a map being
    /// serialized.
    pub fn serialize_entries<M: SerializeMap>(
        self,
        map: &mut M,
        field: &str,
    ) -> Result<(), M::Error> {
        map.serialize_entry(field, &self.display())?;
        if let Some(b) = self.b64() {
            map.serialize_entry(&b64_field(field), &b)?;
        }
        Ok(())
    }

    /// Sets `field` and, for a name that is not UTF-8, `field_b64` in a JSON object (an
    /// alert's `output_fields`); a stale `field_b64` goes.
    pub fn insert_into(self, fields: &mut BTreeMap<String, serde_json::Value>, field: &str) {
        fields.insert(field.to_string(), self.display().into_owned().into());
        match self.b64() {
            Some(b) => fields.insert(b64_field(field), b.into()),
            None => fields.remove(&b64_field(field)),
        };
    }
}

/// The name of `field`'s base64 sibling.
pub fn b64_field(field: &str) -> String {
    format!("{field}{B64_SUFFIX}")
}

/// Something that may hold a name's bytes: a path type, or an `Option` or reference of one.
pub trait NameBytes {
    fn name_bytes(&self) -> Option<&[u8]>;
}

impl NameBytes for [u8] {
    fn name_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl NameBytes for Vec<u8> {
    fn name_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl NameBytes for std::path::Path {
    fn name_bytes(&self) -> Option<&[u8]> {
        use std::os::unix::ffi::OsStrExt as _;
        Some(self.as_os_str().as_bytes())
    }
}

impl NameBytes for std::path::PathBuf {
    fn name_bytes(&self) -> Option<&[u8]> {
        self.as_path().name_bytes()
    }
}

impl<T: NameBytes + ?Sized> NameBytes for &T {
    fn name_bytes(&self) -> Option<&[u8]> {
        (**self).name_bytes()
    }
}

impl<T: NameBytes> NameBytes for Option<T> {
    fn name_bytes(&self) -> Option<&[u8]> {
        self.as_ref().and_then(NameBytes::name_bytes)
    }
}

/// Serializes a name as the entries `field` (and `field_b64` when needed) of the enclosing
/// struct: for a struct field marked `#[serde(flatten, serialize_with = "...")]`, whose
/// function passes its field's name. `None` writes nothing.
pub fn serialize_flat<S: Serializer, N: NameBytes + ?Sized>(
    field: &str,
    name: &N,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    if let Some(n) = name.name_bytes() {
        JsonName::new(n).serialize_entries(&mut map, field)?;
    }
    map.end()
}

/// Why a name could not be read back from JSON.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameDecodeError {
    #[error("{field}: missing or not a string")]
    Missing { field: String },
    #[error("{field}: not standard base64: {reason}")]
    BadBase64 { field: String, reason: String },
}

/// The exact bytes of the name in `object[field]`: from `field_b64` when present, else the
/// string's UTF-8. The inverse of [`JsonName::serialize_entries`] and
/// [`JsonName::insert_into`].
pub fn decode_name(object: &serde_json::Value, field: &str) -> Result<Vec<u8>, NameDecodeError> {
    let sibling = b64_field(field);
    if let Some(b) = object.get(&sibling).and_then(|v| v.as_str()) {
        return STANDARD.decode(b).map_err(|e| NameDecodeError::BadBase64 {
            field: sibling,
            reason: e.to_string(),
        });
    }
    object
        .get(field)
        .and_then(|v| v.as_str())
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| NameDecodeError::Missing {
            field: field.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    #[derive(Serialize)]
    struct Entry {
        #[serde(flatten, serialize_with = "ser_path")]
        path: Vec<u8>,
        #[serde(flatten, serialize_with = "ser_target")]
        target: Option<Vec<u8>>,
        size: u64,
    }

    fn ser_path<S: Serializer>(p: &[u8], s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("path", p, s)
    }

    fn ser_target<S: Serializer>(p: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        serialize_flat("target", p, s)
    }

    fn round_trip(name: &[u8]) -> serde_json::Value {
        let v = serde_json::to_value(Entry {
            path: name.to_vec(),
            target: None,
            size: 1,
        })
        .unwrap();
        assert_eq!(decode_name(&v, "path").unwrap(), name, "{v}");
        v
    }

    #[test]
    fn utf8_names_are_the_json_string_itself() {
        for name in [
            "/tmp/we ird\nname",
            "/tmp/tab\there",
            "/tmp/quote\"back\\slash",
            "/tmp/esc\u{1b}[31mred",
            "/tmp/\u{1F600}.txt",
            "/tmp/nul\u{7f}del",
        ] {
            let v = round_trip(name.as_bytes());
            assert_eq!(v, json!({"path": name, "size": 1}));
            let text = serde_json::to_string(&v).unwrap();
            // JSON escapes U+0000..U+001F; DEL and C1 controls are plain characters to it.
            assert!(!text.chars().any(|c| c < ' '), "{text:?}");
        }
        let text = serde_json::to_string(&round_trip(b"/a\nb\"c\\d")).unwrap();
        assert_eq!(text, r#"{"path":"/a\nb\"c\\d","size":1}"#);
    }

    #[test]
    fn names_that_are_not_utf8_carry_their_bytes_in_base64() {
        let v = round_trip(b"/tmp/\xff\xfe.bin");
        assert_eq!(
            v,
            json!({"path": "/tmp/\u{FFFD}\u{FFFD}.bin", "path_b64": "L3RtcC///i5iaW4=", "size": 1})
        );
        // A lone continuation byte, a truncated sequence, an overlong encoding.
        for name in [
            &b"/x\x80y"[..],
            b"/x\xe2\x82",
            b"/\xc0\xaf",
            b"\xed\xa0\x80",
        ] {
            let v = round_trip(name);
            assert!(v["path"].as_str().unwrap().contains('\u{FFFD}'), "{v}");
            assert!(v.get("path_b64").is_some(), "{v}");
        }
    }

    #[test]
    fn absent_names_write_no_field_and_siblings_follow_their_field() {
        let v = serde_json::to_value(Entry {
            path: b"/ok".to_vec(),
            target: Some(b"../\xff".to_vec()),
            size: 2,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"path": "/ok", "target": "../\u{FFFD}", "target_b64": "Li4v/w==", "size": 2})
        );
        assert_eq!(decode_name(&v, "target").unwrap(), b"../\xff");
        assert_eq!(
            decode_name(&v, "nothing"),
            Err(NameDecodeError::Missing {
                field: "nothing".into()
            })
        );
        let bad = json!({"path": "x", "path_b64": "not base64!"});
        assert!(matches!(
            decode_name(&bad, "path"),
            Err(NameDecodeError::BadBase64 { .. })
        ));
    }

    #[test]
    fn inserting_into_output_fields_sets_and_clears_the_sibling() {
        let mut fields = BTreeMap::new();
        JsonName::new(b"/etc/\xff").insert_into(&mut fields, "fd.name");
        assert_eq!(fields["fd.name"], "/etc/\u{FFFD}");
        assert_eq!(fields["fd.name_b64"], "L2V0Yy//");
        JsonName::new(b"/etc/ok\n").insert_into(&mut fields, "fd.name");
        assert_eq!(fields["fd.name"], "/etc/ok\n");
        assert!(!fields.contains_key("fd.name_b64"));
        let v = serde_json::to_value(&fields).unwrap();
        assert_eq!(decode_name(&v, "fd.name").unwrap(), b"/etc/ok\n");
    }
}
