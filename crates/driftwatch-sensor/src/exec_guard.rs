//! Exec permission: fanotify `FAN_OPEN_EXEC_PERM` on a container's mounts. The kernel asks
//! before the file is opened for exec (the program of `execve`, a script run by its shebang,
//! the interpreter of a script) and the exec waits for the answer; `FAN_DENY` makes it fail
//! with EPERM, so a denied program never runs at all.
//!
//! Mount marks, not filesystem marks: a container's volumes are bind mounts of the host's
//! filesystems, and marking those filesystems would put every host exec on them behind the
//! agent. A mount is marked through `/proc/<pid>/root/<mount point>`, which resolves to the
//! container's own mount (marking the host's view of the same directory sees nothing the
//! container does). The file a request carries resolves (`/proc/self/fd/N`) to its path as
//! the container sees it.
//!
//! What the kernel does when the agent dies while enforcing: closing the group answers every
//! pending request with allow and no further request is made (fail open); there is no
//! kernel setting to fail closed. See docs/prevention.md ("When the agent dies") for what the
//! agent does about that.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `struct fanotify_event_metadata` is 24 bytes; the version this code reads.
const METADATA_LEN: usize = 24;
const FANOTIFY_METADATA_VERSION: u8 = 3;

/// A fanotify group answering exec permission requests.
pub struct ExecGuard {
    fd: OwnedFd,
    buf: std::sync::Mutex<Vec<u8>>,
}

/// One exec waiting for an answer: the file about to be executed, and who executes it.
#[derive(Debug)]
pub struct ExecRequest {
    /// The file, opened by the kernel for us (read-only).
    pub file: OwnedFd,
    /// The process calling exec (tgid, host view).
    pub pid: u32,
}

impl ExecRequest {
    /// The file's path as the executing process sees it ("... (deleted)" when unlinked).
    pub fn path(&self) -> io::Result<PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}

fn os_error(what: String) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl ExecGuard {
    pub fn new() -> io::Result<ExecGuard> {
        // SAFETY: plain syscall; on success we own the returned fd.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        if fd < 0 {
            return Err(os_error("fanotify_init(FAN_CLASS_CONTENT)".into()));
        }
        Ok(ExecGuard {
            // SAFETY: fd is a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: std::sync::Mutex::new(vec![0; 16 * 1024]),
        })
    }

    /// Asks for exec permission on every file of the mount at `path` (a mount point, e.g.
    /// `/proc/<pid>/root/data`). The mark lasts until the mount is gone.
    pub fn mark_mount(&self, path: &Path) -> io::Result<()> {
        self.mark(
            libc::FAN_MARK_ADD | libc::FAN_MARK_MOUNT,
            libc::FAN_OPEN_EXEC_PERM,
            libc::AT_FDCWD,
            Some(path),
        )
    }

    /// Asks for exec permission on every file of the filesystem at `path`, through any
    /// mount of it in any mount namespace: the container's root overlay, whose superblock is
    /// its own, so that bind mounts, `pivot_root` and mount namespaces made inside the
    /// container (new mounts, unmarked by [`ExecGuard::mark_mount`]) are still asked about.
    pub fn mark_filesystem(&self, path: &Path) -> io::Result<()> {
        self.mark(
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            libc::FAN_OPEN_EXEC_PERM,
            libc::AT_FDCWD,
            Some(path),
        )
    }

    /// Asks for open permission on the file or directory at `path` (an inode mark: it
    /// follows the inode into every mount, bind mounts in containers included); for a
    /// directory also on opens of its direct children and of itself. Requests then carry
    /// `FAN_OPEN_PERM` instead of an exec; answer them the same way.
    pub fn mark_open(&self, path: &Path) -> io::Result<()> {
        let mask = if path.is_dir() {
            libc::FAN_OPEN_PERM | libc::FAN_EVENT_ON_CHILD | libc::FAN_ONDIR
        } else {
            libc::FAN_OPEN_PERM
        };
        self.mark(libc::FAN_MARK_ADD, mask, libc::AT_FDCWD, Some(path))
    }

    /// Never asks for opens of `path` (an ignore mark that survives modification), even
    /// through a marked parent directory. For files the caller holds POSIX (fcntl) locks on,
    /// such as an SQLite database: closing the fd a permission event carries would release
    /// every lock the process holds on that file.
    pub fn ignore_open(&self, path: &Path) -> io::Result<()> {
        self.mark(
            libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORED_MASK | libc::FAN_MARK_IGNORED_SURV_MODIFY,
            libc::FAN_OPEN_PERM,
            libc::AT_FDCWD,
            Some(path),
        )
    }

    /// Stops asking for the file behind `fd` until it is modified: the kernel clears an
    /// ignore mark when the file is written, so a judged image binary is judged again after
    /// any change. Saves a round trip per exec of the same unchanged program.
    pub fn ignore_until_modified(&self, fd: RawFd) -> io::Result<()> {
        self.mark(
            libc::FAN_MARK_ADD | libc::FAN_MARK_IGNORED_MASK,
            libc::FAN_OPEN_EXEC_PERM,
            fd,
            None,
        )
    }

    /// Removes every mount and filesystem mark of the group: no new requests are made.
    pub fn unmark_all_mounts(&self) -> io::Result<()> {
        self.mark(
            libc::FAN_MARK_FLUSH | libc::FAN_MARK_MOUNT,
            0,
            libc::AT_FDCWD,
            Some(Path::new("/")),
        )?;
        self.mark(
            libc::FAN_MARK_FLUSH | libc::FAN_MARK_FILESYSTEM,
            0,
            libc::AT_FDCWD,
            Some(Path::new("/")),
        )
    }

    fn mark(&self, flags: u32, mask: u64, dirfd: RawFd, path: Option<&Path>) -> io::Result<()> {
        let c = match path {
            Some(p) => Some(
                CString::new(p.as_os_str().as_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with NUL"))?,
            ),
            None => None,
        };
        let ptr = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: valid fd; path is NUL-terminated or null (then dirfd names the object).
        let r = unsafe { libc::fanotify_mark(self.fd.as_raw_fd(), flags, mask, dirfd, ptr) };
        if r < 0 {
            let what = match path {
                Some(p) => format!("fanotify_mark {}", p.display()),
                None => format!("fanotify_mark fd {dirfd}"),
            };
            return Err(os_error(what));
        }
        Ok(())
    }

    /// Waits up to `timeout` for requests; returns false on timeout.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        crate::fanotify::poll_readable(self.fd.as_raw_fd(), timeout)
    }

    /// Reads every pending request into `out` (non-blocking). Each must be answered.
    pub fn read(&self, out: &mut Vec<ExecRequest>) -> io::Result<()> {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            // SAFETY: reading into our own buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if n == 0 {
                return Ok(());
            }
            parse_requests(&buf[..n as usize], out);
        }
    }

    /// Answers a request: the exec goes on, or fails with EPERM.
    pub fn respond(&self, req: &ExecRequest, allow: bool) -> io::Result<()> {
        let resp = libc::fanotify_response {
            fd: req.file.as_raw_fd(),
            response: if allow {
                libc::FAN_ALLOW
            } else {
                libc::FAN_DENY
            },
        };
        loop {
            // SAFETY: writing one response struct from the stack.
            let n = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    (&resp as *const libc::fanotify_response).cast(),
                    std::mem::size_of::<libc::fanotify_response>(),
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io::Error::new(e.kind(), format!("answering fanotify: {e}")));
            }
        }
    }
}

