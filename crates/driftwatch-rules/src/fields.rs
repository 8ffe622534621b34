//! The field table: every field a condition or output may name, its type, its argument and
//! its meaning (Falco's where Falco has the field), and how it is read from a `model::Event`.
//! `docs/fields.md` is generated from this table.

use driftwatch_model::{Event, EventKind};

/// A field's value type, which decides the operators it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Bool,
    /// Nanoseconds since the epoch: compares as a number, prints as RFC 3339.
    Time,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
            FieldType::Time => "time",
        }
    }
}

/// What may follow a field name in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSpec {
    None,
    /// `proc.aname[2]`: a number, optional.
    Index,
    /// `proc.env[HOME]`: a name, optional.
    Key,
    /// `k8s.pod.label[app]`: a name, required (Falco's `EPF_ARG_REQUIRED`).
    KeyRequired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldId {
    EvtType,
    EvtDir,
    EvtTime,
    EvtRawtime,
    EvtIsOpenWrite,
    EvtIsOpenRead,
    ProcName,
    ProcExe,
    ProcExepath,
    ProcCmdline,
    ProcArgs,
    ProcPid,
    ProcPpid,
    ProcPname,
    ProcPexepath,
    ProcAname,
    ProcTty,
    ProcCwd,
    ProcIsExeUpperLayer,
    ProcIsExeFromMemfd,
    ProcIsExeWritable,
    ProcEnv,
    UserName,
    UserUid,
    GroupGid,
    ContainerId,
    ContainerFullId,
    ContainerName,
    ContainerType,
    ContainerImage,
    ContainerImageRepository,
    ContainerImageTag,
    ContainerImageDigest,
    ContainerImageId,
    K8sNsName,
    K8sPodName,
    K8sPodUid,
    K8sPodLabel,
    K8sPodLabels,
    FdName,
    FdDirectory,
    FdFilename,
    FdTypechar,
    FdOldname,
    FdL4proto,
    FdSockfamily,
    FdSip,
    FdSport,
    FdCip,
    FdCport,
    FdLip,
    FdLport,
    FdRip,
    FdRport,
    DriftKind,
    DriftVerdict,
    DriftSubject,
    DriftPath,
    DriftHash,
    DriftImageHash,
    DriftDetail,
    DriftEnforcement,
    DriftAction,
    DriftBlockedBy,
}

/// One row of the field table.
#[derive(Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    pub ty: FieldType,
    pub arg: ArgSpec,
    pub desc: &'static str,
    pub(crate) id: FieldId,
}

macro_rules! fields {
    ($($name:literal, $id:ident, $ty:ident, $arg:ident, $desc:literal;)*) => {
        /// Every field, in documentation order.
        pub static FIELDS: &[FieldInfo] = &[
            $(FieldInfo { name: $name, ty: FieldType::$ty, arg: ArgSpec::$arg, desc: $desc, id: FieldId::$id },)*
        ];
    };
}

