//! Reading a field's value from an event: borrowed from the event or written into the caller's
//! scratch buffer, so evaluation does not allocate.

use std::collections::BTreeMap;
use std::fmt::Write;

use driftwatch_model::{ContainerMeta, Event, EventKind, Mount, NetRef, Process};

use super::formats::{Utc, push_caps};
use super::syscalls::{
    arg_names, evt_category, evt_type_kinds, evt_type_name, login_uid, push_arg, push_args,
    push_endpoint, raw_arg,
};
use super::{FieldArg, FieldId, FieldRef, K_FILE, K_NET, Val, kind_mask};

fn s(v: &str) -> Val<'_> {
    if v.is_empty() {
        Val::Missing
    } else {
        Val::Str(v)
    }
}

fn opt(v: Option<&str>) -> Val<'_> {
    v.map_or(Val::Missing, s)
}

fn num<T: Into<i64>>(v: Option<T>) -> Val<'static> {
    v.map_or(Val::Missing, |v| Val::Num(v.into()))
}

fn num64(v: Option<u64>) -> Val<'static> {
    v.map_or(Val::Missing, |v| {
        Val::Num(i64::try_from(v).unwrap_or(i64::MAX))
    })
}

/// What `scratch` holds after `fill` wrote into it; missing when `fill` says so.
fn composed<'e>(scratch: &'e mut String, fill: impl FnOnce(&mut String) -> bool) -> Val<'e> {
    scratch.clear();
    if fill(scratch) {
        Val::Str(scratch)
    } else {
        Val::Missing
    }
}

const HOST: &str = "host";

/// Reads a field from an event. Values that must be composed (cmdline, image name, the whole
/// environment, formatted arguments) are written into `scratch`, which keeps its capacity
/// between events.
pub(crate) fn extract<'e>(f: &FieldRef, ev: &'e Event, scratch: &'e mut String) -> Val<'e> {
    let id = f.info.id;
    if id == FieldId::Unfilled {
        return Val::Missing;
    }
    match f.info.name.as_bytes()[0] {
        b'e' | b's' => evt_field(id, &f.arg, ev, scratch),
        b'p' | b't' | b'u' | b'g' => proc_field(id, &f.arg, ev, scratch),
        b'f' => fd_field(id, ev, scratch),
        b'c' | b'k' => container_field(id, &f.arg, ev, scratch),
        _ => drift_field(id, ev),
    }
}

