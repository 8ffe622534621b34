//! Scenarios for the judge on fake layers: what a container did, then what we must say.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use driftwatch_model::Verdict;

use super::*;
use crate::fake_layers::{FakeLayers, L, require_root};

const TRUE_ELF: &[u8] = b"\x7fELF true binary";

/// A Debian-like image: `/bin -> usr/bin`, `/usr/bin/true`, `/usr/bin/dash`, `/etc/conf`.
fn debian() -> FakeLayers {
    let f = FakeLayers::new(2);
    f.symlink(L::Lower(1), "/bin", "usr/bin");
    f.symlink(L::Lower(1), "/lib64", "usr/lib64");
    f.file(L::Lower(1), "/usr/bin/true", TRUE_ELF, 0o755);
    f.file(L::Lower(1), "/usr/bin/dash", b"\x7fELF dash", 0o755);
    f.file(
        L::Lower(1),
        "/usr/lib64/ld-linux-x86-64.so.2",
        b"\x7fELF ld",
        0o755,
    );
    f.file(L::Lower(0), "/etc/conf", b"a=1\n", 0o644);
    f.file(L::Lower(1), "/etc/conf", b"shadowed by l0\n", 0o644);
    f
}

fn judge(f: &FakeLayers, path: &str) -> Result<Judgement, JudgeError> {
    Judge::new().judge(&f.layers, path)
}

#[test]
fn image_file_through_symlinked_bin() {
    let f = debian();
    let j = judge(&f, "/bin/true").unwrap();
    assert_eq!(j.verdict, Verdict::Image);
    assert_eq!(j.resolved_path, "/usr/bin/true");
    assert_eq!(
        (j.hash, j.image_hash, j.metadata_change),
        (None, None, None)
    );
    let j = judge(&f, "/lib64/ld-linux-x86-64.so.2").unwrap();
    assert_eq!(
        (j.verdict, j.resolved_path.as_str()),
        (Verdict::Image, "/usr/lib64/ld-linux-x86-64.so.2")
    );
    // `.`, `..` and repeated slashes resolve physically.
    let j = judge(&f, "//usr/./lib64/../bin//dash").unwrap();
    assert_eq!(j.resolved_path, "/usr/bin/dash");
}

#[test]
fn top_most_lower_wins() {
    let f = debian();
    let j = judge(&f, "/etc/conf").unwrap();
    assert_eq!((j.verdict, j.size), (Verdict::Image, 4));
}

#[test]
fn touch_copies_up_without_drift() {
    let f = debian();
    let up = f.copy_up(L::Lower(1), "/usr/bin/true");
    fs::File::options()
        .write(true)
        .open(&up)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let j = judge(&f, "/bin/true").unwrap();
    assert_eq!(j.verdict, Verdict::CopyUp);
    assert_eq!(
        j.hash.as_deref(),
        Some(blake3::hash(TRUE_ELF).to_hex().as_str())
    );
    assert_eq!(j.hash, j.image_hash);
    let m = j.metadata_change.expect("mtime changed");
    assert!(m.mtime_ns.is_some());
    assert!(!m.mode_or_owner());
    assert_eq!(m.fields(), ["times"]);
}

#[test]
fn chmod_copies_up_and_reports_the_mode() {
    let f = debian();
    let up = f.copy_up(L::Lower(1), "/usr/bin/true");
    fs::set_permissions(&up, fs::Permissions::from_mode(0o4777)).unwrap();
    let j = judge(&f, "/usr/bin/true").unwrap();
    assert_eq!(j.verdict, Verdict::CopyUp);
    let m = j.metadata_change.unwrap();
    assert_eq!(
        m.mode,
        Some(Change {
            image: 0o755,
            current: 0o4777
        })
    );
    assert_eq!(m.fields(), ["mode"]);
    // Executable in the image already: more bits are not "made executable".
    assert_eq!(j.made_executable(), None);
}

#[test]
fn a_data_file_made_executable_says_so_with_both_modes() {
    let f = debian();
    let up = f.copy_up(L::Lower(0), "/etc/conf");
    fs::set_permissions(&up, fs::Permissions::from_mode(0o744)).unwrap();
    let j = judge(&f, "/etc/conf").unwrap();
    assert_eq!(j.verdict, Verdict::CopyUp);
    assert_eq!(
        j.made_executable(),
        Some(Change {
            image: 0o644,
            current: 0o744
        })
    );
    assert_eq!(
        j.made_executable().unwrap().mode_words(),
        "mode 0644 -> 0744"
    );
    // Changed bytes are `modified`, whatever the mode.
    fs::write(&up, b"a=2\n").unwrap();
    let j = judge(&f, "/etc/conf").unwrap();
    assert_eq!((j.verdict, j.made_executable()), (Verdict::Modified, None));
}

