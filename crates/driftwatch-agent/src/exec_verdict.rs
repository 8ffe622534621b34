//! Where did an exec's code come from? Combines the kernel's view of the executed file
//! (filesystem, overlay bits, link count) with the container's layers and mounts.
//!
//! Order of judgement for the primary finding: the executed file, then the script run by
//! its shebang, then a program run through the dynamic loader, then `LD_PRELOAD` libraries.

use std::path::{Component, Path, PathBuf};

use driftwatch_image::Judge;
use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, Verdict};
use driftwatch_runtime::MountKind;
use driftwatch_sensor::{
    ExecFlags, ExecRecord, FS_MAGIC_HUGETLBFS, FS_MAGIC_OVERLAY, FS_MAGIC_TMPFS,
};

use crate::containers::ContainerFs;

/// What the agent concluded about one exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecAnalysis {
    /// The verdict on the executed file itself (for scripts: the interpreter).
    pub exe_verdict: Verdict,
    pub exe_upper_layer: bool,
    pub exe_from_memfd: bool,
    pub exe_writable: bool,
    /// The first drifted part of the exec, if any.
    pub finding: Option<DriftFinding>,
}

struct Judged {
    verdict: Verdict,
    path: String,
    hash: Option<String>,
    image_hash: Option<String>,
}

impl Judged {
    fn plain(verdict: Verdict, path: &str) -> Judged {
        Judged {
            verdict,
            path: path.to_string(),
            hash: None,
            image_hash: None,
        }
    }
}

fn is_memfd(rec: &ExecRecord) -> bool {
    // memfd files live on the kernel's internal shm mount: the path walk ends at its root,
    // so the path is "/memfd:NAME" (a tmpfs file merely named so has a longer path).
    (rec.fs_magic == FS_MAGIC_TMPFS || rec.fs_magic == FS_MAGIC_HUGETLBFS)
        && rec.path.starts_with("/memfd:")
}

/// Judges a path on the container's root overlay by content.
fn judge_on_overlay(fs: &ContainerFs, judge: &Judge, path: &str) -> Option<Judged> {
    let layers = fs.layers.as_ref()?;
    match judge.judge(layers, path) {
        Ok(j) => Some(Judged {
            verdict: j.verdict,
            path: j.resolved_path,
            hash: j.hash,
            image_hash: j.image_hash,
        }),
        Err(e) => {
            tracing::debug!("judging {path}: {e}");
            None
        }
    }
}

fn exe_verdict(rec: &ExecRecord, fs: &ContainerFs, judge: &Judge) -> Judged {
    if is_memfd(rec) {
        return Judged::plain(Verdict::Memfd, &rec.path);
    }
    if rec.nlink == 0 {
        return Judged::plain(Verdict::Deleted, &rec.path);
    }
    match rec.fs_magic {
        FS_MAGIC_OVERLAY => {
            let on_root = fs
                .mounts
                .as_ref()
                .and_then(|m| m.by_id(rec.mnt_id))
                .is_none_or(|m| m.mount_point == Path::new("/"));
            if !rec.flags.has(ExecFlags::OVL_UPPER) {
                // Only in the image's layers: nothing to read.
                return Judged::plain(Verdict::Image, &rec.path);
            }
            if on_root && let Some(j) = judge_on_overlay(fs, judge, &rec.path) {
                return j;
            }
            // No layers to compare with (or the file is gone): trust the kernel's bits.
            if rec.flags.has(ExecFlags::OVL_LOWER) {
                Judged::plain(Verdict::Unknown, &rec.path)
            } else {
                Judged::plain(Verdict::Added, &rec.path)
            }
        }
        FS_MAGIC_TMPFS | FS_MAGIC_HUGETLBFS => Judged::plain(Verdict::Tmpfs, &rec.path),
        _ => Judged::plain(Verdict::Volume, &rec.path),
    }
}

