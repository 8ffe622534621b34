//! Compiles the BPF C programs under `bpf/` with clang and generates their Rust skeletons.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../../bpf");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let include = bpf_dir.join("include");
    // One object per hook family; add new programs to this list.
    let programs: &[&str] = &["exec", "fork", "net", "tamper"];
    for prog in programs {
        let src = bpf_dir.join(format!("{prog}.bpf.c"));
        SkeletonBuilder::new()
            .source(&src)
            .obj(out.join(format!("{prog}.bpf.o")))
            .clang_args([
                "-I".into(),
                include.clone().into_os_string(),
                "-D__TARGET_ARCH_x86".into(),
                "-Wall".into(),
                "-Werror".into(),
            ])
            .build_and_generate(out.join(format!("{prog}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
        println!("cargo:rerun-if-changed={}", src.display());
    }
    println!("cargo:rerun-if-changed={}", include.display());
}