#[test]
fn same_size_different_bytes_is_modified_with_both_hashes() {
    let f = debian();
    let evil = b"\x7fELF evil binary";
    assert_eq!(evil.len(), TRUE_ELF.len());
    f.file(L::Upper, "/usr/bin/true", evil, 0o755);
    let j = judge(&f, "/bin/true").unwrap();
    assert_eq!(j.verdict, Verdict::Modified);
    assert_eq!(
        j.hash.as_deref(),
        Some(blake3::hash(evil).to_hex().as_str())
    );
    assert_eq!(
        j.image_hash.as_deref(),
        Some(blake3::hash(TRUE_ELF).to_hex().as_str())
    );
}

#[test]
fn size_change_is_modified_without_hashing_the_image_file() {
    let f = debian();
    f.file(L::Upper, "/usr/bin/dash", b"\x7fELF dash\nx\n", 0o755);
    let judge = Judge::new();
    let j = judge.judge(&f.layers, "/bin/dash").unwrap();
    assert_eq!(j.verdict, Verdict::Modified);
    assert!(j.hash.is_some());
    assert_eq!(j.image_hash, None);
    assert_eq!(
        judge.hashes().computed(),
        1,
        "only the upper file was hashed"
    );
}

#[test]
fn new_file_is_added() {
    let f = debian();
    f.file(L::Upper, "/tmp/x", TRUE_ELF, 0o755);
    let j = judge(&f, "/tmp/x").unwrap();
    assert_eq!(j.verdict, Verdict::Added);
    assert_eq!(
        j.hash.as_deref(),
        Some(blake3::hash(TRUE_ELF).to_hex().as_str())
    );
    assert_eq!((j.image_hash, j.metadata_change), (None, None));
}

#[test]
fn upper_symlink_to_an_image_file_runs_image_bytes() {
    let f = debian();
    f.symlink(L::Upper, "/usr/local/bin/t", "/bin/true");
    let j = judge(&f, "/usr/local/bin/t").unwrap();
    assert_eq!(
        (j.verdict, j.resolved_path.as_str()),
        (Verdict::Image, "/usr/bin/true")
    );
}

#[test]
fn regular_file_over_an_image_symlink_is_modified() {
    let f = debian();
    f.symlink(L::Lower(1), "/usr/bin/sh", "dash");
    f.file(L::Upper, "/usr/bin/sh", b"#!/evil\n", 0o755);
    let j = judge(&f, "/usr/bin/sh").unwrap();
    assert_eq!((j.verdict, j.image_hash), (Verdict::Modified, None));
}

#[test]
fn whiteout_hides_the_image_file() {
    require_root!();
    let f = debian();
    f.whiteout(L::Upper, "/usr/bin/dash");
    assert!(matches!(
        judge(&f, "/bin/dash"),
        Err(JudgeError::NotFound { .. })
    ));
    // A whiteout in the top-most lower hides the file below it too.
    let f = debian();
    f.whiteout(L::Lower(0), "/usr/bin/dash");
    assert!(judge(&f, "/usr/bin/dash").unwrap_err().is_not_found());
}

#[test]
fn whiteout_of_a_directory_then_recreated_is_added() {
    require_root!();
    let f = debian();
    f.file(L::Lower(1), "/opt/app/run", b"image app", 0o755);
    f.whiteout(L::Upper, "/opt");
    assert!(judge(&f, "/opt/app/run").unwrap_err().is_not_found());

    // rm -rf /opt; mkdir -p /opt/app; cp evil /opt/app/run: overlay makes /opt opaque.
    let f = debian();
    f.file(L::Lower(1), "/opt/app/run", b"image app", 0o755);
    f.opaque(L::Upper, "/opt", "trusted.overlay.opaque");
    f.file(L::Upper, "/opt/app/run", b"image app", 0o755);
    let j = judge(&f, "/opt/app/run").unwrap();
    assert_eq!(
        j.verdict,
        Verdict::Added,
        "same bytes, but the image's file was deleted"
    );
}

