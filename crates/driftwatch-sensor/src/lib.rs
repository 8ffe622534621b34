//! Kernel sensors: loads driftwatch's BPF programs, reads their ring buffers and decodes the
//! raw records into owned Rust values. What the records mean is decided above this crate.

mod abi;
mod exec;
pub mod exec_guard;
pub mod fanotify;
mod fork;
pub mod host;
mod load;
mod maps;
mod net;
mod probe;
mod ring;
mod sensor;
mod tamper;

pub use abi::{DW_ENFORCE_HOLD_ALL, DW_ENFORCE_HOLD_SUSPECT, DW_ENFORCE_KILL_MEMFD};
pub use abi::{ExecFlags, FS_MAGIC_HUGETLBFS, FS_MAGIC_OVERLAY, FS_MAGIC_TMPFS};
pub use exec::{DecodeError, ExecRecord, ProcessFacts};
pub use exec_guard::{ExecGuard, ExecRequest};
pub use fork::{ForkParents, Forked};
pub use host::PIN_DIR;
pub use load::SensorError;
pub use maps::{CountedMap, MapEntries};
pub use net::{
    L4Proto, NetAction, NetDecodeError, NetRecord, NetSensor, NetSensorConfig, NetSensorStats,
    ProcNetSocket, ns_inode, parse_proc_net_udp, read_tcp_listeners, read_udp_sockets,
    socket_owner,
};
pub use probe::{HostSupport, ProbeResult, probe_host};
pub use sensor::{
    EnforceConfigChange, EnforceMaps, ExecSensor, ExecSensorConfig, SensorStats,
    boot_to_wall_offset_ns, host_mnt_ns,
};
pub use tamper::{SignalDecodeError, SignalRecord, SignalSensor, SignalSensorStats};