/// Makes `name` absolute against `cwd` and removes `.`/`..` lexically.
fn absolutize(cwd: &str, name: &str) -> String {
    let joined: PathBuf = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(cwd).join(name)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// Judges a file named by path (a script, a loader's target, a preloaded library): the
/// kernel did not hand us this file, so find the mount it lives on first.
fn path_verdict(path: &str, fs: &ContainerFs, judge: &Judge) -> Judged {
    let kind = fs
        .mounts
        .as_ref()
        .and_then(|m| m.find(path))
        .map(|m| m.kind());
    match kind {
        Some(MountKind::Tmpfs) => Judged::plain(Verdict::Tmpfs, path),
        Some(MountKind::Bind { .. }) | Some(MountKind::Other(_)) => {
            Judged::plain(Verdict::Volume, path)
        }
        Some(MountKind::Proc) | Some(MountKind::Sys) | Some(MountKind::Dev) => {
            Judged::plain(Verdict::Unknown, path)
        }
        Some(MountKind::ImageRoot) | None => judge_on_overlay(fs, judge, path)
            .unwrap_or_else(|| Judged::plain(Verdict::Unknown, path)),
    }
}

/// Is this file the dynamic loader (`ld-linux-x86-64.so.2`, `ld-musl-x86_64.so.1`, `ld.so`)?
fn is_dynamic_loader(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "ld.so" || (name.starts_with("ld-") && name.contains(".so"))
}

/// The program a dynamic-loader invocation runs (`ld.so [OPTIONS] PROGRAM [ARGS]`), and the
/// libraries its `--preload` option names.
pub fn loader_target(argv: &[String]) -> (Option<&str>, Vec<&str>) {
    let mut preload = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        match a {
            "--" => return (argv.get(i + 1).map(String::as_str), preload),
            "--library-path"
            | "--inhibit-rpath"
            | "--audit"
            | "--argv0"
            | "--glibc-hwcaps-prepend"
            | "--glibc-hwcaps-mask" => i += 2,
            "--preload" => {
                if let Some(p) = argv.get(i + 1) {
                    preload.extend(p.split([' ', ':']).filter(|s| !s.is_empty()));
                }
                i += 2;
            }
            _ if a.starts_with("--") => i += 1,
            _ => return (Some(a), preload),
        }
    }
    (None, preload)
}

fn finding(subject: DriftSubject, j: Judged) -> DriftFinding {
    DriftFinding {
        enforcement: None,
        kind: DriftKind::Binary,
        subject,
        verdict: j.verdict,
        path: j.path,
        hash: j.hash,
        image_hash: j.image_hash,
        detail: None,
    }
}

