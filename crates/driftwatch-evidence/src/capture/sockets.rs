//! A container's listening and connected sockets for an evidence bundle: the kernel's
//! `/proc/<pid>/net/{tcp,tcp6,udp,udp6}` tables of its network namespace, with each socket
//! mapped to the container processes holding it (by inode, through `/proc/<pid>/fd`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// One socket of the container's network namespace.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct SocketInfo {
    /// `tcp`, `tcp6`, `udp`, `udp6`.
    pub proto: &'static str,
    pub local: String,
    pub remote: String,
    /// The kernel's TCP state name (`LISTEN`, `ESTABLISHED`, ...); UDP uses the same table
    /// (`CLOSE` for an unconnected socket, `ESTABLISHED` for a connected one).
    pub state: &'static str,
    /// `listening`, `connected` or `other` (closing, time-wait...).
    pub role: &'static str,
    pub uid: u32,
    pub inode: u64,
    /// Container processes with this socket open.
    pub pids: Vec<u32>,
}

const TCP_STATES: [&str; 13] = [
    "UNKNOWN",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
];

/// `0100007F:0050` (IPv4) or 32 hex digits + port (IPv6): the address words are in the
/// kernel's byte order (little-endian on the machines we run on).
pub fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

fn show(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Parses one `/proc/net/{tcp,udp}[6]` table. Malformed lines are skipped.
pub fn parse_table(proto: &'static str, text: &str) -> Vec<SocketInfo> {
    let udp = proto.starts_with("udp");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (lip, lport) = parse_addr(f.get(1)?)?;
            let (rip, rport) = parse_addr(f.get(2)?)?;
            let st = usize::from_str_radix(f.get(3)?, 16).ok()?;
            let state = TCP_STATES.get(st).copied().unwrap_or("UNKNOWN");
            let role = match state {
                "LISTEN" => "listening",
                "CLOSE" if udp && rip.is_unspecified() && rport == 0 => "listening",
                "ESTABLISHED" | "SYN_SENT" | "SYN_RECV" => "connected",
                _ => "other",
            };
            Some(SocketInfo {
                proto,
                local: show(lip, lport),
                remote: show(rip, rport),
                state,
                role,
                uid: f.get(7)?.parse().ok()?,
                inode: f.get(9)?.parse().ok()?,
                pids: Vec::new(),
            })
        })
        .collect()
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The sockets of the network namespace `netns_pid` is in, with the `pids` holding each.
/// Returns the sockets and the problems met (tables that could not be read).
pub fn read_sockets(netns_pid: u32, pids: &[u32]) -> (Vec<SocketInfo>, Vec<String>) {
    let mut problems = Vec::new();
    let mut owners: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    for &pid in pids {
        let Ok(links) = driftwatch_fs::host::proc_fd_links(pid) else {
            continue; // exited meanwhile
        };
        for link in links {
            if let Some(inode) = socket_inode(&link.to_string_lossy()) {
                owners.entry(inode).or_default().insert(pid);
            }
        }
    }
    let mut out = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let path = format!("/proc/{netns_pid}/net/{proto}");
        match driftwatch_fs::host::proc_string(netns_pid, &format!("net/{proto}")) {
            Ok(text) => out.extend(parse_table(proto, &text)),
            // No IPv6 in this kernel or namespace: not a problem worth reporting.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    for s in &mut out {
        s.pids = owners
            .get(&s.inode)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default();
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 51240 1 0000000000000000 20 4 30 10 -1
garbage line
";

    #[test]
    fn tcp_listening_and_connected() {
        let s = parse_table("tcp", TCP);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].local, "0.0.0.0:8080");
        assert_eq!((s[0].state, s[0].role), ("LISTEN", "listening"));
        assert_eq!(s[0].inode, 51234);
        assert_eq!(s[1].local, "127.0.0.1:8080");
        assert_eq!(s[1].remote, "127.0.0.1:50000");
        assert_eq!(
            (s[1].state, s[1].role, s[1].uid),
            ("ESTABLISHED", "connected", 1000)
        );
    }

    #[test]
    fn ipv6_and_udp() {
        let tcp6 = "hdr\n   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n";
        let s = parse_table("tcp6", tcp6);
        assert_eq!(s[0].local, "[::1]:22");
        let udp = "hdr\n  1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 888 2\n";
        let s = parse_table("udp", udp);
        assert_eq!(
            (s[0].local.as_str(), s[0].role),
            ("0.0.0.0:53", "listening")
        );
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[51234]"), Some(51234));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }
}
