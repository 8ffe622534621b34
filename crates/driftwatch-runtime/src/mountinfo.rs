//! `/proc/<pid>/mountinfo`: parse it, find the mount a path lives on, and read a container's
//! overlay layers from its root mount — the same for every engine.
//!
//! Format (proc(5)), one mount a line:
//! `36 35 98:0 /root /mnt rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue`:
//! mount id, parent id, `major:minor`, root of the mount within its filesystem, mount point
//! (relative to the reading process's root), per-mount options, zero or more optional fields,
//! `-`, filesystem type, source, super-block options. Paths and the source escape space, tab,
//! newline and backslash as `\ooo` octal; super-block option values written with
//! `seq_show_option` (overlay's `lowerdir=` ...) also escape `,` and `=`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use driftwatch_model::OverlayLayers;

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem mounted here (`/` unless a bind mount of a subtree).
    pub root: PathBuf,
    /// Where it is mounted, as seen from the reading process's root directory.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    /// Optional fields (`shared:1`, `master:2`, `propagate_from:3`, `unbindable`).
    pub optional_fields: Vec<String>,
    /// Filesystem type, with any subtype (`fuse.sshfs`).
    pub fstype: String,
    /// Mount source (`/dev/vda`, `overlay`, `tmpfs`), unescaped.
    pub source: String,
    /// Super-block options as the kernel printed them (still escaped); see [`Mount::super_options`].
    pub super_options_raw: String,
}

/// Why a mountinfo line could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("mountinfo line {line}: {problem}: {text:?}")]
pub struct MountinfoError {
    /// 1-based line number.
    pub line: usize,
    pub problem: MountinfoProblem,
    /// The offending line, cut to 200 characters.
    pub text: String,
}

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum MountinfoProblem {
    #[error("fewer than 6 fields before the ' - ' separator")]
    TooFewFields,
    #[error("no ' - ' separator")]
    NoSeparator,
    #[error("no filesystem type or source after ' - '")]
    NoFsType,
    #[error("mount id or parent id is not a number")]
    BadId,
    #[error("device is not major:minor")]
    BadDevice,
}

/// What a mount means for "is this file from the image?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// The overlay at `/`: the container's image (lower dirs) plus its writable layer.
    ImageRoot,
    /// tmpfs anywhere (`/dev/shm`, `--tmpfs`, Docker's `/dev`): memory, never from the image.
    Tmpfs,
    /// A host filesystem mounted into the container (volumes, bind mounts, `/etc/hosts`):
    /// `source` is the host device, `root` the directory of that filesystem mounted here.
    Bind {
        source: String,
        root: PathBuf,
    },
    Proc,
    /// sysfs and cgroup filesystems.
    Sys,
    /// devpts, devtmpfs, mqueue.
    Dev,
    /// Anything else, by filesystem type (an overlay not at `/`, fuse, nfs, ...).
    Other(String),
}

/// Parses the whole text of a mountinfo file. Blank lines are skipped; the first malformed line
/// is an error naming its line number (mountinfo comes from the kernel, so a bad line means the
/// text is not mountinfo at all).
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, MountinfoError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_line(l).map_err(|problem| MountinfoError {
                line: i + 1,
                problem,
                text: l.chars().take(200).collect(),
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Result<Mount, MountinfoProblem> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let sep = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or(MountinfoProblem::NoSeparator)?;
    if sep < 6 {
        return Err(MountinfoProblem::TooFewFields);
    }
    let after = &fields[sep + 1..];
    if after.len() < 2 {
        return Err(MountinfoProblem::NoFsType);
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| MountinfoProblem::BadId);
    let (major, minor) = fields[2]
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or(MountinfoProblem::BadDevice)?;
    Ok(Mount {
        mount_id: num(fields[0])?,
        parent_id: num(fields[1])?,
        major,
        minor,
        root: unescape_path(fields[3]),
        mount_point: unescape_path(fields[4]),
        mount_options: fields[5].to_string(),
        optional_fields: fields[6..sep].iter().map(|s| s.to_string()).collect(),
        fstype: fields[sep + 1].to_string(),
        source: String::from_utf8_lossy(&unescape(fields[sep + 2])).into_owned(),
        super_options_raw: after.get(2).copied().unwrap_or("").to_string(),
    })
}

/// Decodes the kernel's `\ooo` octal escapes; a backslash not followed by three octal digits
/// stays as it is.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
            && b[i + 1] <= b'3'
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn unescape_path(s: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(s)))
}

