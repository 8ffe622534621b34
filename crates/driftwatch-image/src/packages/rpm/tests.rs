//! The rpm parsers on databases rpm itself wrote (tests/fixtures/rpm/make.sh) and on
//! damaged and hostile variants of them.

use super::*;
use crate::packages::{DigestAlgo, FileDigest, OwnedFile};

/// The fixtures, embedded: tests read no files.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    macro_rules! fixtures {
        ($($f:literal),*) => {
            match name {
                $($f => include_bytes!(concat!("../../../tests/fixtures/rpm/", $f)).to_vec(),)*
                _ => panic!("no fixture {name}"),
            }
        };
    }
    fixtures!(
        "image.sqlite",
        "changed.sqlite",
        "pending.sqlite-wal",
        "image.Packages",
        "image.ndb"
    )
}

fn summary(pkgs: &[PackageFiles]) -> Vec<(String, String, Option<String>, usize)> {
    pkgs.iter()
        .map(|p| {
            (
                p.package.name.clone(),
                p.package.version.clone(),
                p.package.arch.clone(),
                p.files.len(),
            )
        })
        .collect()
}

fn image_packages() -> Vec<(String, String, Option<String>, usize)> {
    let x86 = Some("x86_64".to_string());
    vec![
        ("hello".into(), "1.0-1".into(), x86.clone(), 2),
        ("legacy".into(), "0.9-2".into(), x86.clone(), 1),
        ("many".into(), "1-1".into(), x86.clone(), 300),
        ("tool".into(), "2:3.1-4".into(), x86, 2),
    ]
}

fn file<'a>(pkgs: &'a [PackageFiles], name: &str, path: &str) -> &'a OwnedFile {
    pkgs.iter()
        .find(|p| p.package.name == name)
        .and_then(|p| p.files.iter().find(|f| f.path == path))
        .unwrap_or_else(|| panic!("{name} owns no {path}"))
}

#[test]
fn sqlite_names_versions_with_epoch_files_digests_modes() {
    let pkgs = parse_rpmdb_sqlite(&fixture("image.sqlite"), None);
    assert_eq!(summary(&pkgs), image_packages());
    // sha256 of the content make.sh wrote: "hello /usr/bin/hello\n".
    assert_eq!(
        file(&pkgs, "hello", "/usr/bin/hello"),
        &OwnedFile {
            path: "/usr/bin/hello".into(),
            digest: Some(FileDigest {
                algo: DigestAlgo::Sha256,
                hex: "3331799c7af6fa85a3082e1852be5463dd0f89c251acef6dc25b4dee5115f097".into(),
            }),
            mode: Some(0o100755),
        }
    );
    assert_eq!(file(&pkgs, "hello", "/etc/hello.conf").mode, Some(0o100644));
    // Built with _binary_filedigest_algorithm 1: md5 of "legacy /usr/bin/legacy\n".
    assert_eq!(
        file(&pkgs, "legacy", "/usr/bin/legacy").digest,
        Some(FileDigest {
            algo: DigestAlgo::Md5,
            hex: "91769c0b0b6f94c3e20162223632fbe9".into(),
        })
    );
    // The 40 kB header of "many" spans overflow pages.
    let many = pkgs.iter().find(|p| p.package.name == "many").unwrap();
    assert_eq!(many.files[0].path, "/usr/share/many/file-001.txt");
    assert_eq!(many.files[299].path, "/usr/share/many/file-300.txt");
    assert!(many.files.iter().all(|f| f.digest.is_some()));
}

#[test]
fn changed_database_adds_and_removes() {
    let pkgs = parse_rpmdb_sqlite(&fixture("changed.sqlite"), None);
    let names: Vec<_> = pkgs.iter().map(|p| p.package.name.as_str()).collect();
    assert_eq!(names, ["extra", "hello", "many", "tool"]);
}

