//! An event: something a sensor saw a process do, with its container and, once judged,
//! its drift finding. Events are what rules evaluate and what `--record` writes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ContainerMeta, DriftFinding, Process};

/// What happened. Names follow Falco's `evt.type` values where Falco has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A successful exec (`execve`/`execveat`), seen after the new image is in place.
    Execve,
    /// A file opened (Falco's `open`/`openat`); `FileRef::write` tells open-for-write.
    Open,
    /// A file created.
    Creat,
    /// A file removed.
    Unlink,
    /// A file renamed: `FileRef::path` is the new name, `FileRef::old_path` the old one.
    Rename,
    /// Mode changed.
    Chmod,
    /// Owner changed.
    Chown,
    /// A socket started listening.
    Listen,
    /// A socket connected out.
    Connect,
    /// A directory created (Falco's `mkdir`/`mkdirat`).
    Mkdir,
    /// A symbolic link created (Falco's `symlink`/`symlinkat`): `FileRef::path` is the link,
    /// `FileRef::target` what it points to.
    Symlink,
    /// A container's configuration as its engine reports it, when it is created or started
    /// (or first seen): carries config-drift findings. The process is the container's init.
    Container,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Execve => "execve",
            EventKind::Open => "open",
            EventKind::Creat => "creat",
            EventKind::Unlink => "unlink",
            EventKind::Rename => "rename",
            EventKind::Chmod => "chmod",
            EventKind::Chown => "chown",
            EventKind::Listen => "listen",
            EventKind::Connect => "connect",
            EventKind::Container => "container",
            EventKind::Mkdir => "mkdir",
            EventKind::Symlink => "symlink",
        }
    }

    pub const ALL: [EventKind; 12] = [
        EventKind::Execve,
        EventKind::Open,
        EventKind::Creat,
        EventKind::Unlink,
        EventKind::Rename,
        EventKind::Chmod,
        EventKind::Chown,
        EventKind::Listen,
        EventKind::Connect,
        EventKind::Container,
        EventKind::Mkdir,
        EventKind::Symlink,
    ];
}

/// The file an event is about (Falco's `fd.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path inside the container.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    /// Opened for writing (Falco's `evt.is_open_write`).
    #[serde(default)]
    pub write: bool,
    /// `f` file, `d` directory, `l` symlink, ... (Falco's `fd.typechar`).
    #[serde(default = "regular")]
    pub typechar: char,
    /// The open flags the change implies, as Linux `O_*` bits (`O_WRONLY|O_CREAT|O_TRUNC` for
    /// a file created or emptied): Falco's `evt.arg.flags`. 0 when not known.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    /// The file's permission bits after the change (`evt.arg.mode` of `chmod`, `open`,
    /// `mkdir`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// For `Symlink`: the link's target, as stored (Falco's `evt.arg.target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For `Chown`: the new owner (`evt.arg.uid`, `evt.arg.gid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(u32, u32)>,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn regular() -> char {
    'f'
}

/// The socket a network event is about (Falco's `fd.*` network fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRef {
    /// `tcp` or `udp` (Falco's `fd.l4proto`).
    pub l4proto: String,
    /// Local address and port (`fd.lip`, `fd.lport`; `fd.sip`/`fd.sport` for a listener).
    pub local_ip: String,
    pub local_port: u16,
    /// Remote address and port (`fd.rip`, `fd.rport`); empty and 0 for a listener.
    #[serde(default)]
    pub remote_ip: String,
    #[serde(default)]
    pub remote_port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time of the kernel event, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The agent's sequence number for the event, from 1 (Falco's `evt.num`); 0 when the
    /// event was not numbered (built by a tool or a test).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num: u64,
    pub kind: EventKind,
    pub process: Process,
    /// `None` for processes on the host.
    #[serde(default)]
    pub container: Option<Arc<ContainerMeta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
    /// For `Listen` and `Connect` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetRef>,
    /// The drift finding, when the event drifted from the image. An exec with several
    /// drifted parts carries the first of: exe, script, loader target, preload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftFinding>,
}
