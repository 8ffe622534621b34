//! A container's security-relevant runtime configuration as its engine records it (privileges,
//! capabilities, namespaces, mounts, user, root filesystem, security options) next to what its
//! image's config says (environment, user): the facts config-drift checks compare. Data only;
//! the checks live in the agent (`config_drift`).

use std::path::PathBuf;

/// What the engine says a container runs with, beyond identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `--privileged`.
    pub privileged: bool,
    /// Capabilities added to the engine's default set, as the engine spells them
    /// (`CAP_SYS_ADMIN` or `SYS_ADMIN`, `ALL`); see [`RuntimeConfig::added_capabilities`].
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Namespace modes: `host`, `container:<id>`, `private`, `""` (engine default), ...
    pub network_mode: String,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub userns_mode: String,
    /// Volumes and bind mounts (not the engine's own `/etc/hosts` & co.).
    pub mounts: Vec<MountSpec>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `Config.User` as configured (`""` = the image's user, or root when the image has none).
    pub user: String,
    /// `--security-opt` values: `seccomp=unconfined`, `apparmor=unconfined`, `label=disable`, ...
    pub security_opt: Vec<String>,
    /// The image's own config, when the image could be inspected (`None`: it was removed, or
    /// the engine did not say).
    pub image: Option<ImageConfig>,
    /// The image as the container was created with it (`Config.Image`): `nginx:1.27`,
    /// `nginx`, `repo@sha256:...`, or an image id.
    pub image_reference: String,
}

/// The parts of an image's config that decide what its containers run with by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `ENV`, as `KEY=value`.
    pub env: Vec<String>,
    /// `USER` (`""` when the image sets none: root).
    pub user: String,
    /// `RepoDigests`: `repo@sha256:...` of the registries the image was pulled from or
    /// pushed to (empty for an image only built or loaded locally).
    pub repo_digests: Vec<String>,
    /// `RootFS.Layers`: each layer's diff id (sha256 of its uncompressed tar), bottom first.
    pub diff_ids: Vec<String>,
}

/// One volume or bind mount of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// `bind`, `volume`, `tmpfs`, `npipe`, ...
    pub kind: String,
    /// The host path (for a named volume, its directory on the host).
    pub source: PathBuf,
    /// Where it is mounted in the container.
    pub destination: PathBuf,
    pub rw: bool,
}

/// Linux namespaces a container can share with the host.
pub const HOST_NAMESPACES: [&str; 5] = ["network", "pid", "ipc", "uts", "userns"];

impl RuntimeConfig {
    /// The namespaces shared with the host (`network`, `pid`, `ipc`, `uts`, `userns`).
    pub fn host_namespaces(&self) -> Vec<&'static str> {
        let modes = [
            &self.network_mode,
            &self.pid_mode,
            &self.ipc_mode,
            &self.uts_mode,
            &self.userns_mode,
        ];
        HOST_NAMESPACES
            .iter()
            .zip(modes)
            .filter(|(_, m)| m.as_str() == "host")
            .map(|(n, _)| *n)
            .collect()
    }

    /// Added capabilities, normalized to `CAP_X` upper case (Docker accepts `sys_admin`,
    /// `SYS_ADMIN` and `CAP_SYS_ADMIN`; 20.10 stores what was typed, newer ones `CAP_`),
    /// without those also dropped, sorted and deduplicated.
    pub fn added_capabilities(&self) -> Vec<String> {
        let norm = |c: &String| {
            let up = c.trim().to_ascii_uppercase();
            if up == "ALL" || up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            }
        };
        let dropped: Vec<String> = self.cap_drop.iter().map(norm).collect();
        let mut caps: Vec<String> = self
            .cap_add
            .iter()
            .map(norm)
            .filter(|c| !c.is_empty() && c != "CAP_" && !dropped.contains(c))
            .collect();
        caps.sort();
        caps.dedup();
        caps
    }

    /// The value of a `--security-opt` key (`seccomp`, `apparmor`), accepting Docker's old
    /// `key:value` spelling too.
    pub fn security_opt(&self, key: &str) -> Option<&str> {
        self.security_opt.iter().find_map(|o| {
            let rest = o.strip_prefix(key)?;
            rest.strip_prefix('=').or_else(|| rest.strip_prefix(':'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_namespaces_are_the_host_modes() {
        let c = RuntimeConfig {
            network_mode: "none".into(),
            pid_mode: "host".into(),
            ipc_mode: "private".into(),
            uts_mode: "host".into(),
            userns_mode: String::new(),
            ..Default::default()
        };
        assert_eq!(c.host_namespaces(), ["pid", "uts"]);
        assert!(RuntimeConfig::default().host_namespaces().is_empty());
    }

    #[test]
    fn capabilities_are_normalized() {
        let c = RuntimeConfig {
            cap_add: vec![
                "sys_admin".into(),
                "CAP_SYS_ADMIN".into(),
                "NET_RAW".into(),
                "SYS_PTRACE".into(),
            ],
            cap_drop: vec!["CAP_NET_RAW".into()],
            ..Default::default()
        };
        assert_eq!(c.added_capabilities(), ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]);
    }

    #[test]
    fn security_options_both_spellings() {
        let c = RuntimeConfig {
            security_opt: vec![
                "seccomp:unconfined".into(),
                "apparmor=docker-default".into(),
            ],
            ..Default::default()
        };
        assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
        assert_eq!(c.security_opt("apparmor"), Some("docker-default"));
        assert_eq!(c.security_opt("label"), None);
    }
}