fields! {
    "evt.type", EvtType, String, None, "The event type: `execve`, `open`, `creat`, `unlink`, `rename`, `chmod`, `chown`, `listen`, `connect` or `container` (a container's configuration at create/start, carrying config-drift findings) (Falco's names; `evt.type in (execve, execveat)` works as in Falco).";
    "evt.dir", EvtDir, String, None, "The event direction. driftwatch only sees completed calls, so always `<` (exit).";
    "evt.time", EvtTime, Time, None, "When the event happened: nanoseconds since the epoch in comparisons and JSON, RFC 3339 in output text.";
    "evt.rawtime", EvtRawtime, Number, None, "When the event happened, nanoseconds since the epoch.";
    "evt.is_open_write", EvtIsOpenWrite, Bool, None, "For `open` and `creat` events: true if the file was opened for writing. Missing for other events.";
    "evt.is_open_read", EvtIsOpenRead, Bool, None, "For `open` events: true if the file was opened for reading only. Missing for other events.";
    "proc.name", ProcName, String, None, "The process's comm: the executable's name as the kernel truncates it (15 bytes).";
    "proc.exe", ProcExe, String, None, "The first command-line argument (argv[0]), as the caller passed it.";
    "proc.exepath", ProcExepath, String, None, "The full path of the executed file, inside the container.";
    "proc.cmdline", ProcCmdline, String, None, "`proc.name` followed by the arguments, separated by spaces.";
    "proc.args", ProcArgs, String, None, "The arguments (argv[1..]) joined by spaces; empty when there are none.";
    "proc.pid", ProcPid, Number, None, "The process id (thread-group id) as seen from the host.";
    "proc.ppid", ProcPpid, Number, None, "The parent's process id as seen from the host.";
    "proc.pname", ProcPname, String, None, "The parent's name (`proc.aname[1]`).";
    "proc.pexepath", ProcPexepath, String, None, "The parent's executable path, when known.";
    "proc.aname", ProcAname, String, Index, "Ancestor names: `proc.aname[1]` is the parent, `[2]` the grandparent, `[0]` the process itself. Without an index, a test matches if any ancestor matches.";
    "proc.tty", ProcTty, Number, None, "The controlling terminal's device number, 0 when the process has none.";
    "proc.cwd", ProcCwd, String, None, "The working directory at exec.";
    "proc.is_exe_upper_layer", ProcIsExeUpperLayer, Bool, None, "True if the executed file is in the overlay's upper (writable) layer. Prefer `drift.verdict`, which also tells copy-ups from real changes.";
    "proc.is_exe_from_memfd", ProcIsExeFromMemfd, Bool, None, "True if the executed file is an anonymous memory file (memfd_create).";
    "proc.is_exe_writable", ProcIsExeWritable, Bool, None, "True if the executed file is writable by the process's user.";
    "proc.env", ProcEnv, String, Key, "The environment at exec: `proc.env[NAME]` is one variable's value (missing if unset); `proc.env` alone is every `NAME=value`, separated by spaces.";
    "user.name", UserName, String, None, "The user's name, resolved against the container's /etc/passwd.";
    "user.uid", UserUid, Number, None, "The user id.";
    "group.gid", GroupGid, Number, None, "The group id.";
    "container.id", ContainerId, String, None, "The container's 12-character short id, or `host` for processes outside containers (Falco's `container` macro is `container.id != host`).";
    "container.full_id", ContainerFullId, String, None, "The container's 64-character id, or `host`.";
    "container.name", ContainerName, String, None, "The container's name, or `host`.";
    "container.type", ContainerType, String, None, "The engine running the container: `docker`, `containerd`, `podman`, `cri-o`, `unknown`, or `host`.";
    "container.image", ContainerImage, String, None, "The image as `repository:tag` (the repository alone when untagged).";
    "container.image.repository", ContainerImageRepository, String, None, "The image repository, e.g. `nginx` or `registry.example.com/team/app`.";
    "container.image.tag", ContainerImageTag, String, None, "The image tag, e.g. `1.27`.";
    "container.image.digest", ContainerImageDigest, String, None, "The image's repository digest (`sha256:...`), or its id when the engine knows no digest.";
    "container.image.id", ContainerImageId, String, None, "The image id (`sha256:...` of its config).";
    "k8s.ns.name", K8sNsName, String, None, "The Kubernetes namespace of the pod.";
    "k8s.pod.name", K8sPodName, String, None, "The Kubernetes pod name.";
    "k8s.pod.uid", K8sPodUid, String, None, "The Kubernetes pod uid.";
    "k8s.pod.label", K8sPodLabel, String, KeyRequired, "One label of the pod, as the container runtime reports the pod (CRI pod sandbox; cri-dockerd's sandbox labels): `k8s.pod.label[app]`, `k8s.pod.label[app.kubernetes.io/name]`, or Falco's other spelling `k8s.pod.label.app` (for keys of letters, digits, `_` and `.` only: a key with `/` or `-` needs the brackets). Missing when the pod has no such label or no runtime reported its labels.";
    "k8s.pod.labels", K8sPodLabels, String, None, "The pod's labels as Falco prints them: `key:value` pairs separated by `, ` in key order (a label with an empty value as its key alone), without `io.kubernetes.*` and `annotation.*` keys. Missing when there are none.";
    "fd.name", FdName, String, None, "The path of the file the event is about, inside the container (the new name for `rename`). For `connect`: `cip:cport->sip:sport` as Falco writes it (IPv6 addresses in brackets); for `listen`: `lip:lport`.";
    "fd.directory", FdDirectory, String, None, "The directory part of `fd.name`.";
    "fd.filename", FdFilename, String, None, "The last component of `fd.name`.";
    "fd.typechar", FdTypechar, String, None, "The file's type as one character: `f` file, `d` directory, `l` symlink, ...; for sockets `4` (IPv4) or `6` (IPv6).";
    "fd.oldname", FdOldname, String, None, "For `rename`: the old path (driftwatch's own).";
    "fd.l4proto", FdL4proto, String, None, "For `listen` and `connect`: the transport protocol, `tcp` or `udp`.";
    "fd.sockfamily", FdSockfamily, String, None, "For `listen` and `connect`: `ip` (IPv4 or IPv6).";
    "fd.sip", FdSip, String, None, "The server address: the local address of a `listen`, the remote address of a `connect`.";
    "fd.sport", FdSport, Number, None, "The server port: the local port of a `listen`, the remote port of a `connect`.";
    "fd.cip", FdCip, String, None, "The client address: the local address of a `connect`. Missing for `listen`.";
    "fd.cport", FdCport, Number, None, "The client port: the local port of a `connect` (0 when the kernel had not picked the ephemeral port yet). Missing for `listen`.";
    "fd.lip", FdLip, String, None, "The local address (`0.0.0.0` or `::` for a listener on every address).";
    "fd.lport", FdLport, Number, None, "The local port.";
    "fd.rip", FdRip, String, None, "The remote address of a `connect`. Missing for `listen`.";
    "fd.rport", FdRport, Number, None, "The remote port of a `connect`. Missing for `listen`.";
    "drift.kind", DriftKind, String, None, "The kind of drift the agent found: `binary`, `file`, `package`, `config`, `network` or `image`. Missing when the event carries no drift finding.";
    "drift.verdict", DriftVerdict, String, None, "Where the judged file came from: `image`, `copy_up` (not drift), `added`, `modified`, `memfd`, `deleted`, `tmpfs`, `volume`, `unjudged` (an upper-layer file that could not be judged: reported, never accepted) or `unknown`. For config drift: `added` (not in the image's config), `modified` (changed from the image's), `deleted`, or `image` (a weak setting inherited unchanged from the image or the engine's defaults). For image drift: `unapproved`, `unknown` or `mutable_tag` (approval), `modified`, `deleted` or `added` (a file of an image layer on the host).";
    "drift.subject", DriftSubject, String, None, "Which part of an exec the finding is about: `exe`, `script` (a script run by its shebang), `loader_target` (`ld.so /path`) or `preload` (`LD_PRELOAD`). For config drift, the setting: `env` (a variable added or changed from the image's; at exec only code-loading ones), and on `container` events `privileged`, `cap_add`, `host_namespace`, `sensitive_mount`, `writable_rootfs`, `root_user`, `seccomp_unconfined`, `apparmor_unconfined`; `mounted_file` for a bind-mounted secret or config file changed. For image drift: `image_digest` (the image against the approved list) or `image_layer` (an image layer on the host changed).";
    "drift.path", DriftPath, String, None, "The path, inside the container, of the file judged. For config drift, what the setting names: a variable, a capability (`CAP_SYS_ADMIN`), a namespace (`pid`), a mount point, a user.";
    "drift.hash", DriftHash, String, None, "blake3 of the drifted file's content, when it could be read.";
    "drift.image_hash", DriftImageHash, String, None, "blake3 of the image's file at the same path (for `modified`).";
    "drift.detail", DriftDetail, String, None, "What changed, in words: for package drift the packages added, removed and changed with their versions; for config drift the setting and its value.";
    "drift.enforcement", DriftEnforcement, String, None, "The enforcement mode of the container's scope when a binary-drift exec was judged: `detect` or `prevent`. Missing for other kinds of drift.";
    "drift.action", DriftAction, String, None, "What enforcement did about a binary-drift exec: `alerted` (detect mode: it ran), `blocked` (prevented before its first instruction), `killed` (it had started when judged, then was killed by the agent) or `failed` (prevent mode, but it could not be stopped).";
    "drift.blocked_by", DriftBlockedBy, String, None, "Which mechanism stopped it: `fanotify_deny` (exec permission denied, the caller got EPERM), `bpf_sigkill` (killed in the kernel at exec: memfd), `bpf_hold` (held with SIGSTOP at exec, judged, killed before running) or `agent_sigkill` (killed by the agent after it started). Missing when nothing stopped it.";
}