/// Parses fanotify metadata records; every record with a file descriptor becomes a request
/// owning that descriptor. Malformed bytes end the parse; never panics.
pub fn parse_requests(buf: &[u8], out: &mut Vec<ExecRequest>) {
    let mut off = 0;
    while off + METADATA_LEN <= buf.len() {
        let rec = &buf[off..];
        let event_len = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
        let vers = rec[4];
        if event_len < METADATA_LEN || off + event_len > buf.len() {
            return;
        }
        let mask = u64::from_ne_bytes(rec[8..16].try_into().unwrap_or([0; 8]));
        let fd = i32::from_ne_bytes(rec[16..20].try_into().unwrap_or([0; 4]));
        let pid = i32::from_ne_bytes(rec[20..24].try_into().unwrap_or([0; 4]));
        off += event_len;
        if vers != FANOTIFY_METADATA_VERSION || fd < 0 || mask & libc::FAN_Q_OVERFLOW != 0 {
            continue;
        }
        out.push(ExecRequest {
            // SAFETY: the kernel opened this descriptor for us and handed over ownership.
            file: unsafe { OwnedFd::from_raw_fd(fd) },
            pid: pid.max(0) as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn garbage_does_not_parse_into_requests() {
        let mut out = Vec::new();
        parse_requests(&[0xff; 7], &mut out);
        parse_requests(&[0; 64], &mut out);
        let mut short = vec![0u8; 24];
        short[0] = 200; // longer than the buffer
        parse_requests(&short, &mut out);
        assert!(out.is_empty());
    }

    /// A real mount in a private mount namespace: exec of a marked mount's file waits for
    /// the answer; deny gives EPERM, allow runs it, an ignore mark stops the questions.
    #[test]
    fn deny_gives_eperm_and_allow_runs() {
        driftwatch_testkit::require!(Root("fanotify permission events"));
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("m");
        std::fs::create_dir(&mnt).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "dwguard", mnt.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(&self.0).status();
            }
        }
        let _u = Unmount(mnt.clone());
        let prog = mnt.join("prog");
        std::fs::copy("/bin/true", &prog).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();

        let guard = ExecGuard::new().unwrap();
        guard.mark_mount(&mnt).unwrap();
        let run = |prog: PathBuf| std::thread::spawn(move || Command::new(&prog).status());

        // Deny.
        let child = run(prog.clone());
        let mut reqs = Vec::new();
        while reqs.is_empty() {
            assert!(guard.wait(Duration::from_secs(10)).unwrap(), "no request");
            guard.read(&mut reqs).unwrap();
        }
        assert_eq!(reqs[0].path().unwrap(), prog);
        for r in &reqs {
            guard.respond(r, false).unwrap();
        }
        let err = child.join().unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

        // Allow, and ignore from now on.
        let child = run(prog.clone());
        reqs.clear();
        while reqs.is_empty() {
            assert!(guard.wait(Duration::from_secs(10)).unwrap(), "no request");
            guard.read(&mut reqs).unwrap();
        }
        for r in &reqs {
            guard.ignore_until_modified(r.file.as_raw_fd()).unwrap();
            guard.respond(r, true).unwrap();
        }
        assert!(child.join().unwrap().unwrap().success());
        assert!(Command::new(&prog).status().unwrap().success());
        reqs.clear();
        guard.read(&mut reqs).unwrap();
        assert!(reqs.is_empty(), "an ignored file was asked about again");

        // A write clears the ignore mark: asked again.
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&prog)
                .unwrap();
            f.write_all(&[0]).unwrap();
        }
        let child = run(prog.clone());
        reqs.clear();
        while reqs.is_empty() {
            assert!(
                guard.wait(Duration::from_secs(10)).unwrap(),
                "a modified file was not asked about"
            );
            guard.read(&mut reqs).unwrap();
        }
        for r in &reqs {
            guard.respond(r, true).unwrap();
        }
        let _ = child.join();
    }
}