fn evt_field<'e>(id: FieldId, arg: &FieldArg, ev: &'e Event, scratch: &'e mut String) -> Val<'e> {
    let time = || i64::try_from(ev.time_ns).unwrap_or(i64::MAX);
    let file = ev.file.as_ref();
    let open = file.filter(|_| matches!(ev.kind, EventKind::Open | EventKind::Creat));
    match id {
        FieldId::EvtNum => num64(Some(ev.num)),
        FieldId::EvtType => Val::Str(evt_type_name(ev.kind)),
        FieldId::SyscallType if ev.kind == EventKind::Container => Val::Missing,
        FieldId::SyscallType => Val::Str(evt_type_name(ev.kind)),
        FieldId::EvtTypeIs => match arg {
            FieldArg::Key(name) => {
                Val::Num(i64::from(evt_type_kinds(name) & kind_mask(ev.kind) != 0))
            }
            _ => Val::Missing,
        },
        FieldId::EvtDir => Val::Str("<"),
        FieldId::EvtTime | FieldId::EvtRawtime => Val::Num(time()),
        FieldId::EvtRawtimeS => Val::Num(time() / 1_000_000_000),
        FieldId::EvtRawtimeNs => Val::Num(time() % 1_000_000_000),
        FieldId::EvtTimeS
        | FieldId::EvtTimeIso8601
        | FieldId::EvtDatetime
        | FieldId::EvtDatetimeS => composed(scratch, |out| {
            let t = Utc::from_ns(ev.time_ns);
            match id {
                FieldId::EvtTimeS => t.push_time(out, false),
                FieldId::EvtTimeIso8601 => {
                    t.push_date(out);
                    out.push('T');
                    t.push_time(out, true);
                    out.push('Z');
                }
                _ => {
                    t.push_date(out);
                    out.push(' ');
                    t.push_time(out, id == FieldId::EvtDatetime);
                }
            }
            true
        }),
        FieldId::EvtSource => Val::Str("syscall"),
        FieldId::EvtIsAsync | FieldId::EvtFailed => Val::Bool(false),
        FieldId::EvtCategory => Val::Str(evt_category(ev.kind)),
        FieldId::EvtArgs | FieldId::EvtInfo if ev.kind == EventKind::Container => Val::Missing,
        FieldId::EvtArgs | FieldId::EvtInfo => composed(scratch, |out| {
            push_args(out, ev);
            true
        }),
        FieldId::EvtArg | FieldId::EvtRawarg => {
            let name = match arg {
                FieldArg::Key(k) => &**k,
                FieldArg::Index(i) => match arg_names(ev.kind).get(*i) {
                    Some(n) => n,
                    None => return Val::Missing,
                },
                FieldArg::None => return Val::Missing,
            };
            if id == FieldId::EvtRawarg
                && let Some(v) = raw_arg(ev, name)
            {
                return Val::Num(v);
            }
            composed(scratch, |out| push_arg(out, ev, name))
        }
        FieldId::EvtRes => Val::Str("SUCCESS"),
        FieldId::EvtRawres => Val::Num(0),
        FieldId::EvtIsOpenRead => open.map_or(Val::Missing, |fr| {
            // Falco: O_RDONLY or O_RDWR. A file created (`creat`) is opened write-only. An open
            // without flags is no call at all (package drift's summary of a database): no read.
            Val::Bool(
                ev.kind == EventKind::Open && fr.flags != 0 && (!fr.write || fr.flags & 0o3 == 0o2),
            )
        }),
        FieldId::EvtIsOpenWrite => open.map_or(Val::Missing, |fr| {
            // A hard link is a `Creat` that opened nothing (`write: false`, no flags).
            Val::Bool(fr.write || (ev.kind == EventKind::Creat && fr.flags != 0))
        }),
        FieldId::EvtIsOpenCreate => open.map_or(Val::Missing, |fr| {
            Val::Bool(ev.kind == EventKind::Creat || fr.flags & 0o100 != 0)
        }),
        FieldId::EvtIsOpenExec => open.map_or(Val::Missing, |fr| {
            let created = ev.kind == EventKind::Creat || fr.flags & 0o100 != 0;
            Val::Bool(created && fr.mode.is_some_and(|m| m & 0o111 != 0))
        }),
        _ => Val::Missing,
    }
}

/// `proc.aname[N]`-style ancestry: `[0]` the process itself, `[N]` the N-th ancestor.
fn ancestor<'e, T: ?Sized>(
    arg: &FieldArg,
    own: &'e T,
    ancestors: impl FnOnce(usize) -> Option<&'e T>,
) -> Option<&'e T> {
    match arg {
        FieldArg::Index(0) | FieldArg::None => Some(own),
        FieldArg::Index(n) => ancestors(*n - 1),
        FieldArg::Key(_) => None,
    }
}

fn push_joined(out: &mut String, items: &[String]) {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(a);
    }
}

/// An ancestor field without an index as libsinsp extracts it (`proc.aname`,
/// `proc.aexepath`): every ancestor's value from the parent up, joined by spaces
/// (`sinsp_filter_check_thread::extract_single`, walking `traverse_parent_state`); missing when
/// no ancestor is known. Conditions do not read this: they test each ancestor
/// (`Test::eval_ancestors`).
fn ancestors_joined<'e>(values: &[String], scratch: &'e mut String) -> Val<'e> {
    composed(scratch, |out| {
        push_joined(out, values);
        !values.is_empty()
    })
}

fn push_cmdline(out: &mut String, name: &str, argv: &[String]) {
    out.push_str(name);
    for a in argv.iter().skip(1) {
        out.push(' ');
        out.push_str(a);
    }
}

