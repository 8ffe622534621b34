//! Where a file came from: the diff id of the image layer that has it, and the package that
//! owns it with the package manager's own digest. Indexes are built lazily, once per image
//! (its chain of layer directories) and once per state of a container's databases, and
//! kept in a bounded cache: nothing here runs per exec, only when a finding is reported.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use driftwatch_fs::{AGENT_PACKAGE_DB_CAP, Limit};
use driftwatch_model::{OverlayLayers, Provenance};

use crate::diff::{ChangeKind, Diff, FileKind};
use crate::overlay::{LayerOptions, ResolvedEntry, View};
use crate::packages::{Owner, OwnerIndex, PackageDigest};

/// The diff id of the image layer at `lower` (an index into `OverlayLayers::lowers`, top
/// first) given the image's diff ids (`RootFS.Layers`, bottom first). The lower directories
/// are the image's layers bottom-aligned: containerd mounts exactly those, Docker adds its
/// `-init` layer (`/etc/hosts`, `.dockerenv`) on top, which is no image layer (`None`). Any
/// other count is a layout we do not know: `None` rather than a wrong layer.
pub fn layer_diff_id(lower: usize, lowers: usize, diff_ids: &[String]) -> Option<&str> {
    if lower >= lowers || !(lowers == diff_ids.len() || lowers == diff_ids.len() + 1) {
        return None;
    }
    diff_ids.get(lowers - 1 - lower).map(String::as_str)
}

/// Which image layer (index into `layers.lowers`, top first) has the file at `path` in the
/// image's own view (the writable layer ignored, symlinks followed inside the image): the
/// layer an executed image file came from, or the one a modified file was copied up from.
pub fn image_layer_of(layers: &OverlayLayers, path: &str, options: LayerOptions) -> Option<usize> {
    layer_in_image(layers, path, true, options)
}

/// The image layer that has `path`, the last symlink followed or not.
fn layer_in_image(
    layers: &OverlayLayers,
    path: &str,
    follow_final: bool,
    options: LayerOptions,
) -> Option<usize> {
    let view = View {
        roots: &layers.lowers,
        first_layer: 0,
        options,
    };
    match view.resolve(Path::new(path), follow_final).ok()?.entry {
        ResolvedEntry::File { file, .. } => Some(file.layer),
        ResolvedEntry::Dir => None,
    }
}

/// The container's merged view, top first: its writable layer, then the image's.
fn merged_roots(layers: &OverlayLayers) -> Vec<PathBuf> {
    std::iter::once(layers.upper.clone())
        .chain(layers.lowers.iter().cloned())
        .collect()
}

/// Files the package databases keep their file lists in: when the container's copy of one
/// changes, its owner index is rebuilt.
const DATABASE_FILES: [&str; 10] = [
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
    "var/lib/rpm/rpmdb.sqlite",
    "var/lib/rpm/rpmdb.sqlite-wal",
    "usr/lib/sysimage/rpm/Packages.db",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages",
    "var/lib/rpm/Packages",
];

/// Reads the package databases of the merged view of `roots` (top-most first).
pub fn read_owner_index(roots: &[PathBuf], options: LayerOptions) -> OwnerIndex {
    let view = View {
        roots,
        first_layer: 0,
        options,
    };
    OwnerIndex::read(&mut |p: &str| read_in_view(&view, p, AGENT_PACKAGE_DB_CAP))
}

/// The regular file at `path` in `view`, symlinks followed inside it, at most `cap` bytes
/// (`None` when absent, not a regular file, unreadable or larger).
fn read_in_view(view: &View<'_>, path: &str, cap: u64) -> Option<Vec<u8>> {
    open_in_view(view, path)?.read(Limit::Whole(cap)).ok()
}

fn open_in_view(view: &View<'_>, path: &str) -> Option<driftwatch_fs::ContainerFile> {
    let r = view.resolve(Path::new(path), true).ok()?;
    let ResolvedEntry::File { file, .. } = r.entry else {
        return None;
    };
    driftwatch_fs::open_entry("", file.parent.fd.as_fd(), &file.parent.host, &file.name).ok()
}

/// Compares the container's file at `path` (merged view: the writable layer first) with
/// the owner's recorded digest.
pub fn compare_with_package(
    owner: &Owner,
    layers: &OverlayLayers,
    path: &str,
    options: LayerOptions,
) -> PackageDigest {
    let Some(digest) = &owner.digest else {
        return PackageDigest::Unknown;
    };
    let roots = merged_roots(layers);
    let view = View {
        roots: &roots,
        first_layer: 0,
        options,
    };
    let Some(f) = open_in_view(&view, path) else {
        return PackageDigest::Unknown;
    };
    // Streamed; a file growing while read is cut where `fstat` said it ended.
    match digest.matches(std::io::Read::take(f.file(), f.size())) {
        Ok(true) => PackageDigest::Match,
        Ok(false) => PackageDigest::Mismatch,
        Err(_) => PackageDigest::Unknown,
    }
}

