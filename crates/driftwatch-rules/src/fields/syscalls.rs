//! driftwatch's events as the Falco system calls they stand for: which `evt.type` names match
//! which event kinds, the name `%evt.type` prints, and each call's arguments (`evt.arg.*`) in
//! Falco's names, order and formats.

use std::fmt::Write;

use driftwatch_model::{Event, EventKind};

use super::formats::{ppm_open_flags, push_mode_names, push_octal, push_open_flags};
use super::{K_EXEC, K_OPEN, kind_mask};

/// The event kinds a Falco `evt.type` name matches: driftwatch sees a change after the call,
/// so every call that makes the same change matches the same kinds. 0 for a call driftwatch
/// does not see.
pub(crate) fn evt_type_kinds(name: &str) -> u16 {
    match name {
        "execve" | "execveat" => K_EXEC,
        "open" | "openat" | "openat2" => K_OPEN,
        "creat" => kind_mask(EventKind::Creat),
        "unlink" | "unlinkat" | "rmdir" => kind_mask(EventKind::Unlink),
        "rename" | "renameat" | "renameat2" => kind_mask(EventKind::Rename),
        "chmod" | "fchmod" | "fchmodat" => kind_mask(EventKind::Chmod),
        "chown" | "lchown" | "fchown" | "fchownat" => kind_mask(EventKind::Chown),
        "mkdir" | "mkdirat" => kind_mask(EventKind::Mkdir),
        "symlink" | "symlinkat" => kind_mask(EventKind::Symlink),
        "listen" => kind_mask(EventKind::Listen),
        "connect" => kind_mask(EventKind::Connect),
        "container" => kind_mask(EventKind::Container),
        _ => 0,
    }
}

/// The call `%evt.type` prints for an event kind: the modern call making that change.
pub fn evt_type_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Execve => "execve",
        EventKind::Open | EventKind::Creat => "openat",
        EventKind::Unlink => "unlinkat",
        EventKind::Rename => "renameat2",
        EventKind::Chmod => "fchmodat",
        EventKind::Chown => "fchownat",
        EventKind::Mkdir => "mkdirat",
        EventKind::Symlink => "symlinkat",
        EventKind::Listen => "listen",
        EventKind::Connect => "connect",
        EventKind::Container => "container",
    }
}

/// Falco's category of an event kind (`evt.category`).
pub(crate) fn evt_category(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Execve => "process",
        EventKind::Listen | EventKind::Connect => "net",
        EventKind::Container => "internal",
        _ => "file",
    }
}

/// The arguments of the call an event kind stands for, in Falco's order (the exit event of
/// `evt_type_name(kind)`): `evt.arg[N]` is the N-th.
pub(crate) fn arg_names(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::Open | EventKind::Creat => {
            &["fd", "dirfd", "name", "flags", "mode", "dev", "ino"]
        }
        EventKind::Unlink => &["res", "dirfd", "name", "flags"],
        EventKind::Rename => &["res", "olddirfd", "oldpath", "newdirfd", "newpath", "flags"],
        EventKind::Chmod => &["res", "dirfd", "filename", "mode"],
        EventKind::Chown => &["res", "dirfd", "pathname", "uid", "gid", "flags"],
        EventKind::Mkdir => &["res", "dirfd", "path", "mode"],
        EventKind::Symlink => &["res", "target", "linkdirfd", "linkpath"],
        EventKind::Execve => &[
            "res",
            "exe",
            "args",
            "tid",
            "pid",
            "ptid",
            "cwd",
            "fdlimit",
            "pgft_maj",
            "pgft_min",
            "vm_size",
            "vm_rss",
            "vm_swap",
            "comm",
            "cgroups",
            "env",
            "tty",
            "vpgid",
            "loginuid",
            "flags",
            "cap_inheritable",
            "cap_permitted",
            "cap_effective",
            "exe_ino",
            "exe_ino_ctime",
            "exe_ino_mtime",
            "uid",
            "trusted_exepath",
            "pgid",
            "gid",
            "filename",
        ],
        EventKind::Connect => &["res", "tuple", "fd", "addr"],
        EventKind::Listen => &["res", "fd", "backlog"],
        EventKind::Container => &[],
    }
}

/// Falco's older calls name the path `path` where the modern one says `name`, `filename` or
/// `pathname`: either spelling reads it.
pub(crate) fn canonical(kind: EventKind, name: &str) -> &str {
    match (kind, name) {
        (EventKind::Open | EventKind::Creat | EventKind::Unlink, "path") => "name",
        (EventKind::Chmod, "path") => "filename",
        (EventKind::Chown, "path") => "pathname",
        (EventKind::Execve, "exepath") => "filename",
        _ => name,
    }
}