impl Mount {
    /// Super-block options as `(key, value)`, values unescaped. Repeated keys (overlay's
    /// `lowerdir+=`) come out once per occurrence, in order.
    pub fn super_options(&self) -> impl Iterator<Item = (String, Option<Vec<u8>>)> + '_ {
        self.super_options_raw
            .split(',')
            .filter(|o| !o.is_empty())
            .map(|o| match o.split_once('=') {
                Some((k, v)) => (
                    String::from_utf8_lossy(&unescape(k)).into_owned(),
                    Some(unescape(v)),
                ),
                None => (String::from_utf8_lossy(&unescape(o)).into_owned(), None),
            })
    }

    /// What kind of filesystem this is for drift decisions; see [`classify`].
    pub fn kind(&self) -> MountKind {
        classify(self)
    }
}

/// Classifies a mount: the overlay at `/` is the image root, tmpfs is memory, a block-device
/// filesystem (or any subtree mount) is a host bind mount, and so on.
pub fn classify(mount: &Mount) -> MountKind {
    match mount.fstype.as_str() {
        "overlay" if mount.mount_point == Path::new("/") => MountKind::ImageRoot,
        "tmpfs" | "ramfs" => MountKind::Tmpfs,
        "proc" => MountKind::Proc,
        "sysfs" | "cgroup" | "cgroup2" | "securityfs" | "debugfs" | "tracefs" | "bpf" => {
            MountKind::Sys
        }
        "devpts" | "devtmpfs" | "mqueue" | "hugetlbfs" => MountKind::Dev,
        "overlay" => MountKind::Other(mount.fstype.clone()),
        _ if mount.source.starts_with('/') || mount.root != Path::new("/") => MountKind::Bind {
            source: mount.source.clone(),
            root: mount.root.clone(),
        },
        other => MountKind::Other(other.to_string()),
    }
}

/// The mounts of one process, for lookups by path and by id.
#[derive(Clone, Debug, Default)]
pub struct MountTable {
    mounts: Vec<Mount>,
    /// The mount namespace (its inode) of the process they were read from, when known:
    /// they describe that namespace only.
    mnt_ns: Option<u32>,
}

impl MountTable {
    pub fn new(mounts: Vec<Mount>) -> Self {
        Self {
            mounts,
            mnt_ns: None,
        }
    }

    /// These mounts, as read in the mount namespace `ns`.
    pub fn in_namespace(mut self, ns: Option<u32>) -> Self {
        self.mnt_ns = ns;
        self
    }

    /// The mount namespace these mounts were read in, if known.
    pub fn mnt_ns(&self) -> Option<u32> {
        self.mnt_ns
    }

