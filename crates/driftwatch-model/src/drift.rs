//! What a drift finding says: which kind of drift, about what, and the verdict on it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The five kinds of drift of the seed document, plus shells (their own alert category).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Binary,
    File,
    Package,
    Config,
    Network,
    /// The container's image itself: not an approved digest, a mutable tag, or a layer on
    /// disk that no longer matches its digest.
    Image,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Binary => "binary",
            DriftKind::File => "file",
            DriftKind::Package => "package",
            DriftKind::Config => "config",
            DriftKind::Network => "network",
            DriftKind::Image => "image",
        }
    }

    /// The alert tag of the category (`binary_drift`, ...).
    pub fn tag(self) -> &'static str {
        match self {
            DriftKind::Binary => "binary_drift",
            DriftKind::File => "file_drift",
            DriftKind::Package => "package_drift",
            DriftKind::Config => "config_drift",
            DriftKind::Network => "network_drift",
            DriftKind::Image => "image_drift",
        }
    }
}

/// What a finding is about: for binary drift, which code of an exec; for config drift,
/// which setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSubject {
    /// The executed file itself (`bprm->file`).
    Exe,
    /// A script run by its shebang: the script, not its interpreter.
    Script,
    /// A program run through the dynamic loader (`ld.so /tmp/x`).
    LoaderTarget,
    /// A library named by `LD_PRELOAD`.
    Preload,
    // Config drift: the subject is the setting. On `execve` events, `env` is a variable of
    // the exec's environment; on `container` events (create/start), every subject is a
    // setting of the container's runtime configuration against its image's config and the
    // engine's defaults. `path` names what the setting is about, `detail` says it in words.
    /// An environment variable added or changed from the image's (`path`: its name). At exec,
    /// only variables that change what code runs (`LD_PRELOAD`, `PYTHONPATH`, `PATH` into a
    /// writable directory, ...).
    Env,
    /// `--privileged` (`path`: `privileged`).
    Privileged,
    /// A capability added to the engine's default set (`path`: `CAP_SYS_ADMIN`, ...).
    CapAdd,
    /// A host namespace shared (`path`: `network`, `pid`, `ipc`, `uts` or `userns`).
    HostNamespace,
    /// A host path that gives control of the host mounted in: the engine's socket, `/`,
    /// `/proc`, `/sys`, `/var/run`, `/etc` (`path`: the mount point in the container).
    SensitiveMount,
    /// The root filesystem is writable: no `--read-only` (`path`: `/`).
    WritableRootfs,
    /// The container runs as root (`path`: the configured user, `root` when unset).
    RootUser,
    /// Seccomp filtering disabled: `seccomp=unconfined` (`path`: `seccomp`).
    SeccompUnconfined,
    /// AppArmor confinement disabled: `apparmor=unconfined` (`path`: `apparmor`).
    ApparmorUnconfined,
    /// A bind-mounted secret or configuration file written, created, removed or re-moded
    /// while mounted (`path`: the file inside the container).
    MountedFile,
    /// File drift: a file of the container's filesystem or volumes created, written,
    /// removed, renamed or re-moded (`path`: the file).
    File,
    /// Package drift: a package database changed; `detail` lists the packages added,
    /// removed and changed against the image's database (`path`: the database).
    PackageDb,
    /// Network drift: a socket listening (`path`: `PORT/PROTO`, e.g. `8081/tcp`).
    Listener,
    /// Network drift: an outbound connection (`path`: `IP:PORT/PROTO`, e.g.
    /// `10.0.0.5:5432/tcp`, `[::1]:53/udp`).
    Outbound,
    /// Image drift: the image the container started from, against the approved list
    /// (`path`: the image as configured, `nginx:latest`; `detail`: its digests).
    ImageDigest,
    /// Image drift: a file of an image layer on the host changed after the layer was
    /// unpacked (`path`: the file inside the layer; `detail`: the layer's diff id and
    /// directory and what differs).
    ImageLayer,
}

