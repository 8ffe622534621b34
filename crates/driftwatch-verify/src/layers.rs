//! Image layers on disk against their digests: Docker's overlay2 layout here, containerd's
//! overlayfs snapshots through [`crate::blob_layers`].
//!
//! [`locate_snapshot_layers`] pairs each diff id of a containerd image with the snapshot
//! directory the unpacker made for it: the container snapshot's lower directories are its
//! parent chain, top first, and that parent must be the image's top chain id (the unpacker
//! names committed snapshots by chain id), so a directory is never checked against another
//! layer's blob.
//!
//! `<root>/image/overlay2/layerdb/sha256/<chain id>/` holds a layer's `diff` (its diff id),
//! `cache-id` (its directory under `<root>/overlay2/`) and `tar-split.json.gz`. The check
//! replays the tar stream: segments from tar-split, each file's payload from the layer
//! directory, checking each file's size and crc64 (naming the file that changed) and the
//! whole stream's sha256 against the diff id (as `docker save` would rebuild it). Files
//! added to the directory that the tar does not have are reported too.
//!
//! Repeat checks are cheap: a layer that passed is remembered with a fingerprint of every
//! path's `lstat` (size, mtime, ctime, inode); while that is unchanged the files are not
//! read again. A write to a file changes its ctime, which user space cannot set back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layer_tree::{
    FileProblem, Found, LayerError, ProblemKind, Stat, added_files, io, walk, whiteout,
};
use crate::tarsplit::{CRC64, Entries, Entry, relative_name};

/// Where one layer of an image lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerLocation {
    pub diff_id: String,
    pub chain_id: String,
    /// The layer's files: `<root>/overlay2/<cache-id>/diff`, or a containerd snapshot's
    /// `.../snapshots/<n>/fs`.
    pub dir: PathBuf,
    /// What the directory is checked against.
    pub record: LayerRecord,
}

/// Where a layer's recorded contents are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerRecord {
    /// Docker's `tar-split.json.gz`: the tar's headers and each file's size and crc64.
    TarSplit(PathBuf),
    /// The layer blob itself (a tar, gzip or zstd), as containerd's content store keeps it.
    Blob(PathBuf),
}

/// `chain(n) = sha256(chain(n-1) + " " + diff(n))`, `chain(0) = diff(0)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(id);
    }
    out
}

/// The layers of an image (diff ids bottom first) under Docker's root (`/var/lib/docker`).
pub fn locate_layers(
    docker_root: &Path,
    diff_ids: &[String],
) -> Result<Vec<LayerLocation>, LayerError> {
    let db = docker_root.join("image/overlay2/layerdb/sha256");
    diff_ids
        .iter()
        .zip(chain_ids(diff_ids))
        .map(|(diff_id, chain_id)| {
            let hex = chain_id.trim_start_matches("sha256:");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LayerError::Invalid {
                    path: db.clone(),
                    message: format!("the engine gave a malformed diff id `{diff_id}`"),
                });
            }
            let meta = db.join(hex);
            let cache_path = meta.join("cache-id");
            let cache_id = std::fs::read_to_string(&cache_path).map_err(io(&cache_path))?;
            let cache_id = cache_id.trim();
            if cache_id.is_empty() || cache_id.contains(['/', '.']) {
                return Err(LayerError::Invalid {
                    path: cache_path,
                    message: format!("not a layer directory name: `{cache_id}`"),
                });
            }
            let diff_path = meta.join("diff");
            let recorded = std::fs::read_to_string(&diff_path).map_err(io(&diff_path))?;
            if recorded.trim() != diff_id {
                return Err(LayerError::Invalid {
                    path: diff_path,
                    message: format!("records {} but the image says {diff_id}", recorded.trim()),
                });
            }
            Ok(LayerLocation {
                diff_id: diff_id.clone(),
                chain_id,
                dir: docker_root.join("overlay2").join(cache_id).join("diff"),
                record: LayerRecord::TarSplit(meta.join("tar-split.json.gz")),
            })
        })
        .collect()
}

