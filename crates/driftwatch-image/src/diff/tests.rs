//! Scenarios for the diff on fake layers: what a container did, then every line we report.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use super::*;
use crate::ExecKind;
use crate::fake_layers::{FakeLayers, L, require_root};

fn old() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000)
}

fn set_mtime(p: &std::path::Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// A small image: `/bin -> usr/bin`, binaries, docs, config, a dpkg database.
fn image() -> FakeLayers {
    let f = FakeLayers::new(2);
    f.symlink(L::Lower(1), "/bin", "usr/bin");
    f.file(L::Lower(1), "/usr/bin/true", b"\x7fELF true binary", 0o755);
    f.file(L::Lower(1), "/usr/bin/dash", b"\x7fELF dash", 0o755);
    f.file(L::Lower(1), "/usr/bin/who", b"\x7fELF who", 0o755);
    f.file(L::Lower(1), "/usr/share/doc/a/copyright", b"a", 0o644);
    f.file(L::Lower(1), "/usr/share/doc/b/copyright", b"b", 0o644);
    f.file(L::Lower(1), "/usr/share/man/man1/ls.1", b"ls", 0o644);
    f.file(L::Lower(0), "/etc/motd", b"hello\n", 0o644);
    f.dir(L::Lower(1), "/tmp");
    for p in [
        "/usr/bin/true",
        "/usr/bin/dash",
        "/usr/bin/who",
        "/etc/motd",
    ] {
        let l = if p == "/etc/motd" {
            L::Lower(0)
        } else {
            L::Lower(1)
        };
        set_mtime(&f.host(l, p), old());
    }
    f
}

fn run(f: &FakeLayers) -> Diff {
    Differ::new(&f.layers).run().unwrap()
}

/// `(docker, change, path)` lines, sorted by path.
fn lines(d: &Diff) -> Vec<String> {
    d.files
        .iter()
        .map(|f| {
            let docker = f.docker.map(|c| c.as_char()).unwrap_or('-');
            format!("{docker} {:9} {}", f.change.as_str(), f.path)
        })
        .collect()
}

fn get<'a>(d: &'a Diff, path: &str) -> &'a FileDiff {
    d.files
        .iter()
        .find(|f| f.path.as_bytes() == path.as_bytes())
        .unwrap_or_else(|| panic!("{path} not in {:#?}", lines(d)))
}

#[test]
fn an_untouched_container_has_no_changes() {
    let f = image();
    let d = run(&f);
    assert!(d.files.is_empty(), "{:?}", lines(&d));
    assert!(!d.drifted());
}

#[test]
fn added_files_and_directories() {
    let f = image();
    f.dir(L::Upper, "/tmp");
    f.file(L::Upper, "/tmp/x", b"#!/bin/sh\necho hi\n", 0o755);
    f.file(L::Upper, "/opt/a/b/c", b"c", 0o644);
    let d = run(&f);
    assert_eq!(
        lines(&d),
        [
            "A added     /opt",
            "A added     /opt/a",
            "A added     /opt/a/b",
            "A added     /opt/a/b/c",
            "C modified  /tmp",
            "A added     /tmp/x",
        ]
    );
    let x = get(&d, "/tmp/x");
    assert_eq!(x.class.executable, Some(ExecKind::Script));
    assert_eq!(
        x.hash.as_deref(),
        Some(blake3::hash(b"#!/bin/sh\necho hi\n").to_hex().as_str())
    );
    assert_eq!(x.size, Some(18));
    assert!(d.drifted());
}

