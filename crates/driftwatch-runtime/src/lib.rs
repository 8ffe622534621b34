//! Container identity and metadata, engine-agnostic at its core.
//!
//! - [`cgroup`]: which container a cgroup name or path belongs to (no engine needed).
//! - [`mountinfo`]: a process's mounts, the mount a path lives on, the root overlay's layers.
//!
//! Both are pure: they parse text handed to them and do no I/O, so they test without root.

pub mod cgroup;
pub mod mountinfo;

pub use cgroup::{
    CgroupMatch, container_from_cgroup, container_from_cgroup_leaf, container_from_proc_cgroup,
    container_id_from_cgroup,
};
pub use mountinfo::{
    Mount, MountKind, MountTable, MountinfoError, MountinfoProblem, classify, overlay_layers,
    parse_mountinfo, resolve_layer_paths,
};