fn proc_field<'e>(id: FieldId, arg: &FieldArg, ev: &'e Event, scratch: &'e mut String) -> Val<'e> {
    let p: &'e Process = &ev.process;
    let exec = ev.kind == EventKind::Execve;
    match id {
        FieldId::ProcName => s(&p.name),
        FieldId::ProcExe => opt(p.argv.first().map(String::as_str)),
        FieldId::ProcPexe => opt(p.pargv.first().map(String::as_str)),
        // Without an index, libsinsp prints every ancestor's exe from the parent up, joined by
        // spaces; driftwatch knows the parent's argv alone, so that is the parent's.
        FieldId::ProcAexe => match arg {
            FieldArg::Index(0) => opt(p.argv.first().map(String::as_str)),
            FieldArg::Index(1) | FieldArg::None => opt(p.pargv.first().map(String::as_str)),
            _ => Val::Missing,
        },
        FieldId::ProcExepath => s(&p.exepath),
        FieldId::ProcPexepath => s(&p.pexepath),
        FieldId::ProcAexepath => match arg {
            FieldArg::None => ancestors_joined(&p.ancestor_exepaths, scratch),
            _ => opt(ancestor(arg, p.exepath.as_str(), |i| {
                p.ancestor_exepaths.get(i).map(String::as_str)
            })),
        },
        FieldId::ProcPname => opt(p.pname()),
        FieldId::ProcAname => match arg {
            FieldArg::Index(0) => s(&p.name),
            FieldArg::Index(n) => opt(p.ancestors.get(n - 1).map(String::as_str)),
            _ => ancestors_joined(&p.ancestors, scratch),
        },
        FieldId::ProcArgs => match (arg, p.argv.len()) {
            (FieldArg::Index(i), _) => opt(p.argv.get(*i).map(String::as_str)),
            (_, 0 | 1) => Val::Str(""),
            (_, 2) => Val::Str(&p.argv[1]),
            _ => composed(scratch, |out| {
                push_joined(out, &p.argv[1..]);
                true
            }),
        },
        FieldId::ProcAargs => {
            let argv = match arg {
                FieldArg::Index(0) | FieldArg::None => &p.argv,
                FieldArg::Index(1) if !p.pargv.is_empty() => &p.pargv,
                _ => return Val::Missing,
            };
            composed(scratch, |out| {
                push_joined(out, argv.get(1..).unwrap_or(&[]));
                true
            })
        }
        FieldId::ProcCmdline => composed(scratch, |out| {
            push_cmdline(out, &p.name, &p.argv);
            true
        }),
        FieldId::ProcPcmdline => match p.pname() {
            Some(pname) if !p.pargv.is_empty() => composed(scratch, |out| {
                push_cmdline(out, pname, &p.pargv);
                true
            }),
            _ => Val::Missing,
        },
        // Without an index: the ancestors' command lines, as for proc.aexe the parent's.
        FieldId::ProcAcmdline => match arg {
            FieldArg::Index(0) => composed(scratch, |out| {
                push_cmdline(out, &p.name, &p.argv);
                true
            }),
            FieldArg::Index(1) | FieldArg::None => {
                proc_field(FieldId::ProcPcmdline, arg, ev, scratch)
            }
            _ => Val::Missing,
        },
        FieldId::ProcCmdnargs => Val::Num(p.argv.len().saturating_sub(1) as i64),
        FieldId::ProcCmdlenargs => {
            Val::Num(p.argv.iter().skip(1).map(String::len).sum::<usize>() as i64)
        }
        FieldId::ProcExeline => composed(scratch, |out| {
            push_joined(out, &p.argv);
            true
        }),
        FieldId::ProcEnv => match arg {
            FieldArg::Key(k) => p.env_var(k).map_or(Val::Missing, Val::Str),
            _ if p.env.is_empty() => Val::Missing,
            _ => composed(scratch, |out| {
                push_joined(out, &p.env);
                true
            }),
        },
        FieldId::ProcCwd => s(&p.cwd),
        FieldId::ProcTty => Val::Num(i64::from(p.tty)),
        FieldId::ProcPid => Val::Num(i64::from(p.pid)),
        FieldId::ProcPpid => Val::Num(i64::from(p.ppid)),
        // libsinsp reads `proc.apid` without an index as `proc.apid[0]`: the process's own pid.
        FieldId::ProcApid => match arg {
            FieldArg::Index(0) | FieldArg::None => Val::Num(i64::from(p.pid)),
            FieldArg::Index(n) => num(p.ancestor_pids.get(n - 1).copied()),
            FieldArg::Key(_) => Val::Missing,
        },
        FieldId::ProcVpid => num(p.vpid),
        FieldId::ProcSid => num(p.sid),
        FieldId::ProcSname => s(&p.sname),
        FieldId::ProcVpgid => num(p.vpgid),
        FieldId::ProcVpgidName => s(&p.vpgid_name),
        FieldId::ProcDuration => match p.start_ns {
            Some(start) => Val::Num(ev.time_ns.saturating_sub(start) as i64),
            None => Val::Missing,
        },
        FieldId::ProcPidTs => num64(p.start_ns),
        FieldId::ProcIsExeWritable => Val::Bool(p.exe_writable),
        FieldId::ProcIsExeUpperLayer => Val::Bool(p.exe_upper_layer),
        FieldId::ProcIsExeFromMemfd => Val::Bool(p.exe_from_memfd),
        FieldId::ProcIsSidLeader => p.sid.map_or(Val::Missing, |sid| Val::Bool(sid == p.pid)),
        FieldId::ProcIsVpgidLeader => match (p.vpgid, p.vpid) {
            (Some(g), Some(v)) => Val::Bool(g == v),
            _ => Val::Missing,
        },
        FieldId::ProcExeIno => num64(p.exe_ino),
        FieldId::ProcExeInoCtime => num64(p.exe_ctime_ns),
        FieldId::ProcExeInoMtime => num64(p.exe_mtime_ns),
        FieldId::ProcExeInoCtimeDurationProcStart => match (p.start_ns, p.exe_ctime_ns) {
            (Some(start), Some(ctime)) => Val::Num(start.saturating_sub(ctime) as i64),
            _ => Val::Missing,
        },
        FieldId::ThreadCapPermitted
        | FieldId::ThreadCapInheritable
        | FieldId::ThreadCapEffective => {
            let caps = match id {
                FieldId::ThreadCapPermitted => p.cap_permitted,
                FieldId::ThreadCapInheritable => p.cap_inheritable,
                _ => p.cap_effective,
            };
            match caps {
                Some(c) => {
                    scratch.clear();
                    push_caps(scratch, c);
                    Val::Str(scratch)
                }
                None => Val::Missing,
            }
        }
        FieldId::ThreadTid if exec => Val::Num(i64::from(p.pid)),
        FieldId::ThreadIsmain if exec => Val::Bool(true),
        FieldId::ThreadVtid if exec => num(p.vpid),
        FieldId::UserName => s(&p.user_name),
        FieldId::UserUid => Val::Num(i64::from(p.uid)),
        FieldId::UserLoginuid => p.loginuid.map_or(Val::Missing, |u| Val::Num(login_uid(u))),
        FieldId::UserLoginname => s(&p.loginname),
        FieldId::GroupGid => Val::Num(i64::from(p.gid)),
        FieldId::GroupName => s(&p.group_name),
        _ => Val::Missing,
    }
}

