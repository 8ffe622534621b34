//! A container's [`RuntimeConfig`] read from its OCI runtime spec (`config.json`), for the
//! engines that keep no higher-level record of what was asked (containerd, the CRI plugin,
//! CRI-O): the spec is what runc was told, so it is what the container runs with.
//!
//! Pure: the spec's JSON in, a [`RuntimeConfig`] out, so it is tested on specs recorded from
//! real engines (`tests/fixtures/oci/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::runtime_config::{MountSpec, RuntimeConfig};

/// The parts of an OCI runtime spec a record takes. Unknown fields are ignored: the spec
/// grows with every runtime-spec release.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciSpec {
    #[serde(default)]
    pub process: OciProcess,
    #[serde(default)]
    pub root: Option<OciRoot>,
    #[serde(default)]
    pub mounts: Vec<OciMount>,
    #[serde(default)]
    pub linux: Option<OciLinux>,
    /// Written by whoever created the container (the CRI plugin's `io.kubernetes.cri.*`),
    /// never by an image.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciProcess {
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub user: OciUser,
    #[serde(default)]
    pub capabilities: Option<OciCapabilities>,
    #[serde(default, rename = "apparmorProfile")]
    pub apparmor_profile: Option<String>,
    #[serde(default, rename = "selinuxLabel")]
    pub selinux_label: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciUser {
    #[serde(default)]
    pub uid: u32,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciCapabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciRoot {
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciMount {
    pub destination: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciLinux {
    #[serde(default)]
    pub namespaces: Vec<OciNamespace>,
    #[serde(default, rename = "maskedPaths")]
    pub masked_paths: Vec<String>,
    #[serde(default, rename = "readonlyPaths")]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    #[serde(default)]
    pub resources: Option<OciResources>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciNamespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciResources {
    #[serde(default)]
    pub devices: Vec<OciDeviceRule>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OciDeviceRule {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub access: Option<String>,
}

/// The capabilities an engine gives a container that asks for none: what the spec's bounding
/// set is compared with to tell added and dropped ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultCaps {
    /// Docker's and containerd's (moby `oci/caps/defaults.go`, containerd
    /// `oci.populateDefaultUnixSpec`): the same 14.
    Containerd,
    /// CRI-O's `default_capabilities` since 1.18 (`internal/config/capabilities`): 9; a node
    /// that configures another set shows the difference as added or dropped.
    Crio,
}

const CONTAINERD_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const CRIO_DEFAULT_CAPS: [&str; 9] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_KILL",
];

/// Mount points the engine or the kubelet fills for every container: not the user's volumes.
/// Their sharing with the host is what the namespace modes already say (`/dev/shm` of
/// `--ipc host`).
const ENGINE_MOUNT_POINTS: [&str; 5] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/dev/termination-log",
    "/dev/shm",
];

/// Where the kubelet keeps a pod's volumes (emptyDir, configMap, secret, projected, ...): not
/// host paths the pod spec chose, so they are `volume`s, as Docker's named volumes are.
const KUBELET_PODS: &str = "/var/lib/kubelet/pods/";
/// Docker's named volumes, for moby-namespace containers read through containerd.
const DOCKER_VOLUMES: &str = "/var/lib/docker/volumes/";
/// The service-account token the kubelet mounts into every pod that does not opt out.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

impl OciSpec {
    /// Parses a spec's JSON; the error is serde's (line and column of the spec).
    pub fn parse(json: &[u8]) -> Result<OciSpec, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// What the container runs with, as [`RuntimeConfig`] says it (the image's config and
    /// reference are left for the caller).
    ///
    /// `privileged` is `Some` when the engine says so itself (CRI-O's verbose status); else it
    /// is inferred from what every engine's privileged mode does and nothing else does at
    /// once: no path is masked or read-only, the device cgroup allows every device (an `allow`
    /// rule with no type, major or minor) and the bounding set holds `CAP_SYS_ADMIN`. Not
    /// "every capability": containerd gives a privileged container the capabilities it has
    /// itself (`WithAllCurrentCapabilities`), fewer when it runs confined. An unprivileged
    /// container with `--cap-add ALL` keeps its masked paths and device rules.
    pub fn runtime_config(&self, defaults: DefaultCaps, privileged: Option<bool>) -> RuntimeConfig {
        let linux = self.linux.clone().unwrap_or_default();
        let bounding: Vec<String> = self
            .process
            .capabilities
            .as_ref()
            .map(|c| c.bounding.iter().map(|s| s.to_ascii_uppercase()).collect())
            .unwrap_or_default();
        let all_devices = linux.resources.as_ref().is_some_and(|r| {
            r.devices.iter().any(|d| {
                d.allow
                    && d.kind.as_deref().is_none_or(|t| t == "a")
                    && d.major.is_none()
                    && d.minor.is_none()
            })
        });
        let privileged = privileged.unwrap_or_else(|| {
            bounding.iter().any(|b| b == "CAP_SYS_ADMIN")
                && linux.masked_paths.is_empty()
                && linux.readonly_paths.is_empty()
                && all_devices
        });
        let default_caps: &[&str] = match defaults {
            DefaultCaps::Containerd => &CONTAINERD_DEFAULT_CAPS,
            DefaultCaps::Crio => &CRIO_DEFAULT_CAPS,
        };
        // A privileged container's capabilities are all of them: Docker records no cap_add
        // for `--privileged` either, and the finding is `privileged`.
        let (cap_add, cap_drop) = if privileged {
            (Vec::new(), Vec::new())
        } else {
            let mut add: Vec<String> = bounding
                .iter()
                .filter(|c| !default_caps.contains(&c.as_str()))
                .cloned()
                .collect();
            add.sort();
            add.dedup();
            let drop = default_caps
                .iter()
                .filter(|c| !bounding.iter().any(|b| b == *c))
                .map(|c| c.to_string())
                .collect();
            (add, drop)
        };
        let mode = |kind: &str| -> String {
            match linux.namespaces.iter().find(|n| n.kind == kind) {
                None => "host".into(),
                Some(OciNamespace { path: Some(p), .. }) if !p.is_empty() => {
                    format!("container:{p}")
                }
                Some(_) => "private".into(),
            }
        };
        let userns_mode = match linux.namespaces.iter().find(|n| n.kind == "user") {
            Some(_) => "private".into(),
            None => String::new(),
        };
        let mut security_opt = Vec::new();
        if linux.seccomp.is_none() {
            security_opt.push("seccomp=unconfined".to_string());
        }
        if let Some(p) = self
            .process
            .apparmor_profile
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            security_opt.push(format!("apparmor={p}"));
        }
        if let Some(l) = self
            .process
            .selinux_label
            .as_deref()
            .filter(|l| !l.is_empty())
        {
            security_opt.push(format!("label={l}"));
        }
        RuntimeConfig {
            privileged,
            cap_add,
            cap_drop,
            network_mode: mode("network"),
            pid_mode: mode("pid"),
            ipc_mode: mode("ipc"),
            uts_mode: mode("uts"),
            userns_mode,
            mounts: self.mounts.iter().filter_map(user_mount).collect(),
            readonly_rootfs: self.root.as_ref().is_some_and(|r| r.readonly),
            user: self.process.user.uid.to_string(),
            security_opt,
            image: None,
            image_reference: String::new(),
        }
    }
}

impl OciSpec {
    /// The mounts [`RuntimeConfig::mounts`] keeps (volumes and bind mounts the creator asked
    /// for), as Falco's `container.mount[...]` shows them: propagation from the options
    /// (`rprivate`, `rshared`, ...), no mode (the spec keeps no engine mode string).
    pub fn model_mounts(&self) -> Vec<driftwatch_model::Mount> {
        const PROPAGATIONS: [&str; 6] = [
            "rprivate", "private", "rshared", "shared", "rslave", "slave",
        ];
        self.mounts
            .iter()
            .filter_map(|m| {
                let spec = user_mount(m)?;
                Some(driftwatch_model::Mount {
                    source: spec.source.to_string_lossy().into_owned(),
                    dest: m.destination.clone(),
                    mode: String::new(),
                    rw: spec.rw,
                    propagation: m
                        .options
                        .iter()
                        .find(|o| PROPAGATIONS.contains(&o.as_str()))
                        .cloned()
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// A bind mount the container's creator asked for (a hostPath, a `-v`), or a pod volume;
/// `None` for the engine's own mounts and for non-bind filesystems (proc, sysfs, tmpfs, ...).
fn user_mount(m: &OciMount) -> Option<MountSpec> {
    let bind =
        m.kind.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind");
    let source = m.source.as_deref().filter(|s| s.starts_with('/'))?;
    if !bind || ENGINE_MOUNT_POINTS.contains(&m.destination.as_str()) {
        return None;
    }
    if m.destination == SERVICE_ACCOUNT_DIR && source.starts_with(KUBELET_PODS) {
        return None;
    }
    let kind = if source.starts_with(KUBELET_PODS) || source.starts_with(DOCKER_VOLUMES) {
        "volume"
    } else {
        "bind"
    };
    Some(MountSpec {
        kind: kind.into(),
        source: PathBuf::from(source),
        destination: Path::new(&m.destination).to_path_buf(),
        rw: !m.options.iter().any(|o| o == "ro"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> OciSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/oci")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        OciSpec::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_plain_docker_container_is_the_engine_default() {
        let c = fixture("docker-20.10-plain.json").runtime_config(DefaultCaps::Containerd, None);
        assert!(!c.privileged);
        assert!(c.cap_add.is_empty() && c.cap_drop.is_empty(), "{c:?}");
        assert!(c.host_namespaces().is_empty(), "{c:?}");
        // /etc/hosts & co. are Docker's own, not volumes.
        assert!(c.mounts.is_empty(), "{:?}", c.mounts);
        assert!(!c.readonly_rootfs);
        assert_eq!(c.user, "0");
        assert!(c.security_opt.is_empty(), "{:?}", c.security_opt);
    }

    #[test]
    fn a_privileged_docker_container_is_inferred_privileged() {
        let c = fixture("docker-20.10-priv.json").runtime_config(DefaultCaps::Containerd, None);
        assert!(c.privileged);
        assert!(c.cap_add.is_empty());
        assert_eq!(c.host_namespaces(), ["pid"]);
        assert!(c.readonly_rootfs);
        assert_eq!(c.user, "1000");
        assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
        assert_eq!(
            c.mounts,
            [MountSpec {
                kind: "bind".into(),
                source: "/tmp/cri-rec".into(),
                destination: "/data".into(),
                rw: false,
            }]
        );
    }

    #[test]
    fn added_and_dropped_capabilities_and_host_namespaces() {
        let c = fixture("docker-20.10-caps.json").runtime_config(DefaultCaps::Containerd, None);
        assert!(!c.privileged);
        assert_eq!(c.cap_add, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
        assert_eq!(c.cap_drop, ["CAP_CHOWN"]);
        assert_eq!(c.added_capabilities(), ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
        assert_eq!(c.host_namespaces(), ["ipc", "uts"]);
        // `--ipc host`'s /dev/shm bind is the ipc mode, not a volume.
        assert_eq!(c.mounts.len(), 1, "{:?}", c.mounts);
        assert!(c.mounts[0].rw);
        // The same spec judged against CRI-O's smaller default set: more is added.
        let crio = fixture("docker-20.10-caps.json").runtime_config(DefaultCaps::Crio, None);
        assert!(
            crio.cap_add.contains(&"CAP_MKNOD".to_string()),
            "{:?}",
            crio.cap_add
        );
    }

    #[test]
    fn containers_of_a_cri_pod_recorded_from_containerd() {
        let spec = fixture("containerd-1.6-cri-hostnetwork-app.json");
        let c = spec.runtime_config(DefaultCaps::Containerd, None);
        assert!(!c.privileged);
        assert_eq!(c.cap_add, ["CAP_NET_ADMIN"]);
        assert!(c.cap_drop.is_empty());
        assert!(c.readonly_rootfs);
        assert_eq!(c.user, "1000");
        // The pod asked for no seccomp profile (the kubelet's `Unconfined`).
        assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
        assert_eq!(c.security_opt("apparmor"), None);
        // Only the hostPath: the CRI plugin's and the kubelet's own mounts (hosts, hostname,
        // resolv.conf, termination log, the sandbox's shm) are not volumes.
        assert_eq!(
            c.mounts,
            [MountSpec {
                kind: "bind".into(),
                source: "/tmp/.tmpm1FJSE".into(),
                destination: "/host/data".into(),
                rw: false,
            }]
        );
        // The pod is on the host network, but containerd joins the sandbox's namespaces by
        // path even then: the spec alone shows none of the host's (the sandbox's status does,
        // see `cri::host_namespaces_of_sandbox`).
        assert!(
            c.network_mode.starts_with("container:/proc/"),
            "{}",
            c.network_mode
        );
        assert!(c.host_namespaces().is_empty(), "{c:?}");
        assert_eq!(spec.annotations["io.kubernetes.cri.sandbox-name"], "web-0");

        // Privileged, from a containerd without CAP_SYS_RESOURCE: it gives what it has.
        let spec = fixture("containerd-1.6-cri-hostnetwork-agent.json");
        let bounding = &spec.process.capabilities.as_ref().unwrap().bounding;
        assert!(!bounding.iter().any(|b| b == "CAP_SYS_RESOURCE"));
        let c = spec.runtime_config(DefaultCaps::Containerd, None);
        assert!(c.privileged);
        assert!(c.cap_add.is_empty() && c.mounts.is_empty(), "{c:?}");
    }

    /// Falco's `container.mount[...]` from a spec: the creator's volumes with their
    /// propagation, not the engine's own files.
    #[test]
    fn model_mounts_are_the_creators_volumes() {
        let m = fixture("containerd-1.6-cri-hostnetwork-app.json").model_mounts();
        assert_eq!(
            m,
            [driftwatch_model::Mount {
                source: "/tmp/.tmpm1FJSE".into(),
                dest: "/host/data".into(),
                mode: String::new(),
                rw: false,
                propagation: "rprivate".into(),
            }]
        );
        let m = fixture("docker-20.10-caps.json").model_mounts();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].dest.as_str(), m[0].rw), ("/data", true));
    }

    #[test]
    fn an_almost_empty_spec_is_judged_not_guessed() {
        let c = OciSpec::parse(br#"{"ociVersion":"1.0.2"}"#)
            .unwrap()
            .runtime_config(DefaultCaps::Containerd, None);
        // No namespaces listed at all: the runtime would share all of the host's.
        assert_eq!(c.host_namespaces(), ["network", "pid", "ipc", "uts"]);
        assert!(
            !c.privileged,
            "no device rule allows all: not inferred privileged"
        );
        assert_eq!(c.cap_drop.len(), CONTAINERD_DEFAULT_CAPS.len());
        // The engine's own word wins.
        let c = OciSpec::default().runtime_config(DefaultCaps::Crio, Some(true));
        assert!(c.privileged);
        assert!(OciSpec::parse(b"{\"mounts\": 3}").is_err());
    }
}