#[test]
fn committed_rows_in_the_wal_are_read() {
    let db = fixture("image.sqlite");
    let wal = fixture("pending.sqlite-wal");
    let with = parse_rpmdb_sqlite(&db, Some(&wal));
    let names: Vec<_> = with.iter().map(|p| p.package.name.as_str()).collect();
    assert_eq!(names, ["extra", "hello", "legacy", "many", "tool"]);
    assert_eq!(summary(&parse_rpmdb_sqlite(&db, None)), image_packages());
    // A WAL whose frame checksums fail is ignored from the first bad frame on.
    let mut torn = wal.clone();
    let last = torn.len() - 1;
    torn[last] ^= 0xff;
    assert_eq!(
        summary(&parse_rpmdb_sqlite(&db, Some(&torn))),
        image_packages()
    );
}

#[test]
fn bdb_and_ndb_hold_the_same_packages() {
    let sqlite = parse_rpmdb_sqlite(&fixture("image.sqlite"), None);
    let bdb = parse_rpmdb_bdb(&fixture("image.Packages"));
    let ndb = parse_rpmdb_ndb(&fixture("image.ndb"));
    assert_eq!(summary(&bdb), image_packages());
    assert_eq!(bdb, sqlite);
    assert_eq!(ndb, sqlite);
    // The format is told by content, not by name.
    assert_eq!(parse_rpmdb(&fixture("image.Packages"), None), sqlite);
    assert_eq!(parse_rpmdb(&fixture("image.ndb"), None), sqlite);
    assert_eq!(parse_rpmdb(&fixture("image.sqlite"), None), sqlite);
    let names: Vec<_> = crate::packages::parse(Ecosystem::Rpm, &fixture("image.Packages"))
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["hello", "legacy", "many", "tool"]);
    let without_files = parse_rpm_packages(&fixture("image.sqlite"), None);
    let with_files: Vec<_> = sqlite.into_iter().map(|p| p.package).collect();
    assert_eq!(without_files, with_files);
}

#[test]
fn one_name_installed_twice_is_one_package_with_both_versions() {
    // tool's header renamed to many (same length, so nothing else moves): two "many".
    let mut db = fixture("image.ndb");
    let at = db.windows(5).position(|w| w == b"tool\0").unwrap();
    db[at..at + 4].copy_from_slice(b"many");
    let p = parse_rpm_packages(&db, None);
    let got: Vec<_> = p
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("hello", "1.0-1"),
            ("legacy", "0.9-2"),
            ("many", "1-1, 2:3.1-4")
        ]
    );
    // With their files, they stay two packages.
    assert_eq!(parse_rpmdb(&db, None).len(), 4);
}

#[test]
fn not_a_database() {
    for junk in [
        &b""[..],
        b"SQLite format 3\0",
        b"\0\0\0\0\0\0\0\0\0\0\0\0\x61\x15\x06\0",
    ] {
        assert!(parse_rpmdb(junk, None).is_empty());
        assert!(try_parse_rpmdb(junk, None).is_none());
    }
    assert!(parse_rpmdb(&fixture("image.sqlite")[..4096], None).is_empty());
}

fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// The blob of hello's header, as stored.
fn hello_blob() -> Vec<u8> {
    sqlite::table_blobs(&fixture("image.sqlite"), None, "Packages")
        .unwrap()
        .into_iter()
        .find(|b| {
            parse_rpm_header(b).is_some_and(|p| p.package.name == "hello" && p.files.len() == 2)
        })
        .unwrap()
}

#[test]
fn header_counts_and_offsets_past_the_end() {
    let blob = hello_blob();
    // Entry and data counts larger than the blob.
    let mut b = blob.clone();
    set_be32(&mut b, 0, u32::MAX);
    assert!(parse_rpm_header(&b).is_none());
    let mut b = blob.clone();
    set_be32(&mut b, 4, u32::MAX);
    assert!(parse_rpm_header(&b).is_none());
    // Every entry's offset, then every count, pointed past the data store: no panic, and
    // the package is either unnamed (skipped) or has no files.
    let il = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
    for field in [8, 12] {
        for value in [u32::MAX, 0x7fff_ffff, blob.len() as u32] {
            for i in 0..il {
                let mut b = blob.clone();
                set_be32(&mut b, 8 + 16 * i + field, value);
                let _ = parse_rpm_header(&b);
            }
        }
    }
    // Truncated anywhere.
    for n in 0..blob.len() {
        let _ = parse_rpm_header(&blob[..n]);
    }
}

