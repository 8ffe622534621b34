//! The evidence bundle format: a zstd-compressed tar whose last entry, `manifest.json`,
//! holds the size and sha256 of every other entry; writing it, and verifying one.
//!
//! The bundle is written to a temporary file next to the output and renamed into place only
//! when complete, so a failed capture never leaves a bundle that looks whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST: &str = "manifest.json";
pub const FORMAT: &str = "driftwatch-capture/1";

/// One entry of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub size: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub tool: String,
    pub container_id: String,
    /// Every entry of the bundle but the manifest, by its path in the tar.
    pub files: BTreeMap<String, ManifestEntry>,
}

/// Writes a bundle, hashing every byte it stores.
pub struct BundleWriter {
    tar: tar::Builder<zstd::Encoder<'static, File>>,
    files: BTreeMap<String, ManifestEntry>,
    tmp: PathBuf,
    out: PathBuf,
    mtime: u64,
}

/// How much of a file made it into the bundle.
pub struct Stored {
    pub sha256: String,
    /// The file ended before the size it had when opened (it shrank while being read); the
    /// rest is zeros.
    pub short_read: bool,
    /// Reading failed part-way (the rest is zeros).
    pub read_error: Option<String>,
}

impl BundleWriter {
    /// Creates `out`'s temporary sibling; `out` itself must not exist unless `force`.
    pub fn create(out: &Path, force: bool) -> anyhow::Result<BundleWriter> {
        if !force && out.exists() {
            bail!("{} already exists (--force overwrites it)", out.display());
        }
        let name = out
            .file_name()
            .with_context(|| format!("{}: not a file name", out.display()))?;
        let tmp = out.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        // 0600: a bundle holds the container's environment (secrets among it). Made anew (a
        // stale partial file keeps no looser mode of its own).
        let _ = std::fs::remove_file(&tmp);
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?
        };
        let mut enc = zstd::Encoder::new(file, 3).context("zstd")?;
        enc.include_checksum(true).context("zstd")?;
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(BundleWriter {
            tar: tar::Builder::new(enc),
            files: BTreeMap::new(),
            tmp,
            out: out.to_path_buf(),
            mtime,
        })
    }

    fn header(&self, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut h = self.header(bytes.len() as u64, 0o644);
        self.tar
            .append_data(&mut h, path, bytes)
            .with_context(|| format!("writing {path} into {}", self.tmp.display()))?;
        self.files.insert(
            path.to_string(),
            ManifestEntry {
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            },
        );
        Ok(())
    }

    pub fn add_json(&mut self, path: &str, value: &impl Serialize) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).context("JSON")?;
        bytes.push(b'\n');
        self.add_bytes(path, &bytes)
    }

    /// Stores exactly `size` bytes read from `r` (zeros past a premature end of file).
    pub fn add_reader(
        &mut self,
        path: &str,
        size: u64,
        mode: u32,
        r: impl Read,
    ) -> anyhow::Result<Stored> {
        let mut h = self.header(size, mode & 0o7777);
        let mut tee = HashingReader {
            inner: r.take(size),
            hasher: Sha256::new(),
            left: size,
            short: false,
            error: None,
        };
        self.tar
            .append_data(&mut h, path, &mut tee)
            .with_context(|| format!("writing {path} into {}", self.tmp.display()))?;
        let sha256 = hex::encode(tee.hasher.finalize());
        self.files.insert(
            path.to_string(),
            ManifestEntry {
                size,
                sha256: sha256.clone(),
            },
        );
        Ok(Stored {
            sha256,
            short_read: tee.short,
            read_error: tee.error.map(|e| e.to_string()),
        })
    }

    /// Writes the manifest, completes the archive and moves it into place. Returns the
    /// number of entries (manifest included) and the sha256 of the bundle file.
    pub fn finish(
        mut self,
        created: String,
        container_id: String,
    ) -> anyhow::Result<(usize, String)> {
        let manifest = Manifest {
            format: FORMAT.into(),
            created,
            tool: format!("driftwatch {}", env!("CARGO_PKG_VERSION")),
            container_id,
            files: std::mem::take(&mut self.files),
        };
        let n = manifest.files.len() + 1;
        let mut bytes = serde_json::to_vec_pretty(&manifest).context("JSON")?;
        bytes.push(b'\n');
        let mut h = self.header(bytes.len() as u64, 0o644);
        self.tar
            .append_data(&mut h, MANIFEST, &bytes[..])
            .with_context(|| format!("writing the manifest into {}", self.tmp.display()))?;
        let enc = self
            .tar
            .into_inner()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        let file = enc
            .finish()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", self.tmp.display()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.out).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.out.display())
        })?;
        let sha = sha256_file(&self.out)?;
        Ok((n, sha))
    }

    /// Removes the temporary file of a capture that failed.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    left: u64,
    short: bool,
    /// The first read error: the rest of the entry is zeros.
    error: Option<io::Error>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(buf) {
            Ok(0) => {
                // The file shrank: pad so the tar header's size holds.
                self.short = true;
                let n = buf.len().min(self.left as usize);
                buf[..n].fill(0);
                n
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                // Unreadable from here on (an I/O error on the layer's disk): pad like a
                // short file so the archive stays whole, and say so.
                self.error.get_or_insert(e);
                self.short = true;
                let n = buf.len().min(self.left as usize);
                buf[..n].fill(0);
                n
            }
        };
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a bundle or file the user names on the command line, not a container's"
)]
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// What verifying a bundle found.
#[derive(Debug, Default)]
pub struct Verification {
    pub manifest: Option<Manifest>,
    /// Entries whose content matches the manifest.
    pub ok: usize,
    /// One line per problem, each naming the entry.
    pub problems: Vec<String>,
}

