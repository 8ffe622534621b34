//! Kernel network records (`struct dw_net_event`) are decoded from raw ring-buffer bytes: no
//! input may panic, and all records that decode have one size (the ABI's).
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

static DECODED_LEN: AtomicUsize = AtomicUsize::new(0);

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = driftwatch_sensor::NetRecord::decode(data) {
        let first =
            DECODED_LEN.compare_exchange(0, data.len(), Ordering::Relaxed, Ordering::Relaxed);
        if let Err(len) = first {
            assert_eq!(len, data.len(), "records of two sizes decode");
        }
        let _ = format!("{r:?}");
    }
});