    /// The mount on top at `/`, if it is an overlay: the container's root filesystem.
    pub fn root_overlay_mount(&self) -> Option<&Mount> {
        let at_root: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| normalize(&m.mount_point) == Path::new("/"))
            .collect();
        top_of_stack(&at_root).filter(|m| m.fstype == "overlay")
    }

    /// The mount whose superblock is the kernel device `dev` (`s_dev`, encoded
    /// `major << 20 | minor`), the top-most if several.
    pub fn by_kernel_dev(&self, dev: u32) -> Option<&Mount> {
        let at: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| kernel_dev(m) == dev)
            .collect();
        top_of_stack(&at)
    }

    pub fn parse(text: &str) -> Result<Self, MountinfoError> {
        parse_mountinfo(text).map(Self::new)
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    pub fn by_id(&self, mount_id: u32) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.mount_id == mount_id)
    }

    /// The mount `path` (absolute, as seen from the process's root; not resolved for `..` or
    /// symlinks) lives on: the longest mount point that is a component-wise prefix of it
    /// (`/data` covers `/data/x`, not `/database`). Where several mounts share that mount
    /// point, the one on top of the stack wins: the one no other mount there sits on
    /// (by parent id), else the last in the file.
    pub fn find(&self, path: impl AsRef<Path>) -> Option<&Mount> {
        let path = normalize(path.as_ref());
        let best_len = self
            .mounts
            .iter()
            .filter(|m| path.starts_with(normalize(&m.mount_point)))
            .map(|m| normalize(&m.mount_point).components().count())
            .max()?;
        let at: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| {
                let mp = normalize(&m.mount_point);
                path.starts_with(&mp) && mp.components().count() == best_len
            })
            .collect();
        top_of_stack(&at)
    }

    /// The container's root overlay: the mount on top at `/`, when it is an overlay with a
    /// writable upper dir. Lower dirs come top-most first (`lowerdir=` split on unescaped
    /// `:`, or the newer repeated `lowerdir+=`, then any `datadir+=` data-only layers). Paths
    /// are as the mounter wrote them: Docker's are `l/<short>` symlinks (absolute, or relative
    /// to the driver's home when the option string would be too long); see
    /// [`resolve_layer_paths`]. The merged dir's host path is unknown from inside, so `None`.
    pub fn root_overlay(&self) -> Option<OverlayLayers> {
        let at_root: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| normalize(&m.mount_point) == Path::new("/"))
            .collect();
        let root = top_of_stack(&at_root)?;
        (root.fstype == "overlay").then_some(())?;
        overlay_layers(root)
    }
}

/// A mount's device as the kernel encodes `s_dev` inside (`MKDEV`: `major << 20 | minor`),
/// the form BPF programs read.
pub fn kernel_dev(m: &Mount) -> u32 {
    (m.major << 20) | (m.minor & 0xf_ffff)
}

fn top_of_stack<'a>(at: &[&'a Mount]) -> Option<&'a Mount> {
    let uncovered = at.iter().rev().find(|m| {
        !at.iter()
            .any(|o| o.parent_id == m.mount_id && o.mount_id != m.mount_id)
    });
    uncovered.or(at.last()).copied()
}

/// Drops `.` components and trailing slashes; keeps `..` (not resolvable without the fs).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => out.push(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The overlay layers of any overlay mount, `None` when it has no upper dir (read-only overlay).
pub fn overlay_layers(mount: &Mount) -> Option<OverlayLayers> {
    let mut upper = None;
    let mut lowers = Vec::new();
    let mut data = Vec::new();
    for (key, value) in mount.super_options() {
        let Some(value) = value else { continue };
        match key.as_str() {
            "upperdir" => upper = Some(bytes_path(value)),
            "lowerdir" => lowers.extend(split_lowerdir(&value)),
            "lowerdir+" => lowers.push(bytes_path(value)),
            "datadir+" => data.push(bytes_path(value)),
            _ => {}
        }
    }
    lowers.extend(data);
    Some(OverlayLayers {
        upper: upper?,
        lowers,
        merged: None,
    })
}

/// Splits overlay's legacy `lowerdir=` list on `:`, where `\:` is a literal colon and `\\` a
/// literal backslash.
fn split_lowerdir(value: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = value.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(n) => cur.push(n),
                None => cur.push(b'\\'),
            },
            b':' => out.push(bytes_path(std::mem::take(&mut cur))),
            _ => cur.push(b),
        }
    }
    out.push(bytes_path(cur));
    out.retain(|p| !p.as_os_str().is_empty());
    out
}

fn bytes_path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}

