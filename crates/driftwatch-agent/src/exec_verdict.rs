//! Where did an exec's code come from? Gathers the facts about each file an exec loads (the
//! kernel's view of the executed file: filesystem, overlay bits, link count, inode; the
//! container's layers and mounts) and asks the one verdict function,
//! [`driftwatch_model::verdict`], shared with prevention and file drift.
//!
//! Order of judgement for the primary finding: the executed file, then the script run by
//! its shebang or named to a known interpreter (`sh /tmp/s.sh`, `python3 /tmp/e.py`), then a
//! program run through the dynamic loader, then `LD_PRELOAD` libraries.
//!
//! Paths come from the kernel relative to the file's overlay filesystem (never the task's
//! chroot), and a path-based content verdict on the executed file is trusted only when the
//! writable-layer file at that path is the inode the kernel executed.

use std::path::{Component, Path, PathBuf};

use driftwatch_image::{Judge, content_of};
use driftwatch_model::{
    Content, DriftFinding, DriftKind, DriftSubject, FileFacts, Identity, Interpreters, Invocation,
    Residence, Verdict,
};
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
    /// What changed, in words: the mode change of an image file made executable.
    detail: Option<String>,
}

impl Judged {
    fn plain(verdict: Verdict, path: &str) -> Judged {
        Judged {
            verdict,
            path: path.to_string(),
            hash: None,
            image_hash: None,
            detail: None,
        }
    }
}

fn is_memfd(rec: &ExecRecord) -> bool {
    // memfd files live on the kernel's internal shm mount: the path walk ends at its root,
    // so the path is "/memfd:NAME" (a tmpfs file merely named so has a longer path).
    (rec.fs_magic == FS_MAGIC_TMPFS || rec.fs_magic == FS_MAGIC_HUGETLBFS)
        && rec.path.starts_with("/memfd:")
}

/// Is `dev` the container's root overlay? Unknown mounts: assume so (the layers, if any,
/// are the only ones to compare with).
fn on_root_overlay(fs: &ContainerFs, dev: u32) -> bool {
    fs.root_dev().is_none_or(|r| r == dev)
}

