//! Falco's print formats for values driftwatch holds in Linux form: open flags, file modes,
//! capability sets, times; and the networks `fd.net` tests addresses against.

use std::fmt::Write;
use std::net::IpAddr;

/// Linux `O_*` bits (x86-64 values: `FileRef::flags` uses them; the bits file events carry,
/// access mode, `O_CREAT`, `O_TRUNC`, `O_APPEND`, `O_EXCL`, are the same on every architecture)
/// and Falco's names for them, in the order Falco prints them (libs' `file_flags` table).
const OPEN_FLAG_NAMES: [(u32, &str); 10] = [
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o40000, "O_DIRECT"),
    (0o1000, "O_TRUNC"),
    (0o4010000, "O_SYNC"),
    (0o4000, "O_NONBLOCK"),
    (0o200, "O_EXCL"),
    (0o10000, "O_DSYNC"),
    (0o2000, "O_APPEND"),
    (0o100, "O_CREAT"),
];

const O_ACCMODE: u32 = 0o3;
const O_CLOEXEC: u32 = 0o2000000;
const O_TMPFILE: u32 = 0o20000000 | 0o200000;
const O_SYNC: u32 = 0o4010000;
const O_DSYNC: u32 = 0o10000;

/// Open flags as Falco's `evt.arg.flags` prints them: `O_TRUNC|O_CREAT|O_WRONLY`. The access
/// mode is always named (`O_RDONLY` when no write bit is set), as Falco does.
pub(crate) fn push_open_flags(out: &mut String, flags: u32) {
    let mut sep = "";
    let mut push = |out: &mut String, name: &str| {
        out.push_str(sep);
        out.push_str(name);
        sep = "|";
    };
    let tmpfile = flags & O_TMPFILE == O_TMPFILE;
    for (bit, name) in OPEN_FLAG_NAMES {
        let set = match bit {
            // O_SYNC includes O_DSYNC's bit: name O_DSYNC only when O_SYNC is not set.
            O_DSYNC => flags & O_SYNC == O_DSYNC,
            // O_TMPFILE includes O_DIRECTORY's bit.
            0o200000 => flags & bit == bit && !tmpfile,
            _ => flags & bit == bit,
        };
        if set {
            push(out, name);
        }
    }
    push(
        out,
        match flags & O_ACCMODE {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            _ => "O_RDWR",
        },
    );
    if flags & O_CLOEXEC != 0 {
        push(out, "O_CLOEXEC");
    }
    if tmpfile {
        push(out, "O_TMPFILE");
    }
}

/// Falco's own flag bits (`PPM_O_*`) for Linux open flags: `evt.rawarg.flags`.
pub(crate) fn ppm_open_flags(flags: u32) -> i64 {
    let mut v: i64 = match flags & O_ACCMODE {
        0 => 1,
        1 => 2,
        _ => 3,
    };
    let map: [(u32, i64); 12] = [
        (0o100, 1 << 2),
        (0o2000, 1 << 3),
        (O_DSYNC, 1 << 4),
        (0o200, 1 << 5),
        (0o4000, 1 << 6),
        (O_SYNC, 1 << 7),
        (0o1000, 1 << 8),
        (0o40000, 1 << 9),
        (0o200000, 1 << 10),
        (0o100000, 1 << 11),
        (O_CLOEXEC, 1 << 12),
        (O_TMPFILE, 1 << 13),
    ];
    for (bit, ppm) in map {
        if flags & bit == bit {
            v |= ppm;
        }
    }
    v
}

/// Mode bits and Falco's names, in its print order (libs' `chmod_mode` table).
const MODE_NAMES: [(u32, &str); 12] = [
    (0o1, "S_IXOTH"),
    (0o2, "S_IWOTH"),
    (0o4, "S_IROTH"),
    (0o10, "S_IXGRP"),
    (0o20, "S_IWGRP"),
    (0o40, "S_IRGRP"),
    (0o100, "S_IXUSR"),
    (0o200, "S_IWUSR"),
    (0o400, "S_IRUSR"),
    (0o1000, "S_ISVTX"),
    (0o2000, "S_ISGID"),
    (0o4000, "S_ISUID"),
];

/// A mode as Falco's `evt.arg.mode` of `chmod`/`fchmodat` prints it: the names of its bits
/// (`S_IXOTH|S_IROTH|...|S_ISUID`), or `0` for no bit.
pub(crate) fn push_mode_names(out: &mut String, mode: u32) {
    let mut first = true;
    for (bit, name) in MODE_NAMES {
        if mode & bit != 0 {
            if !first {
                out.push('|');
            }
            out.push_str(name);
            first = false;
        }
    }
    if first {
        out.push('0');
    }
}

/// A number printed as C's `%#o` (Falco's `PF_OCT`): `0644`, `0` for zero.
pub(crate) fn push_octal(out: &mut String, v: u32) {
    if v == 0 {
        out.push('0');
    } else {
        let _ = write!(out, "0{v:o}");
    }
}

/// Capability names by bit number (Linux's `capability.h`, through `CAP_CHECKPOINT_RESTORE`).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A capability set as Falco's `thread.cap_*` prints it: the names of its bits separated by
/// spaces, lowest bit first. Bits beyond the known capabilities are not printed (as Falco).
pub(crate) fn push_caps(out: &mut String, caps: u64) {
    for (i, name) in CAPABILITIES.iter().enumerate() {
        if caps & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(name);
        }
    }
}