#[test]
fn copy_ups_touch_chmod_and_real_modifications() {
    let f = image();
    // chmod to the same mode: copied up, nothing differs. docker lists nothing either.
    f.copy_up(L::Lower(1), "/usr/bin/true");
    // touch: only the time.
    let dash = f.copy_up(L::Lower(1), "/usr/bin/dash");
    set_mtime(&dash, SystemTime::now());
    // same size, same mtime, other bytes: docker cannot see it; we do.
    let who = f.file(L::Upper, "/usr/bin/who", b"\x7fELF WHO", 0o755);
    set_mtime(&who, old());
    // appended.
    f.file(L::Upper, "/etc/motd", b"hello\nx\n", 0o644);
    let d = run(&f);
    assert_eq!(
        lines(&d),
        [
            "C modified  /etc",
            "C modified  /etc/motd",
            "C modified  /usr",
            "C modified  /usr/bin",
            "C metadata  /usr/bin/dash",
            "- unchanged /usr/bin/true",
            "- modified  /usr/bin/who",
        ]
    );
    assert_eq!(
        get(&d, "/usr/bin/dash").metadata.unwrap().fields(),
        ["times"]
    );
    let t = get(&d, "/usr/bin/true");
    assert_eq!(t.hash, t.image_hash);
    let who = get(&d, "/usr/bin/who");
    assert!(who.image_hash.is_some() && who.hash != who.image_hash);
    let motd = get(&d, "/etc/motd");
    assert!(motd.class.config);
    assert_eq!(
        motd.image_hash, None,
        "size differs: the image file is not hashed"
    );
}

#[test]
fn mode_and_owner_changes() {
    let f = image();
    let t = f.copy_up(L::Lower(1), "/usr/bin/true");
    fs::set_permissions(&t, fs::Permissions::from_mode(0o4755)).unwrap();
    let d = run(&f);
    let t = get(&d, "/usr/bin/true");
    assert_eq!(
        (t.change, t.docker),
        (ChangeKind::Metadata, Some(DockerChange::C))
    );
    assert_eq!(t.metadata.unwrap().fields(), ["mode"]);
    if crate::fake_layers::is_root() {
        let f = image();
        let t = f.copy_up(L::Lower(1), "/usr/bin/true");
        std::os::unix::fs::lchown(&t, Some(1000), Some(1000)).unwrap();
        let d = run(&f);
        assert_eq!(
            get(&d, "/usr/bin/true").metadata.unwrap().fields(),
            ["owner"]
        );
    }
}

#[test]
fn whiteouts_and_opaque_directories() {
    require_root!();
    let f = image();
    f.whiteout(L::Upper, "/usr/bin/who");
    f.whiteout(L::Upper, "/usr/share/man");
    f.whiteout(L::Upper, "/usr/share/never-there");
    // rm -rf /usr/share/doc; mkdir /usr/share/doc; echo > /usr/share/doc/new
    f.opaque(L::Upper, "/usr/share/doc", "trusted.overlay.opaque");
    f.file(L::Upper, "/usr/share/doc/new", b"n", 0o644);
    let d = run(&f);
    assert_eq!(
        lines(&d),
        [
            "C modified  /usr",
            "C modified  /usr/bin",
            "D deleted   /usr/bin/who",
            "C modified  /usr/share",
            "C modified  /usr/share/doc",
            "D deleted   /usr/share/doc/a",
            "- deleted   /usr/share/doc/a/copyright",
            "D deleted   /usr/share/doc/b",
            "- deleted   /usr/share/doc/b/copyright",
            "A added     /usr/share/doc/new",
            "D deleted   /usr/share/man",
            "- deleted   /usr/share/man/man1",
            "- deleted   /usr/share/man/man1/ls.1",
        ]
    );
    let ls1 = get(&d, "/usr/share/man/man1/ls.1");
    assert_eq!(
        ls1.deleted_with.as_ref().unwrap().to_string(),
        "/usr/share/man"
    );
    assert_eq!(get(&d, "/usr/share/doc/a/copyright").size, Some(1));

    let no_expand = Differ::new(&f.layers)
        .options(DiffOptions {
            expand_deleted: false,
            ..DiffOptions::default()
        })
        .run()
        .unwrap();
    assert!(no_expand.files.iter().all(|f| f.deleted_with.is_none()));
    assert_eq!(no_expand.docker_view(), d.docker_view());
}

