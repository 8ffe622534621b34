//! Package databases read from a container's layers (dpkg status, apk installed, Python
//! METADATA, npm package.json, rpm's sqlite/Berkeley DB/NDB databases): the first byte picks
//! the format; no input may panic, and every package found has a name (not blank, and for
//! Python not only separators). For rpm the second byte splits the rest into a database and
//! a `-wal`, and no file name may be longer than the input can hold.
#![no_main]

use driftwatch_image::Ecosystem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let eco = match pick % 5 {
        0 => Ecosystem::Dpkg,
        1 => Ecosystem::Apk,
        2 => Ecosystem::Python,
        3 => Ecosystem::Npm,
        _ => Ecosystem::Rpm,
    };
    if eco == Ecosystem::Rpm
        && let Some((&split, rest)) = bytes.split_first()
    {
        let at = rest.len() * usize::from(split) / 255;
        let (db, wal) = rest.split_at(at);
        for p in driftwatch_image::packages::rpm::parse_rpmdb(db, Some(wal)) {
            assert!(!p.package.name.trim().is_empty(), "rpm: {p:?}");
            assert!(p.files.iter().all(|f| f.path.len() <= 4096), "rpm: {p:?}");
        }
    }
    let pkgs = driftwatch_image::packages::parse(eco, bytes);
    for p in &pkgs {
        assert!(
            !p.name.trim().is_empty(),
            "{eco:?}: a package without a name: {p:?}"
        );
    }
    if eco == Ecosystem::Python {
        for p in &pkgs {
            let n = driftwatch_image::packages::normalize_python_name(&p.name);
            assert!(
                !n.is_empty(),
                "a Python name that normalises to \"\": {p:?}"
            );
            assert_eq!(driftwatch_image::packages::normalize_python_name(&n), n);
        }
    }
});
