//! The opener against a directory with hostile contents, as a container would arrange them.

use std::os::unix::fs::symlink;

use super::*;

fn root_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    d
}

fn in_root(d: &tempfile::TempDir) -> Root {
    Root::open_host_dir("c0ffee", d.path(), Resolve::InRoot).unwrap()
}

fn beneath(d: &tempfile::TempDir) -> Root {
    Root::layer("c0ffee", d.path()).unwrap()
}

/// A file on the "host" (outside the root) that no read through a root may return.
fn host_secret() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"hostuser:x:4242:4242::/:/bin/sh\n").unwrap();
    f
}

fn mknod(path: &Path, kind: FileType, dev: u64) -> bool {
    match rustix::fs::mknodat(rustix::fs::CWD, path, kind, Mode::from_raw_mode(0o644), dev) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipping the device case: mknod {}: {e}", path.display());
            false
        }
    }
}

/// The error reading `path` below `r` with a cap of `cap` bytes.
fn read_err(r: &Root, path: &str, cap: u64) -> FsError {
    r.read(&path.into(), Limit::Whole(cap)).unwrap_err()
}

/// What kind of file a refusal names.
fn refused_as(e: &FsError) -> Option<&'static str> {
    match e {
        FsError::WrongType { kind, .. } => Some(kind),
        _ => None,
    }
}