impl DriftSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftSubject::Exe => "exe",
            DriftSubject::Script => "script",
            DriftSubject::LoaderTarget => "loader_target",
            DriftSubject::Preload => "preload",
            DriftSubject::Env => "env",
            DriftSubject::Privileged => "privileged",
            DriftSubject::CapAdd => "cap_add",
            DriftSubject::HostNamespace => "host_namespace",
            DriftSubject::SensitiveMount => "sensitive_mount",
            DriftSubject::WritableRootfs => "writable_rootfs",
            DriftSubject::RootUser => "root_user",
            DriftSubject::SeccompUnconfined => "seccomp_unconfined",
            DriftSubject::ApparmorUnconfined => "apparmor_unconfined",
            DriftSubject::MountedFile => "mounted_file",
            DriftSubject::File => "file",
            DriftSubject::PackageDb => "package_db",
            DriftSubject::Listener => "listener",
            DriftSubject::Outbound => "outbound",
            DriftSubject::ImageDigest => "image_digest",
            DriftSubject::ImageLayer => "image_layer",
        }
    }

    pub const ALL: [DriftSubject; 20] = [
        DriftSubject::Exe,
        DriftSubject::Script,
        DriftSubject::LoaderTarget,
        DriftSubject::Preload,
        DriftSubject::Env,
        DriftSubject::Privileged,
        DriftSubject::CapAdd,
        DriftSubject::HostNamespace,
        DriftSubject::SensitiveMount,
        DriftSubject::WritableRootfs,
        DriftSubject::RootUser,
        DriftSubject::SeccompUnconfined,
        DriftSubject::ApparmorUnconfined,
        DriftSubject::MountedFile,
        DriftSubject::File,
        DriftSubject::PackageDb,
        DriftSubject::Listener,
        DriftSubject::Outbound,
        DriftSubject::ImageDigest,
        DriftSubject::ImageLayer,
    ];
}

/// Where a file's bytes came from, judged against the container's image.
///
/// Config findings reuse the same words: `added` (a variable, capability, mount or host
/// namespace the image does not have), `modified` (a value changed from the image's, a
/// mounted file written), `deleted` (a mounted file removed), `image` (a weak setting the
/// container inherits unchanged from its image or the engine's defaults: root user, writable
/// root filesystem).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the image's layers, untouched. Not drift.
    Image,
    /// Copied up to the writable layer (touch, chmod) but byte-identical to the image's file.
    /// Not drift: the overlay bit alone would have said "upper".
    CopyUp,
    /// In the writable layer only: the image has no file at this path.
    Added,
    /// In the writable layer, and its content differs from the image's file at this path.
    Modified,
    /// In the writable layer, byte-identical to the image's file, but made executable there:
    /// the image's file had no execute bit and the container's copy has one (`chmod +x`),
    /// and it ran. The content is the image's; what it does is not (a data file, or a library
    /// the image never meant to run).
    Metadata,
    /// An anonymous memory file (`memfd_create`): fileless execution.
    Memfd,
    /// Unlinked before it ran (executed through an open fd).
    Deleted,
    /// On a tmpfs mounted into the container (`/dev/shm`, `--tmpfs`).
    Tmpfs,
    /// On a bind mount or volume: a filesystem that is not the image's.
    Volume,
    /// Could not be judged, and nothing says it is drift: a library named by `LD_PRELOAD`
    /// that does not exist (the loader skips it), a config value the engine did not report.
    Unknown,
    /// The writable layer holds this file, the image has one at the same place, and the
    /// agent could not tell whether they are the same: the file was renamed or removed right
    /// after exec, its path named another file than the one the kernel ran, it could not be
    /// read, or the container's layers are unknown. Reported (a Warning), never accepted
    /// silently: a container could otherwise choose to be unjudgeable.
    Unjudged,
    /// Network: listening on a port the image does not declare (`ExposedPorts`) and no
    /// baseline allows.
    UndeclaredPort,
    /// Network: an outbound destination not in the image's learned baseline.
    NewDestination,
    /// Image: the image's digests are not in the approved list.
    Unapproved,
    /// Image: started from a tag (`:latest`, or any tag without `@sha256:`), which can
    /// point to other content tomorrow.
    MutableTag,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Image => "image",
            Verdict::CopyUp => "copy_up",
            Verdict::Added => "added",
            Verdict::Modified => "modified",
            Verdict::Metadata => "metadata",
            Verdict::Memfd => "memfd",
            Verdict::Deleted => "deleted",
            Verdict::Tmpfs => "tmpfs",
            Verdict::Volume => "volume",
            Verdict::Unknown => "unknown",
            Verdict::Unjudged => "unjudged",
            Verdict::UndeclaredPort => "undeclared_port",
            Verdict::NewDestination => "new_destination",
            Verdict::Unapproved => "unapproved",
            Verdict::MutableTag => "mutable_tag",
        }
    }

    /// True when the code did not come from the image, or could not be shown to (`unjudged`:
    /// prevention refuses it, detection warns).
    pub fn is_drift(self) -> bool {
        !matches!(self, Verdict::Image | Verdict::CopyUp | Verdict::Unknown)
    }

    pub const ALL: [Verdict; 15] = [
        Verdict::Image,
        Verdict::CopyUp,
        Verdict::Added,
        Verdict::Modified,
        Verdict::Metadata,
        Verdict::Memfd,
        Verdict::Deleted,
        Verdict::Tmpfs,
        Verdict::Volume,
        Verdict::Unknown,
        Verdict::Unjudged,
        Verdict::UndeclaredPort,
        Verdict::NewDestination,
        Verdict::Unapproved,
        Verdict::MutableTag,
    ];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judged piece of an event: "the script /tmp/s.sh was added at runtime".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFinding {
    pub kind: DriftKind,
    pub subject: DriftSubject,
    pub verdict: Verdict,
    /// The path inside the container of the file judged; for config findings, what the
    /// setting names (a variable, a capability, a namespace, a mount point; see
    /// [`DriftSubject`]).
    pub path: String,
    /// blake3 of the drifted file's content, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// blake3 of the image's file at the same path (for `modified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_hash: Option<String>,
    /// What changed, in words (packages and versions, a setting and its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What enforcement did about it (binary drift; `None` for the other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// Where the file came from (layer, package), filled when the finding is reported.
    #[serde(flatten, default)]
    pub provenance: Provenance,
}