/// Looks a field up by name.
pub fn field(name: &str) -> Option<&'static FieldInfo> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The known field closest to a misspelled one, for "did you mean".
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (driftwatch_yaml::edit_distance(name, f.name), f.name))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The argument a field was named with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FieldArg {
    None,
    Index(usize),
    Key(Box<str>),
}

/// A field as a condition or output names it: `proc.aname[2]`.
#[derive(Clone, Debug)]
pub(crate) struct FieldRef {
    pub(crate) info: &'static FieldInfo,
    pub(crate) arg: FieldArg,
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &Self) -> bool {
        self.info.id == other.info.id && self.arg == other.arg
    }
}

impl Eq for FieldRef {}

impl FieldRef {
    /// As written in outputs and `output_fields` keys.
    pub(crate) fn display_name(&self) -> String {
        match &self.arg {
            FieldArg::None => self.info.name.to_string(),
            FieldArg::Index(i) => format!("{}[{i}]", self.info.name),
            FieldArg::Key(k) => format!("{}[{k}]", self.info.name),
        }
    }
}

/// A field's value in one event. Borrowed from the event or the scratch buffer: no allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Val<'e> {
    Missing,
    Str(&'e str),
    Num(i64),
    Bool(bool),
    /// Several strings (every ancestor's name).
    Strs(&'e [String]),
}

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

const HOST: &str = "host";

/// Reads a field from an event. Values that must be composed (cmdline, image name, the whole
/// environment) are written into `scratch`, which keeps its capacity between events.
pub(crate) fn extract<'e>(f: &FieldRef, ev: &'e Event, scratch: &'e mut String) -> Val<'e> {
    let p = &ev.process;
    let c = ev.container.as_deref();
    let file = ev.file.as_ref();
    let drift = ev.drift.as_ref();
    let net = ev.net.as_ref();
    let connect = net.filter(|_| ev.kind == EventKind::Connect);
    match f.info.id {
        FieldId::EvtType => Val::Str(ev.kind.as_str()),
        FieldId::EvtDir => Val::Str("<"),
        FieldId::EvtTime | FieldId::EvtRawtime => {
            Val::Num(i64::try_from(ev.time_ns).unwrap_or(i64::MAX))
        }
        FieldId::EvtIsOpenWrite => match (ev.kind, file) {
            (EventKind::Open, Some(fr)) => Val::Bool(fr.write),
            (EventKind::Creat, Some(_)) => Val::Bool(true),
            _ => Val::Missing,
        },
        FieldId::EvtIsOpenRead => match (ev.kind, file) {
            (EventKind::Open, Some(fr)) => Val::Bool(!fr.write),
            _ => Val::Missing,
        },
        FieldId::ProcName => s(&p.name),
        FieldId::ProcExe => opt(p.argv.first().map(String::as_str)),
        FieldId::ProcExepath => s(&p.exepath),
        FieldId::ProcCmdline => {
            scratch.clear();
            scratch.push_str(&p.name);
            for a in p.argv.iter().skip(1) {
                scratch.push(' ');
                scratch.push_str(a);
            }
            Val::Str(scratch)
        }
        FieldId::ProcArgs => match p.argv.len() {
            0 | 1 => Val::Str(""),
            2 => Val::Str(&p.argv[1]),
            _ => {
                scratch.clear();
                for (i, a) in p.argv.iter().skip(1).enumerate() {
                    if i > 0 {
                        scratch.push(' ');
                    }
                    scratch.push_str(a);
                }
                Val::Str(scratch)
            }
        },
        FieldId::ProcPid => Val::Num(i64::from(p.pid)),
        FieldId::ProcPpid => Val::Num(i64::from(p.ppid)),
        FieldId::ProcPname => opt(p.pname()),
        FieldId::ProcPexepath => s(&p.pexepath),
        FieldId::ProcAname => match f.arg {
            FieldArg::Index(0) => s(&p.name),
            FieldArg::Index(n) => opt(p.ancestors.get(n - 1).map(String::as_str)),
            _ if p.ancestors.is_empty() => Val::Missing,
            _ => Val::Strs(&p.ancestors),
        },
        FieldId::ProcTty => Val::Num(i64::from(p.tty)),
        FieldId::ProcCwd => s(&p.cwd),
        FieldId::ProcIsExeUpperLayer => Val::Bool(p.exe_upper_layer),
        FieldId::ProcIsExeFromMemfd => Val::Bool(p.exe_from_memfd),
        FieldId::ProcIsExeWritable => Val::Bool(p.exe_writable),
        FieldId::ProcEnv => match &f.arg {
            FieldArg::Key(k) => p.env_var(k).map_or(Val::Missing, Val::Str),
            _ => {
                if p.env.is_empty() {
                    return Val::Missing;
                }
                scratch.clear();
                for (i, kv) in p.env.iter().enumerate() {
                    if i > 0 {
                        scratch.push(' ');
                    }
                    scratch.push_str(kv);
                }
                Val::Str(scratch)
            }
        },
        FieldId::UserName => s(&p.user_name),
        FieldId::UserUid => Val::Num(i64::from(p.uid)),
        FieldId::GroupGid => Val::Num(i64::from(p.gid)),
        FieldId::ContainerId => Val::Str(c.map_or(HOST, |c| c.id.short())),
        FieldId::ContainerFullId => Val::Str(c.map_or(HOST, |c| c.id.as_str())),
        FieldId::ContainerName => c.map_or(Val::Str(HOST), |c| s(&c.name)),
        FieldId::ContainerType => Val::Str(c.map_or(HOST, |c| c.engine.as_str())),
        FieldId::ContainerImage => match c {
            Some(c) if !c.image.repository.is_empty() => {
                if c.image.tag.is_empty() {
                    Val::Str(&c.image.repository)
                } else {
                    scratch.clear();
                    scratch.push_str(&c.image.repository);
                    scratch.push(':');
                    scratch.push_str(&c.image.tag);
                    Val::Str(scratch)
                }
            }
            _ => Val::Missing,
        },
        FieldId::ContainerImageRepository => c.map_or(Val::Missing, |c| s(&c.image.repository)),
        FieldId::ContainerImageTag => c.map_or(Val::Missing, |c| s(&c.image.tag)),
        FieldId::ContainerImageDigest => opt(c.and_then(|c| c.image.digest.as_deref())),
        FieldId::ContainerImageId => opt(c.and_then(|c| c.image.id.as_deref())),
        FieldId::K8sNsName => opt(c.and_then(|c| c.k8s.as_ref()).map(|k| k.namespace.as_str())),
        FieldId::K8sPodName => opt(c.and_then(|c| c.k8s.as_ref()).map(|k| k.pod_name.as_str())),
        FieldId::K8sPodUid => opt(c.and_then(|c| c.k8s.as_ref()).map(|k| k.pod_uid.as_str())),
        FieldId::K8sPodLabel => match (&f.arg, c.and_then(|c| c.k8s.as_ref())) {
            // An empty value is a value: `k8s.pod.label[x] = ""` tells it from an absent one.
            (FieldArg::Key(k), Some(pod)) => {
                pod.labels.get(&**k).map_or(Val::Missing, |v| Val::Str(v))
            }
            _ => Val::Missing,
        },
        FieldId::K8sPodLabels => {
            let Some(pod) = c.and_then(|c| c.k8s.as_ref()) else {
                return Val::Missing;
            };
            scratch.clear();
            // Falco's `concatenate_container_labels`: runtime-internal keys left out.
            for (k, v) in pod
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with("io.kubernetes.") && !k.starts_with("annotation."))
            {
                if !scratch.is_empty() {
                    scratch.push_str(", ");
                }
                scratch.push_str(k);
                if !v.is_empty() {
                    scratch.push(':');
                    scratch.push_str(v);
                }
            }
            if scratch.is_empty() {
                Val::Missing
            } else {
                Val::Str(scratch)
            }
        }
        FieldId::FdName => match (file, net) {
            (Some(f), _) => s(&f.path),
            (None, Some(n)) => {
                scratch.clear();
                push_endpoint(scratch, &n.local_ip, n.local_port);
                if ev.kind == EventKind::Connect {
                    scratch.push_str("->");
                    push_endpoint(scratch, &n.remote_ip, n.remote_port);
                }
                Val::Str(scratch)
            }
            (None, None) => Val::Missing,
        },
        FieldId::FdDirectory => opt(file.map(|f| dirname(&f.path))),
        FieldId::FdFilename => opt(file.map(|f| basename(&f.path))),
        FieldId::FdTypechar => match (file, net) {
            (Some(fr), _) => {
                scratch.clear();
                scratch.push(fr.typechar);
                Val::Str(scratch)
            }
            (None, Some(n)) if n.local_ip.contains(':') => Val::Str("6"),
            (None, Some(_)) => Val::Str("4"),
            (None, None) => Val::Missing,
        },
        FieldId::FdOldname => opt(file.and_then(|f| f.old_path.as_deref())),
        FieldId::FdL4proto => opt(net.map(|n| n.l4proto.as_str())),
        FieldId::FdSockfamily => net.map_or(Val::Missing, |_| Val::Str("ip")),
        FieldId::FdSip => match connect {
            Some(n) => s(&n.remote_ip),
            None => opt(net.map(|n| n.local_ip.as_str())),
        },
        FieldId::FdSport => match connect {
            Some(n) => Val::Num(i64::from(n.remote_port)),
            None => net.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        },
        FieldId::FdCip => opt(connect.map(|n| n.local_ip.as_str())),
        FieldId::FdCport => connect.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        FieldId::FdLip => opt(net.map(|n| n.local_ip.as_str())),
        FieldId::FdLport => net.map_or(Val::Missing, |n| Val::Num(i64::from(n.local_port))),
        FieldId::FdRip => opt(connect.map(|n| n.remote_ip.as_str())),
        FieldId::FdRport => connect.map_or(Val::Missing, |n| Val::Num(i64::from(n.remote_port))),
        FieldId::DriftKind => drift.map_or(Val::Missing, |d| Val::Str(d.kind.as_str())),
        FieldId::DriftVerdict => drift.map_or(Val::Missing, |d| Val::Str(d.verdict.as_str())),
        FieldId::DriftSubject => drift.map_or(Val::Missing, |d| Val::Str(d.subject.as_str())),
        FieldId::DriftPath => opt(drift.map(|d| d.path.as_str())),
        FieldId::DriftHash => opt(drift.and_then(|d| d.hash.as_deref())),
        FieldId::DriftImageHash => opt(drift.and_then(|d| d.image_hash.as_deref())),
        FieldId::DriftDetail => opt(drift.and_then(|d| d.detail.as_deref())),
        FieldId::DriftEnforcement => {
            opt(drift.and_then(|d| d.enforcement).map(|e| e.mode.as_str()))
        }
        FieldId::DriftAction => opt(drift.and_then(|d| d.enforcement).map(|e| e.action.as_str())),
        FieldId::DriftBlockedBy => opt(drift
            .and_then(|d| d.enforcement)
            .and_then(|e| e.by)
            .map(|b| b.as_str())),
    }
}

