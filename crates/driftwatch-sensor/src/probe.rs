//! What this host's kernel offers the sensors, probed for real (for `driftwatch doctor`).

use std::path::Path;

use crate::host::{CgroupLayout, Lockdown};
use crate::sensor::{ExecSensor, ExecSensorConfig};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Yes(String),
    No(String),
    /// It could not be told; the text says why. Never counted as "yes".
    Unknown(String),
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        matches!(self, ProbeResult::Yes(_))
    }
}

/// One line per capability: what was checked, and what it means for detection.
#[derive(Clone, Debug)]
pub struct HostSupport {
    pub root: ProbeResult,
    pub btf: ProbeResult,
    pub lockdown: ProbeResult,
    pub bpffs: ProbeResult,
    pub cgroups: ProbeResult,
    pub overlayfs: ProbeResult,
    pub exec_tracepoint: ProbeResult,
    pub fanotify: ProbeResult,
}

/// Probes the host. Loading the exec program is attempted only as root.
pub fn probe_host() -> HostSupport {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let root = if euid == 0 {
        ProbeResult::Yes("running as root".into())
    } else {
        ProbeResult::No(format!(
            "running as uid {euid}: loading BPF programs and fanotify need root"
        ))
    };
    let btf = if Path::new("/sys/kernel/btf/vmlinux").exists() {
        ProbeResult::Yes(
            "/sys/kernel/btf/vmlinux present: CO-RE programs relocate against it".into(),
        )
    } else {
        ProbeResult::No("no /sys/kernel/btf/vmlinux: the kernel lacks BTF (CONFIG_DEBUG_INFO_BTF), the BPF sensors cannot load".into())
    };
    let lockdown = match crate::host::lockdown() {
        Lockdown::Mode(m) if m == "none" => ProbeResult::Yes("lockdown none".into()),
        Lockdown::Mode(m) => ProbeResult::Yes(format!(
            "lockdown {m}: fentry/lsm programs are refused; driftwatch uses tp_btf tracepoints and fanotify, which still work"
        )),
        Lockdown::NotBuilt => {
            ProbeResult::Yes("no lockdown LSM in this kernel: not restricted".into())
        }
        Lockdown::Unknown(why) => ProbeResult::Unknown(format!(
            "lockdown unknown ({why}): if restricted, fentry/lsm programs are refused; driftwatch needs neither"
        )),
    };
    let bpffs = match crate::host::fs_magic(Path::new(crate::host::BPFFS)) {
        Ok(crate::host::BPF_FS_MAGIC) => ProbeResult::Yes(format!(
            "mounted at {}: programs can be pinned (on_agent_death: hold)",
            crate::host::BPFFS
        )),
        Ok(_) => ProbeResult::Yes(format!(
            "not mounted at {}: the agent mounts it when it needs to pin (on_agent_death: hold)",
            crate::host::BPFFS
        )),
        Err(e) => ProbeResult::No(format!(
            "{}: {e}: programs cannot be pinned, on_agent_death: hold cannot fail closed",
            crate::host::BPFFS
        )),
    };
    let cgroups = match crate::host::cgroup_layout(Path::new("/sys/fs/cgroup")) {
        CgroupLayout::Unified => ProbeResult::Yes(
            "cgroup v2 (unified): containers are named by their cgroup in the kernel".into(),
        ),
        CgroupLayout::Hybrid => ProbeResult::Yes(
            "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified): containers are named by their v2 cgroup in the kernel".into(),
        ),
        CgroupLayout::Legacy => ProbeResult::No(
            "cgroup v1 only: the kernel cannot name containers by cgroup v2; they are found from /proc/<pid>/cgroup".into(),
        ),
        CgroupLayout::Unknown(why) => ProbeResult::Unknown(why),
    };
    let overlayfs = match std::fs::read_to_string("/proc/filesystems") {
        Ok(f) if f.lines().any(|l| l.trim_end().ends_with("overlay")) => {
            ProbeResult::Yes("overlayfs available: upper/lower layers are read from struct ovl_inode".into())
        }
        Ok(_) => ProbeResult::No("overlayfs not in /proc/filesystems (module not loaded?): containers on other storage drivers get no layer verdicts".into()),
        Err(e) => ProbeResult::No(format!("reading /proc/filesystems: {e}")),
    };
    let exec_tracepoint = if euid != 0 {
        ProbeResult::No("not probed: needs root".into())
    } else {
        match ExecSensor::start(
            ExecSensorConfig {
                ring_bytes: 4096 * 16,
                ..ExecSensorConfig::default()
            },
            |_| {},
        ) {
            Ok(sensor) => {
                drop(sensor);
                ProbeResult::Yes("tp_btf/sched_process_exec loaded and attached: every exec in a container is seen, no cost to other syscalls".into())
            }
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                ProbeResult::No(format!(
                    "{first}: no exec events, no binary-drift detection"
                ))
            }
        }
    };
    let fanotify = if euid != 0 {
        ProbeResult::No("not probed: needs root".into())
    } else {
        // SAFETY: plain syscall; the returned fd is closed below.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
                libc::O_RDONLY as u32,
            )
        };
        if fd >= 0 {
            // SAFETY: fd was just returned by fanotify_init and is ours to close.
            unsafe { libc::close(fd) };
            ProbeResult::Yes("fanotify FAN_CLASS_CONTENT available: exec permission events can block drift (prevent mode)".into())
        } else {
            let e = std::io::Error::last_os_error();
            ProbeResult::No(format!(
                "fanotify_init(FAN_CLASS_CONTENT): {e}: no blocking of drifted execs before they run"
            ))
        }
    };
    HostSupport {
        root,
        btf,
        lockdown,
        bpffs,
        cgroups,
        overlayfs,
        exec_tracepoint,
        fanotify,
    }
}