/// Fills each changed file of `diff` with the image layer its image copy came from
/// (`diff_ids` bottom first, as `RootFS.Layers`), the package that owns it in the
/// container's databases, and how it compares with that package's digest. One index for
/// the whole diff; each owned file that changed is read once more for its digest.
pub fn fill_diff_provenance(
    diff: &mut Diff,
    layers: &OverlayLayers,
    diff_ids: &[String],
    options: LayerOptions,
) {
    let roots = merged_roots(layers);
    let owners = read_owner_index(&roots, options);
    for f in &mut diff.files {
        if !matches!(f.kind, FileKind::File | FileKind::Symlink) {
            continue;
        }
        let Some(path) = std::str::from_utf8(f.path.as_bytes()).ok() else {
            continue;
        };
        let layer = (f.change != ChangeKind::Added)
            // A diff lists a symlink itself: its last component is not followed.
            .then(|| layer_in_image(layers, path, false, options))
            .flatten()
            .and_then(|i| layer_diff_id(i, layers.lowers.len(), diff_ids))
            .map(str::to_string);
        let owner = owners.owner(path);
        let digest = owner.as_ref().and_then(|o| {
            (f.kind == FileKind::File && f.change != ChangeKind::Deleted).then(|| {
                compare_with_package(o, layers, path, options)
                    .as_str()
                    .to_string()
            })
        });
        f.provenance = Provenance {
            layer,
            package: owner.as_ref().map(|o| o.package.clone()),
            package_version: owner.as_ref().map(|o| o.version.clone()),
            package_ecosystem: owner.as_ref().map(|o| o.ecosystem.as_str().to_string()),
            package_digest: digest,
        };
    }
}

/// Images whose owner index is kept: the images of the containers with findings lately.
const IMAGE_ENTRIES: usize = 16;
/// Containers whose own (changed) databases are indexed.
const CONTAINER_ENTRIES: usize = 32;

type Stamp = Vec<Option<(u64, i64, u64)>>;

/// Owner indexes of images (keyed by their chain of layer directories: one chain is one
/// image on this host) and of containers that changed their databases (keyed by the
/// writable layer, valid while those database files are unchanged). `Send + Sync`.
#[derive(Debug, Default)]
pub struct OwnerCache {
    images: Mutex<Lru<Vec<PathBuf>, Arc<OwnerIndex>>>,
    containers: Mutex<Lru<PathBuf, (Stamp, Arc<OwnerIndex>)>>,
    options: LayerOptions,
}

impl OwnerCache {
    pub fn new(options: LayerOptions) -> OwnerCache {
        OwnerCache {
            options,
            ..OwnerCache::default()
        }
    }

    /// The image's index: its own package databases, as the image shipped them.
    pub fn image(&self, layers: &OverlayLayers) -> Arc<OwnerIndex> {
        if let Some(ix) = lock(&self.images).get(&layers.lowers) {
            return ix;
        }
        let ix = Arc::new(read_owner_index(&layers.lowers, self.options));
        lock(&self.images).put(layers.lowers.clone(), ix.clone(), IMAGE_ENTRIES);
        ix
    }

    /// The container's index: the image's while the container has not written a package
    /// database, else one read from its merged view (what `dpkg -i` recorded there).
    pub fn container(&self, layers: &OverlayLayers) -> Arc<OwnerIndex> {
        let stamp = upper_stamp(&layers.upper);
        if stamp.iter().all(Option::is_none) {
            return self.image(layers);
        }
        if let Some((s, ix)) = lock(&self.containers).get(&layers.upper)
            && s == stamp
        {
            return ix;
        }
        let roots = merged_roots(layers);
        let ix = Arc::new(read_owner_index(&roots, self.options));
        lock(&self.containers).put(layers.upper.clone(), (stamp, ix.clone()), CONTAINER_ENTRIES);
        ix
    }
}