/// `ip:port`, IPv6 addresses in brackets.
fn push_endpoint(out: &mut String, ip: &str, port: u16) {
    use std::fmt::Write;
    if ip.contains(':') {
        let _ = write!(out, "[{ip}]:{port}");
    } else {
        let _ = write!(out, "{ip}:{port}");
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

/// The field reference as Markdown, generated from [`FIELDS`].
pub fn fields_markdown() -> String {
    let mut out = String::from(
        "# Rule fields\n\n\
         <!-- Generated from crates/driftwatch-rules/src/fields.rs by `fields_markdown()`; \
         do not edit. The test `fields_doc_is_current` fails when this file is stale; \
         regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules fields_doc`. -->\n\n\
         Fields a rule's `condition` may test and its `output` may print as `%field`. \
         A missing value (no container, no file, no drift finding) makes every comparison \
         false (`not` of it true, `exists` false) and prints as `<NA>`.\n\n\
         Operators by type: `string` takes `=` `!=` `contains` `icontains` `startswith` \
         `endswith` `glob` `pmatch` `regex` `in` `intersects` `exists`; `number` and `time` take \
         `=` `!=` `<` `<=` `>` `>=` `in` `intersects` `exists`; `bool` takes `=` `!=` `exists` \
         (values `true`, `false`).\n\n\
         | Field | Type | Argument | Description |\n| --- | --- | --- | --- |\n",
    );
    for f in FIELDS {
        let arg = match f.arg {
            ArgSpec::None => "",
            ArgSpec::Index => "`[N]` optional",
            ArgSpec::Key => "`[NAME]` optional",
            ArgSpec::KeyRequired => "`[NAME]` required",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.name,
            f.ty.as_str(),
            arg,
            f.desc.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(f.name.contains('.'), "{}", f.name);
            assert!(
                FIELDS[i + 1..].iter().all(|g| g.name != f.name),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn paths_split() {
        assert_eq!(
            (dirname("/etc/passwd"), basename("/etc/passwd")),
            ("/etc", "passwd")
        );
        assert_eq!((dirname("/x"), basename("/x")), ("/", "x"));
        assert_eq!(dirname("x"), "");
    }

    fn net_event(kind: EventKind, local: (&str, u16), remote: (&str, u16)) -> Event {
        Event {
            num: 0,
            time_ns: 1,
            kind,
            process: Default::default(),
            container: None,
            file: None,
            net: Some(driftwatch_model::NetRef {
                l4proto: "tcp".into(),
                local_ip: local.0.into(),
                local_port: local.1,
                remote_ip: remote.0.into(),
                remote_port: remote.1,
            }),
            drift: None,
        }
    }

    fn get(name: &str, ev: &Event) -> String {
        let f = FieldRef {
            info: field(name).unwrap(),
            arg: FieldArg::None,
        };
        let mut scratch = String::new();
        match extract(&f, ev, &mut scratch) {
            Val::Missing => "<NA>".into(),
            Val::Str(v) => v.into(),
            Val::Num(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn network_fields_follow_falcos_client_server_roles() {
        let c = net_event(EventKind::Connect, ("10.0.0.2", 40000), ("10.0.0.5", 5432));
        let got: Vec<String> = [
            "fd.name",
            "fd.l4proto",
            "fd.typechar",
            "fd.sockfamily",
            "fd.cip",
            "fd.cport",
            "fd.sip",
            "fd.sport",
            "fd.lip",
            "fd.lport",
            "fd.rip",
            "fd.rport",
        ]
        .iter()
        .map(|f| get(f, &c))
        .collect();
        assert_eq!(
            got,
            [
                "10.0.0.2:40000->10.0.0.5:5432",
                "tcp",
                "4",
                "ip",
                "10.0.0.2",
                "40000",
                "10.0.0.5",
                "5432",
                "10.0.0.2",
                "40000",
                "10.0.0.5",
                "5432"
            ]
        );
        let l = net_event(EventKind::Listen, ("::", 8081), ("", 0));
        let got: Vec<String> = [
            "fd.name",
            "fd.typechar",
            "fd.sip",
            "fd.sport",
            "fd.cip",
            "fd.cport",
            "fd.rip",
            "fd.rport",
            "fd.directory",
        ]
        .iter()
        .map(|f| get(f, &l))
        .collect();
        assert_eq!(
            got,
            [
                "[::]:8081",
                "6",
                "::",
                "8081",
                "<NA>",
                "<NA>",
                "<NA>",
                "<NA>",
                "<NA>"
            ]
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("proc.nme"), Some("proc.name"));
        assert_eq!(suggest("zzzzzzzzzz"), None);
    }

    #[test]
    fn fields_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fields.md");
        let want = fields_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "{path} is stale: regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules fields_doc`"
        );
    }
}
