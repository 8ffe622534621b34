//! Durations (`90s`, `5m`, `1h`, `30d`, `250ms`, `500us`) and sizes (`512KiB`, `100MiB`, `1GiB`, or
//! bytes) as the file spells them, both ways: parsing and the canonical spelling `config
//! show` prints (which parses back to the same value). The only grammar of the binary: the
//! command-line flags take these parsers as their clap `value_parser` too, so a flag and the
//! key it sets accept the same spellings.

use std::time::Duration;

const DURATION_UNITS: &[(&str, u64)] = &[("d", 86400), ("h", 3600), ("m", 60), ("s", 1)];

/// `90s`, `5m`, `1h`, `30d`, `250ms`, `500us`, `0`. A bare number other than 0 is refused: `300`
/// could mean seconds or milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s} has no unit (write {s}s, {s}m, {s}h or {s}d)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    if unit == "us" {
        return Ok(Duration::from_micros(n));
    }
    let per = DURATION_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, per)| *per)
        .ok_or_else(|| format!("{s:?}: the unit is one of us, ms, s, m, h, d"))?;
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s} is too long"))
}

/// The largest unit that divides the duration: `5m`, not `300s`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0".into();
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}us", d.as_micros());
    }
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    for (unit, per) in DURATION_UNITS {
        if secs.is_multiple_of(*per) {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("kB", 1_000),
    ("B", 1),
    // The short binary spellings of `ls -h` and the playbooks' `max_file_size: 64K`.
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];

/// `512KiB`, `100MiB`, `1GiB`, `10MB` (decimal), `64K`, `16M` (binary), or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let unit = unit.trim_start();
    if unit.is_empty() {
        return Ok(n);
    }
    let per = SIZE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, per)| *per)
        .ok_or_else(|| {
            format!("{s:?}: the unit is one of B, KiB, MiB, GiB, TiB, K, M, G, T, KB, MB, GB, TB")
        })?;
    n.checked_mul(per)
        .ok_or_else(|| format!("{s} is too large"))
}

/// The largest binary unit that divides the size: `512MiB`; else bytes.
pub fn format_size(n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    for (unit, per) in SIZE_UNITS.iter().take(4) {
        if n.is_multiple_of(*per) {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("300").unwrap_err().contains("no unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unit is one of"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        for d in [0, 1, 59, 60, 90, 3600, 5400, 86400, 30 * 86400] {
            let d = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_micros(500)), "500us");
        assert_eq!(format_duration(Duration::from_micros(2500)), "2500us");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("1 GiB").is_ok());
        assert!(parse_size("1gb").unwrap_err().contains("unit is one of"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        for n in [0, 1, 1000, 1024, 1536, 100 << 20, 512 << 20, 3 << 40] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1000), "1000");
    }
}
