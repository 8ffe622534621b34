//! Test fixture: overlay layer directories built in a tempdir, with real whiteouts (mknod,
//! needs root) and opaque xattrs, so tests run the same code as on Docker's layers.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use driftwatch_model::OverlayLayers;
use rustix::fs::{CWD, FileType, Mode, XattrFlags};

/// Skips the calling test when not root, printing why; panics instead in CI.
macro_rules! require_root {
    () => {
        driftwatch_testkit::require!(Root("mknod for whiteouts, trusted.* xattrs"));
    };
}
pub(crate) use require_root;

pub use driftwatch_testkit::is_root;

/// Layers `upper`, `l0` (top-most lower), `l1`, ... in a tempdir.
pub struct FakeLayers {
    pub dir: tempfile::TempDir,
    pub layers: OverlayLayers,
}

/// Which layer a fixture call writes to.
#[derive(Clone, Copy, Debug)]
pub enum L {
    Upper,
    Lower(usize),
}

impl FakeLayers {
    pub fn new(lowers: usize) -> FakeLayers {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir(&upper).unwrap();
        let lowers: Vec<PathBuf> = (0..lowers)
            .map(|i| {
                let p = dir.path().join(format!("l{i}"));
                fs::create_dir(&p).unwrap();
                p
            })
            .collect();
        FakeLayers {
            dir,
            layers: OverlayLayers {
                upper,
                lowers,
                merged: None,
            },
        }
    }

    pub fn root(&self, l: L) -> &Path {
        match l {
            L::Upper => &self.layers.upper,
            L::Lower(i) => &self.layers.lowers[i],
        }
    }

    /// Host path of a container path (str or bytes) in a layer, parents created.
    pub fn host(&self, l: L, path: impl AsRef<OsStr>) -> PathBuf {
        let rel = path.as_ref().as_bytes().strip_prefix(b"/").unwrap();
        let p = self.root(l).join(OsStr::from_bytes(rel));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    pub fn file(&self, l: L, path: impl AsRef<OsStr>, content: &[u8], mode: u32) -> PathBuf {
        let p = self.host(l, path);
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    pub fn dir(&self, l: L, path: impl AsRef<OsStr>) -> PathBuf {
        let p = self.host(l, path);
        fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn symlink(&self, l: L, path: impl AsRef<OsStr>, target: impl AsRef<OsStr>) -> PathBuf {
        let p = self.host(l, path);
        std::os::unix::fs::symlink(Path::new(target.as_ref()), &p).unwrap();
        p
    }

    /// An overlay whiteout: character device 0/0.
    pub fn whiteout(&self, l: L, path: impl AsRef<OsStr>) -> PathBuf {
        let p = self.host(l, path);
        rustix::fs::mknodat(
            CWD,
            &p,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
        p
    }

    /// Marks a directory opaque with the given xattr (`trusted.overlay.opaque`, ...).
    pub fn opaque(&self, l: L, path: impl AsRef<OsStr>, xattr: &str) -> PathBuf {
        let p = self.dir(l, path);
        rustix::fs::setxattr(&p, xattr, b"y", XattrFlags::empty()).unwrap();
        p
    }

    /// Copies a lower file's bytes, mode and times to the upper dir: what overlay's copy-up does.
    pub fn copy_up(&self, from: L, path: impl AsRef<OsStr> + Copy) -> PathBuf {
        let src = self.host(from, path);
        let dst = self.host(L::Upper, path);
        fs::copy(&src, &dst).unwrap();
        let m = fs::metadata(&src).unwrap();
        let f = fs::File::options().write(true).open(&dst).unwrap();
        f.set_modified(m.modified().unwrap()).unwrap();
        dst
    }
}
