//! One rpm header blob as the package databases store it (index entries, then the data
//! store): the package's name, version and files. Every offset and count is checked against
//! the blob, so a damaged or hostile header yields fewer fields, never a panic.

use super::super::{DigestAlgo, FileDigest, OwnedFile, Package, PackageFiles, package_name};
use super::Ecosystem;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_OLDFILENAMES: u32 = 1027;
const TAG_FILEMODES: u32 = 1030;
/// `RPMTAG_FILEDIGESTS`, once `FILEMD5S`: hex digests, "" for what is not a regular file.
const TAG_FILEDIGESTS: u32 = 1035;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TAG_FILEDIGESTALGO: u32 = 5011;

const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Linux's `PATH_MAX`: a longer file name cannot be a file the container has.
const MAX_PATH: usize = 4096;

/// The bytes of file names one header may produce, as a multiple of the blob's length.
/// Names are directory + base name, and a directory is stored once for many files: a real
/// header expands about 2x; a hostile one pointing a million files at one long directory
/// would otherwise turn kilobytes into gigabytes.
const NAME_EXPANSION: usize = 16;

struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
}

/// A parsed view of one header blob.
struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

impl<'a> Header<'a> {
    /// `il` (entry count) and `dl` (data length), both big-endian, the entries, the data.
    fn parse(blob: &'a [u8]) -> Option<Self> {
        let il = be32(blob, 0)? as usize;
        let dl = be32(blob, 4)? as usize;
        let index_len = il.checked_mul(16)?;
        let index = blob.get(8..8usize.checked_add(index_len)?)?;
        let start = 8 + index_len;
        let data = blob.get(start..start.checked_add(dl)?)?;
        let entries = index
            .chunks_exact(16)
            .filter_map(|e| {
                Some(Entry {
                    tag: be32(e, 0)?,
                    kind: be32(e, 4)?,
                    offset: be32(e, 8)? as usize,
                    count: be32(e, 12)? as usize,
                })
            })
            .collect();
        Some(Header { entries, data })
    }

    /// The first entry with this tag: an installed header repeats no tag that matters here.
    fn entry(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    fn string(&self, tag: u32) -> Option<&'a [u8]> {
        let e = self.entry(tag)?;
        if !matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) {
            return None;
        }
        cstr(self.data.get(e.offset..)?)
    }

    fn strings(&self, tag: u32) -> Option<Vec<&'a [u8]>> {
        let e = self.entry(tag)?;
        if e.kind != TYPE_STRING_ARRAY && e.kind != TYPE_I18NSTRING {
            return None;
        }
        let mut rest = self.data.get(e.offset..)?;
        // Each string takes at least its NUL: a count above the bytes left is a lie.
        if e.count > rest.len() {
            return None;
        }
        let mut out = Vec::with_capacity(e.count);
        for _ in 0..e.count {
            let s = cstr(rest)?;
            rest = &rest[s.len() + 1..];
            out.push(s);
        }
        Some(out)
    }

    fn ints(&self, tag: u32, kind: u32, width: usize) -> Option<Vec<u32>> {
        let e = self.entry(tag)?;
        if e.kind != kind {
            return None;
        }
        let len = e.count.checked_mul(width)?;
        let bytes = self.data.get(e.offset..e.offset.checked_add(len)?)?;
        Some(
            bytes
                .chunks_exact(width)
                .map(|c| match width {
                    2 => u32::from(u16::from_be_bytes([c[0], c[1]])),
                    _ => u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                })
                .collect(),
        )
    }
}

/// A header's package and the files it owns. `None` when the blob is not a header or has no
/// name. Files come from `BASENAMES`/`DIRNAMES`/`DIRINDEXES` (or the older `OLDFILENAMES`),
/// with the digest (`FILEDIGESTS` in `FILEDIGESTALGO`, MD5 when absent) and the mode; a file
/// list whose arrays disagree in length is dropped whole rather than misattributed.
pub fn parse_rpm_header(blob: &[u8]) -> Option<PackageFiles> {
    let h = Header::parse(blob)?;
    let package = package(&h)?;
    let files = files(&h, blob.len().saturating_mul(NAME_EXPANSION)).unwrap_or_default();
    Some(PackageFiles {
        ecosystem: Ecosystem::Rpm,
        package,
        files,
    })
}

