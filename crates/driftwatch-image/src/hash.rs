//! Content hashes (blake3) of layer files, cached by inode identity so an unchanged file is
//! hashed once however often it runs.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::LayerIoError;
use crate::overlay::{DirHandle, Meta, io_err};

/// Identity of one version of a file's content: a write changes the size, mtime or (always,
/// and not settable from user space) ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl From<&Meta> for FileKey {
    fn from(m: &Meta) -> Self {
        FileKey {
            dev: m.dev,
            ino: m.ino,
            size: m.size,
            mtime_ns: m.mtime_ns,
            ctime_ns: m.ctime_ns,
        }
    }
}

/// Default bound of [`HashCache`].
pub const DEFAULT_HASH_CACHE_ENTRIES: usize = 65_536;

/// A bounded map `FileKey -> blake3`, approximately least-recently-used: two generations;
/// when the young one is full the old one is dropped, and a hit in the old one moves up.
#[derive(Debug)]
pub struct HashCache {
    gens: Mutex<Generations>,
    half: usize,
    computed: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<FileKey, blake3::Hash>,
    old: HashMap<FileKey, blake3::Hash>,
}

impl HashCache {
    /// A cache holding at most `capacity` hashes.
    pub fn new(capacity: usize) -> Self {
        HashCache {
            gens: Mutex::new(Generations::default()),
            half: (capacity / 2).max(1),
            computed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &FileKey) -> Option<blake3::Hash> {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = g.young.get(key) {
            return Some(*h);
        }
        let h = g.old.remove(key)?;
        Self::insert_locked(&mut g, self.half, *key, h);
        Some(h)
    }

    pub fn insert(&self, key: FileKey, hash: blake3::Hash) {
        let mut g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        Self::insert_locked(&mut g, self.half, key, hash);
    }

    fn insert_locked(g: &mut Generations, half: usize, key: FileKey, hash: blake3::Hash) {
        if g.young.len() >= half && !g.young.contains_key(&key) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, hash);
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        let g = self.gens.lock().unwrap_or_else(|p| p.into_inner());
        g.young.len() + g.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files hashed (cache misses) so far.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// Bytes read for hashing so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The blake3 of the regular file `name` in `dir`, from the cache when `meta` (from a
    /// recent stat) is a known version.
    pub fn hash_at(
        &self,
        dir: &DirHandle,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(blake3::Hash, Meta), LayerIoError> {
        if let Some(h) = self.get(&FileKey::from(meta)) {
            return Ok((h, *meta));
        }
        let (file, now) = open_regular(dir, name)?;
        self.hash_file(&file, &now, || dir.host.join(name))
    }

    /// The blake3 of an open regular file whose `fstat` is `meta`, from the cache when known.
    /// Reads with `pread` from offset 0: the file position is left alone.
    pub fn hash_file(
        &self,
        file: &File,
        meta: &Meta,
        host: impl Fn() -> PathBuf,
    ) -> Result<(blake3::Hash, Meta), LayerIoError> {
        let key = FileKey::from(meta);
        if let Some(h) = self.get(&key) {
            return Ok((h, *meta));
        }
        let (hash, n) = hash_reader(file).map_err(|e| io_err("read", host(), e))?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(n, Ordering::Relaxed);
        let after =
            Meta::from_stat(&rustix::fs::fstat(file).map_err(|e| io_err("fstat", host(), e))?);
        if FileKey::from(&after) == key {
            self.insert(key, hash);
        }
        Ok((hash, after))
    }
}

/// Opens the regular file `name` in `dir` for reading through `driftwatch_fs` (no symlink
/// followed; a device or fifo swapped in since the last stat is refused before it is opened
/// for reading; `O_NOATIME` when permitted): nothing in the layer changes.
pub(crate) fn open_regular(dir: &DirHandle, name: &OsStr) -> Result<(File, Meta), LayerIoError> {
    let f = driftwatch_fs::open_entry("", dir.fd.as_fd(), &dir.host, name)
        .map_err(|e| io_err("open", dir.host.join(name), e.into_io()))?;
    let meta = Meta::from_stat(f.stat());
    Ok((f.into_file(), meta))
}

/// blake3 of everything `r` yields, and the byte count.
fn hash_reader(f: &File) -> std::io::Result<(blake3::Hash, u64)> {
    // Large reads let blake3 hash several 1 KiB chunks at once with SIMD.
    let mut buf = vec![0u8; 128 * 1024];
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        match f.read_at(&mut buf, total) {
            Ok(0) => return Ok((hasher.finalize(), total)),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Default for HashCache {
    fn default() -> Self {
        Self::new(DEFAULT_HASH_CACHE_ENTRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino: i,
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
        }
    }

    #[test]
    fn stays_bounded_and_keeps_hot_entries() {
        let c = HashCache::new(100);
        let hot = blake3::hash(b"hot");
        c.insert(key(0), hot);
        for i in 1..10_000 {
            c.insert(key(i), blake3::hash(&i.to_le_bytes()));
            assert!(c.len() <= 100);
            // A hot entry used often survives eviction.
            assert_eq!(c.get(&key(0)), Some(hot), "after {i} inserts");
        }
        assert_eq!(c.get(&key(5)), None);
    }
}