#[test]
fn type_changes() {
    let f = image();
    // A directory where the image has a file, a file where it has a directory.
    f.file(L::Upper, "/usr/bin/who/inside", b"i", 0o644);
    f.file(L::Upper, "/usr/share/doc", b"now a file", 0o644);
    let d = run(&f);
    let who = get(&d, "/usr/bin/who");
    assert_eq!(
        (who.change, who.kind, who.image_kind),
        (ChangeKind::Modified, FileKind::Dir, Some(FileKind::File))
    );
    assert_eq!(get(&d, "/usr/bin/who/inside").docker, Some(DockerChange::A));
    let doc = get(&d, "/usr/share/doc");
    assert_eq!(
        (doc.change, doc.kind, doc.image_kind),
        (ChangeKind::Modified, FileKind::File, Some(FileKind::Dir))
    );
    let gone = get(&d, "/usr/share/doc/a/copyright");
    assert_eq!((gone.change, gone.docker), (ChangeKind::Deleted, None));
}

#[test]
fn symlinks_special_files_and_loops() {
    let f = image();
    f.symlink(L::Upper, "/bin", "/tmp/evil");
    f.symlink(L::Upper, "/tmp/loop", "loop");
    f.dir(L::Upper, "/tmp");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        f.host(L::Upper, "/tmp/fifo"),
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(f.host(L::Upper, "/tmp/sock")).unwrap();
    let d = run(&f);
    let bin = get(&d, "/bin");
    assert_eq!(
        (bin.change, bin.kind),
        (ChangeKind::Modified, FileKind::Symlink)
    );
    assert_eq!(
        bin.symlink_target.as_ref().unwrap().to_string(),
        "/tmp/evil"
    );
    assert_eq!(get(&d, "/tmp/loop").kind, FileKind::Symlink);
    assert_eq!(get(&d, "/tmp/fifo").kind, FileKind::Fifo);
    assert_eq!(get(&d, "/tmp/sock").kind, FileKind::Socket);
    if crate::fake_layers::is_root() {
        let f = image();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.host(L::Upper, "/tmp/null"),
            rustix::fs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        let d = run(&f);
        assert_eq!(get(&d, "/tmp/null").kind, FileKind::CharDevice);
    }
}

#[test]
fn hostile_names_are_exact_in_json() {
    let f = image();
    let name = std::ffi::OsStr::from_bytes(b"/tmp/a\nb\xff\\\"c");
    let utf8 = std::ffi::OsStr::from_bytes("/tmp/t\tq\"b\\e\u{1b}[31m\u{1F600}".as_bytes());
    f.file(L::Upper, name, b"x", 0o644);
    f.file(L::Upper, utf8, b"y", 0o644);
    let d = run(&f);
    let v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    let files = v["files"].as_array().unwrap();
    let entry = |bytes: &[u8]| {
        files
            .iter()
            .find(|e| driftwatch_model::name::decode_name(e, "path").unwrap() == bytes)
            .unwrap_or_else(|| panic!("{:?} not in {files:?}", bytes.escape_ascii().to_string()))
    };
    let bad = entry(name.as_bytes());
    assert_eq!(bad["path"], "/tmp/a\nb\u{FFFD}\\\"c");
    assert_eq!(bad["path_b64"], "L3RtcC9hCmL/XCJj");
    assert_eq!(bad["change"], "added");
    assert!(bad.get("escaped").is_none(), "{bad}");
    let good = entry(utf8.as_bytes());
    assert_eq!(good["path"], "/tmp/t\tq\"b\\e\u{1b}[31m\u{1F600}");
    assert!(good.get("path_b64").is_none(), "{good}");
}