/// Where a judged file came from: the image layer that has it and the package that owns it.
/// Each part is absent when unknown (no image file at the path, no package database, or a
/// file no package lists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The diff id (`sha256:...`) of the topmost image layer that has the file at this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The package that owns the path (for a new file: the package that installed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    /// `dpkg`, `apk` or `rpm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_ecosystem: Option<String>,
    /// The file against the package manager's own digest of it: `match`, `mismatch`
    /// ("modified against the package", whatever the layers say) or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_digest: Option<String>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        *self == Provenance::default()
    }
}

/// The enforcement mode of a container's scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementMode {
    /// Alert only.
    #[default]
    Detect,
    /// Stop drifted code before it runs.
    Prevent,
}

impl EnforcementMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementMode::Detect => "detect",
            EnforcementMode::Prevent => "prevent",
        }
    }
}

/// What happened to a drifted exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementAction {
    /// Detect mode: it ran, and this is the alert.
    Alerted,
    /// Prevented before its first instruction (EPERM, or killed while held at exec).
    Blocked,
    /// It had started when the agent learnt of it (a path the kernel could not stop in
    /// time): killed by the agent as soon as it was judged.
    Killed,
    /// Prevent mode, but stopping it failed (the process was gone, or the signal failed).
    Failed,
}

impl EnforcementAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Alerted => "alerted",
            EnforcementAction::Blocked => "blocked",
            EnforcementAction::Killed => "killed",
            EnforcementAction::Failed => "failed",
        }
    }
}

/// Which mechanism stopped a drifted exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementMechanism {
    /// fanotify exec permission answered with deny: the exec failed with EPERM.
    FanotifyDeny,
    /// The exec BPF program sent SIGKILL at exec (memfd), before the first instruction.
    BpfSigkill,
    /// The exec BPF program held the new image with SIGSTOP at exec; the agent judged it
    /// and sent SIGKILL before its first instruction ran.
    BpfHold,
    /// The agent sent SIGKILL after the exec (it had started running).
    AgentSigkill,
}

impl EnforcementMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementMechanism::FanotifyDeny => "fanotify_deny",
            EnforcementMechanism::BpfSigkill => "bpf_sigkill",
            EnforcementMechanism::BpfHold => "bpf_hold",
            EnforcementMechanism::AgentSigkill => "agent_sigkill",
        }
    }
}

/// What enforcement did about one drifted exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Enforcement {
    pub mode: EnforcementMode,
    pub action: EnforcementAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<EnforcementMechanism>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_code_is_drift() {
        let drift: Vec<_> = Verdict::ALL
            .iter()
            .filter(|v| v.is_drift())
            .map(|v| v.as_str())
            .collect();
        assert_eq!(
            drift,
            [
                "added",
                "modified",
                "metadata",
                "memfd",
                "deleted",
                "tmpfs",
                "volume",
                "unjudged",
                "undeclared_port",
                "new_destination",
                "unapproved",
                "mutable_tag"
            ]
        );
    }

    #[test]
    fn subject_serde_names_match_as_str() {
        for s in DriftSubject::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn serde_names_match_as_str() {
        for v in Verdict::ALL {
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
    }
}
