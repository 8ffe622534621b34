//! The ring-buffer plumbing the exec, network and signal sensors share: decode each record,
//! count the ones that do not decode, poll without treating EINTR as an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use crate::load::{SensorError, bpf_error};

/// A ring buffer on `map`: every record is decoded with `decode` and handed to `on_record`;
/// one that does not decode is counted in `malformed` (and logged at debug, naming `kind`).
/// `received` counts every record when given.
pub(crate) fn open<'m, R: 'm, E: std::fmt::Display + 'm>(
    map: &'m dyn MapCore,
    step: &'static str,
    kind: &'static str,
    decode: fn(&[u8]) -> Result<R, E>,
    mut on_record: impl FnMut(R) + 'm,
    counters: Counters<'m>,
) -> Result<RingBuffer<'m>, SensorError> {
    let callback = move |data: &[u8]| {
        if let Some(r) = counters.received {
            r.fetch_add(1, Ordering::Relaxed);
        }
        match decode(data) {
            Ok(r) => on_record(r),
            Err(e) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("malformed {kind} record: {e}");
            }
        }
        0
    };
    let mut builder = RingBufferBuilder::new();
    builder.add(map, callback).map_err(|e| bpf_error(step, e))?;
    builder.build().map_err(|e| bpf_error(step, e))
}

/// Where [`open`] counts records.
#[derive(Clone, Copy)]
pub(crate) struct Counters<'a> {
    pub received: Option<&'a AtomicU64>,
    pub malformed: &'a AtomicU64,
}

/// One poll of up to `timeout`; an interrupted wait is not an error, others are logged.
pub(crate) fn poll(ring: &RingBuffer<'_>, kind: &'static str, timeout: Duration) {
    if let Err(e) = ring.poll(timeout)
        && e.kind() != libbpf_rs::ErrorKind::Interrupted
    {
        tracing::warn!("polling the {kind} ring buffer: {e}");
    }
}
