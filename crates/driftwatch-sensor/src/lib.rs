//! Kernel sensors: loads driftwatch's BPF programs, reads their ring buffers and decodes the
//! raw records into owned Rust values. What the records mean is decided above this crate.

mod abi;
mod exec;
mod probe;
mod sensor;

pub use abi::{ExecFlags, FS_MAGIC_HUGETLBFS, FS_MAGIC_OVERLAY, FS_MAGIC_TMPFS};
pub use exec::{DecodeError, ExecRecord};
pub use probe::{HostSupport, ProbeResult, probe_host};
pub use sensor::{ExecSensor, SensorConfig, SensorError, SensorStats, boot_to_wall_offset_ns};
