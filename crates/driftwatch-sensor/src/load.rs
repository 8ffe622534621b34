//! Loading a BPF object: libbpf's messages of the current load kept for its error (the
//! verifier's log), and the error every sensor's start returns.

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

use crate::host::PIN_DIR;

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("reading the host's mount namespace from {path}: {source}")]
    HostNamespace {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("{step} failed: {source}{log}")]
    Bpf {
        step: &'static str,
        source: libbpf_rs::Error,
        log: String,
    },
    #[error("the sensor thread stopped before it finished loading")]
    ThreadDied,
    #[error("spawning the sensor thread: {0}")]
    Spawn(std::io::Error),
    #[error("failing closed needs the exec program pinned in {PIN_DIR}: {0}")]
    Pin(String),
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): the CO-RE exec program cannot load, so execs are not seen; a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed"
    )]
    NoBtf,
}

/// libbpf's messages (including a verifier log) of the current load, kept for the error.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn libbpf_print(level: PrintLevel, msg: String) {
    if matches!(level, PrintLevel::Debug) {
        return;
    }
    tracing::debug!(target: "libbpf", "{}", msg.trim_end());
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        // Keep the tail: the verifier's verdict is at the end of its log.
        if log.len() > 64 * 1024 {
            let cut = log.len() - 32 * 1024;
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(0);
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

/// Starts collecting libbpf's messages for the next load's error (the verifier log).
pub(crate) fn begin_load() {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.clear();
    }
    libbpf_rs::set_print(Some((PrintLevel::Info, libbpf_print)));
}

/// A failed libbpf step, with libbpf's messages since [`begin_load`].
pub(crate) fn bpf_error(step: &'static str, source: libbpf_rs::Error) -> SensorError {
    let log = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let log = if log.trim().is_empty() {
        String::new()
    } else {
        format!("\nlibbpf log:\n{}", log.trim_end())
    };
    SensorError::Bpf { step, source, log }
}