/// Analyses one exec inside a container.
pub fn analyze_exec(rec: &ExecRecord, fs: &ContainerFs, judge: &Judge) -> ExecAnalysis {
    let exe = exe_verdict(rec, fs, judge);
    let mut analysis = ExecAnalysis {
        exe_verdict: exe.verdict,
        exe_upper_layer: rec.fs_magic == FS_MAGIC_OVERLAY && rec.flags.has(ExecFlags::OVL_UPPER),
        exe_from_memfd: exe.verdict == Verdict::Memfd,
        // Without the file's owner in the record: writable by its owner and the process is
        // root, or writable by others.
        exe_writable: (rec.mode & 0o200 != 0 && rec.euid == 0) || rec.mode & 0o002 != 0,
        finding: None,
    };
    if exe.verdict.is_drift() {
        analysis.finding = Some(finding(DriftSubject::Exe, exe));
        return analysis;
    }
    if rec.flags.has(ExecFlags::INTERP)
        && !rec.filename.starts_with("/dev/fd/")
        && !rec.filename.starts_with("/proc/self/fd/")
    {
        let script = absolutize(&rec.cwd, &rec.filename);
        let j = path_verdict(&script, fs, judge);
        if j.verdict.is_drift() {
            analysis.finding = Some(finding(DriftSubject::Script, j));
            return analysis;
        }
    }
    let mut preload: Vec<String> = Vec::new();
    if is_dynamic_loader(&rec.path) {
        let (target, opts) = loader_target(&rec.argv);
        preload.extend(opts.iter().map(|p| absolutize(&rec.cwd, p)));
        if let Some(t) = target {
            let j = path_verdict(&absolutize(&rec.cwd, t), fs, judge);
            if j.verdict.is_drift() {
                analysis.finding = Some(finding(DriftSubject::LoaderTarget, j));
                return analysis;
            }
        }
    }
    if let Some(v) = rec
        .env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("LD_PRELOAD="))
    {
        // ld.so splits LD_PRELOAD on spaces and colons; it ignores relative names for
        // setuid programs only, so judge them against the cwd.
        preload.extend(
            v.split([' ', ':'])
                .filter(|s| !s.is_empty())
                .map(|p| absolutize(&rec.cwd, p)),
        );
    }
    for lib in preload {
        let j = path_verdict(&lib, fs, judge);
        if j.verdict.is_drift() {
            analysis.finding = Some(finding(DriftSubject::Preload, j));
            return analysis;
        }
    }
    analysis
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loader_invocations() {
        assert_eq!(
            loader_target(&args(&["/lib64/ld-linux-x86-64.so.2", "/tmp/x", "-v"])).0,
            Some("/tmp/x")
        );
        let a = args(&[
            "ld.so",
            "--library-path",
            "/l",
            "--preload",
            "/tmp/a.so:/tmp/b.so",
            "--",
            "/tmp/x",
        ]);
        let (t, p) = loader_target(&a);
        assert_eq!(t, Some("/tmp/x"));
        assert_eq!(p, ["/tmp/a.so", "/tmp/b.so"]);
        assert_eq!(loader_target(&args(&["ld.so", "--list"])).0, None);
        assert!(is_dynamic_loader(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        ));
        assert!(is_dynamic_loader("/lib/ld-musl-x86_64.so.1"));
        assert!(!is_dynamic_loader("/usr/bin/ldd"));
    }

    #[test]
    fn paths_are_made_absolute_lexically() {
        assert_eq!(absolutize("/tmp", "./s.sh"), "/tmp/s.sh");
        assert_eq!(absolutize("/tmp/a", "../b/s.sh"), "/tmp/b/s.sh");
        assert_eq!(absolutize("/", "/x/./y"), "/x/y");
        assert_eq!(absolutize("/", "../../x"), "/x");
    }

    fn rec(path: &str, fs_magic: u32, flags: u32, nlink: u32) -> ExecRecord {
        ExecRecord {
            path: path.into(),
            filename: path.into(),
            fs_magic,
            flags: ExecFlags(flags),
            nlink,
            cwd: "/".into(),
            argv: vec![path.into()],
            ..Default::default()
        }
    }

    #[test]
    fn kernel_facts_alone_decide_the_clear_cases() {
        let fs = ContainerFs::default();
        let judge = Judge::new();
        let v = |r: &ExecRecord| analyze_exec(r, &fs, &judge);
        assert_eq!(v(&rec("/bin/ls", FS_MAGIC_OVERLAY, 0, 1)).finding, None);
        let a = v(&rec("/tmp/x", FS_MAGIC_OVERLAY, ExecFlags::OVL_UPPER, 1));
        assert_eq!(a.finding.unwrap().verdict, Verdict::Added);
        assert!(a.exe_upper_layer);
        let a = v(&rec("/memfd:x", FS_MAGIC_TMPFS, 0, 0));
        assert_eq!(a.finding.unwrap().verdict, Verdict::Memfd);
        assert!(a.exe_from_memfd);
        assert_eq!(
            v(&rec("/dev/shm/memfd:x", FS_MAGIC_TMPFS, 0, 1))
                .finding
                .unwrap()
                .verdict,
            Verdict::Tmpfs
        );
        assert_eq!(
            v(&rec("/tmp/x", FS_MAGIC_OVERLAY, ExecFlags::OVL_UPPER, 0))
                .finding
                .unwrap()
                .verdict,
            Verdict::Deleted
        );
        assert_eq!(
            v(&rec("/data/x", 0xEF53, 0, 1)).finding.unwrap().verdict,
            Verdict::Volume
        );
        // Upper with a lower and no layers to compare: not called drift on the bit alone.
        assert_eq!(
            v(&rec(
                "/bin/true",
                FS_MAGIC_OVERLAY,
                ExecFlags::OVL_UPPER | ExecFlags::OVL_LOWER,
                1
            ))
            .finding,
            None
        );
    }

    fn layers_with(
        upper: &[(&str, &[u8])],
        lower: &[(&str, &[u8])],
    ) -> (tempfile::TempDir, ContainerFs) {
        let dir = tempfile::tempdir().unwrap();
        for (root, files) in [("upper", upper), ("lower", lower)] {
            for (path, bytes) in files {
                let p = dir.path().join(root).join(path.trim_start_matches('/'));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, bytes).unwrap();
            }
            std::fs::create_dir_all(dir.path().join(root)).unwrap();
        }
        let layers = driftwatch_model::OverlayLayers {
            upper: dir.path().join("upper"),
            lowers: vec![dir.path().join("lower")],
            merged: None,
        };
        (
            dir,
            ContainerFs {
                layers: Some(layers),
                mounts: None,
            },
        )
    }

    #[test]
    fn copy_up_is_judged_by_content() {
        let judge = Judge::new();
        let both = ExecFlags::OVL_UPPER | ExecFlags::OVL_LOWER;
        let (_d, fs) = layers_with(
            &[("/usr/bin/true", b"ELF-true")],
            &[("/usr/bin/true", b"ELF-true")],
        );
        let a = analyze_exec(
            &rec("/usr/bin/true", FS_MAGIC_OVERLAY, both, 1),
            &fs,
            &judge,
        );
        assert_eq!((a.exe_verdict, a.finding), (Verdict::CopyUp, None));
        assert!(
            a.exe_upper_layer,
            "the overlay bit is still reported as Falco does"
        );
        let (_d, fs) = layers_with(
            &[("/usr/bin/true", b"ELF-evil")],
            &[("/usr/bin/true", b"ELF-true")],
        );
        let f = analyze_exec(
            &rec("/usr/bin/true", FS_MAGIC_OVERLAY, both, 1),
            &fs,
            &judge,
        )
        .finding
        .unwrap();
        assert_eq!(
            (f.verdict, f.subject, f.path.as_str()),
            (Verdict::Modified, DriftSubject::Exe, "/usr/bin/true")
        );
        assert!(f.hash.is_some());
    }

    #[test]
    fn scripts_loader_targets_and_preloads_are_judged_by_path() {
        let judge = Judge::new();
        let (_d, fs) = layers_with(
            &[
                ("/tmp/s.sh", b"#!/bin/sh"),
                ("/tmp/x", b"ELF"),
                ("/tmp/x.so", b"ELF"),
            ],
            &[
                ("/bin/sh", b"ELF-sh"),
                ("/lib/ld.so", b"ld"),
                ("/bin/true", b"t"),
            ],
        );
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, ExecFlags::INTERP, 1);
        r.filename = "./s.sh".into();
        r.cwd = "/tmp".into();
        let f = analyze_exec(&r, &fs, &judge).finding.unwrap();
        assert_eq!(
            (f.subject, f.verdict, f.path.as_str()),
            (DriftSubject::Script, Verdict::Added, "/tmp/s.sh")
        );
        let mut r = rec("/lib/ld.so", FS_MAGIC_OVERLAY, 0, 1);
        r.argv = vec!["/lib/ld.so".into(), "/tmp/x".into()];
        let f = analyze_exec(&r, &fs, &judge).finding.unwrap();
        assert_eq!(
            (f.subject, f.path.as_str()),
            (DriftSubject::LoaderTarget, "/tmp/x")
        );
        let mut r = rec("/bin/true", FS_MAGIC_OVERLAY, 0, 1);
        r.env = vec!["LD_PRELOAD=/lib/none.so /tmp/x.so".into()];
        let f = analyze_exec(&r, &fs, &judge).finding.unwrap();
        assert_eq!(
            (f.subject, f.path.as_str()),
            (DriftSubject::Preload, "/tmp/x.so")
        );
        // An image script is not drift.
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, ExecFlags::INTERP, 1);
        r.filename = "/bin/true".into();
        assert_eq!(analyze_exec(&r, &fs, &judge).finding, None);
    }
}
