//! Pods and containers as the kubelet describes them to a CRI runtime
//! (`pkg/kubelet/kuberuntime`: `generatePodSandboxConfig`, `generateContainerConfig`), and
//! the running pods of a [`CriNode`](crate::CriNode).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_cri::v1 as cri;

use crate::cri_client::CriClient;
use crate::docker::{BUSYBOX, DEBIAN};

/// The pods' "cluster DNS", in their own subnet: a lookup would stay on the node's bridge.
const CLUSTER_DNS: &str = "198.18.0.10";
/// The variables of the `kubernetes` Service the kubelet puts in every container, with the
/// Service's address in the pods' subnet too.
const KUBERNETES_SERVICE_ENV: &[(&str, &str)] = &[
    ("KUBERNETES_SERVICE_HOST", "198.18.0.1"),
    ("KUBERNETES_SERVICE_PORT", "443"),
    ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
    ("KUBERNETES_PORT", "tcp://198.18.0.1:443"),
    ("KUBERNETES_PORT_443_TCP", "tcp://198.18.0.1:443"),
    ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
    ("KUBERNETES_PORT_443_TCP_PORT", "443"),
    ("KUBERNETES_PORT_443_TCP_ADDR", "198.18.0.1"),
];

/// What kubelet masks and makes read-only in a container that is not privileged
/// (`pkg/securitycontext`: `defaultMaskedPaths`, `defaultReadonlyPaths`): the CRI plugin
/// applies none of its own when given none.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A pod as the kubelet describes it to the runtime: metadata, labels, annotations, host
/// namespaces, declared ports and its containers.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// `containerPort`s (TCP, no host port): pod metadata only, no `portmap` acts on them.
    pub ports: Vec<u16>,
    pub containers: Vec<ContainerSpec>,
}

impl PodSpec {
    pub fn new(name: &str, namespace: &str) -> PodSpec {
        PodSpec {
            name: name.into(),
            namespace: namespace.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            host_network: false,
            host_pid: false,
            host_ipc: false,
            ports: Vec::new(),
            containers: Vec::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> PodSpec {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> PodSpec {
        self.annotations.insert(key.into(), value.into());
        self
    }

    pub fn host_network(mut self) -> PodSpec {
        self.host_network = true;
        self
    }

    pub fn host_pid(mut self) -> PodSpec {
        self.host_pid = true;
        self
    }

    pub fn host_ipc(mut self) -> PodSpec {
        self.host_ipc = true;
        self
    }

    pub fn port(mut self, container_port: u16) -> PodSpec {
        self.ports.push(container_port);
        self
    }

    pub fn container(mut self, c: ContainerSpec) -> PodSpec {
        self.containers.push(c);
        self
    }

    fn namespaces(&self) -> cri::NamespaceOption {
        let mode = |host: bool, own: cri::NamespaceMode| {
            (if host { cri::NamespaceMode::Node } else { own }) as i32
        };
        cri::NamespaceOption {
            network: mode(self.host_network, cri::NamespaceMode::Pod),
            pid: mode(self.host_pid, cri::NamespaceMode::Container),
            ipc: mode(self.host_ipc, cri::NamespaceMode::Pod),
            ..Default::default()
        }
    }

    /// `newPodLabels`: the pod's labels and the kubelet's own three.
    fn sandbox_labels(&self, uid: &str) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert("io.kubernetes.pod.name".into(), self.name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), self.namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), uid.into());
        labels
    }

