//! tar-split's JSON lines (github.com/vbatts/tar-split, `tar/storage`): the tar stream of a
//! layer as segments (headers, padding, the end blocks: raw bytes) and file entries (a
//! path, its payload's size and crc64-ISO). Segments and file contents concatenated in order
//! are the layer's tar, whose sha256 is its diff id.

use std::io::{BufRead, Read};

use base64::Engine as _;
use serde::Deserialize;

/// Go's `crc64.MakeTable(crc64.ISO)` as tar-split uses it.
pub const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Raw bytes of the stream.
    Segment(Vec<u8>),
    /// A file's payload comes from disk here: `size` bytes whose crc64 is `crc` (absent
    /// for entries without payload: directories, links, devices).
    File {
        name: String,
        size: u64,
        crc: Option<u64>,
    },
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

/// A bad line of a tar-split file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct TarSplitError {
    pub line: usize,
    pub message: String,
}

/// The longest line accepted: an entry is a tar header block set (PAX headers included) or
/// a name, far below this.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// Iterates the entries of decompressed tar-split text, each with its line number.
pub struct Entries<R> {
    reader: R,
    line: usize,
    buf: String,
    /// A line was too long: the rest of the stream cannot be split into lines.
    ended: bool,
}

impl<R: BufRead> Entries<R> {
    pub fn new(reader: R) -> Self {
        Entries {
            reader,
            line: 0,
            buf: String::new(),
            ended: false,
        }
    }
}

fn decode_line(line: usize, text: &str) -> Result<Entry, TarSplitError> {
    let bad = |message: String| TarSplitError { line, message };
    // tar-split writes one JSON object per line; serde would also read a struct from an
    // array (`[1,"name"]`), which no tar-split file holds: refuse it.
    if text.starts_with('[') {
        return Err(bad("a JSON array, not an entry object".into()));
    }
    let raw: RawEntry =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| bad(format!("invalid base64 payload ({e})")))
    };
    match raw.kind {
        2 => Ok(Entry::Segment(match raw.payload {
            Some(p) => b64(&p)?,
            None => Vec::new(),
        })),
        1 => {
            let name = match (raw.name, raw.name_raw) {
                (Some(n), _) => n,
                (None, Some(r)) => String::from_utf8_lossy(&b64(&r)?).into_owned(),
                (None, None) => return Err(bad("file entry without a name".into())),
            };
            let size = u64::try_from(raw.size.unwrap_or(0))
                .map_err(|_| bad(format!("negative size for {name}")))?;
            let crc = match raw.payload {
                Some(p) => {
                    let bytes = b64(&p)?;
                    let arr: [u8; 8] = bytes
                        .try_into()
                        .map_err(|_| bad(format!("crc64 of {name} is not 8 bytes")))?;
                    Some(u64::from_be_bytes(arr))
                }
                None => None,
            };
            Ok(Entry::File { name, size, crc })
        }
        k => Err(bad(format!("unknown entry type {k}"))),
    }
}

impl<R: BufRead> Iterator for Entries<R> {
    type Item = Result<(usize, Entry), TarSplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ended {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            // `take`: a line without an end (a corrupt or forged file) must not grow the
            // buffer without bound.
            match (&mut self.reader)
                .take(MAX_LINE_BYTES + 1)
                .read_line(&mut self.buf)
            {
                Ok(0) => return None,
                Ok(n) if n as u64 > MAX_LINE_BYTES => {
                    self.ended = true;
                    self.buf = String::new();
                    return Some(Err(TarSplitError {
                        line: self.line,
                        message: format!("line longer than {MAX_LINE_BYTES} bytes"),
                    }));
                }
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(TarSplitError {
                        line: self.line,
                        message: format!("read: {e}"),
                    }));
                }
            }
            let t = self.buf.trim();
            if t.is_empty() {
                continue;
            }
            return Some(decode_line(self.line, t).map(|e| (self.line, e)));
        }
    }
}

