//! The agent's own reads of host files, by name: the host's `/proc` (made by the kernel, so a
//! container cannot turn it into a symlink, a device or a FIFO) and files the operator chose
//! (config, state). Crates that ban `std::fs`'s readers call these instead, so each such read
//! says what it is; a path a container controls never goes here.

#![expect(
    clippy::disallowed_methods,
    reason = "the one place the host's own files are read with std::fs"
)]

use std::fs::Metadata;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The read cap of a `/proc/<pid>/...` file: a mount table of 100,000 mounts (the default
/// `fs.mount-max`) is about 20 MiB.
pub const PROC_FILE_CAP: u64 = 64 << 20;

/// `/proc/<pid>/<name>`, refusing names that lead into the process's files rather than the
/// kernel's record of it (`root/...`, `cwd/...`, `fd/N`, `map_files/...`, `..`).
fn proc_path(pid: u32, name: &str) -> io::Result<PathBuf> {
    let comps: Vec<&str> = name.split('/').collect();
    let into_files = matches!(
        comps.as_slice(),
        ["root" | "cwd" | "map_files", ..] | ["fd", _, _, ..]
    ) || comps
        .iter()
        .any(|c| c.is_empty() || *c == ".." || *c == ".");
    if into_files {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "/proc/{pid}/{name}: not a kernel record of the process; read container files with driftwatch_fs::Root"
            ),
        ));
    }
    Ok(PathBuf::from(format!("/proc/{pid}/{name}")))
}

/// The bytes of `/proc/<pid>/<name>` (e.g. `cmdline`, `status`, `mountinfo`), at most
/// [`PROC_FILE_CAP`]: a larger one is an error.
pub fn proc_bytes(pid: u32, name: &str) -> io::Result<Vec<u8>> {
    let p = proc_path(pid, name)?;
    let mut buf = Vec::new();
    std::fs::File::open(&p)?
        .take(PROC_FILE_CAP + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > PROC_FILE_CAP {
        return Err(io::Error::other(format!(
            "{}: more than the {PROC_FILE_CAP} byte cap",
            p.display()
        )));
    }
    Ok(buf)
}

/// [`proc_bytes`] as text (invalid UTF-8 is an error, as with `read_to_string`).
pub fn proc_string(pid: u32, name: &str) -> io::Result<String> {
    String::from_utf8(proc_bytes(pid, name)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The target of the kernel's link `/proc/<pid>/<name>` (`exe`, `cwd`, `ns/mnt`, `fd/N`): the
/// path as the process sees it, never opened.
pub fn proc_link(pid: u32, name: &str) -> io::Result<PathBuf> {
    let p = match name {
        "cwd" | "root" => PathBuf::from(format!("/proc/{pid}/{name}")),
        _ => proc_path(pid, name)?,
    };
    std::fs::read_link(p)
}

/// The `stat` of `/proc/<pid>/<name>` (following the kernel's link: `ns/mnt`, `exe`, `root`
/// give the namespace, the executable, the root directory).
pub fn proc_metadata(pid: u32, name: &str) -> io::Result<Metadata> {
    let p = match name {
        "root" | "exe" => PathBuf::from(format!("/proc/{pid}/{name}")),
        _ => proc_path(pid, name)?,
    };
    std::fs::metadata(p)
}

/// Opens the executable a process runs (`/proc/<pid>/exe`): the very file the kernel
/// executed, whatever its path names by now.
pub fn proc_exe(pid: u32) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/exe"))
}

/// A host-wide kernel file (`/proc/stat`, `/proc/sys/kernel/hostname`, `/sys/...`), not one
/// about a process.
pub fn kernel_string(path: &str) -> io::Result<String> {
    let second = path.split('/').nth(2).unwrap_or_default();
    let per_process = second.parse::<u32>().is_ok() || matches!(second, "self" | "thread-self");
    if !(path.starts_with("/proc/") || path.starts_with("/sys/")) || per_process {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path}: not a host-wide kernel file"),
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(PROC_FILE_CAP)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The pids listed in the host's `/proc`.
pub fn proc_pids() -> io::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

/// The targets of a process's open file descriptors (`socket:[123]`, `pipe:[4]`, paths), as
/// the kernel names them; never opened.
pub fn proc_fd_links(pid: u32) -> io::Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect())
}

/// The agent's own file at a path the operator chose (its config, policy, state): read as
/// `std::fs::read` would.
pub fn own_file(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// [`own_file`] as text.
pub fn own_file_string(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
}

/// The `stat` of the agent's own file, or of a host path the operator chose (a bind
/// mount's source).
pub fn own_metadata(path: &Path) -> io::Result<Metadata> {
    std::fs::metadata(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_records_are_read_and_paths_into_the_process_refused() {
        let me = std::process::id();
        assert!(proc_string(me, "status").unwrap().contains("VmRSS"));
        assert!(proc_bytes(me, "cmdline").unwrap().len() > 1);
        assert!(proc_metadata(me, "ns/mnt").is_ok());
        assert!(proc_link(me, "exe").is_ok());
        assert!(proc_pids().unwrap().contains(&me));
        assert!(!proc_fd_links(me).unwrap().is_empty());
        assert!(kernel_string("/proc/stat").unwrap().contains("btime"));
        for bad in [
            "/proc/1/environ",
            "/proc/self/root/etc/shadow",
            "/etc/shadow",
        ] {
            let e = kernel_string(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        for bad in [
            "root/etc/passwd",
            "cwd/x",
            "fd/0/x",
            "map_files/1-2",
            "../1/status",
            "",
        ] {
            let e = proc_bytes(me, bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