    pub(crate) fn sandbox_config(
        &self,
        uid: &str,
        cgroup_parent: &str,
        log_dir: &Path,
    ) -> cri::PodSandboxConfig {
        let mut annotations: HashMap<String, String> = self
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.insert("kubernetes.io/config.source".into(), "api".into());
        annotations.insert(
            "kubernetes.io/config.seen".into(),
            "2026-01-01T00:00:00Z".into(),
        );
        // A host-network pod takes the node's resolv.conf and hostname.
        let (dns, hostname) = if self.host_network {
            (None, String::new())
        } else {
            let ns = &self.namespace;
            (
                Some(cri::DnsConfig {
                    servers: vec![CLUSTER_DNS.into()],
                    searches: vec![
                        format!("{ns}.svc.cluster.local"),
                        "svc.cluster.local".into(),
                        "cluster.local".into(),
                    ],
                    options: vec!["ndots:5".into()],
                }),
                self.name.clone(),
            )
        };
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: uid.into(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname,
            log_directory: log_dir.to_string_lossy().into_owned(),
            dns_config: dns,
            port_mappings: self
                .ports
                .iter()
                .map(|p| cri::PortMapping {
                    protocol: cri::Protocol::Tcp as i32,
                    container_port: i32::from(*p),
                    host_port: 0,
                    host_ip: String::new(),
                })
                .collect(),
            labels: self.sandbox_labels(uid),
            annotations,
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.into(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespaces()),
                    privileged: self.containers.iter().any(|c| c.privileged),
                    seccomp: Some(cri::SecurityProfile {
                        profile_type: cri::security_profile::ProfileType::Unconfined as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// A container of a pod as the kubelet describes it: image, command, security context,
/// volumes.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    pub name: String,
    /// A name of the host's dockerd, imported into the node ([`CriNode::start`]).
    pub image: String,
    /// The pod spec's `command` (the image's entrypoint when empty).
    pub command: Vec<String>,
    pub privileged: bool,
    pub add_capabilities: Vec<String>,
    pub readonly_rootfs: bool,
    pub run_as_user: Option<i64>,
    /// hostPath volumes: (path on the host, path in the container, read-only).
    pub host_paths: Vec<(PathBuf, String, bool)>,
    /// emptyDir volumes: (volume name, path in the container).
    pub empty_dirs: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    /// `seccompProfile: RuntimeDefault`; otherwise `Unconfined`, what the kubelet sends
    /// for a pod that names no profile (unless its `seccompDefault` is on).
    pub seccomp_runtime_default: bool,
}

impl ContainerSpec {
    pub fn new(name: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            command: Vec::new(),
            privileged: false,
            add_capabilities: Vec::new(),
            readonly_rootfs: false,
            run_as_user: None,
            host_paths: Vec::new(),
            empty_dirs: Vec::new(),
            env: Vec::new(),
            seccomp_runtime_default: false,
        }
    }

    /// A container of [`DEBIAN`] that sleeps: what most tests drift in.
    pub fn debian(name: &str) -> ContainerSpec {
        ContainerSpec::new(name, DEBIAN).command(&["sleep", "infinity"])
    }

    /// A container of [`BUSYBOX`] that sleeps.
    pub fn busybox(name: &str) -> ContainerSpec {
        ContainerSpec::new(name, BUSYBOX).command(&["sleep", "3600"])
    }

    pub fn command(mut self, argv: &[&str]) -> ContainerSpec {
        self.command = argv.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn privileged(mut self) -> ContainerSpec {
        self.privileged = true;
        self
    }

    /// `securityContext.capabilities.add`, e.g. `NET_ADMIN` (the kubelet passes the names as
    /// written; the CRI plugin adds the `CAP_` prefix).
    pub fn add_capability(mut self, cap: &str) -> ContainerSpec {
        self.add_capabilities.push(cap.into());
        self
    }

    pub fn readonly_rootfs(mut self) -> ContainerSpec {
        self.readonly_rootfs = true;
        self
    }

    pub fn run_as_user(mut self, uid: i64) -> ContainerSpec {
        self.run_as_user = Some(uid);
        self
    }

    pub fn host_path(mut self, host: &Path, container: &str, readonly: bool) -> ContainerSpec {
        self.host_paths
            .push((host.to_path_buf(), container.into(), readonly));
        self
    }

    pub fn empty_dir(mut self, volume: &str, container: &str) -> ContainerSpec {
        self.empty_dirs.push((volume.into(), container.into()));
        self
    }

    pub fn seccomp_runtime_default(mut self) -> ContainerSpec {
        self.seccomp_runtime_default = true;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> ContainerSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    fn mount(host: &Path, container: &str, readonly: bool) -> cri::Mount {
        cri::Mount {
            container_path: container.into(),
            host_path: host.to_string_lossy().into_owned(),
            readonly,
            ..Default::default()
        }
    }

    /// `generateContainerConfig`, for a pod that never restarted.
    pub(crate) fn config(
        &self,
        pod: &PodSpec,
        uid: &str,
        pod_dir: &Path,
        hosts: &Path,
        image: &str,
        image_id: &str,
    ) -> cri::ContainerConfig {
        // Volumes (the kubelet's emptyDir lives in the pod's directory), then /etc/hosts
        // (not in a host-network pod) and the termination log, as `makeMounts` orders them.
        let mut mounts: Vec<cri::Mount> = self
            .host_paths
            .iter()
            .map(|(h, c, ro)| Self::mount(h, c, *ro))
            .collect();
        for (volume, path) in &self.empty_dirs {
            let host = pod_dir.join("volumes/kubernetes.io~empty-dir").join(volume);
            fs::create_dir_all(&host).expect("the emptyDir volume");
            mounts.push(Self::mount(&host, path, false));
        }
        if !pod.host_network {
            mounts.push(Self::mount(hosts, "/etc/hosts", false));
        }
        let termination = pod_dir.join("containers").join(&self.name);
        fs::create_dir_all(&termination).expect("the termination log's directory");
        let termination = termination.join("0a1b2c3d");
        fs::write(&termination, "").expect("the termination log");
        mounts.push(Self::mount(&termination, "/dev/termination-log", false));

        let labels = [
            ("io.kubernetes.container.name", self.name.as_str()),
            ("io.kubernetes.pod.name", pod.name.as_str()),
            ("io.kubernetes.pod.namespace", pod.namespace.as_str()),
            ("io.kubernetes.pod.uid", uid),
        ];
        let annotations = [
            ("io.kubernetes.container.hash", "5d3f2b1a"),
            ("io.kubernetes.container.restartCount", "0"),
            (
                "io.kubernetes.container.terminationMessagePath",
                "/dev/termination-log",
            ),
            ("io.kubernetes.container.terminationMessagePolicy", "File"),
            ("io.kubernetes.pod.terminationGracePeriod", "30"),
        ];
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let (masked, readonly) = if self.privileged {
            (Vec::new(), Vec::new())
        } else {
            (
                MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
                READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            )
        };
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: self.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image_id.into(),
                user_specified_image: image.into(),
                ..Default::default()
            }),
            command: self.command.clone(),
            // The container's own, then the `kubernetes` Service's that the kubelet gives
            // every container (`makeEnvironmentVariables`).
            envs: self
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(KUBERNETES_SERVICE_ENV.iter().copied())
                .map(|(k, v)| cri::KeyValue {
                    key: k.into(),
                    value: v.into(),
                })
                .collect(),
            mounts,
            labels: map(&labels),
            annotations: map(&annotations),
            log_path: format!("{}/0.log", self.name),
            linux: Some(cri::LinuxContainerConfig {
                // A BestEffort pod's container.
                resources: Some(cri::LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_shares: 2,
                    oom_score_adj: 1000,
                    ..Default::default()
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    capabilities: Some(cri::Capability {
                        add_capabilities: self.add_capabilities.clone(),
                        ..Default::default()
                    }),
                    privileged: self.privileged,
                    namespace_options: Some(pod.namespaces()),
                    run_as_user: self.run_as_user.map(|value| cri::Int64Value { value }),
                    readonly_rootfs: self.readonly_rootfs,
                    masked_paths: masked,
                    readonly_paths: readonly,
                    seccomp: Some(cri::SecurityProfile {
                        profile_type: if self.seccomp_runtime_default {
                            cri::security_profile::ProfileType::RuntimeDefault
                        } else {
                            cri::security_profile::ProfileType::Unconfined
                        } as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }
}

/// A running pod of a [`CriNode`]: its sandbox is stopped and removed (with its containers)
/// when dropped.
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub sandbox_id: String,
    /// `/kubepods/besteffort/pod<uid>`.
    pub cgroup_parent: String,
    pub containers: Vec<PodContainer>,
    pub(crate) cri: Arc<CriClient>,
}

impl Pod {
    /// The container called `name`.
    pub fn container(&self, name: &str) -> &PodContainer {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("pod {} has no container {name}", self.name))
    }

    /// The pod's first (often only) container.
    pub fn first(&self) -> &PodContainer {
        self.containers
            .first()
            .unwrap_or_else(|| panic!("pod {} has no containers", self.name))
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.cri.remove_sandbox(&self.sandbox_id);
    }
}

/// A container of a [`Pod`], reached through CRI.
pub struct PodContainer {
    pub name: String,
    /// The 64-hex id containerd gave it (its cgroup's name).
    pub id: String,
    /// When `StartContainer` returned: where a latency to the container's first alert
    /// (whose `time` is wall-clock) starts.
    pub started: std::time::SystemTime,
    pub(crate) cri: Arc<CriClient>,
}

impl PodContainer {
    /// The 12-character id alerts carry in `container.id`.
    pub fn short(&self) -> &str {
        &self.id[..12]
    }

    /// `ExecSync` of `argv` (30 s at most): the exit code and stdout followed by stderr.
    pub fn exec(&self, argv: &[&str]) -> (i32, String) {
        let request = cri::ExecSyncRequest {
            container_id: self.id.clone(),
            cmd: argv.iter().map(|a| a.to_string()).collect(),
            timeout: 30,
        };
        let out = self.cri.call(
            "ExecSync",
            |mut c| async move { c.exec_sync(request).await },
        );
        (
            out.exit_code,
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// `sh -c SCRIPT` through [`PodContainer::exec`].
    pub fn sh(&self, script: &str) -> (i32, String) {
        self.exec(&["sh", "-c", script])
    }

    /// The container's CRI state (`CONTAINER_RUNNING`, `CONTAINER_EXITED`, ...); `None`
    /// once it is removed.
    pub fn state(&self) -> Option<String> {
        let request = cri::ContainerStatusRequest {
            container_id: self.id.clone(),
            verbose: false,
        };
        match self
            .cri
            .try_call(|mut c| async move { c.container_status(request).await })
        {
            Ok(r) => Some(
                r.status
                    .and_then(|s| cri::ContainerState::try_from(s.state).ok())
                    .map_or_else(String::new, |s| s.as_str_name().to_string()),
            ),
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => panic!("CRI ContainerStatus {}: {}", self.name, s.message()),
        }
    }

    /// When its task started, ns since the epoch, as CRI records it (`startedAt`: the end
    /// of `StartContainer`'s work); 0 before.
    pub fn started_at_ns(&self) -> i64 {
        let request = cri::ContainerStatusRequest {
            container_id: self.id.clone(),
            verbose: false,
        };
        self.cri
            .call("ContainerStatus", |mut c| async move {
                c.container_status(request).await
            })
            .status
            .map_or(0, |s| s.started_at)
    }

    /// The container's first process as the host sees it (CRI's verbose status).
    pub fn pid(&self) -> u32 {
        let request = cri::ContainerStatusRequest {
            container_id: self.id.clone(),
            verbose: true,
        };
        let status = self.cri.call("ContainerStatus", |mut c| async move {
            c.container_status(request).await
        });
        let info: serde_json::Value = status
            .info
            .get("info")
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_default();
        info["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no pid in the verbose status of {}: {info}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_described_as_the_kubelet_describes_it() {
        let spec = PodSpec::new("web-0", "shop")
            .label("app", "web")
            .port(8080)
            .host_pid()
            .container(ContainerSpec::debian("app").privileged());
        let c = spec.sandbox_config("u-1", "/kubepods/besteffort/podu-1", Path::new("/l"));
        let meta = c.metadata.as_ref().unwrap();
        assert_eq!(
            (
                meta.name.as_str(),
                meta.namespace.as_str(),
                meta.uid.as_str()
            ),
            ("web-0", "shop", "u-1")
        );
        assert_eq!(c.labels["app"], "web");
        assert_eq!(c.labels["io.kubernetes.pod.uid"], "u-1");
        assert_eq!(c.port_mappings[0].container_port, 8080);
        let linux = c.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/besteffort/podu-1");
        let sc = linux.security_context.unwrap();
        assert!(
            sc.privileged,
            "a pod with a privileged container is privileged"
        );
        let ns = sc.namespace_options.unwrap();
        assert_eq!(ns.pid, cri::NamespaceMode::Node as i32);
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
        assert_eq!(c.dns_config.unwrap().searches[0], "shop.svc.cluster.local");
    }
}
