//! Image layers unpacked by containerd's overlayfs snapshotter, checked against the layer
//! blobs in its content store (there is no tar-split there: the blob is the record).
//!
//! `check_blob` streams the blob (a tar, gzip or zstd, told by its magic bytes) once:
//! each regular file is compared byte for byte with the file on disk (opened beneath the
//! layer directory, no symlink followed), each symlink's target with the link on disk,
//! every other entry must exist; the uncompressed stream's sha256 must be the diff id, so a
//! changed blob is caught too. Memory stays bounded: two 256 KiB buffers, and the `tar`
//! crate's long-name and PAX headers (which containerd's unpacker, Go's `archive/tar`,
//! caps at 1 MiB before it ever made the snapshot).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::layer_tree::{FileProblem, Found, LayerError, ProblemKind, Stat, added_files, whiteout};
use crate::tarsplit::relative_name;

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

const BUF: usize = 256 * 1024;

/// The blob, uncompressed: gzip and zstd by their magic bytes, anything else as a tar.
fn uncompressed(blob: &Path) -> Result<Box<dyn Read>, LayerError> {
    let io = |source| LayerError::Io {
        path: blob.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(blob).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LayerError::Invalid {
                path: blob.to_path_buf(),
                message: "the layer blob is not in the content store (containerd drops \
                          unpacked layers when `discard_unpacked_layers` is set)"
                    .into(),
            }
        } else {
            io(e)
        }
    })?;
    let mut r = BufReader::with_capacity(BUF, f);
    let head = r.fill_buf().map_err(io)?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io)?)
    } else {
        Box::new(r)
    })
}

/// Whether `file` holds exactly what `entry` has left; `entry` is read to its end either
/// way (its bytes are part of the stream digest; with no file that is all). `Err` is the
/// blob's, `Ok(None)` the file's read failing.
fn same_content(
    entry: &mut impl Read,
    file: Option<&mut std::fs::File>,
    a: &mut [u8],
    b: &mut [u8],
) -> std::io::Result<Option<bool>> {
    let mut file = file;
    let mut same = true;
    let mut readable = true;
    loop {
        let n = entry.read(a)?;
        if n == 0 {
            break;
        }
        let Some(f) = file.as_deref_mut().filter(|_| same && readable) else {
            continue;
        };
        let mut got = 0;
        while got < n {
            match f.read(&mut b[got..n]) {
                Ok(0) => break,
                Ok(m) => got += m,
                Err(_) => {
                    readable = false;
                    break;
                }
            }
        }
        if readable && (got != n || a[..n] != b[..n]) {
            same = false;
        }
    }
    Ok(readable.then_some(same))
}