/// Size, ctime and inode of each database file in the writable layer (`None`: not there).
fn upper_stamp(upper: &Path) -> Stamp {
    let Ok(root) = driftwatch_fs::Root::layer("", upper) else {
        return vec![None; DATABASE_FILES.len()];
    };
    DATABASE_FILES
        .iter()
        .map(|p| {
            let st = root.stat(&driftwatch_fs::InContainer::new(p)).ok()?;
            #[expect(
                clippy::unnecessary_cast,
                reason = "stat field types differ between architectures"
            )]
            Some((
                st.st_size as u64,
                st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
                st.st_ino as u64,
            ))
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A small least-recently-used map (a handful of entries: a linear scan is cheapest).
#[derive(Debug)]
struct Lru<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Lru<K, V> {
    fn default() -> Self {
        Lru {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Lru<K, V> {
    fn get(&mut self, k: &K) -> Option<V> {
        let v = self.map.get(k)?.clone();
        self.order.retain(|o| o != k);
        self.order.push_back(k.clone());
        Some(v)
    }

    fn put(&mut self, k: K, v: V, cap: usize) {
        self.order.retain(|o| o != &k);
        self.order.push_back(k.clone());
        self.map.insert(k, v);
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_are_bottom_aligned_and_the_init_layer_is_none() {
        let ids: Vec<String> = ["sha256:a", "sha256:b", "sha256:c"]
            .map(String::from)
            .to_vec();
        // containerd: lowers = [c, b, a].
        assert_eq!(layer_diff_id(0, 3, &ids), Some("sha256:c"));
        assert_eq!(layer_diff_id(2, 3, &ids), Some("sha256:a"));
        // Docker: lowers = [init, c, b, a].
        assert_eq!(layer_diff_id(0, 4, &ids), None);
        assert_eq!(layer_diff_id(1, 4, &ids), Some("sha256:c"));
        assert_eq!(layer_diff_id(3, 4, &ids), Some("sha256:a"));
        // Unknown layouts and out-of-range indices.
        assert_eq!(layer_diff_id(0, 6, &ids), None);
        assert_eq!(layer_diff_id(4, 4, &ids), None);
        assert_eq!(layer_diff_id(0, 0, &[]), None);
    }

    /// The index reads the image's databases through the layers (upper layers hide lower
    /// copies), and the container's once it writes its own.
    #[test]
    fn image_and_container_indexes_from_layers() {
        let t = tempfile::tempdir().unwrap();
        let (upper, top, base) = (t.path().join("u"), t.path().join("l1"), t.path().join("l0"));
        let info = |root: &Path| root.join("var/lib/dpkg/info");
        for d in [&upper, &top, &base] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(info(&base)).unwrap();
        std::fs::create_dir_all(info(&upper)).unwrap();
        std::fs::write(
            base.join("var/lib/dpkg/status"),
            "Package: old\nStatus: install ok installed\nVersion: 1\n",
        )
        .unwrap();
        std::fs::write(info(&base).join("old.list"), "/usr/bin/old\n").unwrap();
        std::fs::create_dir_all(top.join("var/lib/dpkg")).unwrap();
        std::fs::write(
            top.join("var/lib/dpkg/status"),
            "Package: old\nStatus: install ok installed\nVersion: 2\n",
        )
        .unwrap();
        let layers = OverlayLayers {
            upper: upper.clone(),
            lowers: vec![top.clone(), base.clone()],
            merged: None,
        };
        let cache = OwnerCache::default();
        let img = cache.image(&layers);
        let o = img.owner("/usr/bin/old").unwrap();
        assert_eq!((o.package.as_str(), o.version.as_str()), ("old", "2"));
        assert!(Arc::ptr_eq(&img, &cache.image(&layers)));
        assert!(Arc::ptr_eq(&img, &cache.container(&layers)));
        // The container installs a package: its own index, rebuilt when the status changes.
        std::fs::create_dir_all(upper.join("var/lib/dpkg")).unwrap();
        std::fs::write(
            upper.join("var/lib/dpkg/status"),
            "Package: old\nStatus: install ok installed\nVersion: 2\n\n\
Package: new\nStatus: install ok installed\nVersion: 9\n",
        )
        .unwrap();
        std::fs::write(info(&upper).join("new.list"), "/usr/bin/new\n").unwrap();
        let c = cache.container(&layers);
        assert_eq!(c.owner("/usr/bin/new").unwrap().package, "new");
        assert_eq!(
            image_layer_of(&layers, "/var/lib/dpkg/status", LayerOptions::default()),
            Some(0)
        );
        assert_eq!(
            image_layer_of(
                &layers,
                "/var/lib/dpkg/info/old.list",
                LayerOptions::default()
            ),
            Some(1)
        );
        assert_eq!(
            image_layer_of(
                &layers,
                "/var/lib/dpkg/info/new.list",
                LayerOptions::default()
            ),
            None
        );
        assert_eq!(c.owner("/usr/bin/old").unwrap().package, "old");
        assert!(img.owner("/usr/bin/new").is_none());
        assert!(Arc::ptr_eq(&c, &cache.container(&layers)));
        // The package's digest against the file as the container has it.
        std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
        std::fs::write(upper.join("usr/bin/new"), "abc").unwrap();
        let mut o = c.owner("/usr/bin/new").unwrap();
        let opts = LayerOptions::default();
        assert_eq!(
            compare_with_package(&o, &layers, "/usr/bin/new", opts),
            PackageDigest::Unknown
        );
        o.digest = Some(crate::packages::FileDigest {
            algo: crate::packages::DigestAlgo::Md5,
            hex: "900150983cd24fb0d6963f7d28e17f72".into(),
        });
        assert_eq!(
            compare_with_package(&o, &layers, "/usr/bin/new", opts),
            PackageDigest::Match
        );
        std::fs::write(upper.join("usr/bin/new"), "abcd").unwrap();
        assert_eq!(
            compare_with_package(&o, &layers, "/usr/bin/new", opts),
            PackageDigest::Mismatch
        );
    }
}