/// A header's package alone, without building its file list (package drift compares
/// packages only, on every change of the database).
pub(super) fn parse_rpm_package(blob: &[u8]) -> Option<Package> {
    package(&Header::parse(blob)?)
}

fn package(h: &Header<'_>) -> Option<Package> {
    let text = |tag| {
        h.string(tag)
            .map(|s| String::from_utf8_lossy(s).into_owned())
    };
    let name = package_name(text(TAG_NAME)?)?;
    let mut version = text(TAG_VERSION).unwrap_or_default();
    if let Some(release) = text(TAG_RELEASE) {
        version = format!("{version}-{release}");
    }
    if let Some(epoch) = h
        .ints(TAG_EPOCH, TYPE_INT32, 4)
        .and_then(|e| e.first().copied())
    {
        version = format!("{epoch}:{version}");
    }
    Some(Package {
        name,
        version,
        arch: text(TAG_ARCH).filter(|a| !a.is_empty()),
    })
}

fn files(h: &Header<'_>, mut budget: usize) -> Option<Vec<OwnedFile>> {
    let names: Vec<String> = match h.strings(TAG_BASENAMES) {
        Some(bases) => {
            let dirs = h.strings(TAG_DIRNAMES)?;
            let idx = h.ints(TAG_DIRINDEXES, TYPE_INT32, 4)?;
            if idx.len() != bases.len() {
                return None;
            }
            let mut out = Vec::with_capacity(bases.len());
            for (base, i) in bases.iter().zip(idx) {
                let dir = dirs.get(i as usize)?;
                let len = dir.len() + base.len();
                if len > MAX_PATH || len > budget {
                    return None;
                }
                budget -= len;
                let mut p = Vec::with_capacity(len);
                p.extend_from_slice(dir);
                p.extend_from_slice(base);
                out.push(String::from_utf8_lossy(&p).into_owned());
            }
            out
        }
        // Whole names, each stored once: no expansion to bound, only their length.
        None => h
            .strings(TAG_OLDFILENAMES)?
            .into_iter()
            .map(|p| (p.len() <= MAX_PATH).then(|| String::from_utf8_lossy(p).into_owned()))
            .collect::<Option<_>>()?,
    };
    let algo = match h.ints(TAG_FILEDIGESTALGO, TYPE_INT32, 4) {
        None => Some(DigestAlgo::Md5),
        Some(a) => match a.first() {
            Some(1) => Some(DigestAlgo::Md5),
            Some(2) => Some(DigestAlgo::Sha1),
            Some(8) => Some(DigestAlgo::Sha256),
            Some(9) => Some(DigestAlgo::Sha384),
            Some(10) => Some(DigestAlgo::Sha512),
            _ => None,
        },
    };
    let digests = h
        .strings(TAG_FILEDIGESTS)
        .filter(|d| d.len() == names.len());
    let modes = h
        .ints(TAG_FILEMODES, TYPE_INT16, 2)
        .filter(|m| m.len() == names.len());
    Some(
        names
            .into_iter()
            .enumerate()
            .map(|(i, path)| OwnedFile {
                path,
                digest: algo.zip(digests.as_ref().and_then(|d| d.get(i))).and_then(
                    |(algo, hex)| {
                        (!hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit)).then(|| {
                            FileDigest {
                                algo,
                                hex: String::from_utf8_lossy(hex).to_ascii_lowercase(),
                            }
                        })
                    },
                ),
                mode: modes.as_ref().and_then(|m| m.get(i).copied()),
            })
            .collect(),
    )
}

/// The bytes before the first NUL; `None` when there is none.
fn cstr(b: &[u8]) -> Option<&[u8]> {
    b.iter().position(|c| *c == 0).map(|n| &b[..n])
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