/// A path of a tar entry relative to the layer root: `./etc/group` → `etc/group`,
/// `./etc/` → `etc`, `./` → ``.
pub fn relative_name(name: &str) -> &str {
    let n = name.strip_prefix("./").unwrap_or(name);
    n.trim_start_matches('/').trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_go_iso() {
        // busybox's /etc/group ("root:x:0:\n" is 10 bytes) as Docker recorded it:
        // {"type":1,"name":"./etc/group","size":10,"payload":"R0Bb3FNcWGw=",...}
        let bytes = base64::engine::general_purpose::STANDARD
            .decode("R0Bb3FNcWGw=")
            .unwrap();
        let recorded = u64::from_be_bytes(bytes.try_into().unwrap());
        // The check value of CRC-64/GO-ISO.
        assert_eq!(CRC64.checksum(b"123456789"), 0xb909_56c7_75a4_1001);
        assert_eq!(CRC64.checksum(b"root:x:0:\n"), recorded);
    }

    #[test]
    fn entries_and_bad_lines() {
        let text = "{\"type\":2,\"payload\":\"aGk=\",\"position\":0}\n\n\
            {\"type\":1,\"name\":\"./etc/\",\"payload\":null,\"position\":1}\n\
            {\"type\":1,\"name_raw\":\"eA==\",\"size\":3,\"payload\":\"AAAAAAAAAAE=\",\"position\":2}\n\
            {\"type\":1,\"size\":1}\n{\"type\":9}\nnot json\n\
            {\"type\":1,\"name\":\"a\",\"size\":1,\"payload\":\"AAE=\"}\n";
        let got: Vec<_> = Entries::new(text.as_bytes()).collect();
        assert_eq!(got[0], Ok((1, Entry::Segment(b"hi".to_vec()))));
        assert_eq!(
            got[1],
            Ok((
                3,
                Entry::File {
                    name: "./etc/".into(),
                    size: 0,
                    crc: None
                }
            ))
        );
        assert_eq!(
            got[2],
            Ok((
                4,
                Entry::File {
                    name: "x".into(),
                    size: 3,
                    crc: Some(1)
                }
            ))
        );
        let errs: Vec<String> = got[3..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(errs[0], "line 5: file entry without a name");
        assert_eq!(errs[1], "line 6: unknown entry type 9");
        assert!(errs[2].starts_with("line 7: invalid JSON"), "{}", errs[2]);
        assert_eq!(errs[3], "line 8: crc64 of a is not 8 bytes");
        assert_eq!(relative_name("./etc/"), "etc");
        assert_eq!(relative_name("./"), "");
        assert_eq!(relative_name("usr/bin/x"), "usr/bin/x");
    }

    /// A line without an end (an endless stream of one byte) is an error after
    /// MAX_LINE_BYTES, and the iteration ends: memory stays bounded.
    #[test]
    fn an_endless_line_is_capped() {
        let endless = std::io::BufReader::new(std::io::repeat(b'a'));
        let got: Vec<_> = Entries::new(endless).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].as_ref().unwrap_err().to_string(),
            "line 1: line longer than 16777216 bytes"
        );
    }

    /// Fuzz finding (tar_split): `\r[1," a \/"]` was read as a file entry named " a /"
    /// (serde reads a struct from a JSON array too), whose relative name " a " is not a
    /// suffix of the name (trailing '/' trimmed), which the harness asserted. tar-split
    /// writes one JSON object per line: an array is now an error on its line.
    #[test]
    fn a_line_that_is_not_a_json_object_is_an_error() {
        let text = "\r[1,\" a \\/\"]\n{\"type\":1,\"name\":\" a /\"}\n";
        let got: Vec<_> = Entries::new(text.as_bytes()).collect();
        assert_eq!(
            got[0].as_ref().unwrap_err().to_string(),
            "line 1: a JSON array, not an entry object"
        );
        assert_eq!(
            got[1],
            Ok((
                2,
                Entry::File {
                    name: " a /".into(),
                    size: 0,
                    crc: None
                }
            ))
        );
        assert_eq!(relative_name(" a /"), " a ");
    }
}