/// The executed file: the kernel handed it over, so its filesystem and overlay bits are
/// facts, and a content verdict by path holds only if that path's writable-layer inode is
/// the one executed.
fn exe_verdict(rec: &ExecRecord, fs: &ContainerFs, judge: &Judge) -> Judged {
    let residence = if is_memfd(rec) {
        Residence::Memfd
    } else {
        match rec.fs_magic {
            FS_MAGIC_OVERLAY if on_root_overlay(fs, rec.dev) => Residence::RootOverlay {
                upper: rec.flags.has(ExecFlags::OVL_UPPER),
                lower: rec.flags.has(ExecFlags::OVL_LOWER),
            },
            FS_MAGIC_TMPFS | FS_MAGIC_HUGETLBFS => Residence::Memory,
            _ => Residence::Volume,
        }
    };
    let mut facts = FileFacts {
        residence,
        unlinked: rec.nlink == 0,
        content: Content::NotCompared,
        identity: Identity::Unchecked,
        existed: true,
        made_executable: false,
    };
    let mut judged = Judged::plain(Verdict::Unknown, &rec.path);
    let needs_content = matches!(residence, Residence::RootOverlay { upper: true, .. })
        && !facts.unlinked
        && !rec.flags.has(ExecFlags::PATH_TRUNCATED);
    if needs_content && let Some(layers) = fs.layers.as_ref() {
        let r = judge.judge(layers, &rec.path);
        facts.content = content_of(&r);
        facts.identity = match &r {
            Ok(j) if j.upper_ino == Some(rec.upper_ino) => Identity::Verified,
            Ok(_) => Identity::Mismatch,
            Err(e) if e.is_not_found() => Identity::Mismatch,
            Err(e) => {
                tracing::debug!("judging {}: {e}", rec.path);
                Identity::Unchecked
            }
        };
        if let Ok(j) = r
            && facts.identity == Identity::Verified
        {
            if let Some(m) = j.made_executable() {
                facts.made_executable = true;
                judged.detail = Some(m.mode_words());
            }
            judged.hash = j.hash;
            judged.image_hash = j.image_hash;
            judged.path = j.resolved_path;
        }
    }
    judged.verdict = driftwatch_model::verdict(&facts);
    judged
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

/// A name given to exec (`bprm->filename`, `LD_PRELOAD`, a loader's argument) resolved the
/// way the kernel did: absolute names from the task's root, relative ones from its working
/// directory, `..` never above the root. Lexical (symlinks are the judge's).
fn resolve_name(rec: &ExecRecord, name: &str) -> String {
    let base = if name.starts_with('/') {
        rec.root.as_str()
    } else {
        rec.cwd.as_str()
    };
    let root = absolutize("/", &rec.root);
    let floor = Path::new(&root).components().count();
    let mut out = PathBuf::from(&root);
    let rel = absolutize("/", base);
    // the base (the cwd) lies under the root unless the task moved it out with fchdir
    let rel = Path::new(&rel)
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(rel.trim_start_matches('/')));
    for c in rel.components().chain(Path::new(name).components()) {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if out.components().count() > floor {
                    out.pop();
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// Is the task where the container's own mounts describe it: its root is the container's
/// root, in the mount namespace the agent read? Otherwise (a chroot, `pivot_root`, a mount
/// namespace made inside) a name may lead somewhere the agent's mount table does not show.
fn in_container_view(rec: &ExecRecord, fs: &ContainerFs) -> bool {
    let same_ns = fs
        .mounts
        .as_ref()
        .and_then(|m| m.mnt_ns())
        .is_none_or(|ns| ns == rec.mnt_ns);
    let root_is_container_root = absolutize("/", &rec.root) == "/"
        && fs
            .root_dev()
            .is_none_or(|d| rec.root_dev == 0 || d == rec.root_dev);
    same_ns && root_is_container_root && !rec.flags.has(ExecFlags::ROOT_TRUNCATED)
}

/// Judges a file named by path (a script, a loader's target, a preloaded library): the
/// kernel did not hand us this file. `existed`: the kernel opened it (a script), so a
/// missing file is one that moved after exec. `shebang`: the kernel executed it as a
/// program (its exec bit counts).
fn path_verdict(
    rec: &ExecRecord,
    name: &str,
    existed: bool,
    shebang: bool,
    fs: &ContainerFs,
    judge: &Judge,
) -> Judged {
    let path = resolve_name(rec, name);
    let base_dev = if name.starts_with('/') {
        rec.root_dev
    } else {
        rec.cwd_dev
    };
    let (residence, identity) = if in_container_view(rec, fs) {
        let kind = fs
            .mounts
            .as_ref()
            .and_then(|m| m.find(&path))
            .map(|m| m.kind());
        let residence = match kind {
            Some(MountKind::Tmpfs) => Residence::Memory,
            Some(MountKind::Bind { .. }) | Some(MountKind::Other(_)) => Residence::Volume,
            Some(MountKind::Proc) | Some(MountKind::Sys) | Some(MountKind::Dev) => {
                Residence::KernelPseudo
            }
            Some(MountKind::ImageRoot) | None => Residence::RootOverlay {
                upper: true,
                lower: true,
            },
        };
        (residence, Identity::ByPath)
    } else if base_dev == 0 || on_root_overlay(fs, base_dev) {
        // Resolved in the overlay's own terms (the kernel walked root and cwd there); the
        // mounts on the way are not known, so an image file there proves nothing.
        (
            Residence::RootOverlay {
                upper: true,
                lower: true,
            },
            Identity::ByPathUnresolved,
        )
    } else {
        // From a root or directory on another filesystem: what it is, if the agent knows
        // its mount; otherwise nothing tells.
        let kind = fs
            .mounts
            .as_ref()
            .and_then(|m| m.by_kernel_dev(base_dev))
            .map(|m| m.kind());
        let residence = match kind {
            Some(MountKind::Tmpfs) => Residence::Memory,
            Some(MountKind::Bind { .. }) | Some(MountKind::Other(_)) => Residence::Volume,
            _ => Residence::KernelPseudo,
        };
        (residence, Identity::ByPathUnresolved)
    };
    let mut facts = FileFacts {
        residence,
        unlinked: false,
        content: Content::NotCompared,
        identity,
        existed,
        made_executable: false,
    };
    let mut judged = Judged::plain(Verdict::Unknown, &path);
    if matches!(residence, Residence::RootOverlay { .. })
        && let Some(layers) = fs.layers.as_ref()
    {
        let r = judge.judge(layers, &path);
        facts.content = content_of(&r);
        if let Ok(j) = r {
            // A shebang script is executed as a program: an image file made executable
            // in the container is metadata drift, as the executed file is. A script named
            // to an interpreter, a loader target or a library needs no exec bit.
            if shebang && let Some(m) = j.made_executable() {
                facts.made_executable = true;
                judged.detail = Some(m.mode_words());
            }
            judged.hash = j.hash;
            judged.image_hash = j.image_hash;
            judged.path = j.resolved_path;
        }
    }
    judged.verdict = driftwatch_model::verdict(&facts);
    judged
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
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Binary,
        subject,
        verdict: j.verdict,
        path: j.path,
        hash: j.hash,
        image_hash: j.image_hash,
        detail: j.detail,
    }
}

/// The descriptor a script name refers to when it names one of the process's own open
/// files (`/dev/fd/3`, `/proc/self/fd/3`, `/proc/thread-self/fd/3`, `/proc/<own pid>/fd/3`):
/// a pipe, a memfd or a deleted file handed to the interpreter, never a file by path.
fn own_fd(rec: &ExecRecord, name: &str) -> Option<u32> {
    let own = format!("/proc/{}/fd/", rec.ns_pid);
    let rest = [
        "/dev/fd/",
        "/proc/self/fd/",
        "/proc/thread-self/fd/",
        own.as_str(),
    ]
    .iter()
    .find_map(|p| name.strip_prefix(p))?;
    rest.parse().ok()
}

/// Is host pid `pid` still the process that made `rec` (not a pid reused since)? Its start
/// time in clock ticks since boot against the record's, to within a tick.
fn same_process(rec: &ExecRecord) -> bool {
    let Ok(stat) = driftwatch_fs::host::proc_string(rec.pid, "stat") else {
        return false;
    };
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let Some(start) = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return false;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tick_ns = 1_000_000_000 / u64::try_from(hz).unwrap_or(100).max(1);
    (rec.facts.start_boot_ns / tick_ns).abs_diff(start) <= 1
}

/// Judges a script the interpreter was handed as one of its open descriptors, through
/// `/proc/PID/fd` while the process lives: a memfd, an unlinked file, or a file by the name
/// the kernel gives it. `None`: not a file (a pipe or socket: code on a stream, the inline
/// code fact's).
fn fd_script_verdict(rec: &ExecRecord, fd: u32, fs: &ContainerFs, judge: &Judge) -> Option<Judged> {
    let link = format!("fd/{fd}");
    let shown = format!("/dev/fd/{fd}");
    // The process exited or exec'd again: what the descriptor was cannot be told.
    if !same_process(rec) {
        return Some(Judged::plain(Verdict::Unjudged, &shown));
    }
    let Ok(target) = driftwatch_fs::host::proc_link(rec.pid, &link) else {
        return Some(Judged::plain(Verdict::Unjudged, &shown));
    };
    let target = target.to_string_lossy().into_owned();
    if target.starts_with("pipe:")
        || target.starts_with("socket:")
        || target.starts_with("anon_inode:")
    {
        return None;
    }
    if let Some(name) = target
        .strip_prefix("/memfd:")
        .or(target.strip_prefix("memfd:"))
    {
        let name = name.trim_end_matches(" (deleted)");
        return Some(Judged::plain(Verdict::Memfd, &format!("/memfd:{name}")));
    }
    // stat through the link: the open file itself, even unlinked (no open of the
    // container's file: a FIFO would block).
    use std::os::unix::fs::MetadataExt;
    let unlinked = driftwatch_fs::host::proc_metadata(rec.pid, &link).is_ok_and(|m| m.nlink() == 0);
    let path = target.strip_suffix(" (deleted)").unwrap_or(&target);
    if unlinked || path.len() < target.len() {
        return Some(Judged::plain(Verdict::Deleted, path));
    }
    // A live, linked file: judged by the name the kernel gives it, in the container's view.
    Some(path_verdict(rec, path, true, false, fs, judge))
}

/// The script a known interpreter was asked to run (`sh /tmp/s.sh`, `python3 e.py`,
/// `java -jar x.jar`), judged as a shebang script is. A named script that does not exist is
/// not drift (the interpreter fails to open it); one the process still holds open after it
/// was unlinked is `deleted`.
fn interpreter_script(
    rec: &ExecRecord,
    fs: &ContainerFs,
    judge: &Judge,
    interpreters: &Interpreters,
) -> Option<Judged> {
    let argv = driftwatch_model::applet_argv(&rec.path, &rec.argv);
    let family = interpreters.family_of(&rec.path, argv.first()?)?;
    let Invocation::Script { path, .. } = driftwatch_model::classify(family, argv) else {
        return None;
    };
    if let Some(fd) = own_fd(rec, path) {
        return fd_script_verdict(rec, fd, fs, judge);
    }
    let j = path_verdict(rec, path, false, false, fs, judge);
    let missing = match j.verdict {
        Verdict::Unknown => true,
        // Judged by the mount it would be on: is it there at all?
        Verdict::Tmpfs | Verdict::Volume if in_container_view(rec, fs) && same_process(rec) => {
            // Only the file's absence counts: the process's root may be gone (it exited
            // meanwhile), which says nothing about the file.
            driftwatch_fs::Root::of_process("container", rec.pid).is_ok_and(|r| {
                r.stat(&driftwatch_fs::InContainer::from(j.path.as_str()))
                    .is_err_and(|e| e.is_not_found())
            })
        }
        _ => false,
    };
    if !missing {
        return Some(j);
    }
    // Missing by its name: run and unlinked already? The process may still hold it open.
    let deleted = same_process(rec)
        .then(|| driftwatch_fs::host::proc_fd_links(rec.pid).ok())
        .flatten()
        .into_iter()
        .flatten()
        .any(|t| t.to_string_lossy().strip_suffix(" (deleted)") == Some(j.path.as_str()));
    deleted.then(|| Judged::plain(Verdict::Deleted, &j.path))
}

/// The executable file names the exec program holds in prevent mode when run with an
/// argument: the listed interpreters, and `busybox` when a shell is listed (its `sh` is the
/// busybox file, whatever name ran it). Versioned names need no entry: the kernel side
/// matches `python3.12` by its stem.
pub fn held_interpreter_names(interpreters: &Interpreters) -> Vec<String> {
    let mut names: Vec<String> = interpreters.iter().map(|(n, _)| n.to_string()).collect();
    if interpreters
        .iter()
        .any(|(_, f)| f == driftwatch_model::InterpreterFamily::Shell)
        && !names.iter().any(|n| n == "busybox")
    {
        names.push("busybox".into());
    }
    names
}

/// Analyses one exec inside a container.
pub fn analyze_exec(
    rec: &ExecRecord,
    fs: &ContainerFs,
    judge: &Judge,
    interpreters: &Interpreters,
) -> ExecAnalysis {
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
        let j = path_verdict(rec, &rec.filename, true, true, fs, judge);
        if j.verdict.is_drift() {
            analysis.finding = Some(finding(DriftSubject::Script, j));
            return analysis;
        }
    } else if let Some(j) = interpreter_script(rec, fs, judge, interpreters)
        && j.verdict.is_drift()
    {
        // Not for a shebang exec: its argv names the script the kernel already judged.
        analysis.finding = Some(finding(DriftSubject::Script, j));
        return analysis;
    }
    let mut preload: Vec<String> = Vec::new();
    if is_dynamic_loader(&rec.path) {
        let (target, opts) = loader_target(&rec.argv);
        preload.extend(opts.iter().map(|p| p.to_string()));
        if let Some(t) = target {
            let j = path_verdict(rec, t, false, false, fs, judge);
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
                .map(str::to_string),
        );
    }
    for lib in preload {
        let j = path_verdict(rec, &lib, false, false, fs, judge);
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
        let v = |r: &ExecRecord| analyze_exec(r, &fs, &judge, &Interpreters::default());
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
        // Upper with a lower and no layers to compare: not called added or modified on the
        // bit alone, but not accepted silently either.
        assert_eq!(
            v(&rec(
                "/bin/true",
                FS_MAGIC_OVERLAY,
                ExecFlags::OVL_UPPER | ExecFlags::OVL_LOWER,
                1
            ))
            .finding
            .unwrap()
            .verdict,
            Verdict::Unjudged
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
        (dir, ContainerFs::new(Some(layers), None))
    }

    /// The record of an exec of the writable-layer file at `path`, as the kernel reports it.
    #[expect(
        clippy::disallowed_methods,
        reason = "the test's own fixture files, not a container's"
    )]
    fn upper_rec(fs: &ContainerFs, path: &str, flags: u32) -> ExecRecord {
        use std::os::unix::fs::MetadataExt;
        let upper = &fs.layers.as_ref().unwrap().upper;
        let ino = std::fs::metadata(upper.join(path.trim_start_matches('/')))
            .unwrap()
            .ino();
        ExecRecord {
            upper_ino: ino,
            ..rec(path, FS_MAGIC_OVERLAY, flags, 1)
        }
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
            &upper_rec(&fs, "/usr/bin/true", both),
            &fs,
            &judge,
            &Interpreters::default(),
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
            &upper_rec(&fs, "/usr/bin/true", both),
            &fs,
            &judge,
            &Interpreters::default(),
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
    fn an_image_file_made_executable_is_metadata_drift_with_the_mode_change() {
        use std::os::unix::fs::PermissionsExt;
        let judge = Judge::new();
        let both = ExecFlags::OVL_UPPER | ExecFlags::OVL_LOWER;
        let (d, fs) = layers_with(
            &[("/usr/share/x.bin", b"ELF-data")],
            &[("/usr/share/x.bin", b"ELF-data")],
        );
        let set = |root: &str, mode: u32| {
            let p = d.path().join(root).join("usr/share/x.bin");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        set("lower", 0o644);
        set("upper", 0o755);
        let f = analyze_exec(
            &upper_rec(&fs, "/usr/share/x.bin", both),
            &fs,
            &judge,
            &Interpreters::default(),
        )
        .finding
        .unwrap();
        assert_eq!(
            (f.verdict, f.subject, f.detail.as_deref()),
            (
                Verdict::Metadata,
                DriftSubject::Exe,
                Some("mode 0644 -> 0755")
            )
        );
        // Executable in the image already: a wider mode is still the image's file.
        set("lower", 0o700);
        let a = analyze_exec(
            &upper_rec(&fs, "/usr/share/x.bin", both),
            &fs,
            &judge,
            &Interpreters::default(),
        );
        assert_eq!((a.exe_verdict, a.finding), (Verdict::CopyUp, None));
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
        let f = analyze_exec(&r, &fs, &judge, &Interpreters::default())
            .finding
            .unwrap();
        assert_eq!(
            (f.subject, f.verdict, f.path.as_str()),
            (DriftSubject::Script, Verdict::Added, "/tmp/s.sh")
        );
        let mut r = rec("/lib/ld.so", FS_MAGIC_OVERLAY, 0, 1);
        r.argv = vec!["/lib/ld.so".into(), "/tmp/x".into()];
        let f = analyze_exec(&r, &fs, &judge, &Interpreters::default())
            .finding
            .unwrap();
        assert_eq!(
            (f.subject, f.path.as_str()),
            (DriftSubject::LoaderTarget, "/tmp/x")
        );
        let mut r = rec("/bin/true", FS_MAGIC_OVERLAY, 0, 1);
        r.env = vec!["LD_PRELOAD=/lib/none.so /tmp/x.so".into()];
        let f = analyze_exec(&r, &fs, &judge, &Interpreters::default())
            .finding
            .unwrap();
        assert_eq!(
            (f.subject, f.path.as_str()),
            (DriftSubject::Preload, "/tmp/x.so")
        );
        // An image script is not drift.
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, ExecFlags::INTERP, 1);
        r.filename = "/bin/true".into();
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::default()).finding,
            None
        );
    }

    /// The judged path must be the executed file: a content verdict on another file (the
    /// path renamed, replaced, or steered by the container) is never trusted.
    #[test]
    fn a_path_that_is_not_the_executed_file_is_not_trusted() {
        let judge = Judge::new();
        let both = ExecFlags::OVL_UPPER | ExecFlags::OVL_LOWER;
        let (_d, fs) = layers_with(
            &[("/usr/bin/true", b"ELF-true"), ("/tmp/other", b"x")],
            &[("/usr/bin/true", b"ELF-true")],
        );
        // Same bytes as the image's, but the kernel ran another inode: renamed over.
        let mut r = upper_rec(&fs, "/usr/bin/true", both);
        r.upper_ino += 1_000_000;
        let f = analyze_exec(&r, &fs, &judge, &Interpreters::default())
            .finding
            .unwrap();
        assert_eq!(
            (f.subject, f.verdict),
            (DriftSubject::Exe, Verdict::Unjudged)
        );
        // Renamed or removed right after exec: no file at the path any more.
        let mut r = upper_rec(&fs, "/usr/bin/true", both);
        r.path = "/usr/bin/gone".into();
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::default())
                .finding
                .unwrap()
                .verdict,
            Verdict::Unjudged
        );
        // Upper only (no image copy), whatever the path now names: added.
        let mut r = upper_rec(&fs, "/tmp/other", ExecFlags::OVL_UPPER);
        r.path = "/usr/bin/true".into();
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::default())
                .finding
                .unwrap()
                .verdict,
            Verdict::Added
        );
    }

    /// Names given to exec inside a chroot resolve from the chroot, and a name that leads
    /// through a view the agent has not read (chroot, mount namespace made inside) proves
    /// nothing by naming an image file.
    #[test]
    fn names_resolve_from_the_task_root_and_chroots_are_not_trusted() {
        let judge = Judge::new();
        let (_d, fs) = layers_with(
            &[("/tmp/r/s.sh", b"#!/bin/sh"), ("/tmp/r/bin/sh", b"ELF")],
            &[("/bin/sh", b"ELF-sh"), ("/s.sh", b"#!/bin/sh")],
        );
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, ExecFlags::INTERP, 1);
        r.root = "/tmp/r".into();
        r.cwd = "/tmp/r".into();
        r.filename = "/s.sh".into();
        let f = analyze_exec(&r, &fs, &judge, &Interpreters::default())
            .finding
            .unwrap();
        assert_eq!(
            (f.subject, f.verdict, f.path.as_str()),
            (DriftSubject::Script, Verdict::Added, "/tmp/r/s.sh")
        );
        r.filename = "../../s.sh".into();
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::default())
                .finding
                .unwrap()
                .path,
            "/tmp/r/s.sh",
            "`..` stops at the task's root"
        );
        // Not chrooted: the image's script is the image's...
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, ExecFlags::INTERP, 1);
        r.root = "/".into();
        r.filename = "/s.sh".into();
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::default()).finding,
            None
        );
        r.mnt_ns = 7;
        let ns_fs = ContainerFs::new(
            fs.layers.clone(),
            Some(
                driftwatch_runtime::MountTable::parse(
                    "77 52 0:40 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n",
                )
                .unwrap()
                .in_namespace(Some(6)),
            ),
        );
        // ...but not when named in a mount namespace made inside the container.
        (r.root_dev, r.dev) = (40, 40);
        assert_eq!(
            analyze_exec(&r, &ns_fs, &judge, &Interpreters::default())
                .finding
                .unwrap()
                .verdict,
            Verdict::Unjudged,
            "an image script named in a mount namespace made inside"
        );
        // The executed file on another overlay than the container's root: not the image.
        let mut r = rec("/bin/sh", FS_MAGIC_OVERLAY, 0, 1);
        r.dev = 41;
        assert_eq!(
            analyze_exec(&r, &ns_fs, &judge, &Interpreters::default())
                .finding
                .unwrap()
                .verdict,
            Verdict::Volume
        );
    }

    /// `sh /tmp/s.sh`, `python3 e.py`: the script named to a known interpreter is judged as a
    /// shebang script is; inline code, modules and image scripts are not script drift.
    #[test]
    fn scripts_named_to_interpreters_are_judged() {
        let judge = Judge::new();
        let (_d, fs) = layers_with(
            &[("/tmp/s.sh", b"echo hi"), ("/tmp/e.py", b"print(1)")],
            &[
                ("/bin/dash", b"ELF-dash"),
                ("/bin/busybox", b"ELF-bb"),
                ("/usr/bin/python3.11", b"ELF-py"),
                ("/etc/profile", b"PATH=/bin"),
                ("/usr/bin/ls", b"ELF-ls"),
            ],
        );
        let interp = Interpreters::default();
        let run = |exe: &str, argv: &[&str], cwd: &str| {
            let mut r = rec(exe, FS_MAGIC_OVERLAY, ExecFlags::OVL_LOWER, 1);
            r.argv = args(argv);
            r.cwd = cwd.into();
            analyze_exec(&r, &fs, &judge, &interp)
                .finding
                .map(|f| (f.subject, f.verdict, f.path))
        };
        let script = |p: &str| Some((DriftSubject::Script, Verdict::Added, p.to_string()));
        assert_eq!(
            run("/bin/dash", &["sh", "/tmp/s.sh"], "/"),
            script("/tmp/s.sh")
        );
        assert_eq!(
            run(
                "/bin/dash",
                &["bash", "-e", "-o", "pipefail", "/tmp/s.sh"],
                "/"
            ),
            script("/tmp/s.sh")
        );
        assert_eq!(
            run("/usr/bin/python3.11", &["python3", "e.py"], "/tmp"),
            script("/tmp/e.py")
        );
        assert_eq!(
            run("/usr/bin/python3.11", &["python3", "../tmp/./e.py"], "/etc"),
            script("/tmp/e.py"),
            "relative to the cwd, `..` resolved"
        );
        assert_eq!(
            run("/bin/busybox", &["sh", "/tmp/s.sh"], "/"),
            script("/tmp/s.sh"),
            "busybox under a shell's name"
        );
        assert_eq!(
            run("/bin/busybox", &["busybox", "sh", "/tmp/s.sh"], "/"),
            script("/tmp/s.sh"),
            "busybox naming its applet"
        );
        for quiet in [
            &["sh", "-c", "echo hi"][..],
            &["python3", "-c", "print(1)"],
            &["python3", "-m", "json.tool"],
            &["sh", "/etc/profile"],
            &["sh", "/tmp/missing.sh"],
            &["sh"],
        ] {
            let exe = if quiet[0] == "sh" {
                "/bin/dash"
            } else {
                "/usr/bin/python3.11"
            };
            assert_eq!(run(exe, quiet, "/"), None, "{quiet:?}");
        }
        // Not an interpreter: its argument is data.
        assert_eq!(run("/usr/bin/ls", &["ls", "/tmp/s.sh"], "/"), None);
        assert_eq!(run("/bin/busybox", &["ls", "/tmp/s.sh"], "/"), None);
        // Interpreter drift off: nothing judged.
        let mut r = rec("/bin/dash", FS_MAGIC_OVERLAY, ExecFlags::OVL_LOWER, 1);
        r.argv = args(&["sh", "/tmp/s.sh"]);
        assert_eq!(
            analyze_exec(&r, &fs, &judge, &Interpreters::none()).finding,
            None
        );
        // The process's own descriptor, the process gone: what it was cannot be told.
        r.argv = args(&["sh", "/dev/fd/3"]);
        r.pid = u32::MAX;
        let f = analyze_exec(&r, &fs, &judge, &interp).finding.unwrap();
        assert_eq!(
            (f.subject, f.verdict),
            (DriftSubject::Script, Verdict::Unjudged)
        );
    }

    #[test]
    fn held_names_include_busybox_with_a_shell() {
        let names = held_interpreter_names(&Interpreters::default());
        assert!(names.iter().any(|n| n == "busybox"));
        assert!(names.iter().any(|n| n == "python3"));
        let mut only = Interpreters::none();
        only.insert("python3", driftwatch_model::InterpreterFamily::Python);
        assert_eq!(held_interpreter_names(&only), ["python3"]);
    }
}
