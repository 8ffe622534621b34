//! Host facts the sensors rely on, checked rather than assumed: a new machine has no bpffs
//! and no securityfs mounted (Debian 12 without systemd's mounts, a minimal VM, a fresh CI
//! machine), and its cgroup layout may be v1, hybrid or unified. Each fact is either made
//! true (bpffs, which pinning needs host-wide, as other BPF agents do) or reported as
//! unknown with the reason: a security tool's self-report must not reassure falsely.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// `BPF_FS_MAGIC` of `include/uapi/linux/magic.h`.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// `SECURITYFS_MAGIC`.
const SECURITYFS_MAGIC: i64 = 0x7363_6673;
/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `TMPFS_MAGIC`: a v1 or hybrid `/sys/fs/cgroup` is a tmpfs holding the hierarchies.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Where the kernel's BPF filesystem is mounted by convention.
pub const BPFFS: &str = "/sys/fs/bpf";

/// Where the exec program's link and the `orphans` map are pinned when enforcement fails
/// closed (the program outlives the agent). A starting agent detaches what a previous one
/// left there, after its own program is attached.
pub const PIN_DIR: &str = "/sys/fs/bpf/driftwatch";
/// Where securityfs (and so `lockdown`) is mounted by convention.
pub const SECURITYFS: &str = "/sys/kernel/security";

/// The filesystem magic of `path` (`statfs(2)`'s `f_type`).
pub fn fs_magic(path: &Path) -> io::Result<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type) // __fsword_t: i64 on the x86_64 hosts driftwatch is built for
}

fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let src = CString::new(source).expect("no NUL");
    let dst = CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let ty = CString::new(fstype).expect("no NUL");
    let data = CString::new(data).expect("no NUL");
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            ty.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`ensure_bpffs`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bpffs {
    /// A bpffs was already mounted there.
    Present,
    /// None was: this call mounted one (mode 0700).
    Mounted,
}

/// Makes sure a BPF filesystem is mounted at `dir` (normally [`BPFFS`]), mounting one when
/// the directory is a plain one. Pinning a program or map needs it, and a new machine has
/// none. The error says what to do when the mount is refused.
pub fn ensure_bpffs(dir: &Path) -> Result<Bpffs, String> {
    match fs_magic(dir) {
        Ok(BPF_FS_MAGIC) => return Ok(Bpffs::Present),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "{} does not exist, so no BPF filesystem can be mounted there (is sysfs mounted?)",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("statfs {}: {e}", dir.display())),
    }
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount("bpf", dir, "bpf", flags, "mode=0700").map_err(|e| {
        format!(
            "no BPF filesystem is mounted at {d} and mounting one failed: {e}; mount it yourself \
             (`mount -t bpf bpf {d}`, or a hostPath volume of {d} in a container)",
            d = dir.display()
        )
    })?;
    match fs_magic(dir) {
        Ok(BPF_FS_MAGIC) => Ok(Bpffs::Mounted),
        Ok(m) => Err(format!(
            "mounted a BPF filesystem at {} but it reads as filesystem {m:#x}",
            dir.display()
        )),
        Err(e) => Err(format!("statfs {} after mounting: {e}", dir.display())),
    }
}

/// The kernel's lockdown mode, or why it is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lockdown {
    /// `none`, `integrity` or `confidentiality`.
    Mode(String),
    /// The kernel has no lockdown LSM (securityfs is there, the file is not).
    NotBuilt,
    /// It could not be read; the reason.
    Unknown(String),
}

/// The active mode in a `lockdown` file's text: `none [integrity] confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .map(str::to_string)
}

/// Reads `lockdown` from securityfs. When securityfs is not mounted (a new machine), it is
/// mounted read-only in a private mount namespace of a short-lived thread, so the host's
/// mounts are left as they are. Unknown when neither works.
pub fn lockdown() -> Lockdown {
    let dir = Path::new(SECURITYFS);
    if fs_magic(dir).is_ok_and(|m| m == SECURITYFS_MAGIC) {
        return read_lockdown(dir);
    }
    let handle = std::thread::spawn(|| -> Result<Lockdown, String> {
        // SAFETY: unshare affects only this thread (CLONE_FS|CLONE_NEWNS), which exits when
        // done; no other thread shares its filesystem context after the call.
        if unsafe { libc::unshare(libc::CLONE_FS | libc::CLONE_NEWNS) } != 0 {
            return Err(format!(
                "securityfs is not mounted and a private mount namespace to read it in could not be made: {}",
                io::Error::last_os_error()
            ));
        }
        let root = Path::new("/");
        mount("none", root, "", libc::MS_REC | libc::MS_PRIVATE, "")
            .map_err(|e| format!("making the private mount namespace private: {e}"))?;
        let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        mount("securityfs", Path::new(SECURITYFS), "securityfs", flags, "")
            .map_err(|e| format!("securityfs is not mounted and mounting it failed: {e}"))?;
        Ok(read_lockdown(Path::new(SECURITYFS)))
    });
    match handle.join() {
        Ok(Ok(l)) => l,
        Ok(Err(why)) => Lockdown::Unknown(why),
        Err(_) => Lockdown::Unknown("the thread reading securityfs panicked".into()),
    }
}