/// The layers of a containerd container's image, bottom first: diff ids, their blobs (in
/// the same order), and the container snapshot's lower directories (top first, as overlay's
/// `lowerdir`) with the snapshot's parent key.
pub fn locate_snapshot_layers(
    diff_ids: &[String],
    blobs: &[PathBuf],
    lowers_top_first: &[PathBuf],
    parent: &str,
) -> Result<Vec<LayerLocation>, LayerError> {
    let invalid = |path: &Path, message: String| LayerError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let first = lowers_top_first
        .first()
        .map_or(Path::new(""), |p| p.as_path());
    if diff_ids.len() != lowers_top_first.len() || diff_ids.len() != blobs.len() {
        return Err(invalid(
            first,
            format!(
                "the image has {} layers ({} blobs) but the container's snapshot has {} lower directories",
                diff_ids.len(),
                blobs.len(),
                lowers_top_first.len()
            ),
        ));
    }
    let chains = chain_ids(diff_ids);
    if let Some(top) = chains.last()
        && top != parent
    {
        return Err(invalid(
            first,
            format!(
                "the container's snapshot parent is `{parent}`, not the image's top chain id {top}"
            ),
        ));
    }
    let n = diff_ids.len();
    let mut out = Vec::with_capacity(n);
    for (i, (diff_id, chain_id)) in diff_ids.iter().zip(chains).enumerate() {
        let dir = &lowers_top_first[n - 1 - i];
        // `<snapshotter root>/snapshots/<n>/fs`: what the overlayfs snapshotter names.
        let numbered = dir.file_name().is_some_and(|f| f == "fs")
            && dir
                .parent()
                .and_then(Path::file_name)
                .and_then(|f| f.to_str())
                .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
        if !numbered {
            return Err(invalid(
                dir,
                "not an overlayfs snapshot directory (`snapshots/<n>/fs`)".into(),
            ));
        }
        out.push(LayerLocation {
            diff_id: diff_id.clone(),
            chain_id,
            dir: dir.clone(),
            record: LayerRecord::Blob(blobs[i].clone()),
        });
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub diff_id: String,
    pub dir: PathBuf,
    /// Files with content in the layer's tar.
    pub files: u64,
    pub bytes: u64,
    /// sha256 of the rebuilt tar stream (`None` when taken from the cache).
    pub stream_digest: Option<String>,
    pub problems: Vec<FileProblem>,
    /// Answered from the fingerprint cache, without reading file contents.
    pub cached: bool,
    #[serde(serialize_with = "ms")]
    pub elapsed: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl LayerReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
            && self
                .stream_digest
                .as_ref()
                .is_none_or(|d| *d == self.diff_id)
    }
}

/// Layers that passed, by diff id, with the fingerprint of their directory then.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayerCache {
    layers: HashMap<String, CachedLayer>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CachedLayer {
    dir: PathBuf,
    fingerprint: String,
    files: u64,
    bytes: u64,
}

impl LayerCache {
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Forgets every layer (a scheduled full re-check).
    pub fn clear(&mut self) {
        self.layers.clear();
    }
}

/// Checks one layer directory against its tar-split and diff id.
pub fn check_layer(
    layer: &LayerLocation,
    cache: &mut LayerCache,
) -> Result<LayerReport, LayerError> {
    let start = Instant::now();
    let (on_disk, fingerprint) = walk(&layer.dir)?;
    if let Some(c) = cache.layers.get(&layer.diff_id)
        && c.dir == layer.dir
        && c.fingerprint == fingerprint
    {
        return Ok(LayerReport {
            diff_id: layer.diff_id.clone(),
            dir: layer.dir.clone(),
            files: c.files,
            bytes: c.bytes,
            stream_digest: None,
            problems: Vec::new(),
            cached: true,
            elapsed: start.elapsed(),
        });
    }
    let found = match &layer.record {
        LayerRecord::TarSplit(ts) => check_tar_split(layer, ts, &on_disk)?,
        LayerRecord::Blob(blob) => {
            crate::blob_layers::check_blob(&layer.diff_id, &layer.dir, blob, &on_disk)?
        }
    };
    let Found {
        mut problems,
        files,
        bytes,
        stream_digest,
    } = found;
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    let report = LayerReport {
        diff_id: layer.diff_id.clone(),
        dir: layer.dir.clone(),
        files,
        bytes,
        stream_digest: Some(stream_digest),
        problems,
        cached: false,
        elapsed: start.elapsed(),
    };
    if report.is_intact() {
        cache.layers.insert(
            layer.diff_id.clone(),
            CachedLayer {
                dir: layer.dir.clone(),
                fingerprint,
                files,
                bytes,
            },
        );
    } else {
        cache.layers.remove(&layer.diff_id);
    }
    Ok(report)
}