#[test]
fn very_long_paths() {
    let f = image();
    let component = "d".repeat(200);
    let deep: String = (0..40).map(|_| format!("/{component}")).collect();
    // Longer than PATH_MAX: create it step by step relative to the parent.
    let mut dir = fs::File::open(&f.layers.upper).unwrap();
    for _ in 0..40 {
        rustix::fs::mkdirat(&dir, component.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = fs::File::from(
            rustix::fs::openat(
                &dir,
                component.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap(),
        );
    }
    let fd = rustix::fs::openat(
        &dir,
        "leaf",
        OFlags::CREATE | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    drop(fd);
    let d = run(&f);
    let leaf = format!("{deep}/leaf");
    assert!(leaf.len() > 8000);
    assert_eq!(get(&d, &leaf).change, ChangeKind::Added);
    assert_eq!(d.files.len(), 41);
}

#[test]
fn package_databases() {
    let f = image();
    let status = |pkgs: &[(&str, &str)]| {
        pkgs.iter()
            .map(|(n, v)| format!("Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"))
            .collect::<String>()
    };
    f.file(
        L::Lower(1),
        "/var/lib/dpkg/status",
        status(&[("bash", "5.2"), ("curl", "7.88"), ("gone", "1")]).as_bytes(),
        0o644,
    );
    f.file(
        L::Upper,
        "/var/lib/dpkg/status",
        status(&[("bash", "5.2"), ("curl", "8.0"), ("nmap", "7.93")]).as_bytes(),
        0o644,
    );
    let site = "/usr/lib/python3/dist-packages";
    f.file(
        L::Lower(1),
        format!("{site}/requests-2.28.1.dist-info/METADATA"),
        b"Name: requests\nVersion: 2.28.1\n",
        0o644,
    );
    f.file(
        L::Lower(1),
        format!("{site}/six-1.16.0.dist-info/METADATA"),
        b"Name: six\nVersion: 1.16.0\n",
        0o644,
    );
    f.file(
        L::Upper,
        format!("{site}/requests-2.31.0.dist-info/METADATA"),
        b"Name: Requests\nVersion: 2.31.0\n",
        0o644,
    );
    f.file(
        L::Upper,
        "/app/node_modules/left-pad/package.json",
        br#"{"name":"left-pad","version":"1.3.0"}"#,
        0o644,
    );
    f.file(
        L::Upper,
        "/var/lib/rpm/rpmdb.sqlite",
        b"SQLite format 3\0",
        0o644,
    );
    let rootful = crate::fake_layers::is_root();
    if rootful {
        f.whiteout(L::Upper, format!("{site}/requests-2.28.1.dist-info"));
    }
    let d = run(&f);
    assert_eq!(
        get(&d, "/var/lib/dpkg/status").class.package_db,
        Some(Ecosystem::Dpkg)
    );
    let got: Vec<String> = d
        .packages
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {}->{}",
                p.ecosystem.as_str(),
                p.change,
                p.name,
                p.image_version.as_deref().unwrap_or("-"),
                p.version.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let mut want = vec![
        "dpkg Changed curl 7.88->8.0",
        "dpkg Removed gone 1->-",
        "dpkg Added nmap -->7.93",
    ];
    want.push(if rootful {
        "python Changed requests 2.28.1->2.31.0"
    } else {
        "python Added requests -->2.31.0"
    });
    want.push("npm Added left-pad -->1.3.0");
    assert_eq!(got, want);
    assert_eq!(d.unparsed_package_dbs.len(), 1);
    let loc = &d
        .packages
        .iter()
        .find(|p| p.name == "left-pad")
        .unwrap()
        .location;
    assert_eq!(loc, "/app/node_modules/left-pad");
}

/// rpm databases written by rpm (tests/fixtures/rpm/make.sh): the image's sqlite rpmdb, the
/// container's after `rpm -i extra` and `rpm -e legacy`; a Berkeley DB `Packages` replaced by
/// the same sqlite; and a container whose new rows are still in the `-wal`.
#[test]
fn rpm_databases() {
    let fixture = crate::packages::rpm::tests::fixture;
    let f = image();
    let db = "/usr/lib/sysimage/rpm/rpmdb.sqlite";
    f.file(L::Lower(1), db, &fixture("image.sqlite"), 0o644);
    f.file(L::Upper, db, &fixture("changed.sqlite"), 0o644);
    f.file(
        L::Lower(1),
        "/var/lib/rpm/Packages",
        &fixture("image.Packages"),
        0o644,
    );
    f.file(
        L::Upper,
        "/var/lib/rpm/Packages",
        &fixture("image.sqlite"),
        0o644,
    );
    let d = run(&f);
    assert_eq!(get(&d, db).class.package_db, Some(Ecosystem::Rpm));
    let got: Vec<String> = d
        .packages
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {:?} {}->{}",
                p.location,
                p.change,
                p.name,
                p.arch,
                p.image_version.as_deref().unwrap_or("-"),
                p.version.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "/usr/lib/sysimage/rpm/rpmdb.sqlite Added extra Some(\"x86_64\") -->0.5-1",
            "/usr/lib/sysimage/rpm/rpmdb.sqlite Removed legacy Some(\"x86_64\") 0.9-2->-",
        ]
    );
    assert!(d.unparsed_package_dbs.is_empty());

    // Committed rows only in the container's write-ahead log count.
    let f = image();
    let db = "/var/lib/rpm/rpmdb.sqlite";
    f.file(L::Lower(1), db, &fixture("image.sqlite"), 0o644);
    f.file(L::Upper, db, &fixture("image.sqlite"), 0o644);
    f.file(
        L::Upper,
        format!("{db}-wal"),
        &fixture("pending.sqlite-wal"),
        0o644,
    );
    let d = run(&f);
    let got: Vec<_> = d
        .packages
        .iter()
        .map(|p| (p.change, p.name.as_str()))
        .collect();
    assert_eq!(got, [(crate::PackageChangeKind::Added, "extra")]);
}

#[test]
fn progress_is_reported() {
    let f = image();
    for i in 0..100 {
        f.file(L::Upper, format!("/data/{i}"), &[i as u8; 100], 0o644);
    }
    let calls = AtomicU64::new(0);
    let last = Mutex::new(DiffStats::default());
    let progress = |s: &DiffStats| {
        calls.fetch_add(1, Ordering::Relaxed);
        *last.lock().unwrap() = *s;
    };
    let d = Differ::new(&f.layers)
        .options(DiffOptions {
            progress_every: 10,
            ..DiffOptions::default()
        })
        .progress(&progress)
        .run()
        .unwrap();
    assert_eq!(
        calls.load(Ordering::Relaxed),
        10 + 1,
        "every 10 of 101 entries, and the end"
    );
    let last = *last.lock().unwrap();
    assert_eq!(last, d.stats);
    assert_eq!(
        (last.entries, last.dirs, last.changes, last.files_hashed),
        (101, 2, 101, 100)
    );
    assert_eq!(last.bytes_hashed, 100 * 100);
}

#[test]
fn a_layer_removed_during_the_walk_is_an_error_naming_it() {
    let f = image();
    for i in 0..200 {
        f.file(L::Upper, format!("/data/{i}"), b"x", 0o644);
    }
    let upper = f.layers.upper.clone();
    let removed = std::sync::Once::new();
    let progress = |_: &DiffStats| removed.call_once(|| fs::remove_dir_all(&upper).unwrap());
    let r = Differ::new(&f.layers)
        .options(DiffOptions {
            progress_every: 1,
            ..DiffOptions::default()
        })
        .progress(&progress)
        .run();
    match r {
        Err(e @ DiffError::LayerVanished { .. }) => {
            assert!(e.to_string().contains("/upper"), "{e}")
        }
        other => panic!("expected LayerVanished, got {other:?}"),
    }
    let gone = Differ::new(&f.layers).run().unwrap_err();
    assert!(matches!(gone, DiffError::LayerVanished { .. }), "{gone}");
}

#[test]
fn entries_vanishing_mid_walk_are_warnings_not_errors() {
    let f = image();
    for i in 0..50 {
        f.file(L::Upper, format!("/data/{i}/f"), b"x", 0o644);
    }
    let data = f.host(L::Upper, "/data");
    let removed = std::sync::Once::new();
    let progress = |_: &DiffStats| removed.call_once(|| fs::remove_dir_all(&data).unwrap());
    let d = Differ::new(&f.layers)
        .options(DiffOptions {
            progress_every: 3,
            ..DiffOptions::default()
        })
        .progress(&progress)
        .run()
        .unwrap();
    for w in &d.warnings {
        assert!(w.path.to_string().starts_with("/data"), "{w:?}");
    }
}

#[test]
fn setcap_is_seen_like_docker_sees_it() {
    require_root!();
    let f = image();
    let up = f.copy_up(L::Lower(1), "/usr/bin/true");
    crate::judge::tests::set_net_bind_cap(&up);
    let d = run(&f);
    let t = get(&d, "/usr/bin/true");
    assert_eq!(
        (t.change, t.docker),
        (ChangeKind::Metadata, Some(DockerChange::C))
    );
    assert_eq!(t.metadata.unwrap().fields(), ["capabilities"]);
}

/// Makes `levels` nested directories `d/d/d/...` below `top` of a layer, relative to open
/// directory fds (the path soon exceeds PATH_MAX), with a file `f` at the bottom.
fn deep_tree(top: &std::path::Path, levels: usize) {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    fs::create_dir_all(top).unwrap();
    let mut dir = rustix::fs::open(top, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..levels {
        mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    let f = openat(
        &dir,
        "f",
        OFlags::WRONLY | OFlags::CREATE,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&f, b"bottom").unwrap();
}

/// The diff in a thread with a 256 KiB stack: a walk whose depth cost stack would overflow.
fn run_on_a_small_stack(f: &FakeLayers) -> Diff {
    let layers = f.layers.clone();
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || Differ::new(&layers).run().unwrap())
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_3000_level_tree_is_walked_to_the_depth_cap_without_overflowing() {
    let f = image();
    deep_tree(&f.host(L::Upper, "/deep"), 3000);
    f.file(L::Upper, "/etc/added", b"x", 0o644);
    let d = run_on_a_small_stack(&f);
    assert_eq!(d.truncated.len(), 1, "{:?}", d.truncated);
    let t = &d.truncated[0];
    assert_eq!(
        (t.cap, t.limit),
        (WalkCap::MaxDepth, DEFAULT_MAX_DEPTH as u64)
    );
    assert_eq!(t.dirs_skipped, 1);
    assert_eq!(depth_of(&t.first_at), DEFAULT_MAX_DEPTH + 1);
    assert!(t.to_string().contains("max_depth"), "{t}");
    // Every level up to the cap is reported, the rest is not; the siblings still are.
    let deep = d
        .files
        .iter()
        .filter(|f| f.path.as_bytes().starts_with(b"/deep"))
        .count();
    assert_eq!(deep, DEFAULT_MAX_DEPTH + 1);
    assert!(d.files.iter().any(|f| f.path.to_string() == "/etc/added"));
}

#[test]
fn the_depth_cap_is_the_callers() {
    let f = image();
    deep_tree(&f.host(L::Upper, "/a"), 20);
    let d = Differ::new(&f.layers)
        .options(DiffOptions {
            max_depth: 5,
            ..DiffOptions::default()
        })
        .run()
        .unwrap();
    let t = &d.truncated[0];
    assert_eq!((t.cap, t.limit), (WalkCap::MaxDepth, 5));
    assert_eq!(t.first_at.to_string(), "/a/d/d/d/d/d");
    // /a, /a/d ... down to depth 6, listed but not entered.
    assert_eq!(d.files.len(), 6, "{:?}", lines(&d));
    assert!(d.files.iter().all(|f| f.kind == FileKind::Dir));
}

#[test]
fn the_entry_cap_stops_the_walk_and_says_so() {
    let f = image();
    for i in 0..50 {
        f.file(L::Upper, format!("/data/{i}/f"), b"x", 0o644);
    }
    let d = Differ::new(&f.layers)
        .options(DiffOptions {
            max_entries: 20,
            ..DiffOptions::default()
        })
        .run()
        .unwrap();
    let t = d
        .truncated
        .iter()
        .find(|t| t.cap == WalkCap::MaxEntries)
        .expect("entry cap reported");
    assert_eq!(t.limit, 20);
    assert!(d.stats.entries <= 20 + 1, "{:?}", d.stats);
}

#[test]
fn a_deep_deleted_image_tree_is_expanded_to_the_cap() {
    require_root!();
    let f = image();
    deep_tree(&f.host(L::Lower(1), "/opt/deep"), 3000);
    f.whiteout(L::Upper, "/opt");
    let d = run_on_a_small_stack(&f);
    assert_eq!(d.truncated.len(), 1, "{:?}", d.truncated);
    assert_eq!(d.truncated[0].cap, WalkCap::MaxDepth);
    let deleted = d
        .files
        .iter()
        .filter(|f| f.change == ChangeKind::Deleted)
        .count();
    // /opt, /opt/deep, and /opt/deep/d... to the cap.
    assert_eq!(deleted, DEFAULT_MAX_DEPTH + 1, "{}", d.truncated[0]);
}