/// A header blob from `(tag, type, data, count)` entries, each entry's data aligned to 4.
fn header_blob(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
    let (mut index, mut data) = (Vec::new(), Vec::new());
    for (tag, kind, bytes, count) in entries {
        while data.len() % 4 != 0 {
            data.push(0);
        }
        for v in [*tag, *kind, data.len() as u32, *count] {
            index.extend_from_slice(&v.to_be_bytes());
        }
        data.extend_from_slice(bytes);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(data);
    blob
}

#[test]
fn old_file_names_epoch_and_md5_by_default() {
    // rpm before 4.0 (and headers never compressed into base names) list whole names; without
    // FILEDIGESTALGO the digests are MD5.
    let blob = header_blob(&[
        (1000, 6, b"old\0".to_vec(), 1),
        (1001, 6, b"1.0\0".to_vec(), 1),
        (1002, 6, b"3\0".to_vec(), 1),
        (1003, 4, 7u32.to_be_bytes().to_vec(), 1),
        (1027, 8, b"/bin/old\0/etc/old.conf\0".to_vec(), 2),
        (1035, 8, b"D41D8CD98F00B204E9800998ECF8427E\0\0".to_vec(), 2),
        (
            1030,
            3,
            [0o100755u16, 0o100644]
                .iter()
                .flat_map(|m| m.to_be_bytes())
                .collect(),
            2,
        ),
    ]);
    let p = parse_rpm_header(&blob).unwrap();
    assert_eq!(p.package.version, "7:1.0-3");
    assert_eq!(p.package.arch, None);
    assert_eq!(
        p.files,
        [
            OwnedFile {
                path: "/bin/old".into(),
                digest: Some(FileDigest {
                    algo: DigestAlgo::Md5,
                    hex: "d41d8cd98f00b204e9800998ecf8427e".into()
                }),
                mode: Some(0o100755),
            },
            OwnedFile {
                path: "/etc/old.conf".into(),
                digest: None,
                mode: Some(0o100644),
            },
        ]
    );
    // A name longer than PATH_MAX drops the list.
    let long = [b"/".repeat(5000), b"\0".to_vec()].concat();
    let blob = header_blob(&[(1000, 6, b"old\0".to_vec(), 1), (1027, 8, long, 1)]);
    assert!(parse_rpm_header(&blob).unwrap().files.is_empty());
}

#[test]
fn files_pointing_at_one_long_directory_stay_bounded() {
    // A header whose many base names all index one long directory name: the names would
    // expand far beyond the blob, so the file list is dropped instead.
    let n: u32 = 20_000;
    let blob = header_blob(&[
        (1000, 6, b"bomb\0".to_vec(), 1),
        (1118, 8, [vec![b'd'; 4000], vec![0]].concat(), 1),
        (1116, 4, vec![0; 4 * n as usize], n),
        (1117, 8, b"x\0".repeat(n as usize), n),
    ]);
    let p = parse_rpm_header(&blob).unwrap();
    assert_eq!(p.package.name, "bomb");
    assert!(p.files.is_empty());
}

/// Page numbers (1-based) of the sqlite fixture by b-tree page type.
fn sqlite_pages(db: &[u8], kind: u8) -> Vec<usize> {
    (1..=db.len() / 4096)
        .filter(|n| db[(n - 1) * 4096 + if *n == 1 { 100 } else { 0 }] == kind)
        .collect()
}

#[test]
fn sqlite_page_loops_and_chains_out_of_the_file() {
    let db = fixture("image.sqlite");
    // The page header and cell pointers of every b-tree page, and the first words of each
    // cell (child pointers, payload lengths, row ids), set to page 1 (a loop to the schema),
    // to the page itself, and past the end.
    let interior = sqlite_pages(&db, 0x05);
    let leaves = sqlite_pages(&db, 0x0d);
    for &n in interior.iter().chain(&leaves) {
        let base = (n - 1) * 4096;
        let head = base + if n == 1 { 100 } else { 0 };
        let cells = u16::from_be_bytes([db[head + 3], db[head + 4]]) as usize;
        let ptrs = head + if db[head] == 0x05 { 12 } else { 8 };
        let cell_words = (0..cells).flat_map(|i| {
            let at = base + u16::from_be_bytes([db[ptrs + 2 * i], db[ptrs + 2 * i + 1]]) as usize;
            [at, at + 4]
        });
        let words: Vec<usize> = (head..ptrs + 2 * cells)
            .step_by(2)
            .chain(cell_words)
            .filter(|at| at + 4 <= db.len())
            .collect();
        for at in words {
            for v in [1u32, n as u32, u32::MAX, (db.len() / 4096 + 1) as u32] {
                let mut d = db.clone();
                set_be32(&mut d, at, v);
                let _ = parse_rpmdb_sqlite(&d, None);
            }
        }
    }
    // Truncated at every page boundary and in the middle of pages.
    for n in (0..db.len()).step_by(1000) {
        let _ = parse_rpmdb_sqlite(&db[..n], None);
    }
}

#[test]
fn overflow_chain_that_loops_or_leaves_the_file_drops_the_row() {
    let db = fixture("image.sqlite");
    // Overflow pages are neither b-tree pages nor the header page: find many's chain by
    // scanning for pages whose first word is a page number in the file (a chain link) and
    // whose type byte is not a b-tree type.
    let pages = db.len() / 4096;
    let chained: Vec<usize> = (2..=pages)
        .filter(|n| {
            let p = &db[(n - 1) * 4096..n * 4096];
            let next = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
            next > 1 && next <= pages && !matches!(p[0], 0x02 | 0x05 | 0x0a | 0x0d)
        })
        .collect();
    assert!(!chained.is_empty(), "many's header has an overflow chain");
    for &n in &chained {
        for v in [n as u32, u32::MAX] {
            let mut d = db.clone();
            set_be32(&mut d, (n - 1) * 4096, v);
            let names: Vec<_> = parse_rpmdb_sqlite(&d, None)
                .into_iter()
                .map(|p| p.package.name)
                .collect();
            assert!(!names.contains(&"many".to_string()), "{names:?}");
            assert!(names.contains(&"hello".to_string()), "{names:?}");
        }
    }
}

#[test]
fn bdb_and_ndb_hostile_words() {
    for name in ["image.Packages", "image.ndb"] {
        let db = fixture(name);
        // The header, slot and page-header words, and the item offsets after them.
        let words = (0..256).step_by(4).chain(
            (4096..db.len())
                .step_by(4096)
                .flat_map(|p| (p..p + 64).step_by(2)),
        );
        for at in words.filter(|at| at + 4 <= db.len()) {
            for v in [0u32, 1, 0xffff, u32::MAX] {
                let mut d = db.clone();
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
                let _ = parse_rpmdb(&d, None);
            }
        }
        for n in (0..db.len()).step_by(997) {
            let _ = parse_rpmdb(&db[..n], None);
        }
    }
}

#[test]
fn bdb_overflow_loop() {
    let mut db = fixture("image.Packages");
    // Point every overflow page's next link at itself: many's header (the only one larger
    // than a page) is dropped, the others stay.
    let pages = db.len() / 4096;
    for n in 1..pages {
        if db[n * 4096 + 25] == 7
            && u32::from_le_bytes(db[n * 4096 + 16..][..4].try_into().unwrap()) != 0
        {
            db[n * 4096 + 16..n * 4096 + 20].copy_from_slice(&(n as u32).to_le_bytes());
        }
    }
    let names: Vec<_> = parse_rpmdb_bdb(&db)
        .into_iter()
        .map(|p| p.package.name)
        .collect();
    assert_eq!(names, ["hello", "legacy", "tool"]);
}

/// Random byte mutations of every fixture (a fixed-seed xorshift, so a failure reproduces):
/// no panic, and nothing larger than the input comes out.
#[test]
fn mutated_fixtures() {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for name in ["image.sqlite", "image.Packages", "image.ndb"] {
        let db = fixture(name);
        for _ in 0..300 {
            let mut d = db.clone();
            for _ in 0..1 + rand() % 16 {
                let at = (rand() as usize) % d.len();
                d[at] = rand() as u8;
            }
            let pkgs = parse_rpmdb(&d, None);
            let bytes: usize = pkgs
                .iter()
                .flat_map(|p| &p.files)
                .map(|f| f.path.len())
                .sum();
            assert!(bytes <= d.len() * 16, "{name}: {bytes} bytes of names");
        }
    }
}