fn fd_field<'e>(id: FieldId, ev: &'e Event, scratch: &'e mut String) -> Val<'e> {
    let file = ev.file.as_ref();
    let net: Option<&'e NetRef> = ev.net.as_ref();
    let connect = net.filter(|_| ev.kind == EventKind::Connect);
    let kind = kind_mask(ev.kind);
    let on_fd = kind & (K_FILE | K_NET) != 0;
    match id {
        FieldId::FdNum if on_fd && (file.is_some() || net.is_some()) => Val::Num(0),
        FieldId::FdType => match (file, net) {
            (Some(fr), _) => match fr.typechar {
                'f' => Val::Str("file"),
                'd' => Val::Str("directory"),
                _ => Val::Missing,
            },
            (None, Some(n)) if n.local_ip.contains(':') => Val::Str("ipv6"),
            (None, Some(_)) => Val::Str("ipv4"),
            (None, None) => Val::Missing,
        },
        FieldId::FdName => match (file, net) {
            (Some(f), _) => s(&f.path),
            (None, Some(n)) => composed(scratch, |out| {
                push_endpoint(out, &n.local_ip, n.local_port);
                if ev.kind == EventKind::Connect {
                    out.push_str("->");
                    push_endpoint(out, &n.remote_ip, n.remote_port);
                }
                true
            }),
            (None, None) => Val::Missing,
        },
        FieldId::FdNameraw | FieldId::FsPathName | FieldId::FsPathNameraw => {
            opt(file.map(|f| f.path.as_str()))
        }
        FieldId::FsPathSource | FieldId::FsPathSourceraw => match ev.kind {
            EventKind::Rename => opt(file.and_then(|f| f.old_path.as_deref())),
            EventKind::Symlink => opt(file.and_then(|f| f.target.as_deref())),
            _ => Val::Missing,
        },
        FieldId::FsPathTarget | FieldId::FsPathTargetraw => match ev.kind {
            EventKind::Rename | EventKind::Symlink => opt(file.map(|f| f.path.as_str())),
            _ => Val::Missing,
        },
        FieldId::FdDirectory => opt(file.map(|f| dirname(&f.path))),
        FieldId::FdFilename => opt(file.map(|f| basename(&f.path))),
        FieldId::FdContainername | FieldId::FdContainerdirectory => {
            let cid = ev.container.as_deref().map_or(HOST, |c| c.id.short());
            composed(scratch, |out| {
                out.push_str(cid);
                out.push(':');
                match (id, file, net) {
                    (FieldId::FdContainerdirectory, Some(f), _) => out.push_str(dirname(&f.path)),
                    (FieldId::FdContainername, Some(f), _) => out.push_str(&f.path),
                    (FieldId::FdContainername, None, Some(n)) => {
                        push_endpoint(out, &n.local_ip, n.local_port);
                        if let Some(n) = connect {
                            out.push_str("->");
                            push_endpoint(out, &n.remote_ip, n.remote_port);
                        }
                    }
                    _ => return false,
                }
                true
            })
        }
        FieldId::FdTypechar => match (file, net) {
            (Some(fr), _) => composed(scratch, |out| {
                out.push(fr.typechar);
                true
            }),
            (None, Some(n)) if n.local_ip.contains(':') => Val::Str("6"),
            (None, Some(_)) => Val::Str("4"),
            (None, None) => Val::Missing,
        },
        FieldId::FdOldname => opt(file.and_then(|f| f.old_path.as_deref())),
        FieldId::FdL4proto => opt(net.map(|n| n.l4proto.as_str())),
        FieldId::FdSockfamily => net.map_or(Val::Missing, |_| Val::Str("ip")),
        // `fd.ip`, `fd.port` and `fd.net` test both ends (see `either_side`); printed, they
        // show the server's.
        FieldId::FdSip | FieldId::FdIp | FieldId::FdSnet | FieldId::FdNet => match connect {
            Some(n) => s(&n.remote_ip),
            None => opt(net.map(|n| n.local_ip.as_str())),
        },
        FieldId::FdSport | FieldId::FdPort | FieldId::FdProto => match connect {
            Some(n) => Val::Num(i64::from(n.remote_port)),
            None => net.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        },
        FieldId::FdCip | FieldId::FdCnet => opt(connect.map(|n| n.local_ip.as_str())),
        FieldId::FdCport => connect.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        FieldId::FdLip | FieldId::FdLnet => opt(net.map(|n| n.local_ip.as_str())),
        FieldId::FdLport => net.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        FieldId::FdRip | FieldId::FdRnet => opt(connect.map(|n| n.remote_ip.as_str())),
        FieldId::FdRport => connect.map_or(Val::Missing, |n| Val::Num(i64::from(n.remote_port))),
        FieldId::FdCproto | FieldId::FdSproto | FieldId::FdLproto | FieldId::FdRproto => {
            let port = match id {
                FieldId::FdCproto => connect.map(|n| n.local_port),
                FieldId::FdSproto => connect.map(|n| n.remote_port).or(net.map(|n| n.local_port)),
                FieldId::FdLproto => net.map(|n| n.local_port),
                _ => connect.map(|n| n.remote_port),
            };
            match port {
                Some(p) => composed(scratch, |out| write!(out, "{p}").is_ok()),
                None => Val::Missing,
            }
        }
        FieldId::FdIsServer => net.map_or(Val::Missing, |_| Val::Bool(connect.is_none())),
        FieldId::FdConnected => net.map_or(Val::Missing, |_| Val::Bool(connect.is_some())),
        FieldId::FdNameChanged if on_fd && (file.is_some() || net.is_some()) => {
            Val::Bool(connect.is_some())
        }
        _ => Val::Missing,
    }
}

