//! Package databases read from a container's layers (dpkg status, apk installed, Python
//! METADATA, npm package.json): the first byte picks the format; no input may panic, and
//! every package found has a name (not blank, and for Python not only separators).
#![no_main]

use driftwatch_image::Ecosystem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let eco = match pick % 4 {
        0 => Ecosystem::Dpkg,
        1 => Ecosystem::Apk,
        2 => Ecosystem::Python,
        _ => Ecosystem::Npm,
    };
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