/// A numeric argument's raw value (`evt.rawarg.NAME`), `None` when the argument is text or
/// not known.
pub(crate) fn raw_arg(ev: &Event, name: &str) -> Option<i64> {
    let p = &ev.process;
    let file = ev.file.as_ref();
    let name = canonical(ev.kind, name);
    let n = |v: Option<u32>| v.map(i64::from);
    let n64 = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
    match (ev.kind, name) {
        (EventKind::Container, _) => None,
        (_, "res") => Some(0),
        (EventKind::Open | EventKind::Creat, "flags") => file
            .filter(|f| f.flags != 0)
            .map(|f| ppm_open_flags(f.flags)),
        (EventKind::Open | EventKind::Creat | EventKind::Chmod | EventKind::Mkdir, "mode") => {
            n(file.and_then(|f| f.mode))
        }
        (EventKind::Chown, "uid") => n(file.and_then(|f| f.owner).map(|o| o.0)),
        (EventKind::Chown, "gid") => n(file.and_then(|f| f.owner).map(|o| o.1)),
        (EventKind::Execve, "tid" | "pid") => Some(i64::from(p.pid)),
        (EventKind::Execve, "ptid") => Some(i64::from(p.ppid)),
        (EventKind::Execve, "tty") => Some(i64::from(p.tty)),
        (EventKind::Execve, "vpgid") => n(p.vpgid),
        (EventKind::Execve, "loginuid") => p.loginuid.map(login_uid),
        (EventKind::Execve, "uid") => Some(i64::from(p.uid)),
        (EventKind::Execve, "gid") => Some(i64::from(p.gid)),
        (EventKind::Execve, "cap_inheritable") => n64(p.cap_inheritable),
        (EventKind::Execve, "cap_permitted") => n64(p.cap_permitted),
        (EventKind::Execve, "cap_effective") => n64(p.cap_effective),
        (EventKind::Execve, "exe_ino") => n64(p.exe_ino),
        (EventKind::Execve, "exe_ino_ctime") => n64(p.exe_ctime_ns),
        (EventKind::Execve, "exe_ino_mtime") => n64(p.exe_mtime_ns),
        _ => None,
    }
}

/// Falco prints an unset login uid (`u32::MAX`) as -1.
pub(crate) fn login_uid(uid: u32) -> i64 {
    if uid == u32::MAX { -1 } else { i64::from(uid) }
}

/// Writes an argument's text as Falco's `evt.arg.NAME` gives it; false when the event has no
/// such argument or driftwatch does not know it.
pub(crate) fn push_arg(out: &mut String, ev: &Event, name: &str) -> bool {
    let p = &ev.process;
    let file = ev.file.as_ref();
    let net = ev.net.as_ref();
    let name = canonical(ev.kind, name);
    if !arg_names(ev.kind).contains(&name) {
        return false;
    }
    let start = out.len();
    let text = |out: &mut String, s: Option<&str>| match s {
        Some(s) if !s.is_empty() => {
            out.push_str(s);
            true
        }
        _ => false,
    };
    let joined = |out: &mut String, items: &[String]| {
        for (i, a) in items.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(a);
        }
        true
    };
    let written = match (ev.kind, name) {
        (EventKind::Container, _) => false,
        (_, "res") => {
            out.push('0');
            true
        }
        (EventKind::Open | EventKind::Creat | EventKind::Unlink, "name")
        | (EventKind::Chmod, "filename")
        | (EventKind::Chown, "pathname")
        | (EventKind::Mkdir, "path")
        | (EventKind::Rename, "newpath")
        | (EventKind::Symlink, "linkpath") => text(out, file.map(|f| f.path.as_str())),
        (EventKind::Rename, "oldpath") => text(out, file.and_then(|f| f.old_path.as_deref())),
        (EventKind::Symlink, "target") => text(out, file.and_then(|f| f.target.as_deref())),
        (EventKind::Open | EventKind::Creat, "flags") => match file.filter(|f| f.flags != 0) {
            Some(f) => {
                push_open_flags(out, f.flags);
                true
            }
            None => false,
        },
        (EventKind::Open | EventKind::Creat, "mode") => match file.and_then(|f| f.mode) {
            Some(m) => {
                push_octal(out, m);
                true
            }
            None => false,
        },
        (EventKind::Chmod, "mode") => match file.and_then(|f| f.mode) {
            Some(m) => {
                push_mode_names(out, m);
                true
            }
            None => false,
        },
        // mkdirat's mode is printed in hexadecimal (Falco's `PF_HEX`).
        (EventKind::Mkdir, "mode") => match file.and_then(|f| f.mode) {
            Some(m) => {
                let _ = write!(out, "{m:X}");
                true
            }
            None => false,
        },
        (EventKind::Execve, "filename") => text(out, Some(&p.exepath)),
        (EventKind::Execve, "exe") => text(out, p.argv.first().map(String::as_str)),
        (EventKind::Execve, "args") => joined(out, p.argv.get(1..).unwrap_or(&[])),
        (EventKind::Execve, "cwd") => text(out, Some(&p.cwd)),
        (EventKind::Execve, "comm") => text(out, Some(&p.name)),
        (EventKind::Execve, "env") => !p.env.is_empty() && joined(out, &p.env),
        (EventKind::Connect, "tuple") => match net {
            Some(n) => {
                push_endpoint(out, &n.local_ip, n.local_port);
                out.push_str("->");
                push_endpoint(out, &n.remote_ip, n.remote_port);
                true
            }
            None => false,
        },
        (EventKind::Connect, "addr") => match net {
            Some(n) => {
                push_endpoint(out, &n.remote_ip, n.remote_port);
                true
            }
            None => false,
        },
        (EventKind::Execve, "cap_inheritable" | "cap_permitted" | "cap_effective") => {
            // Falco prints these arguments as hexadecimal masks (`thread.cap_*` has the names).
            match raw_arg(ev, name) {
                Some(v) => {
                    let _ = write!(out, "{v:X}");
                    true
                }
                None => false,
            }
        }
        _ => match raw_arg(ev, name) {
            Some(v) => {
                let _ = write!(out, "{v}");
                true
            }
            None => false,
        },
    };
    if !written {
        out.truncate(start);
    }
    written
}