/// The largest `manifest.json` a bundle may hold (about 400,000 entries): the manifest is
/// read into memory, so a forged bundle must not make the reader allocate without bound.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads the whole bundle, hashing every entry, and compares with its manifest.
/// `Err` only when the bundle cannot be opened at all.
#[expect(
    clippy::disallowed_methods,
    reason = "the bundle the user names on the command line, not a container's file"
)]
pub fn verify(path: &Path) -> anyhow::Result<Verification> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let dec = zstd::Decoder::new(file).with_context(|| format!("{}: not zstd", path.display()))?;
    Ok(verify_archive(&path.display().to_string(), dec))
}

/// [`verify`] on the decompressed tar stream; `name` names the bundle in problems. Memory
/// stays bounded whatever the input: entries are hashed as they stream, and the manifest is
/// refused above [`MAX_MANIFEST_BYTES`].
pub fn verify_archive(name: &str, tar: impl Read) -> Verification {
    let mut archive = tar::Archive::new(tar);
    let mut v = Verification::default();
    let mut found: BTreeMap<String, ManifestEntry> = BTreeMap::new();
    let mut manifest_bytes = None;
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            v.problems.push(format!("{name}: not a tar archive: {e}"));
            return v;
        }
    };
    let mut last = String::from("(start of the archive)");
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                v.problems.push(format!(
                    "archive corrupt after entry {last}: {e} (the bundle was altered or truncated)"
                ));
                break;
            }
        };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        // Tolerate a bundle unpacked and repacked with tar(1): `./` prefixes and
        // directory entries carry no evidence.
        let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        last = name.clone();
        if name == MANIFEST && entry.size() > MAX_MANIFEST_BYTES {
            v.problems.push(format!(
                "{name}: {} bytes, more than a manifest may hold ({MAX_MANIFEST_BYTES})",
                entry.size()
            ));
            continue;
        }
        if entry.header().entry_type() == tar::EntryType::Directory {
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            v.problems
                .push(format!("{name}: not a regular file in the bundle"));
            continue;
        }
        let mut h = Sha256::new();
        let mut bytes = Vec::new();
        let read = if name == MANIFEST {
            // The header's size was checked; `take` holds even if the stream lies.
            (&mut entry)
                .take(MAX_MANIFEST_BYTES)
                .read_to_end(&mut bytes)
                .map(|n| {
                    h.update(&bytes);
                    n as u64
                })
        } else {
            io::copy(&mut entry, &mut h)
        };
        let size = match read {
            Ok(n) => n,
            Err(e) => {
                v.problems.push(format!(
                    "{name}: content unreadable: {e} (the bundle was altered or truncated)"
                ));
                break;
            }
        };
        if name == MANIFEST {
            manifest_bytes = Some(bytes);
            continue;
        }
        let sha256 = hex::encode(h.finalize());
        if found
            .insert(name.clone(), ManifestEntry { size, sha256 })
            .is_some()
        {
            v.problems
                .push(format!("{name}: appears twice in the bundle"));
        }
    }
    let Some(bytes) = manifest_bytes else {
        v.problems
            .push(format!("{MANIFEST}: missing from the bundle"));
        return v;
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            v.problems.push(format!("{MANIFEST}: not a manifest: {e}"));
            return v;
        }
    };
    if manifest.format != FORMAT {
        v.problems.push(format!(
            "{MANIFEST}: format {:?}, expected {FORMAT:?}",
            manifest.format
        ));
    }
    for (name, want) in &manifest.files {
        match found.get(name) {
            None => v.problems.push(format!(
                "{name}: listed in the manifest, missing from the bundle"
            )),
            Some(got) if got != want => v.problems.push(format!(
                "{name}: sha256 {} ({} bytes) in the bundle, manifest says {} ({} bytes)",
                got.sha256, got.size, want.sha256, want.size
            )),
            Some(_) => v.ok += 1,
        }
    }
    for name in found.keys().filter(|n| !manifest.files.contains_key(*n)) {
        v.problems
            .push(format!("{name}: in the bundle, not listed in the manifest"));
    }
    v.manifest = Some(manifest);
    v
}