/// Turns layer paths as mounted into canonical host paths: relative ones are joined onto
/// `relative_to` (Docker's overlay2 home, `/var/lib/docker/overlay2`, when it used relative
/// paths), then symlinks (`l/<short>`) are resolved. Needs the paths to exist in the caller's
/// mount namespace (the host's, for an agent on the host).
pub fn resolve_layer_paths(
    layers: &OverlayLayers,
    relative_to: &Path,
) -> io::Result<OverlayLayers> {
    let resolve = |p: &Path| {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            relative_to.join(p)
        };
        joined
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", joined.display())))
    };
    Ok(OverlayLayers {
        upper: resolve(&layers.upper)?,
        lowers: layers
            .lowers
            .iter()
            .map(|l| resolve(l))
            .collect::<io::Result<_>>()?,
        merged: layers.merged.as_deref().map(resolve).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real Docker 20.10 container on this kind of host.
    const DOCKER: &str = "\
74 49 0:40 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/HILB:/var/lib/docker/overlay2/l/4X2R,upperdir=/var/lib/docker/overlay2/3d6f/diff,workdir=/var/lib/docker/overlay2/3d6f/work
75 74 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
76 74 0:44 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
77 76 0:45 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
78 74 0:46 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
80 79 0:29 /docker/d6ea /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
89 76 0:42 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
90 76 0:48 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
91 74 254:0 /tmp/dw-vol /data rw,relatime - ext4 /dev/vda rw,discard
92 74 0:49 / /scratch rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw
95 74 254:0 /var/lib/docker/containers/d6ea/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw,discard
55 75 0:44 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
";

    #[test]
    fn parses_a_docker_container() {
        let t = MountTable::parse(DOCKER).unwrap();
        assert_eq!(t.mounts().len(), 12);
        let root = t.by_id(74).unwrap();
        assert_eq!(root.parent_id, 49);
        assert_eq!((root.major, root.minor), (0, 40));
        assert_eq!(root.optional_fields, vec!["master:2"]);
        assert_eq!(root.fstype, "overlay");
        assert_eq!(root.kind(), MountKind::ImageRoot);
        let layers = t.root_overlay().unwrap();
        assert_eq!(
            layers.upper,
            Path::new("/var/lib/docker/overlay2/3d6f/diff")
        );
        assert_eq!(
            layers.lowers,
            vec![
                PathBuf::from("/var/lib/docker/overlay2/l/HILB"),
                PathBuf::from("/var/lib/docker/overlay2/l/4X2R")
            ]
        );
        assert_eq!(layers.merged, None);
    }

    #[test]
    fn find_takes_the_longest_component_prefix() {
        let t = MountTable::parse(DOCKER).unwrap();
        let at = |p: &str| t.find(p).map(|m| m.mount_id);
        assert_eq!(at("/bin/sh"), Some(74));
        assert_eq!(at("/"), Some(74));
        assert_eq!(at("/data"), Some(91));
        assert_eq!(at("/data/"), Some(91));
        assert_eq!(at("/data/x/y"), Some(91));
        assert_eq!(at("/database"), Some(74));
        assert_eq!(at("/dev/shm/x"), Some(90));
        assert_eq!(at("/dev/shmx"), Some(76));
        assert_eq!(at("/dev/./pts/0"), Some(77));
        assert_eq!(at("relative/is/rooted"), Some(74));
        assert_eq!(MountTable::default().find("/"), None);
    }

    #[test]
    fn classification() {
        let t = MountTable::parse(DOCKER).unwrap();
        let kind = |p: &str| t.find(p).unwrap().kind();
        assert_eq!(kind("/scratch/a"), MountKind::Tmpfs);
        assert_eq!(kind("/dev/shm/a"), MountKind::Tmpfs);
        assert_eq!(kind("/proc/1/exe"), MountKind::Proc);
        assert_eq!(kind("/proc/keys"), MountKind::Tmpfs);
        assert_eq!(kind("/sys/kernel"), MountKind::Sys);
        assert_eq!(kind("/sys/fs/cgroup/cpu/x"), MountKind::Sys);
        assert_eq!(kind("/dev/pts/0"), MountKind::Dev);
        assert_eq!(kind("/dev/mqueue"), MountKind::Dev);
        assert_eq!(
            kind("/data/f"),
            MountKind::Bind {
                source: "/dev/vda".into(),
                root: "/tmp/dw-vol".into()
            }
        );
        assert_eq!(
            kind("/etc/hosts"),
            MountKind::Bind {
                source: "/dev/vda".into(),
                root: "/var/lib/docker/containers/d6ea/hosts".into()
            }
        );
        let other = parse_mountinfo("1 0 0:1 / /mnt rw - fuse.sshfs host:/x rw\n2 0 0:2 / /o rw - overlay overlay rw,lowerdir=/a,upperdir=/b").unwrap();
        assert_eq!(classify(&other[0]), MountKind::Other("fuse.sshfs".into()));
        assert_eq!(classify(&other[1]), MountKind::Other("overlay".into()));
    }

    #[test]
    fn octal_escapes() {
        let text =
            r"30 1 8:1 /with\040space /mnt/a\040b\011c\012d\134e rw - ext4 /dev/disk\040x rw";
        let m = &parse_mountinfo(text).unwrap()[0];
        assert_eq!(m.root, Path::new("/with space"));
        assert_eq!(m.mount_point, Path::new("/mnt/a b\tc\nd\\e"));
        assert_eq!(m.source, "/dev/disk x");
        let t = MountTable::new(vec![m.clone()]);
        assert_eq!(t.find("/mnt/a b\tc\nd\\e/f").unwrap().mount_id, 30);
        // Not escapes: kept literally, no panic.
        assert_eq!(unescape(r"a\0"), b"a\\0");
        assert_eq!(unescape(r"a\"), b"a\\");
        assert_eq!(unescape(r"\777"), b"\\777");
        assert_eq!(unescape(r"\08x"), b"\\08x");
        assert_eq!(unescape(r"\303\251"), "é".as_bytes());
        // Non-UTF-8 bytes survive into the path.
        let m = &parse_mountinfo(r"1 0 0:1 / /x\377 rw - tmpfs tmpfs rw").unwrap()[0];
        assert_eq!(m.mount_point.as_os_str().len(), 3);
    }

    #[test]
    fn optional_fields_zero_or_many() {
        let text = "\
1 0 0:1 / / rw - ext4 /dev/a rw
2 1 0:2 / /b rw shared:1 master:2 propagate_from:3 unbindable - ext4 /dev/b rw
3 1 0:3 / /c rw - tmpfs tmpfs
";
        let ms = parse_mountinfo(text).unwrap();
        assert!(ms[0].optional_fields.is_empty());
        assert_eq!(ms[1].optional_fields.len(), 4);
        assert_eq!(ms[1].fstype, "ext4");
        assert_eq!(ms[2].super_options_raw, "");
    }

    #[test]
    fn stacked_mounts_top_wins() {
        // 40 mounted on /data, then 41 stacked on top of it (parent 40), listed first.
        let text = "\
1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
41 40 0:41 / /data rw - tmpfs tmpfs rw
40 1 8:1 /vol /data rw - ext4 /dev/a rw
";
        let t = MountTable::parse(text).unwrap();
        assert_eq!(t.find("/data/x").unwrap().mount_id, 41);
        // Without parent links the last one in the file wins.
        let text = "\
1 0 0:1 / / rw - ext4 /dev/a rw
40 1 8:1 / /data rw - ext4 /dev/b rw
41 1 0:41 / /data rw - tmpfs tmpfs rw
";
        assert_eq!(
            MountTable::parse(text)
                .unwrap()
                .find("/data")
                .unwrap()
                .mount_id,
            41
        );
        // A tmpfs over the root overlay hides it.
        let text = "\
1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
2 1 0:2 / / rw - tmpfs tmpfs rw
";
        assert_eq!(MountTable::parse(text).unwrap().root_overlay(), None);
    }

    #[test]
    fn overlay_lowerdir_forms() {
        let layers = |opts: &str| {
            let line = format!("1 0 0:1 / / rw - overlay overlay {opts}");
            MountTable::parse(&line).unwrap().root_overlay()
        };
        // Escaped colon (`\:` written by the user, its backslash octal-escaped by the kernel),
        // escaped comma and equals inside values.
        let l =
            layers(r"rw,lowerdir=/a\134:b:/c\054d:/e\075f,upperdir=/u\040x,workdir=/w").unwrap();
        assert_eq!(
            l.lowers,
            vec![
                PathBuf::from("/a:b"),
                PathBuf::from("/c,d"),
                PathBuf::from("/e=f")
            ]
        );
        assert_eq!(l.upper, Path::new("/u x"));
        // Also a bare `\:`, as in a synthetic line.
        let l = layers(r"rw,lowerdir=/a\:b:/c,upperdir=/u").unwrap();
        assert_eq!(l.lowers, vec![PathBuf::from("/a:b"), PathBuf::from("/c")]);
        // The newer repeated form, data-only layers last.
        let l =
            layers("rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d1,upperdir=/u,workdir=/w").unwrap();
        assert_eq!(
            l.lowers,
            vec![
                PathBuf::from("/l1"),
                PathBuf::from("/l2"),
                PathBuf::from("/d1")
            ]
        );
        // Relative paths (Docker with many layers) are kept as written.
        let l = layers("rw,lowerdir=l/A:l/B,upperdir=abc/diff,workdir=abc/work").unwrap();
        assert_eq!(l.lowers, vec![PathBuf::from("l/A"), PathBuf::from("l/B")]);
        // Read-only overlay (no upper), not an overlay, no root mount.
        assert_eq!(layers("ro,lowerdir=/a:/b"), None);
        assert_eq!(
            MountTable::parse("1 0 0:1 / / rw - ext4 /dev/a rw")
                .unwrap()
                .root_overlay(),
            None
        );
        assert_eq!(
            MountTable::parse("1 0 0:1 / /x rw - overlay overlay rw,lowerdir=/a,upperdir=/u")
                .unwrap()
                .root_overlay(),
            None
        );
        // Empty list entries are dropped.
        let l = layers("rw,lowerdir=/a::/b:,upperdir=/u").unwrap();
        assert_eq!(l.lowers, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn malformed_lines_are_positioned_errors() {
        let bad = |text: &str, line: usize, problem: MountinfoProblem| {
            let e = parse_mountinfo(text).unwrap_err();
            assert_eq!((e.line, e.problem), (line, problem), "{text:?}");
            assert!(
                e.to_string()
                    .starts_with(&format!("mountinfo line {line}: "))
            );
        };
        let ok = "1 0 0:1 / / rw - ext4 /dev/a rw\n";
        bad(&format!("{ok}garbage"), 2, MountinfoProblem::NoSeparator);
        bad(
            &format!("{ok}\n1 0 0:1 / / - ext4 /dev/a rw"),
            3,
            MountinfoProblem::TooFewFields,
        );
        bad("1 0 0:1 / / rw -", 1, MountinfoProblem::NoFsType);
        bad("1 0 0:1 / / rw - ext4", 1, MountinfoProblem::NoFsType);
        bad(
            "x 0 0:1 / / rw - ext4 /dev/a rw",
            1,
            MountinfoProblem::BadId,
        );
        bad(
            "1 -1 0:1 / / rw - ext4 /dev/a rw",
            1,
            MountinfoProblem::BadId,
        );
        bad(
            "1 0 01 / / rw - ext4 /dev/a rw",
            1,
            MountinfoProblem::BadDevice,
        );
        bad(
            "1 0 a:b / / rw - ext4 /dev/a rw",
            1,
            MountinfoProblem::BadDevice,
        );
        bad(
            "99999999999 0 0:1 / / rw - ext4 /dev/a rw",
            1,
            MountinfoProblem::BadId,
        );
        assert_eq!(parse_mountinfo("").unwrap(), vec![]);
        assert_eq!(parse_mountinfo("\n  \n").unwrap(), vec![]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and mangled variant of a real table.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = DOCKER.as_bytes().to_vec();
            let n = (seed % 8) as usize + 1;
            for k in 0..n {
                let pos = (seed.rotate_left(k as u32 * 7) as usize) % bytes.len();
                bytes[pos] = b" \\-:0\n7a,="[(seed as usize >> k) % 10];
            }
            let cut = (seed >> 20) as usize % bytes.len();
            let text = String::from_utf8_lossy(&bytes[..cut]);
            if let Ok(ms) = parse_mountinfo(&text) {
                let t = MountTable::new(ms);
                let _ = t.root_overlay();
                let _ = t.find("/data/x");
                t.mounts().iter().for_each(|m| drop(m.kind()));
            }
        }
    }

    #[test]
    fn this_process_mountinfo_parses() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let t = MountTable::parse(&text).unwrap();
        assert!(t.find("/").is_some());
    }
}