/// A time of day and date in UTC from nanoseconds since the epoch.
pub(crate) struct Utc {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) nanos: u32,
}

impl Utc {
    pub(crate) fn from_ns(ns: u64) -> Utc {
        let secs = ns / 1_000_000_000;
        let nanos = (ns % 1_000_000_000) as u32;
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        // Howard Hinnant's days-to-civil.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            nanos,
        }
    }

    pub(crate) fn push_date(&self, out: &mut String) {
        let _ = write!(out, "{:04}-{:02}-{:02}", self.year, self.month, self.day);
    }

    pub(crate) fn push_time(&self, out: &mut String, with_nanos: bool) {
        let _ = write!(
            out,
            "{:02}:{:02}:{:02}",
            self.hour, self.minute, self.second
        );
        if with_nanos {
            let _ = write!(out, ".{:09}", self.nanos);
        }
    }
}

/// A network for `fd.net`-style tests: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Parses `10.0.0.0/8`, `fd00::/8`, or a plain address (a /32 or /128). A list item written
/// with its own quotes (Falco's `rfc_1918_addresses` has `'"10.0.0.0/8"'`, substituted into
/// the condition as a quoted string) is read without them.
pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let s = s.trim();
    let s = ['"', '\'']
        .iter()
        .find_map(|q| s.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(s);
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some(Cidr { addr, prefix })
}

impl Cidr {
    /// Whether `ip` (text as the fields hold it) is in this network. IPv4-mapped IPv6
    /// addresses (`::ffff:10.0.0.1`) count as their IPv4 address.
    pub(crate) fn contains(&self, ip: &str) -> bool {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return false;
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: u32) -> String {
        let mut s = String::new();
        push_open_flags(&mut s, f);
        s
    }

    #[test]
    fn open_flags_print_as_falco() {
        // O_WRONLY|O_CREAT|O_TRUNC, as `>` in a shell opens.
        assert_eq!(flags(0o1 | 0o100 | 0o1000), "O_TRUNC|O_CREAT|O_WRONLY");
        assert_eq!(flags(0), "O_RDONLY");
        assert_eq!(flags(0o2 | 0o2000 | O_CLOEXEC), "O_APPEND|O_RDWR|O_CLOEXEC");
        assert_eq!(flags(O_SYNC | 0o1), "O_SYNC|O_WRONLY");
        assert_eq!(flags(O_DSYNC | 0o1), "O_DSYNC|O_WRONLY");
        assert_eq!(flags(O_TMPFILE | 0o2), "O_RDWR|O_TMPFILE");
        assert_eq!(flags(0o200000), "O_DIRECTORY|O_RDONLY");
        assert_eq!(ppm_open_flags(0o1 | 0o100 | 0o1000), 2 | 4 | 256);
        assert_eq!(ppm_open_flags(0), 1);
    }

    #[test]
    fn modes_print_as_falco() {
        let mut s = String::new();
        push_mode_names(&mut s, 0o4755);
        assert_eq!(
            s,
            "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"
        );
        s.clear();
        push_mode_names(&mut s, 0o2000);
        assert_eq!(s, "S_ISGID");
        s.clear();
        push_mode_names(&mut s, 0);
        assert_eq!(s, "0");
        s.clear();
        push_octal(&mut s, 0o644);
        assert_eq!(s, "0644");
    }

    #[test]
    fn capabilities_print_as_falco() {
        let mut s = String::new();
        push_caps(&mut s, (1 << 21) | (1 << 13) | 1);
        assert_eq!(s, "CAP_CHOWN CAP_NET_RAW CAP_SYS_ADMIN");
        s.clear();
        // A bit Linux has not named yet is left out, as Falco does.
        push_caps(&mut s, 1 << 50);
        assert_eq!(s, "");
        s.clear();
        push_caps(&mut s, (1 << 41) - 1);
        assert_eq!(s.split(' ').count(), 41);
        assert!(s.ends_with("CAP_CHECKPOINT_RESTORE"));
    }

    #[test]
    fn cidr_membership() {
        let n = parse_cidr("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.1"));
        assert!(!n.contains("11.0.0.1"));
        assert!(n.contains("::ffff:10.1.2.3"));
        assert!(!n.contains("fd00::1"));
        assert!(!n.contains("not an address"));
        let n = parse_cidr("172.16.0.0/12").unwrap();
        assert!(n.contains("172.31.255.255") && !n.contains("172.32.0.0"));
        let one = parse_cidr("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1") && !one.contains("127.0.0.2"));
        let all = parse_cidr("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8"));
        let v6 = parse_cidr("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1") && !v6.contains("fe80::1"));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("\"10.0.0.0/8\""), parse_cidr("10.0.0.0/8"));
        assert_eq!(parse_cidr("example.com"), None);
    }

    #[test]
    fn utc_dates() {
        let t = Utc::from_ns(1_795_852_800_123_456_789);
        let mut s = String::new();
        t.push_date(&mut s);
        s.push(' ');
        t.push_time(&mut s, true);
        assert_eq!(s, "2026-11-28 08:00:00.123456789");
        let t = Utc::from_ns(951_782_400_000_000_000); // 2000-02-29
        s.clear();
        t.push_date(&mut s);
        assert_eq!(s, "2000-02-29");
    }
}