/// `evt.args`: every argument driftwatch knows, as `name=value` pairs separated by spaces.
pub(crate) fn push_args(out: &mut String, ev: &Event) {
    for name in arg_names(ev.kind) {
        let mark = out.len();
        if mark > 0 {
            out.push(' ');
        }
        out.push_str(name);
        out.push('=');
        if !push_arg(out, ev, name) {
            out.truncate(mark);
        }
    }
}

/// `ip:port`, IPv6 addresses in brackets.
pub(crate) fn push_endpoint(out: &mut String, ip: &str, port: u16) {
    if ip.contains(':') {
        let _ = write!(out, "[{ip}]:{port}");
    } else {
        let _ = write!(out, "{ip}:{port}");
    }
}

/// Kinds on which `evt.arg.NAME` can have a value: for the inactive-rule check of an argument
/// no driftwatch event has (`evt.arg.request` of ptrace).
pub(crate) fn arg_kinds(name: &str) -> u16 {
    EventKind::ALL
        .iter()
        .filter(|k| {
            let n = canonical(**k, name);
            arg_names(**k).contains(&n) && known_arg(**k, n)
        })
        .fold(0, |m, k| m | kind_mask(*k))
}

/// Whether driftwatch ever fills this argument of this call.
fn known_arg(kind: EventKind, name: &str) -> bool {
    match kind {
        EventKind::Open | EventKind::Creat => matches!(name, "name" | "flags" | "mode"),
        EventKind::Execve => !matches!(
            name,
            "fdlimit"
                | "pgft_maj"
                | "pgft_min"
                | "vm_size"
                | "vm_rss"
                | "vm_swap"
                | "cgroups"
                | "flags"
                | "trusted_exepath"
                | "pgid"
        ),
        EventKind::Connect => matches!(name, "res" | "tuple" | "addr"),
        EventKind::Listen => name == "res",
        EventKind::Container => false,
        _ => !name.ends_with("dirfd") && name != "flags",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::{FileRef, Process};

    fn event(kind: EventKind, file: Option<FileRef>) -> Event {
        Event {
            num: 7,
            time_ns: 1,
            kind,
            process: Process {
                pid: 40,
                ppid: 1,
                name: "sh".into(),
                exepath: "/bin/busybox".into(),
                argv: vec!["sh".into(), "-c".into(), "id".into()],
                loginuid: Some(u32::MAX),
                cap_effective: Some(1 << 21),
                ..Default::default()
            },
            container: None,
            file,
            net: None,
            drift: None,
        }
    }

    fn arg(ev: &Event, name: &str) -> Option<String> {
        let mut s = String::new();
        push_arg(&mut s, ev, name).then_some(s)
    }

    #[test]
    fn type_names_map_to_kinds_and_back() {
        for k in EventKind::ALL {
            assert_ne!(evt_type_kinds(evt_type_name(k)) & kind_mask(k), 0, "{k:?}");
        }
        assert_eq!(evt_type_kinds("openat2"), K_OPEN);
        assert_eq!(evt_type_kinds("rmdir"), kind_mask(EventKind::Unlink));
        assert_eq!(evt_type_kinds("ptrace"), 0);
        assert_eq!(evt_type_kinds("memfd_create"), 0);
    }

    #[test]
    fn file_arguments_in_falcos_names_and_formats() {
        let open = event(
            EventKind::Creat,
            Some(FileRef {
                path: "/etc/x".into(),
                write: true,
                flags: 0o1 | 0o100 | 0o1000,
                mode: Some(0o644),
                ..Default::default()
            }),
        );
        assert_eq!(arg(&open, "name").as_deref(), Some("/etc/x"));
        assert_eq!(arg(&open, "path").as_deref(), Some("/etc/x"));
        assert_eq!(
            arg(&open, "flags").as_deref(),
            Some("O_TRUNC|O_CREAT|O_WRONLY")
        );
        assert_eq!(arg(&open, "mode").as_deref(), Some("0644"));
        assert_eq!(arg(&open, "fd"), None);
        assert_eq!(raw_arg(&open, "flags"), Some(2 | 4 | 256));
        let mut all = String::new();
        push_args(&mut all, &open);
        assert_eq!(all, "name=/etc/x flags=O_TRUNC|O_CREAT|O_WRONLY mode=0644");

        let chmod = event(
            EventKind::Chmod,
            Some(FileRef {
                path: "/bin/x".into(),
                mode: Some(0o4755),
                ..Default::default()
            }),
        );
        let mode = arg(&chmod, "mode").unwrap();
        assert!(
            mode.contains("S_ISUID") && !mode.contains("S_ISGID"),
            "{mode}"
        );
        assert_eq!(arg(&chmod, "filename").as_deref(), Some("/bin/x"));
        assert_eq!(arg(&chmod, "res").as_deref(), Some("0"));

        let mkdir = event(
            EventKind::Mkdir,
            Some(FileRef {
                path: "/bin/d".into(),
                typechar: 'd',
                mode: Some(0o755),
                ..Default::default()
            }),
        );
        assert_eq!(arg(&mkdir, "mode").as_deref(), Some("1ED"));

        let rename = event(
            EventKind::Rename,
            Some(FileRef {
                path: "/b".into(),
                old_path: Some("/a".into()),
                ..Default::default()
            }),
        );
        assert_eq!(arg(&rename, "oldpath").as_deref(), Some("/a"));
        assert_eq!(arg(&rename, "newpath").as_deref(), Some("/b"));

        let chown = event(
            EventKind::Chown,
            Some(FileRef {
                path: "/c".into(),
                owner: Some((33, 44)),
                ..Default::default()
            }),
        );
        assert_eq!(arg(&chown, "uid").as_deref(), Some("33"));
        assert_eq!(raw_arg(&chown, "gid"), Some(44));

        let link = event(
            EventKind::Symlink,
            Some(FileRef {
                path: "/tmp/l".into(),
                target: Some("/etc/shadow".into()),
                ..Default::default()
            }),
        );
        assert_eq!(arg(&link, "target").as_deref(), Some("/etc/shadow"));
        assert_eq!(arg(&link, "linkpath").as_deref(), Some("/tmp/l"));
    }

    #[test]
    fn exec_arguments() {
        let ev = event(EventKind::Execve, None);
        assert_eq!(arg(&ev, "filename").as_deref(), Some("/bin/busybox"));
        assert_eq!(arg(&ev, "exe").as_deref(), Some("sh"));
        assert_eq!(arg(&ev, "args").as_deref(), Some("-c id"));
        assert_eq!(arg(&ev, "loginuid").as_deref(), Some("-1"));
        assert_eq!(arg(&ev, "cap_effective").as_deref(), Some("200000"));
        assert_eq!(arg(&ev, "ptid").as_deref(), Some("1"));
        assert_eq!(arg(&ev, "request"), None);
    }

    #[test]
    fn argument_kinds() {
        assert_eq!(arg_kinds("request"), 0);
        assert_eq!(arg_kinds("fd"), 0);
        assert_ne!(arg_kinds("flags") & K_OPEN, 0);
        assert_eq!(arg_kinds("flags") & K_EXEC, 0);
        assert_ne!(arg_kinds("path") & kind_mask(EventKind::Chmod), 0);
        assert_ne!(arg_kinds("target") & kind_mask(EventKind::Symlink), 0);
    }
}