/// A mount by position, or by a glob on its source (or, for `container.mount.source`, on its
/// destination).
fn find_mount<'e>(c: &'e ContainerMeta, arg: &FieldArg, by_dest: bool) -> Option<&'e Mount> {
    match arg {
        FieldArg::Index(i) => c.mounts.get(*i),
        FieldArg::Key(pattern) => c.mounts.iter().find(|m| {
            let subject = if by_dest { &m.dest } else { &m.source };
            wildcard_match(pattern.as_bytes(), subject.as_bytes())
        }),
        FieldArg::None => None,
    }
}

/// Shell-style `*` and `?` matching of the whole text, without allocating.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

fn push_mount(out: &mut String, m: &Mount) {
    let _ = write!(
        out,
        "{}:{}:{}:{}:{}",
        m.source, m.dest, m.mode, m.rw, m.propagation
    );
}

/// Labels as the container plugin prints them (`concatenate_container_labels`): `key:value`
/// pairs separated by `, ` in key order, a label with an empty value as its key alone, the
/// runtime's internal keys (`io.kubernetes.*`, `annotation.*`) left out. False when none is left.
fn push_labels(out: &mut String, labels: &BTreeMap<String, String>) -> bool {
    let shown = labels
        .iter()
        .filter(|(k, _)| !k.starts_with("io.kubernetes.") && !k.starts_with("annotation."));
    for (k, v) in shown {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(k);
        if !v.is_empty() {
            out.push(':');
            out.push_str(v);
        }
    }
    !out.is_empty()
}