fn read_lockdown(securityfs: &Path) -> Lockdown {
    let file = securityfs.join("lockdown");
    match std::fs::read_to_string(&file) {
        Ok(text) => match parse_lockdown(&text) {
            Some(mode) => Lockdown::Mode(mode),
            None => Lockdown::Unknown(format!("{} reads {:?}", file.display(), text.trim())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Lockdown::NotBuilt,
        Err(e) => Lockdown::Unknown(format!("reading {}: {e}", file.display())),
    }
}

/// How the cgroup hierarchies are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v2 only, at `/sys/fs/cgroup`.
    Unified,
    /// v1 controllers, with v2 at `/sys/fs/cgroup/unified` (`bpf_get_current_cgroup_id` and
    /// the exec record's cgroup name come from there).
    Hybrid,
    /// v1 only: no v2 hierarchy, so the exec record's cgroup name is empty and containers
    /// are found from `/proc/<pid>/cgroup` instead.
    Legacy,
    Unknown(String),
}

impl CgroupLayout {
    /// Where the v2 hierarchy is mounted, if there is one.
    pub fn v2_root(&self, cgroupfs: &Path) -> Option<PathBuf> {
        match self {
            CgroupLayout::Unified => Some(cgroupfs.to_path_buf()),
            CgroupLayout::Hybrid => Some(cgroupfs.join("unified")),
            _ => None,
        }
    }
}

/// The layout below `cgroupfs` (normally `/sys/fs/cgroup`).
pub fn cgroup_layout(cgroupfs: &Path) -> CgroupLayout {
    match fs_magic(cgroupfs) {
        Ok(CGROUP2_SUPER_MAGIC) => CgroupLayout::Unified,
        Ok(TMPFS_MAGIC) => match fs_magic(&cgroupfs.join("unified")) {
            Ok(CGROUP2_SUPER_MAGIC) => CgroupLayout::Hybrid,
            _ => CgroupLayout::Legacy,
        },
        Ok(m) => CgroupLayout::Unknown(format!(
            "{} is filesystem {m:#x}, neither cgroup2 nor a tmpfs of v1 hierarchies",
            cgroupfs.display()
        )),
        Err(e) => CgroupLayout::Unknown(format!("statfs {}: {e}", cgroupfs.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_text() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n").as_deref(),
            Some("integrity")
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality").as_deref(),
            Some("none")
        );
        assert_eq!(parse_lockdown("garbage"), None);
        assert_eq!(parse_lockdown(""), None);
    }

    #[test]
    fn magic_of_a_plain_directory_is_not_bpffs() {
        let d = tempfile::tempdir().unwrap();
        assert_ne!(fs_magic(d.path()).unwrap(), BPF_FS_MAGIC);
        assert!(fs_magic(&d.path().join("missing")).is_err());
    }

    #[test]
    fn ensure_bpffs_on_a_missing_directory_names_it() {
        let d = tempfile::tempdir().unwrap();
        let err = ensure_bpffs(&d.path().join("nope")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    /// As root: on a plain directory, a bpffs is mounted and then found present; unmounted
    /// again at the end. Skipped (with the reason) otherwise; CI runs as root.
    #[test]
    fn ensure_bpffs_mounts_on_a_plain_directory() {
        driftwatch_testkit::require!(Root("mounts a bpffs"));
        let d = tempfile::tempdir().unwrap();
        assert_eq!(ensure_bpffs(d.path()), Ok(Bpffs::Mounted));
        assert_eq!(ensure_bpffs(d.path()), Ok(Bpffs::Present));
        let c = CString::new(d.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) }, 0);
    }

    #[test]
    fn this_hosts_cgroup_layout_is_known() {
        let l = cgroup_layout(Path::new("/sys/fs/cgroup"));
        assert!(!matches!(l, CgroupLayout::Unknown(_)), "{l:?}");
    }

    #[test]
    fn lockdown_is_never_silently_none() {
        // Whatever this host says, the answer is a mode, "not built", or unknown with a
        // reason: never an empty string taken as "not restricted".
        match lockdown() {
            Lockdown::Mode(m) => assert!(!m.is_empty()),
            Lockdown::NotBuilt => {}
            Lockdown::Unknown(why) => assert!(!why.is_empty()),
        }
    }
}