#[test]
fn opaque_directory_in_a_lower_hides_lower_layers_only_below_it() {
    require_root!();
    let f = debian();
    f.file(L::Lower(1), "/srv/a", b"old", 0o644);
    f.opaque(L::Lower(0), "/srv", "trusted.overlay.opaque");
    f.file(L::Lower(0), "/srv/b", b"new", 0o644);
    assert!(judge(&f, "/srv/a").unwrap_err().is_not_found());
    assert_eq!(judge(&f, "/srv/b").unwrap().verdict, Verdict::Image);
}

#[test]
fn user_opaque_is_honoured_only_with_userxattr() {
    require_root!();
    let f = debian();
    f.opaque(L::Upper, "/etc", "user.overlay.opaque");
    f.file(L::Upper, "/etc/conf", b"a=1\n", 0o644);
    // A normal mount ignores user.overlay.*: any container process may set it.
    assert_eq!(judge(&f, "/etc/conf").unwrap().verdict, Verdict::CopyUp);
    let rootless = Judge::with_options(
        LayerOptions {
            userxattr: true,
            ..LayerOptions::default()
        },
        16,
    );
    assert_eq!(
        rootless.judge(&f.layers, "/etc/conf").unwrap().verdict,
        Verdict::Added
    );
}

#[test]
fn aufs_whiteouts_only_when_asked() {
    let f = debian();
    f.file(L::Lower(0), "/usr/bin/.wh.dash", b"", 0o644);
    assert_eq!(judge(&f, "/bin/dash").unwrap().verdict, Verdict::Image);
    let aufs = Judge::with_options(
        LayerOptions {
            aufs_whiteouts: true,
            ..LayerOptions::default()
        },
        16,
    );
    assert!(
        aufs.judge(&f.layers, "/bin/dash")
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        aufs.judge(&f.layers, "/usr/bin/.wh.dash")
            .unwrap_err()
            .is_not_found()
    );

    let f = debian();
    f.file(L::Lower(1), "/etc/only-l1", b"", 0o644);
    assert!(judge(&f, "/etc/only-l1").is_ok());
    f.file(L::Lower(0), "/etc/.wh..wh..opq", b"", 0o644);
    let hidden = aufs.judge(&f.layers, "/etc/only-l1");
    assert!(hidden.unwrap_err().is_not_found(), "l0's /etc is opaque");
    assert_eq!(aufs.judge(&f.layers, "/etc/conf").unwrap().size, 4);
}

#[test]
fn symlink_loops_are_bounded() {
    let f = debian();
    f.symlink(L::Lower(1), "/loop1", "loop2");
    f.symlink(L::Upper, "/loop2", "/loop1");
    f.symlink(L::Upper, "/self", "self/x");
    for p in ["/loop1", "/loop2/x", "/self"] {
        let e = judge(&f, p).unwrap_err();
        assert!(matches!(e, JudgeError::SymlinkLoop { .. }), "{p}: {e}");
        assert!(e.to_string().contains("too many levels"), "{e}");
    }
    // 40 hops are fine, 41 are not.
    for i in 0..40 {
        f.symlink(L::Upper, format!("/chain/{i}"), format!("{}", i + 1));
    }
    f.symlink(L::Upper, "/chain/40", "/usr/bin/true");
    assert!(judge(&f, "/chain/1").is_ok());
    assert!(matches!(
        judge(&f, "/chain/0"),
        Err(JudgeError::SymlinkLoop { .. })
    ));
}

#[test]
fn symlinks_cannot_leave_the_container_root() {
    let f = debian();
    // On the host, upper/../../../etc/passwd exists; in the container it is /etc/passwd.
    f.symlink(L::Upper, "/escape", "../../../../../../etc/passwd");
    f.symlink(L::Upper, "/abs", "/etc/passwd");
    for p in ["/escape", "/abs", "/../../etc/passwd"] {
        assert!(judge(&f, p).unwrap_err().is_not_found(), "{p}");
    }
    let j = judge(&f, "/../../../bin/true").unwrap();
    assert_eq!(j.resolved_path, "/usr/bin/true");
}