fn container_field<'e>(
    id: FieldId,
    arg: &FieldArg,
    ev: &'e Event,
    scratch: &'e mut String,
) -> Val<'e> {
    let c: Option<&'e ContainerMeta> = ev.container.as_deref();
    let pod = c.and_then(|c| c.k8s.as_ref());
    match id {
        FieldId::ContainerId => Val::Str(c.map_or(HOST, |c| c.id.short())),
        FieldId::ContainerFullId => Val::Str(c.map_or(HOST, |c| c.id.as_str())),
        FieldId::ContainerName => c.map_or(Val::Str(HOST), |c| s(&c.name)),
        FieldId::ContainerType => Val::Str(c.map_or(HOST, |c| c.engine.as_str())),
        FieldId::ContainerImage => match c {
            Some(c) if !c.image.repository.is_empty() => {
                if c.image.tag.is_empty() {
                    Val::Str(&c.image.repository)
                } else {
                    composed(scratch, |out| {
                        out.push_str(&c.image.repository);
                        out.push(':');
                        out.push_str(&c.image.tag);
                        true
                    })
                }
            }
            _ => Val::Missing,
        },
        FieldId::ContainerImageRepository => c.map_or(Val::Missing, |c| s(&c.image.repository)),
        FieldId::ContainerImageTag => c.map_or(Val::Missing, |c| s(&c.image.tag)),
        FieldId::ContainerImageDigest => opt(c.and_then(|c| c.image.digest.as_deref())),
        FieldId::ContainerImageId => opt(c.and_then(|c| c.image.id.as_deref())),
        FieldId::ContainerPrivileged => {
            c.and_then(|c| c.privileged).map_or(Val::Missing, Val::Bool)
        }
        FieldId::ContainerMounts => match c {
            Some(c) if !c.mounts.is_empty() => composed(scratch, |out| {
                for (i, m) in c.mounts.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_mount(out, m);
                }
                true
            }),
            _ => Val::Missing,
        },
        FieldId::ContainerMount => match c {
            Some(c) => match find_mount(c, arg, false) {
                Some(m) => composed(scratch, |out| {
                    push_mount(out, m);
                    true
                }),
                None => Val::Str("none"),
            },
            None => Val::Missing,
        },
        // A mount the container does not have reads `<NA>`, as the container plugin gives it:
        // upstream's `sensitive_mount` tests `not container.mount.dest[X] in ("<NA>","N/A")`.
        FieldId::ContainerMountSource => mount_part(c, arg, true, |m| Val::Str(&m.source)),
        FieldId::ContainerMountDest => mount_part(c, arg, false, |m| Val::Str(&m.dest)),
        FieldId::ContainerMountMode => mount_part(c, arg, false, |m| Val::Str(&m.mode)),
        FieldId::ContainerMountRdwr => mount_part(c, arg, false, |m| {
            Val::Str(if m.rw { "true" } else { "false" })
        }),
        FieldId::ContainerMountPropagation => {
            mount_part(c, arg, false, |m| Val::Str(&m.propagation))
        }
        FieldId::ContainerStartTs => num64(c.and_then(|c| c.started_ns)),
        FieldId::ContainerDuration => match c.and_then(|c| c.started_ns) {
            Some(start) => Val::Num(ev.time_ns.saturating_sub(start) as i64),
            None => Val::Missing,
        },
        FieldId::ContainerLabel => match (arg, c) {
            (FieldArg::Key(k), Some(c)) => c.labels.get(&**k).map_or(Val::Missing, |v| Val::Str(v)),
            _ => Val::Missing,
        },
        FieldId::ContainerLabels => match c {
            Some(c) => composed(scratch, |out| push_labels(out, &c.labels)),
            None => Val::Missing,
        },
        FieldId::K8sNsName => opt(pod.map(|k| k.namespace.as_str())),
        FieldId::K8sPodName => opt(pod.map(|k| k.pod_name.as_str())),
        FieldId::K8sPodUid | FieldId::K8sPodId => opt(pod.map(|k| k.pod_uid.as_str())),
        FieldId::K8sPodLabel => match (arg, pod) {
            // An empty value is a value: `k8s.pod.label[x] = ""` tells it from an absent one.
            (FieldArg::Key(k), Some(pod)) => {
                pod.labels.get(&**k).map_or(Val::Missing, |v| Val::Str(v))
            }
            _ => Val::Missing,
        },
        FieldId::K8sPodLabels => match pod {
            Some(pod) => composed(scratch, |out| push_labels(out, &pod.labels)),
            None => Val::Missing,
        },
        _ => Val::Missing,
    }
}