/// Replays Docker's tar-split over the layer directory.
fn check_tar_split(
    layer: &LayerLocation,
    ts: &Path,
    on_disk: &BTreeMap<String, Stat>,
) -> Result<Found, LayerError> {
    let f = std::fs::File::open(ts).map_err(io(ts))?;
    let entries = Entries::new(BufReader::with_capacity(
        64 * 1024,
        flate2::read::GzDecoder::new(BufReader::new(f)),
    ));
    let mut sha = Sha256::new();
    let mut problems = Vec::new();
    let mut in_tar: HashSet<String> = HashSet::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 256 * 1024];
    for item in entries {
        let (_, entry) = item.map_err(|e| LayerError::TarSplit {
            path: ts.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        let (name, size, crc) = match entry {
            Entry::Segment(b) => {
                sha.update(&b);
                continue;
            }
            Entry::File { name, size, crc } => (name, size, crc),
        };
        let rel = relative_name(&name).to_string();
        if let Some(hidden) = whiteout(&rel) {
            in_tar.extend(hidden);
            continue;
        }
        in_tar.insert(rel.clone());
        if size == 0 {
            if !rel.is_empty() && !on_disk.contains_key(&rel) {
                problems.push(FileProblem {
                    path: rel,
                    kind: ProblemKind::Missing,
                    expected_size: Some(0),
                    actual_size: None,
                });
            }
            continue;
        }
        files += 1;
        bytes += size;
        let problem = |kind, actual| FileProblem {
            path: rel.clone(),
            kind,
            expected_size: Some(size),
            actual_size: actual,
        };
        let Some(st) = on_disk.get(&rel) else {
            problems.push(problem(ProblemKind::Missing, None));
            continue;
        };
        let actual = st.size;
        // Beneath the layer dir, no symlink followed, regular files only: a layer file
        // swapped for a FIFO, a device or a link to the host's files is unreadable, not read.
        let opened =
            driftwatch_fs::Root::layer(format!("image layer {}", layer.diff_id), &layer.dir)
                .and_then(|r| r.open(&driftwatch_fs::InContainer::new(rel.as_str())));
        let mut file = match opened {
            Ok(f) => f.into_file(),
            Err(_) => {
                problems.push(problem(ProblemKind::Unreadable, Some(actual)));
                continue;
            }
        };
        // Feed exactly `size` bytes, as the tar holds, so an edit elsewhere cannot shift
        // the stream; a short file is padded with zeroes (and fails the digest).
        let mut digest = CRC64.digest();
        let mut left = size;
        let mut read_failed = false;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    digest.update(&buf[..n]);
                    sha.update(&buf[..n]);
                    left -= n as u64;
                }
                Err(_) => {
                    read_failed = true;
                    break;
                }
            }
        }
        if left > 0 {
            let zeros = [0u8; 4096];
            while left > 0 {
                let n = zeros.len().min(left as usize);
                sha.update(&zeros[..n]);
                left -= n as u64;
            }
        }
        if read_failed {
            problems.push(problem(ProblemKind::Unreadable, Some(actual)));
        } else if actual != size {
            problems.push(problem(ProblemKind::SizeChanged, Some(actual)));
        } else if crc.is_some_and(|c| c != digest.finalize()) {
            problems.push(problem(ProblemKind::Modified, Some(actual)));
        }
    }
    added_files(on_disk, &in_tar, &mut problems);
    Ok(Found {
        problems,
        files,
        bytes,
        stream_digest: format!("sha256:{}", hex::encode(sha.finalize())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::io::Write;

    /// A synthetic layer: a tar-split of `files` (with made-up headers) and the files on
    /// disk; the diff id is the sha256 of the stream.
    fn synthetic(dir: &Path, files: &[(&str, &[u8])]) -> LayerLocation {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let root = dir.join("diff");
        std::fs::create_dir_all(&root).unwrap();
        let mut lines = String::new();
        let mut stream = Vec::new();
        for (i, (name, body)) in files.iter().enumerate() {
            let header = format!("HEADER-{i}-{name}").into_bytes();
            stream.extend_from_slice(&header);
            lines += &format!(
                "{{\"type\":2,\"payload\":\"{}\",\"position\":0}}\n",
                b64(&header)
            );
            if let Some(d) = name.strip_suffix('/') {
                std::fs::create_dir_all(root.join(d)).unwrap();
                lines += &format!("{{\"type\":1,\"name\":\"./{name}\",\"payload\":null}}\n");
                continue;
            }
            std::fs::write(root.join(name), body).unwrap();
            stream.extend_from_slice(body);
            let crc = CRC64.checksum(body).to_be_bytes();
            lines += &format!(
                "{{\"type\":1,\"name\":\"./{name}\",\"size\":{},\"payload\":\"{}\"}}\n",
                body.len(),
                b64(&crc)
            );
        }
        let tail = vec![0u8; 1024];
        stream.extend_from_slice(&tail);
        lines += &format!("{{\"type\":2,\"payload\":\"{}\"}}\n", b64(&tail));
        let ts = dir.join("tar-split.json.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&ts).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(lines.as_bytes()).unwrap();
        gz.finish().unwrap();
        LayerLocation {
            diff_id: format!("sha256:{}", hex::encode(Sha256::digest(&stream))),
            chain_id: String::new(),
            dir: root,
            record: LayerRecord::TarSplit(ts),
        }
    }

    const FILES: &[(&str, &[u8])] = &[
        ("etc/", b""),
        ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        ("bin/", b""),
        ("bin/sh", b"\x7fELF pretend"),
    ];

    #[test]
    fn an_untouched_layer_rebuilds_its_diff_id_and_is_cached() {
        let d = tempfile::tempdir().unwrap();
        let l = synthetic(d.path(), FILES);
        let mut cache = LayerCache::default();
        let r = check_layer(&l, &mut cache).unwrap();
        assert_eq!(r.problems, []);
        assert_eq!(r.stream_digest.as_deref(), Some(l.diff_id.as_str()));
        assert!(r.is_intact() && !r.cached);
        assert_eq!((r.files, r.bytes), (2, 38));
        let r = check_layer(&l, &mut cache).unwrap();
        assert!(r.cached && r.is_intact());
    }

    #[test]
    fn an_edited_file_is_named_even_after_a_cached_pass() {
        let d = tempfile::tempdir().unwrap();
        let l = synthetic(d.path(), FILES);
        let mut cache = LayerCache::default();
        assert!(check_layer(&l, &mut cache).unwrap().is_intact());
        // Same size, other bytes, mtime set back: the ctime still moves.
        let p = l.dir.join("etc/passwd");
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::fs::write(&p, b"root:x:0:0::/root:/bin/XX\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::write(l.dir.join("bin/evil"), b"x").unwrap();
        std::fs::remove_file(l.dir.join("bin/sh")).unwrap();
        let r = check_layer(&l, &mut cache).unwrap();
        assert!(!r.cached && !r.is_intact());
        let got: Vec<(&str, ProblemKind)> = r
            .problems
            .iter()
            .map(|p| (p.path.as_str(), p.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("bin/evil", ProblemKind::Added),
                ("bin/sh", ProblemKind::Missing),
                ("etc/passwd", ProblemKind::Modified),
            ]
        );
        assert_ne!(r.stream_digest.as_deref(), Some(l.diff_id.as_str()));
        assert!(cache.is_empty());
        // Grown: a size change.
        std::fs::write(&p, b"root:x:0:0::/root:/bin/sh\nmore\n").unwrap();
        let r = check_layer(&l, &mut cache).unwrap();
        assert!(r.problems.iter().any(|p| p.path == "etc/passwd"
            && p.kind == ProblemKind::SizeChanged
            && p.actual_size == Some(31)));
    }

    #[test]
    fn corrupt_tar_split_is_a_positioned_error() {
        let d = tempfile::tempdir().unwrap();
        let l = synthetic(d.path(), FILES);
        let LayerRecord::TarSplit(ts) = &l.record else {
            unreachable!()
        };
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(ts).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(
            b"{\"type\":2,\"payload\":\"\"}\n{\"type\":1,\"name\":\"x\",\"payload\":\"%%%\"}\n",
        )
        .unwrap();
        gz.finish().unwrap();
        let e = check_layer(&l, &mut LayerCache::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tar-split.json.gz:2: invalid base64"), "{e}");
        std::fs::write(ts, b"not gzip").unwrap();
        let e = check_layer(&l, &mut LayerCache::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tar-split.json.gz:1: read:"), "{e}");
    }

    #[test]
    fn chain_ids_and_layerdb_lookup() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(c[1], format!("sha256:{want}"));
        let root = tempfile::tempdir().unwrap();
        let meta = root
            .path()
            .join("image/overlay2/layerdb/sha256")
            .join("a".repeat(64));
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(meta.join("diff"), &a).unwrap();
        std::fs::write(meta.join("cache-id"), "../../etc").unwrap();
        let e = locate_layers(root.path(), std::slice::from_ref(&a))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("cache-id: not a layer directory name: `../../etc`"),
            "{e}"
        );
        std::fs::write(meta.join("cache-id"), "abc123\n").unwrap();
        let l = locate_layers(root.path(), std::slice::from_ref(&a)).unwrap();
        assert_eq!(l[0].dir, root.path().join("overlay2/abc123/diff"));
        let e = locate_layers(root.path(), &["garbage".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed diff id `garbage`"), "{e}");
        let e = locate_layers(root.path(), &[b]).unwrap_err().to_string();
        assert!(e.contains("cache-id: No such file"), "{e}");
    }

    #[test]
    fn snapshot_directories_pair_with_diff_ids_by_chain() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = [a.clone(), b.clone()];
        let chains = chain_ids(&ids);
        let blobs = [
            PathBuf::from("/c/blobs/sha256/1"),
            PathBuf::from("/c/blobs/sha256/2"),
        ];
        let lowers = [
            PathBuf::from("/s/snapshots/7/fs"),
            PathBuf::from("/s/snapshots/3/fs"),
        ];
        let l = locate_snapshot_layers(&ids, &blobs, &lowers, &chains[1]).unwrap();
        assert_eq!(l[0].dir, lowers[1]);
        assert_eq!(l[0].record, LayerRecord::Blob(blobs[0].clone()));
        assert_eq!(
            (l[1].diff_id.as_str(), l[1].chain_id.as_str()),
            (b.as_str(), chains[1].as_str())
        );
        let e = locate_snapshot_layers(&ids, &blobs, &lowers, &a)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/s/snapshots/7/fs: the container's snapshot parent is `sha256:aaaa"),
            "{e}"
        );
        let e = locate_snapshot_layers(&ids, &blobs, &lowers[..1], &chains[1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 layers (2 blobs) but the container's snapshot has 1 lower"),
            "{e}"
        );
        let odd = [PathBuf::from("/etc"), PathBuf::from("/s/snapshots/3/fs")];
        let e = locate_snapshot_layers(&ids, &blobs, &odd, &chains[1])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/etc: not an overlayfs snapshot directory (`snapshots/<n>/fs`)"
        );
    }
}
