//! Container identity and metadata, engine-agnostic at its core.
//!
//! - [`cgroup`]: which container a cgroup name or path belongs to (no engine needed).
//! - [`mountinfo`]: a process's mounts, the mount a path lives on, the root overlay's layers.
//! - [`source`]: the [`EngineSource`] trait the agent talks to, so it never assumes Docker.
//! - [`containerd`]: containerd's own gRPC API behind that trait, across namespaces.
//! - [`cri`]: the Kubernetes CRI v1 API of containerd's CRI plugin and CRI-O: pod sandboxes
//!   (labels, host namespaces, declared ports), containers' and images' verbose status.
//! - [`crio`]: CRI-O behind that trait, through its CRI socket.
//! - [`docker`]: Docker (and podman's compatible API) behind that trait, via bollard.
//! - [`pinned`]: a process pinned by a pidfd (signals, namespaces and cgroups of the right
//!   process even when its pid is reused), and the host's network namespace.
//! - [`pod_identity`]: which pod a container is in, from what its creator set, never its
//!   image's labels.
//! - [`oci_runtime`]: a [`RuntimeConfig`] from an OCI runtime spec (containerd, CRI-O).
//! - [`runtime_config`]: a container's privileges, namespaces, mounts and user, and its
//!   image's config, as engines report them (data for config-drift checks).
//!
//! `cgroup` and `mountinfo` are pure: they parse text handed to them and do no I/O, so they
//! test without root.

pub mod cgroup;
pub mod containerd;
pub mod cri;
pub mod crio;
pub mod docker;
mod events;
pub mod mountinfo;
pub mod oci_runtime;
pub mod pinned;
pub mod pod_identity;
pub mod runtime_config;
pub mod source;

pub use cgroup::{
    CgroupMatch, DEFAULT_NAMED_NAMESPACES, container_from_cgroup, container_from_cgroup_in,
    container_from_cgroup_leaf, container_from_cgroup_leaf_in, container_from_proc_cgroup,
    container_id_from_cgroup,
};
pub use containerd::{
    CONTAINERD_SOCKETS, ContainerdConfig, ContainerdImage, ContainerdSource, SnapshotLayers,
};
pub use cri::{CriClient, PodSandbox};
pub use crio::{CRIO_SOCKETS, CrioConfig, CrioSource};
pub use docker::{DockerConfig, DockerSource};
pub use mountinfo::{
    Mount, MountKind, MountTable, MountinfoError, MountinfoProblem, classify, kernel_dev,
    overlay_layers, parse_mountinfo, resolve_layer_paths,
};
pub use pinned::{PinError, PinnedProcess, host_cgroupns, host_netns};
pub use pod_identity::{PodIdentity, cri_pod_identity, trusted_pod_identity};
pub use runtime_config::{ImageConfig, MountSpec, RuntimeConfig};
pub use source::{
    ContainerRecord, EngineEvent, EngineSource, RuntimeError, innermost, wait_for_socket,
};