fn drift_field(id: FieldId, ev: &Event) -> Val<'_> {
    let drift = ev.drift.as_ref();
    let run = ev.process.interpreter.as_ref();
    match id {
        FieldId::DriftKind => drift.map_or(Val::Missing, |d| Val::Str(d.kind.as_str())),
        FieldId::DriftVerdict => drift.map_or(Val::Missing, |d| Val::Str(d.verdict.as_str())),
        FieldId::DriftSubject => drift.map_or(Val::Missing, |d| Val::Str(d.subject.as_str())),
        FieldId::DriftPath => opt(drift.map(|d| d.path.as_str())),
        FieldId::DriftHash => opt(drift.and_then(|d| d.hash.as_deref())),
        FieldId::DriftImageHash => opt(drift.and_then(|d| d.image_hash.as_deref())),
        FieldId::DriftDetail => opt(drift.and_then(|d| d.detail.as_deref())),
        FieldId::DriftLayer => opt(drift.and_then(|d| d.provenance.layer.as_deref())),
        FieldId::DriftPackage => opt(drift.and_then(|d| d.provenance.package.as_deref())),
        FieldId::DriftPackageVersion => {
            opt(drift.and_then(|d| d.provenance.package_version.as_deref()))
        }
        FieldId::DriftPackageEcosystem => {
            opt(drift.and_then(|d| d.provenance.package_ecosystem.as_deref()))
        }
        FieldId::DriftPackageDigest => {
            opt(drift.and_then(|d| d.provenance.package_digest.as_deref()))
        }
        FieldId::DriftEnforcement => {
            opt(drift.and_then(|d| d.enforcement).map(|e| e.mode.as_str()))
        }
        FieldId::DriftAction => opt(drift.and_then(|d| d.enforcement).map(|e| e.action.as_str())),
        FieldId::DriftBlockedBy => opt(drift
            .and_then(|d| d.enforcement)
            .and_then(|e| e.by)
            .map(|b| b.as_str())),
        FieldId::DriftInterpreter => opt(run.map(|r| r.family.as_str())),
        FieldId::DriftInvocation => opt(run.map(|r| r.invocation.as_str())),
        FieldId::DriftInlineFlag => opt(run.map(|r| r.flag.as_str())),
        FieldId::DriftInlineCode => opt(run.map(|r| r.code.as_str())),
        FieldId::DriftStdin => opt(run.and_then(|r| r.stdin).map(|s| s.as_str())),
        FieldId::DriftInlineLearned => run.and_then(|r| r.learned).map_or(Val::Missing, Val::Bool),
        _ => Val::Missing,
    }
}

fn dirname(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

fn basename(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rfind('/').map_or(t, |i| &t[i + 1..])
}

#[cfg(test)]
mod tests;

/// One part of the mount a `container.mount.*[...]` field names: `<NA>` when the container has
/// no such mount, missing on the host.
fn mount_part<'e>(
    c: Option<&'e driftwatch_model::ContainerMeta>,
    arg: &FieldArg,
    by_dest: bool,
    part: impl FnOnce(&'e driftwatch_model::Mount) -> Val<'e>,
) -> Val<'e> {
    match c {
        Some(c) => find_mount(c, arg, by_dest).map_or(Val::Str("<NA>"), part),
        None => Val::Missing,
    }
}
