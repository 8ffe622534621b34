//! The one wall clock every crate stamps events, alerts and records with, so that times
//! written by the agent, the store and the responder compare.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock nanoseconds since the Unix epoch; 0 if the clock is set before 1970.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds since the epoch of an RFC 3339 time, as Falco's `time` field and the action
/// records write it (`2026-11-28T13:37:55.260252875Z`); `None` when it is not one.
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_this_code_was_written() {
        // 2026-01-01T00:00:00Z
        assert!(super::now_ns() > 1_767_225_600_000_000_000);
    }

    #[test]
    fn parses_what_alerts_write() {
        let t = 1_795_852_800_123_456_789;
        assert_eq!(super::parse_time_ns(&crate::Alert::format_time(t)), Some(t));
        assert_eq!(
            super::parse_time_ns("2026-11-28T08:00:00.123456789Z"),
            Some(1_795_852_800_123_456_789)
        );
        assert_eq!(super::parse_time_ns("yesterday"), None);
        assert_eq!(super::parse_time_ns("1969-12-31T23:59:59Z"), None);
    }
}