#[test]
fn reads_a_plain_file_and_names_container_and_path_in_errors() {
    let d = root_dir();
    for r in [in_root(&d), beneath(&d)] {
        let text = r.read(&"/etc/passwd".into(), Limit::Whole(1024)).unwrap();
        assert_eq!(text, b"root:x:0:0::/root:/bin/sh\n");
        let e = read_err(&r, "/etc/missing", 1024);
        assert!(e.is_not_found(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("container c0ffee") && msg.contains("/etc/missing"),
            "{msg}"
        );
    }
}

#[test]
fn a_symlink_to_dev_zero_is_never_read() {
    let d = root_dir();
    std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
    symlink("/dev/zero", d.path().join("etc/passwd")).unwrap();
    // In root: /dev/zero is the container's, and this root has none.
    let e = read_err(&in_root(&d), "/etc/passwd", 1 << 20);
    assert!(e.is_not_found(), "{e}");
    // With the container's own /dev/zero device node: refused as a device, unopened.
    std::fs::create_dir(d.path().join("dev")).unwrap();
    if mknod(
        &d.path().join("dev/zero"),
        FileType::CharacterDevice,
        rustix::fs::makedev(1, 5),
    ) {
        let e = read_err(&in_root(&d), "/etc/passwd", 1 << 20);
        assert_eq!(refused_as(&e), Some("character device"), "{e}");
        assert!(e.to_string().contains("/etc/passwd"), "{e}");
    }
    // In a layer: no symlink is followed at all; the last one is a file of the layer.
    let e = read_err(&beneath(&d), "/etc/passwd", 1 << 20);
    assert_eq!(refused_as(&e), Some("symlink"), "{e}");
}

#[test]
fn an_absolute_symlink_to_a_host_file_resolves_in_the_container() {
    let d = root_dir();
    let secret = host_secret();
    std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
    symlink(secret.path(), d.path().join("etc/passwd")).unwrap();
    let e = read_err(&in_root(&d), "/etc/passwd", 1 << 20);
    assert!(e.is_not_found(), "read the host's file? {e}");
    // The same name inside the root is what it finds.
    let inside = d.path().join(secret.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(&inside, "ctr:x:4242:4242::/:/bin/sh\n").unwrap();
    let got = in_root(&d)
        .read(&"/etc/passwd".into(), Limit::Whole(1 << 20))
        .unwrap();
    assert_eq!(got, b"ctr:x:4242:4242::/:/bin/sh\n");
    let e = read_err(&beneath(&d), "/etc/passwd", 1 << 20);
    assert_eq!(refused_as(&e), Some("symlink"), "{e}");
}

#[test]
fn dot_dot_never_leaves_the_root() {
    let d = root_dir();
    let secret = host_secret();
    let ups = "../".repeat(64);
    let path = format!("/etc/{ups}{}", secret.path().display());
    // In root, `..` stops at the root: the host's file is not reached.
    let e = in_root(&d)
        .read(&path.as_str().into(), Limit::Whole(1 << 20))
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    // Beneath, leaving is an error.
    let e = beneath(&d)
        .read(&path.as_str().into(), Limit::Whole(1 << 20))
        .unwrap_err();
    assert!(e.is_escape(), "{e}");
    // A relative symlink climbing out resolves inside too.
    symlink(
        format!("../../../../../../../..{}", secret.path().display()),
        d.path().join("etc/group"),
    )
    .unwrap();
    let e = read_err(&in_root(&d), "/etc/group", 1 << 20);
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let d = root_dir();
    std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.path().join("etc/passwd"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    for r in [in_root(&d), beneath(&d)] {
        let e = read_err(&r, "/etc/passwd", 1 << 20);
        assert_eq!(refused_as(&e), Some("fifo"), "{e}");
    }
    let dir = rustix::fs::open(
        d.path().join("etc").as_path(),
        OFlags::RDONLY,
        Mode::empty(),
    )
    .unwrap();
    let e = open_entry(
        "c0ffee",
        dir.as_fd(),
        &d.path().join("etc"),
        "passwd".as_ref(),
    )
    .unwrap_err();
    assert_eq!(refused_as(&e), Some("fifo"), "{e}");
}

#[test]
fn a_socket_and_a_directory_are_not_files() {
    let d = root_dir();
    let sock = d.path().join("etc/sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let e = read_err(&in_root(&d), "/etc/sock", 10);
    assert_eq!(refused_as(&e), Some("socket"), "{e}");
    let e = read_err(&in_root(&d), "/etc", 10);
    assert_eq!(refused_as(&e), Some("directory"), "{e}");
    let e = in_root(&d).open_dir(&"/etc/passwd".into()).unwrap_err();
    assert!(matches!(e, FsError::WrongType { .. }), "{e}");
    let md = beneath(&d).metadata(&"/etc".into()).unwrap();
    assert!(md.is_dir());
    symlink("/", d.path().join("etc/up")).unwrap();
    let md = beneath(&d).metadata(&"/etc/up".into()).unwrap();
    assert!(md.file_type().is_symlink(), "lstat semantics beneath");
    let e = beneath(&d).metadata(&"/etc/up/etc".into()).unwrap_err();
    assert!(e.is_escape(), "{e}");
    let etc = in_root(&d).open_dir(&"/etc".into()).unwrap();
    assert!(etc.read(&"passwd".into(), Limit::Whole(100)).is_ok());
}

#[test]
fn a_block_device_is_refused() {
    let d = root_dir();
    let p = d.path().join("etc/disk");
    if mknod(&p, FileType::BlockDevice, rustix::fs::makedev(7, 0)) {
        let e = read_err(&beneath(&d), "/etc/disk", 10);
        assert_eq!(refused_as(&e), Some("block device"), "{e}");
    }
}

#[test]
fn a_huge_sparse_file_is_capped() {
    let d = root_dir();
    let f = std::fs::File::create(d.path().join("etc/huge")).unwrap();
    f.set_len(1 << 40).unwrap();
    let r = in_root(&d);
    let e = read_err(&r, "/etc/huge", SMALL_FILE_CAP);
    assert!(
        matches!(e, FsError::TooBig { cap, .. } if cap == SMALL_FILE_CAP),
        "{e}"
    );
    assert!(e.to_string().contains("/etc/huge"), "{e}");
    let prefix = r.read(&"/etc/huge".into(), Limit::Prefix(4096)).unwrap();
    assert_eq!(prefix.len(), 4096);
    // Exactly at the cap is fine.
    std::fs::write(d.path().join("etc/exact"), [7u8; 100]).unwrap();
    assert_eq!(
        r.read(&"/etc/exact".into(), Limit::Whole(100))
            .unwrap()
            .len(),
        100
    );
    assert!(r.read(&"/etc/exact".into(), Limit::Whole(99)).is_err());
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_followed_out() {
    let d = root_dir();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(
        host.path().join("passwd"),
        "hostuser:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    // The container replaces /etc by a symlink to a host directory.
    std::fs::remove_dir_all(d.path().join("etc")).unwrap();
    symlink(host.path(), d.path().join("etc")).unwrap();
    let e = read_err(&in_root(&d), "/etc/passwd", 1 << 20);
    assert!(e.is_not_found(), "{e}");
    let e = read_err(&beneath(&d), "/etc/passwd", 1 << 20);
    assert!(e.is_escape(), "{e}");
    let e = beneath(&d).open_dir(&"/etc".into()).unwrap_err();
    assert!(
        e.is_escape() || matches!(e, FsError::WrongType { .. }),
        "{e}"
    );
    // A directory opened before the swap keeps reading the container's own directory.
    let d2 = root_dir();
    let etc = beneath(&d2).open_dir(&"/etc".into()).unwrap();
    std::fs::rename(d2.path().join("etc"), d2.path().join("etc.old")).unwrap();
    symlink(host.path(), d2.path().join("etc")).unwrap();
    let got = etc.read(&"passwd".into(), Limit::Whole(1 << 20)).unwrap();
    assert_eq!(got, b"root:x:0:0::/root:/bin/sh\n");
}

#[test]
fn magic_links_are_not_followed() {
    let d = root_dir();
    // A container's /proc/self/root style link, pointing at the host's root.
    symlink(
        "/proc/self/root/etc/hostname",
        d.path().join("etc/hostname"),
    )
    .unwrap();
    let root = Root::open_host_dir("c0ffee", "/", Resolve::InRoot).unwrap();
    let e = root
        .read(&"/proc/self/root/etc/hostname".into(), Limit::Whole(100))
        .unwrap_err();
    assert!(e.is_escape(), "{e}");
}

#[test]
fn escaped_names_cannot_forge_lines() {
    let p = InContainer::new(OsString::from_vec(b"/etc/a\nb\xff".to_vec()));
    assert_eq!(p.to_string(), "/etc/a\\nb\\xff");
    assert_eq!(p.join("c").to_string(), "/etc/a\\nb\\xff/c");
    assert_eq!(InContainer::from("etc/passwd").to_string(), "/etc/passwd");
}