/// For tests and tools: rewrites every entry of a bundle through `edit`.
#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests rewrite their own bundles")]
pub fn rewrite(
    from: &Path,
    to: &Path,
    mut edit: impl FnMut(&str, Vec<u8>) -> Vec<u8>,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(zstd::Decoder::new(File::open(from)?)?);
    let mut out = tar::Builder::new(zstd::Encoder::new(File::create(to)?, 3)?.auto_finish());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let bytes = edit(&name, bytes);
        let mut h = entry.header().clone();
        h.set_size(bytes.len() as u64);
        out.append_data(&mut h, &name, &bytes[..])?;
    }
    std::io::Write::flush(&mut out.into_inner()?)?;
    Ok(())
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests read their own bundles")]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> PathBuf {
        let out = dir.join("b.tar.zst");
        let mut w = BundleWriter::create(&out, false).unwrap();
        w.add_bytes("diff.json", b"{}\n").unwrap();
        let s = w
            .add_reader("files/tmp/a b\\n", 10, 0o755, &b"0123456789"[..])
            .unwrap();
        assert!(!s.short_read);
        // Shrank while read: padded, flagged.
        let s = w
            .add_reader("files/tmp/short", 8, 0o644, &b"abc"[..])
            .unwrap();
        assert!(s.short_read);
        w.finish("now".into(), "x".repeat(64)).unwrap();
        out
    }

    #[test]
    fn roundtrip_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let out = sample(dir.path());
        let v = verify(&out).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.ok, 3);
        assert!(!dir.path().join(".b.tar.zst.partial").exists());
        assert!(BundleWriter::create(&out, false).is_err(), "no overwrite");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "a bundle holds environments: owner only");
        }
    }

    #[test]
    fn a_changed_byte_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = sample(dir.path());
        let bad = dir.path().join("bad.tar.zst");
        rewrite(&out, &bad, |name, mut b| {
            if name == "files/tmp/a b\\n" {
                b[3] ^= 1;
            }
            b
        })
        .unwrap();
        let v = verify(&bad).unwrap();
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(
            v.problems[0].starts_with("files/tmp/a b\\n: sha256"),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn a_flipped_compressed_byte_fails() {
        let dir = tempfile::tempdir().unwrap();
        let out = sample(dir.path());
        let mut bytes = std::fs::read(&out).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&out, &bytes).unwrap();
        let v = verify(&out).unwrap();
        assert!(!v.problems.is_empty());
    }

    #[test]
    fn unlisted_and_missing_entries() {
        let dir = tempfile::tempdir().unwrap();
        let out = sample(dir.path());
        let bad = dir.path().join("bad.tar.zst");
        rewrite(&out, &bad, |name, b| {
            if name == MANIFEST {
                let mut m: Manifest = serde_json::from_slice(&b).unwrap();
                m.files.remove("diff.json");
                m.files.insert(
                    "ghost".into(),
                    ManifestEntry {
                        size: 0,
                        sha256: String::new(),
                    },
                );
                return serde_json::to_vec(&m).unwrap();
            }
            b
        })
        .unwrap();
        let v = verify(&bad).unwrap();
        let all = v.problems.join("\n");
        assert!(
            all.contains("ghost: listed in the manifest, missing"),
            "{all}"
        );
        assert!(
            all.contains("diff.json: in the bundle, not listed"),
            "{all}"
        );
    }

    /// A forged bundle (a zstd bomb decompresses to gigabytes) with a huge manifest entry:
    /// refused by its size, never read into memory.
    #[test]
    fn an_oversized_manifest_is_refused_unread() {
        let size = MAX_MANIFEST_BYTES + 1;
        let mut h = tar::Header::new_gnu();
        h.set_path(MANIFEST).unwrap();
        h.set_size(size);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let padding = (512 - size % 512) % 512;
        let stream = io::Cursor::new(h.as_bytes().to_vec())
            .chain(io::repeat(b'{').take(size + padding))
            .chain(io::Cursor::new(vec![0u8; 1024]));
        let v = verify_archive("bomb.tar", stream);
        let all = v.problems.join("\n");
        assert!(
            all.contains("manifest.json: 67108865 bytes, more than a manifest may hold"),
            "{all}"
        );
        assert!(
            all.contains("manifest.json: missing from the bundle"),
            "{all}"
        );
        assert!(v.manifest.is_none());
    }
}