/// Replays a layer blob over its snapshot directory (see the module docs).
pub(crate) fn check_blob(
    diff_id: &str,
    dir: &Path,
    blob: &Path,
    on_disk: &BTreeMap<String, Stat>,
) -> Result<Found, LayerError> {
    let bad_blob = |e: std::io::Error| LayerError::Invalid {
        path: blob.to_path_buf(),
        message: format!("not a readable layer tar: {e}"),
    };
    let root = driftwatch_fs::Root::layer(format!("image layer {diff_id}"), dir).map_err(|e| {
        LayerError::Io {
            path: dir.to_path_buf(),
            source: e.into_io(),
        }
    })?;
    let mut archive = tar::Archive::new(Hashing {
        inner: uncompressed(blob)?,
        sha: Sha256::new(),
    });
    let mut problems = Vec::new();
    let mut in_tar: HashSet<String> = HashSet::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    let (mut a, mut b) = (vec![0u8; BUF], vec![0u8; BUF]);
    for entry in archive.entries().map_err(bad_blob)? {
        let mut entry = entry.map_err(bad_blob)?;
        let name = entry
            .path()
            .map_err(bad_blob)?
            .to_string_lossy()
            .into_owned();
        let rel = relative_name(&name).to_string();
        if rel.is_empty() {
            continue;
        }
        if let Some(hidden) = whiteout(&rel) {
            in_tar.extend(hidden);
            continue;
        }
        in_tar.insert(rel.clone());
        let kind = entry.header().entry_type();
        let size = entry.size();
        let problem = |kind, expected: Option<u64>, actual| FileProblem {
            path: rel.clone(),
            kind,
            expected_size: expected,
            actual_size: actual,
        };
        let Some(st) = on_disk.get(&rel) else {
            let expected = kind.is_file().then_some(size);
            problems.push(problem(ProblemKind::Missing, expected, None));
            continue;
        };
        let path = driftwatch_fs::InContainer::new(rel.as_str());
        if kind.is_symlink() {
            let want = entry.link_name().map_err(bad_blob)?.unwrap_or_default();
            let have = root
                .open_path(&path)
                .ok()
                .filter(|(_, s)| {
                    rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink
                })
                .and_then(|(fd, _)| rustix::fs::readlinkat(&fd, c"", Vec::new()).ok());
            if have.as_ref().map(|t| t.as_bytes()) != Some(want.as_os_str().as_encoded_bytes()) {
                problems.push(problem(ProblemKind::Modified, None, Some(st.size)));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        files += 1;
        bytes += size;
        // Not a regular file beneath the directory (a symlink, a device, ...): unreadable,
        // never followed; of another size: changed, not read; else compared.
        let mut file = root.open(&path).ok().map(|f| f.into_file());
        let kind = match &file {
            None => Some(ProblemKind::Unreadable),
            Some(_) if st.size != size => Some(ProblemKind::SizeChanged),
            Some(_) => None,
        };
        if kind.is_some() {
            file = None;
        }
        let same = same_content(&mut entry, file.as_mut(), &mut a, &mut b).map_err(bad_blob)?;
        let kind = kind.or(match same {
            Some(true) => None,
            Some(false) => Some(ProblemKind::Modified),
            None => Some(ProblemKind::Unreadable),
        });
        if let Some(k) = kind {
            problems.push(problem(k, Some(size), Some(st.size)));
        }
    }
    // The tar's end blocks and any padding after them are part of the diff id.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(bad_blob)?;
    added_files(on_disk, &in_tar, &mut problems);
    Ok(Found {
        problems,
        files,
        bytes,
        stream_digest: format!("sha256:{}", hex::encode(rest.sha.finalize())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{LayerCache, LayerLocation, LayerRecord, check_layer};
    use std::io::Write;

    /// A layer blob of `files` (`dir/` directories, `name -> target` symlinks) and the same
    /// files unpacked in `<dir>/snapshots/1/fs`, compressed with `compress`.
    fn synthetic(
        dir: &Path,
        files: &[(&str, &[u8])],
        compress: fn(Vec<u8>) -> Vec<u8>,
    ) -> LayerLocation {
        let root = dir.join("snapshots/1/fs");
        std::fs::create_dir_all(&root).unwrap();
        let mut t = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_mtime(0);
            if let Some(d) = name.strip_suffix('/') {
                std::fs::create_dir_all(root.join(d)).unwrap();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                t.append_data(&mut h, name, &[][..]).unwrap();
            } else if let Some((link, target)) = name.split_once(" -> ") {
                std::os::unix::fs::symlink(target, root.join(link)).unwrap();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                t.append_link(&mut h, link, target).unwrap();
            } else {
                std::fs::write(root.join(name), body).unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(body.len() as u64);
                t.append_data(&mut h, name, *body).unwrap();
            }
        }
        let stream = t.into_inner().unwrap();
        let blob = dir.join("blob");
        std::fs::write(&blob, compress(stream.clone())).unwrap();
        LayerLocation {
            diff_id: format!("sha256:{}", hex::encode(Sha256::digest(&stream))),
            chain_id: String::new(),
            dir: root,
            record: LayerRecord::Blob(blob),
        }
    }

    fn gzip(b: Vec<u8>) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b).unwrap();
        gz.finish().unwrap()
    }

    fn zstd(b: Vec<u8>) -> Vec<u8> {
        zstd::encode_all(&b[..], 1).unwrap()
    }

    const FILES: &[(&str, &[u8])] = &[
        ("etc/", b""),
        ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        ("bin/", b""),
        ("bin/busybox", b"\x7fELF pretend"),
        ("bin/sh -> busybox", b""),
    ];

    fn problems(l: &LayerLocation) -> Vec<(String, ProblemKind)> {
        let r = check_layer(l, &mut LayerCache::default()).unwrap();
        r.problems.into_iter().map(|p| (p.path, p.kind)).collect()
    }

    #[test]
    fn an_untouched_snapshot_matches_its_blob_in_every_compression() {
        for compress in [std::convert::identity, gzip, zstd] {
            let d = tempfile::tempdir().unwrap();
            let l = synthetic(d.path(), FILES, compress);
            let mut cache = LayerCache::default();
            let r = check_layer(&l, &mut cache).unwrap();
            assert_eq!(r.problems, []);
            assert_eq!(r.stream_digest.as_deref(), Some(l.diff_id.as_str()));
            assert_eq!((r.files, r.bytes), (2, 38));
            assert!(r.is_intact() && !r.cached);
            assert!(check_layer(&l, &mut cache).unwrap().cached);
        }
    }

    #[test]
    fn edits_in_a_snapshot_are_named() {
        let d = tempfile::tempdir().unwrap();
        let l = synthetic(d.path(), FILES, gzip);
        std::fs::write(l.dir.join("etc/passwd"), b"root:x:0:0::/root:/bin/XX\n").unwrap();
        std::fs::write(l.dir.join("bin/evil"), b"x").unwrap();
        std::fs::remove_file(l.dir.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", l.dir.join("bin/sh")).unwrap();
        assert_eq!(
            problems(&l),
            [
                ("bin/evil".into(), ProblemKind::Added),
                ("bin/sh".into(), ProblemKind::Modified),
                ("etc/passwd".into(), ProblemKind::Modified),
            ]
        );
        std::fs::write(
            l.dir.join("etc/passwd"),
            b"root:x:0:0::/root:/bin/sh\nmore\n",
        )
        .unwrap();
        std::fs::remove_file(l.dir.join("bin/busybox")).unwrap();
        let p = problems(&l);
        assert!(
            p.contains(&("bin/busybox".into(), ProblemKind::Missing)),
            "{p:?}"
        );
        assert!(
            p.contains(&("etc/passwd".into(), ProblemKind::SizeChanged)),
            "{p:?}"
        );
    }

    #[test]
    fn a_symlink_out_of_the_snapshot_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let l = synthetic(d.path(), FILES, gzip);
        // A file of the host with the same bytes: following the link would call it intact.
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::remove_file(l.dir.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(&outside, l.dir.join("etc/passwd")).unwrap();
        // And a directory swapped for a link to one outside.
        std::fs::remove_dir_all(l.dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(d.path(), l.dir.join("bin")).unwrap();
        let p = problems(&l);
        let passwd: Vec<_> = p.iter().filter(|(f, _)| f == "etc/passwd").collect();
        assert_eq!(
            passwd,
            [&("etc/passwd".into(), ProblemKind::Unreadable)],
            "{p:?}"
        );
        assert!(
            p.contains(&("bin/busybox".into(), ProblemKind::Missing)),
            "{p:?}"
        );
    }

    #[test]
    fn a_changed_blob_fails_its_diff_id() {
        let d = tempfile::tempdir().unwrap();
        let mut l = synthetic(d.path(), FILES, std::convert::identity);
        l.diff_id = format!("sha256:{}", "0".repeat(64));
        let r = check_layer(&l, &mut LayerCache::default()).unwrap();
        assert_eq!(r.problems, []);
        assert!(!r.is_intact());
        let LayerRecord::Blob(blob) = &l.record else {
            unreachable!()
        };
        std::fs::write(
            blob,
            gzip(b"not a tar at all, but longer than one block?".repeat(20)),
        )
        .unwrap();
        let e = check_layer(&l, &mut LayerCache::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("blob: not a readable layer tar"), "{e}");
        std::fs::remove_file(blob).unwrap();
        let e = check_layer(&l, &mut LayerCache::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the layer blob is not in the content store"),
            "{e}"
        );
    }
}