#[test]
fn missing_and_non_regular_files() {
    let f = debian();
    let e = judge(&f, "/usr/bin/nope").unwrap_err();
    assert!(matches!(e, JudgeError::NotFound { .. }));
    assert_eq!(
        e.to_string(),
        "/usr/bin/nope: no such file in the container's layers"
    );
    assert!(matches!(
        judge(&f, "/usr/bin/true/x"),
        Err(JudgeError::NotADirectory { .. })
    ));
    assert!(matches!(
        judge(&f, "/usr/bin"),
        Err(JudgeError::NotRegularFile {
            kind: "directory",
            ..
        })
    ));
    assert!(matches!(
        judge(&f, "bin/true"),
        Err(JudgeError::NotAbsolute { .. })
    ));
    assert!(matches!(judge(&f, "/bin/\0"), Err(JudgeError::Io(_))));
}

#[test]
fn a_vanished_layer_is_an_error_naming_it() {
    let mut f = debian();
    f.layers.lowers.push(f.dir.path().join("gone"));
    let e = judge(&f, "/bin/true").unwrap_err();
    assert!(
        matches!(
            e,
            JudgeError::Io(crate::LayerIoError {
                op: "open layer",
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("/gone"), "{e}");
}

#[test]
fn hostile_names() {
    let f = debian();
    let name = OsStr::from_bytes(b"/tmp/a\nb\xff c");
    f.file(L::Upper, name, b"x", 0o755);
    let j = Judge::new()
        .judge(&f.layers, std::path::Path::new(name))
        .unwrap();
    assert_eq!(j.verdict, Verdict::Added);
    assert_eq!(j.resolved.as_bytes(), name.as_bytes());
    assert_eq!(j.resolved.to_string(), "/tmp/a\\nb\\xff c");
    assert_eq!(j.resolved_path, "/tmp/a\nb\u{fffd} c");
    let e = judge(&f, "/tmp/evil\nline").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/tmp/evil\\nline: no such file in the container's layers"
    );
    assert_eq!(e.to_string().lines().count(), 1);
}

#[test]
fn an_unchanged_file_is_hashed_once() {
    let f = debian();
    f.copy_up(L::Lower(1), "/usr/bin/true");
    let judge = Judge::new();
    for _ in 0..5 {
        assert_eq!(
            judge.judge(&f.layers, "/bin/true").unwrap().verdict,
            Verdict::CopyUp
        );
    }
    assert_eq!(
        judge.hashes().computed(),
        2,
        "upper and image file, once each"
    );
    // A write changes the key: hashed again, and now modified.
    let up = f.host(L::Upper, "/usr/bin/true");
    fs::write(&up, b"\x7fELF evil binary").unwrap();
    assert_eq!(
        judge.judge(&f.layers, "/bin/true").unwrap().verdict,
        Verdict::Modified
    );
    assert_eq!(judge.hashes().computed(), 3);
}

#[test]
fn nothing_is_written_to_the_layers() {
    let f = debian();
    f.copy_up(L::Lower(1), "/usr/bin/true");
    let atime = |p: &std::path::Path| fs::metadata(p).unwrap().accessed().unwrap();
    let lower = f.host(L::Lower(1), "/usr/bin/true");
    // Make atime updates observable (relatime would update an atime older than mtime).
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
    fs::File::options()
        .write(true)
        .open(&lower)
        .unwrap()
        .set_times(fs::FileTimes::new().set_accessed(old).set_modified(old))
        .unwrap();
    Judge::new().judge(&f.layers, "/bin/true").unwrap();
    if crate::fake_layers::is_root() {
        // O_NOATIME needs ownership or CAP_FOWNER.
        assert_eq!(
            atime(&lower),
            old,
            "reading must not update the access time"
        );
    }
}

#[test]
fn judge_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Judge>();
}

/// `setcap cap_net_bind_service+ep`: a v2 `security.capability` value.
pub(crate) fn set_net_bind_cap(p: &std::path::Path) {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    v.extend_from_slice(&(1u32 << 10).to_le_bytes());
    v.extend_from_slice(&[0u8; 12]);
    rustix::fs::setxattr(
        p,
        "security.capability",
        &v,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

#[test]
fn setcap_on_an_image_binary_is_a_metadata_change() {
    require_root!();
    let f = debian();
    let up = f.copy_up(L::Lower(1), "/usr/bin/true");
    set_net_bind_cap(&up);
    let j = judge(&f, "/bin/true").unwrap();
    assert_eq!(j.verdict, Verdict::CopyUp);
    let m = j.metadata_change.unwrap();
    assert!(m.capabilities && m.mode_or_owner());
    assert_eq!(m.fields(), ["capabilities"]);
}
