//! The network sensor: TCP listen and connect of container processes from `net.bpf.c`
//! (`tp_btf/inet_sock_set_state`), decoded into [`NetRecord`]s on a dedicated thread; and the
//! UDP side, which has no cheap tracepoint: parsers for `/proc/<pid>/net/udp{,6}` and the
//! socket-inode → pid lookup that a periodic per-container scan (in the agent) uses.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use libbpf_rs::MapCore;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use crate::abi::{
    DW_AF_INET, DW_AF_INET6, DW_EVENT_NET, DW_NET_STAT_COUNT, DW_NET_STAT_DEDUPED,
    DW_NET_STAT_HOST_SKIPPED, DW_NET_STAT_LOST, DW_NET_STAT_SENT, DW_TCP_LISTEN, DW_TCP_SYN_SENT,
    NET_EVENT_SIZE, RawNetEvent,
};
use crate::load::{SensorError, begin_load, bpf_error};
use crate::sensor::SensorThread;

bpf_skeleton!("net.skel.rs");

/// What a socket started doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetAction {
    /// Started listening (TCP `listen`, or a bound UDP socket found by the scan).
    Listen,
    /// Connected out (TCP `connect`, or a connected UDP socket found by the scan).
    Connect,
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Proto {
    Tcp,
    Udp,
}

impl L4Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
        }
    }
}

/// One listen or connect, as the kernel (or the UDP scan) saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetRecord {
    pub boot_ns: u64,
    pub cgroup_id: u64,
    pub action: NetAction,
    pub proto: L4Proto,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ns_pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub mnt_ns: u32,
    pub net_ns: u32,
    pub local_ip: IpAddr,
    /// 0 when a connect had not picked its ephemeral port yet.
    pub local_port: u16,
    /// Unspecified and 0 for a listener.
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    pub comm: String,
    pub cgroup: String,
    pub cgroup_parent: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetDecodeError {
    #[error("network record of {0} bytes, expected {NET_EVENT_SIZE}")]
    Size(usize),
    #[error("unknown record type {0}")]
    UnknownType(u32),
    #[error("unexpected TCP state {0}")]
    State(u32),
    #[error("unknown address family {0}")]
    Family(u16),
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// An address as the kernel stores it; IPv4-mapped IPv6 addresses become IPv4.
fn addr(family: u16, raw: &[u8; 16]) -> Result<IpAddr, NetDecodeError> {
    match family {
        DW_AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        DW_AF_INET6 => {
            let v6 = Ipv6Addr::from(*raw);
            Ok(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        f => Err(NetDecodeError::Family(f)),
    }
}

impl NetRecord {
    /// Decodes one `struct dw_net_event` from the ring buffer.
    pub fn decode(data: &[u8]) -> Result<NetRecord, NetDecodeError> {
        if data.len() != NET_EVENT_SIZE {
            return Err(NetDecodeError::Size(data.len()));
        }
        // SAFETY: the length was checked; RawNetEvent is plain old data (any bit pattern is
        // valid) and read_unaligned copes with the ring buffer's alignment.
        let raw: RawNetEvent = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
        if raw.r#type != DW_EVENT_NET {
            return Err(NetDecodeError::UnknownType(raw.r#type));
        }
        let action = match raw.state {
            DW_TCP_LISTEN => NetAction::Listen,
            DW_TCP_SYN_SENT => NetAction::Connect,
            s => return Err(NetDecodeError::State(s)),
        };
        Ok(NetRecord {
            boot_ns: raw.boot_ns,
            cgroup_id: raw.cgroup_id,
            action,
            proto: L4Proto::Tcp,
            pid: raw.pid,
            tid: raw.tid,
            ppid: raw.ppid,
            ns_pid: raw.ns_pid,
            uid: raw.uid,
            gid: raw.gid,
            mnt_ns: raw.mnt_ns,
            net_ns: raw.net_ns,
            local_ip: addr(raw.family, &raw.saddr)?,
            local_port: raw.sport,
            remote_ip: addr(raw.family, &raw.daddr)?,
            remote_port: raw.dport,
            comm: cstr(&raw.comm),
            cgroup: cstr(&raw.cgroup),
            cgroup_parent: cstr(&raw.cgroup_parent),
        })
    }
}

#[derive(Clone, Debug)]
pub struct NetSensorConfig {
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
    /// `None` reads the host's mount namespace from `/proc/1/ns/mnt`.
    pub host_mnt_ns: Option<u32>,
    /// Repeats of one (cgroup, pid, state, address, port) within this window are dropped
    /// in the kernel (counted as `deduped`). Zero reports every one.
    pub dedupe: Duration,
    /// While records flow, drain the ring buffer this often, the program writing them
    /// without waking the reader (a wakeup costs the connecting process an irq_work); idle,
    /// sleep in epoll until the first record (`bpf/include/dw_ring.h`). Zero: a wakeup per
    /// record.
    pub drain_interval: Duration,
}

impl Default for NetSensorConfig {
    fn default() -> Self {
        NetSensorConfig {
            ring_bytes: 2 * 1024 * 1024,
            host_mnt_ns: None,
            dedupe: Duration::from_secs(1),
            drain_interval: crate::ring::DEFAULT_DRAIN_INTERVAL,
        }
    }
}

/// Counters of the network sensor; kernel-side ones are summed over CPUs.
#[derive(Debug, Default)]
pub struct NetSensorStats {
    pub lost: AtomicU64,
    pub sent: AtomicU64,
    pub host_skipped: AtomicU64,
    pub deduped: AtomicU64,
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    /// How records reached user space (timer drains, forced wakeups and why).
    pub ring: crate::ring::RingStats,
}

/// A running network sensor. Dropping it detaches the program and stops the thread.
pub struct NetSensor {
    _thread: SensorThread,
    stats: Arc<NetSensorStats>,
}

impl NetSensor {
    /// Loads and attaches `net.bpf.c`, then calls `on_record` for each listen/connect from the
    /// sensor thread until dropped. Returns once the program is attached.
    pub fn start<F>(config: NetSensorConfig, on_record: F) -> Result<NetSensor, SensorError>
    where
        F: FnMut(NetRecord) + Send + 'static,
    {
        let stats = Arc::new(NetSensorStats::default());
        let thread_stats = stats.clone();
        let host = config.host_mnt_ns;
        let thread = SensorThread::spawn("dw-net-sensor", host, move |host_ns, stop, ready| {
            run(config, host_ns, on_record, stop, thread_stats, ready)
        })?;
        Ok(NetSensor {
            _thread: thread,
            stats,
        })
    }

    pub fn stats(&self) -> &Arc<NetSensorStats> {
        &self.stats
    }
}

fn load<'obj>(
    object: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
    config: &NetSensorConfig,
    host_ns: u32,
) -> Result<skel::NetSkel<'obj>, SensorError> {
    begin_load();
    let mut open = skel::NetSkelBuilder::default()
        .open(object)
        .map_err(|e| bpf_error("opening the network BPF object", e))?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.host_mnt_ns = host_ns;
        ro.dedupe_ns = config.dedupe.as_nanos().min(u128::from(u64::MAX)) as u64;
    }
    open.maps
        .net_events
        .set_max_entries(config.ring_bytes)
        .map_err(|e| bpf_error("sizing the network ring buffer", e))?;
    let mut skel = open
        .load()
        .map_err(|e| bpf_error("loading tp_btf/inet_sock_set_state", e))?;
    skel.attach()
        .map_err(|e| bpf_error("attaching tp_btf/inet_sock_set_state", e))?;
    Ok(skel)
}

fn run<F>(
    config: NetSensorConfig,
    host_ns: u32,
    on_record: F,
    stop: Arc<AtomicBool>,
    stats: Arc<NetSensorStats>,
    ready: mpsc::Sender<Result<(), SensorError>>,
) where
    F: FnMut(NetRecord) + Send + 'static,
{
    let mut object = MaybeUninit::uninit();
    let mut skel = match load(&mut object, &config, host_ns) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let counters = crate::ring::Counters {
        received: Some(&stats.received),
        malformed: &stats.malformed,
    };
    let ring = match crate::ring::open(
        &skel.maps.net_events,
        "opening the network ring buffer",
        "network",
        NetRecord::decode,
        on_record,
        counters,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let reader = crate::ring::Reader::new(
        ring,
        skel.maps
            .bss_data
            .as_deref_mut()
            .map(|b| &mut b.dw_ring_reader),
        config.drain_interval,
        "network",
        &stats.ring,
    );
    let _ = ready.send(Ok(()));
    let mut last_stats = Instant::now();
    reader.run(&stop, || {
        if last_stats.elapsed() >= Duration::from_millis(250) {
            read_kernel_stats(&skel.maps.net_stats, &skel.maps.dw_ring_stats, &stats);
            last_stats = Instant::now();
        }
    });
    drop(reader);
    read_kernel_stats(&skel.maps.net_stats, &skel.maps.dw_ring_stats, &stats);
}

fn read_kernel_stats(map: &dyn MapCore, ring_map: &dyn MapCore, stats: &NetSensorStats) {
    crate::ring::read_kernel_stats(ring_map, &stats.ring);
    let slots = [
        (DW_NET_STAT_LOST, &stats.lost),
        (DW_NET_STAT_SENT, &stats.sent),
        (DW_NET_STAT_HOST_SKIPPED, &stats.host_skipped),
        (DW_NET_STAT_DEDUPED, &stats.deduped),
    ];
    debug_assert!(slots.iter().all(|(k, _)| *k < DW_NET_STAT_COUNT));
    crate::maps::read_percpu_counters(map, &slots);
}

/// One line of `/proc/<pid>/net/{udp,udp6,tcp,tcp6}`: a socket of that network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcNetSocket {
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    pub inode: u64,
    pub uid: u32,
    /// The kernel's socket state (`07` unconnected UDP, `01` established, `0A` TCP listen).
    pub state: u8,
}

impl ProcNetSocket {
    /// A connected socket (`connect(2)` on UDP: DNS resolvers, ...) is an outbound flow; an
    /// unconnected bound one receives from anyone: a listener.
    pub fn action(&self) -> NetAction {
        if self.remote_port != 0 {
            NetAction::Connect
        } else {
            NetAction::Listen
        }
    }
}

/// `0100007F:1F90` (IPv4, each 32-bit word in host byte order, as the kernel prints it) or
/// the 32-hex-digit IPv6 form.
fn parse_hex_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            let v6 = Ipv6Addr::from(b);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses `/proc/net/{udp,udp6,tcp,tcp6}` text (the same columns); malformed lines are
/// skipped, sockets without a local port (not bound yet) too.
pub fn parse_proc_net_udp(text: &str) -> Vec<ProcNetSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local_ip, local_port) = parse_hex_endpoint(f.get(1)?)?;
            let (remote_ip, remote_port) = parse_hex_endpoint(f.get(2)?)?;
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let uid = f.get(7)?.parse().ok()?;
            let inode = f.get(9)?.parse().ok()?;
            (local_port != 0 && inode != 0).then_some(ProcNetSocket {
                local_ip,
                local_port,
                remote_ip,
                remote_port,
                inode,
                uid,
                state,
            })
        })
        .collect()
}

/// The UDP sockets of `pid`'s network namespace (IPv4 and IPv6 tables).
pub fn read_udp_sockets(pid: u32) -> std::io::Result<Vec<ProcNetSocket>> {
    let mut all = parse_proc_net_udp(&std::fs::read_to_string(format!("/proc/{pid}/net/udp"))?);
    if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/udp6")) {
        all.extend(parse_proc_net_udp(&t));
    }
    Ok(all)
}

/// TCP state `LISTEN` in /proc/net/tcp.
const PROC_TCP_LISTEN: u8 = 0x0A;

/// The listening TCP sockets of `pid`'s network namespace (for listeners that predate the
/// agent: the kernel program reports the ones opened while it runs).
pub fn read_tcp_listeners(pid: u32) -> std::io::Result<Vec<ProcNetSocket>> {
    let mut all = parse_proc_net_udp(&std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))?);
    if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")) {
        all.extend(parse_proc_net_udp(&t));
    }
    all.retain(|s| s.state == PROC_TCP_LISTEN);
    Ok(all)
}

/// The inode number of a namespace link (`/proc/<pid>/ns/net`), if readable.
pub fn ns_inode(pid: u32, ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// The process holding socket `inode`, among the processes whose network namespace is
/// `net_ns`. Walks /proc once; called only for a socket not seen before.
pub fn socket_owner(net_ns: u64, inode: u64) -> Option<u32> {
    let want = format!("socket:[{inode}]");
    let dir = std::fs::read_dir("/proc").ok()?;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if ns_inode(pid, "net") != Some(net_ns) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn raw() -> RawNetEvent {
        let mut r = RawNetEvent {
            r#type: DW_EVENT_NET,
            state: DW_TCP_LISTEN,
            boot_ns: 5,
            cgroup_id: 7,
            pid: 100,
            tid: 101,
            ppid: 1,
            uid: 0,
            gid: 0,
            mnt_ns: 4026532000,
            net_ns: 4026532001,
            ns_pid: 3,
            family: DW_AF_INET,
            protocol: 6,
            sport: 8081,
            dport: 0,
            saddr: [0; 16],
            daddr: [0; 16],
            comm: [0; 16],
            cgroup: [0; 128],
            cgroup_parent: [0; 128],
        };
        r.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        r.comm[..2].copy_from_slice(b"nc");
        r.cgroup[..6].copy_from_slice(b"abc123");
        r
    }

    fn bytes(r: &RawNetEvent) -> Vec<u8> {
        // SAFETY: RawNetEvent is repr(C) plain old data.
        unsafe { std::slice::from_raw_parts((r as *const RawNetEvent).cast(), NET_EVENT_SIZE) }
            .to_vec()
    }

    #[test]
    fn decodes_an_ipv4_listener() {
        let rec = NetRecord::decode(&bytes(&raw())).unwrap();
        assert_eq!(rec.action, NetAction::Listen);
        assert_eq!(rec.proto, L4Proto::Tcp);
        assert_eq!(rec.local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(rec.local_port, 8081);
        assert_eq!(rec.comm, "nc");
        assert_eq!(rec.cgroup, "abc123");
        assert_eq!(rec.pid, 100);
    }

    #[test]
    fn decodes_an_ipv6_connect_and_unmaps_v4_mapped() {
        let mut r = raw();
        r.state = DW_TCP_SYN_SENT;
        r.family = DW_AF_INET6;
        r.daddr = "::1".parse::<Ipv6Addr>().unwrap().octets();
        r.saddr = "::ffff:10.0.0.1".parse::<Ipv6Addr>().unwrap().octets();
        r.dport = 443;
        let rec = NetRecord::decode(&bytes(&r)).unwrap();
        assert_eq!(rec.action, NetAction::Connect);
        assert_eq!(rec.remote_ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(rec.local_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(rec.remote_port, 443);
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(NetRecord::decode(&[0; 8]), Err(NetDecodeError::Size(8)));
        let mut r = raw();
        r.state = 1;
        assert_eq!(NetRecord::decode(&bytes(&r)), Err(NetDecodeError::State(1)));
        let mut r = raw();
        r.family = 1;
        assert_eq!(
            NetRecord::decode(&bytes(&r)),
            Err(NetDecodeError::Family(1))
        );
    }

    /// The network sensor with the host filter off (it names a mount namespace no process is
    /// in) and a `dedupe` window, and this test process's records.
    fn own_records(dedupe: Duration) -> (NetSensor, mpsc::Receiver<NetRecord>) {
        let (tx, rx) = mpsc::channel();
        let me = std::process::id();
        let sensor = NetSensor::start(
            NetSensorConfig {
                host_mnt_ns: Some(1),
                dedupe,
                ..NetSensorConfig::default()
            },
            move |r| {
                if r.pid == me {
                    let _ = tx.send(r);
                }
            },
        )
        .expect("starting the network sensor");
        (sensor, rx)
    }

    /// The real program: a listener and a connect of this test process (the host filter is
    /// turned off by naming a mount namespace that is not ours). Needs root and BTF.
    #[test]
    fn kernel_reports_listen_and_connect() {
        driftwatch_testkit::require!(Bpf);
        let (sensor, rx) = own_records(Duration::from_secs(1));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            got.push(rx.recv_timeout(Duration::from_secs(5)).expect("a record"));
        }
        let listen = got.iter().find(|r| r.action == NetAction::Listen).unwrap();
        assert_eq!((listen.local_port, listen.remote_port), (port, 0));
        let conn = got.iter().find(|r| r.action == NetAction::Connect).unwrap();
        assert_eq!(conn.remote_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(conn.remote_port, port);
        assert!(!conn.comm.is_empty());
        drop(sensor);
    }

    /// Runs the calling thread on one CPU: the dedupe table is per CPU, so a test counting
    /// repeats must not migrate between them.
    fn pin_to_one_cpu() {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get
        // a pointer to it and its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    }

    /// The kernel's dedupe with real sockets: repeats of one destination within the window
    /// are one record and counted as deduped; another port, another address family and a
    /// listener are records of their own, with the addresses read right (IPv6 too).
    #[test]
    fn kernel_reports_a_destination_once_per_window() {
        driftwatch_testkit::require!(Bpf);
        pin_to_one_cpu();
        let me = std::process::id();
        let (sensor, rx) = own_records(Duration::from_secs(60));
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let (pa, pb, p6) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
            v6.local_addr().unwrap().port(),
        );
        for _ in 0..5 {
            drop(std::net::TcpStream::connect(("127.0.0.1", pa)).unwrap());
        }
        drop(std::net::TcpStream::connect(("127.0.0.1", pb)).unwrap());
        drop(std::net::TcpStream::connect(("::1", p6)).unwrap());
        let mut got = Vec::new();
        while let Ok(r) = rx.recv_timeout(Duration::from_secs(2)) {
            got.push(r);
        }
        let connects = |port: u16| {
            got.iter()
                .filter(|r| r.action == NetAction::Connect && r.remote_port == port)
                .count()
        };
        assert_eq!(connects(pa), 1, "{got:?}");
        assert_eq!(connects(pb), 1, "{got:?}");
        assert_eq!(connects(p6), 1, "{got:?}");
        let c6 = got
            .iter()
            .find(|r| r.action == NetAction::Connect && r.remote_port == p6)
            .unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        assert_eq!((c6.remote_ip, c6.local_ip), (lo6, lo6));
        let l6 = got
            .iter()
            .find(|r| r.action == NetAction::Listen && r.local_port == p6)
            .expect("the IPv6 listener");
        assert_eq!((l6.local_ip, l6.remote_port), (lo6, 0));
        let c4 = got
            .iter()
            .find(|r| r.action == NetAction::Connect && r.remote_port == pa)
            .unwrap();
        assert_eq!(c4.local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!((c4.pid, c4.uid), (me, uid));
        assert!(c4.cgroup_id != 0 && c4.net_ns != 0 && c4.ppid != 0);
        // The stats are read every few polls; the sensor's stop reads them once more.
        let stats = sensor.stats().clone();
        drop(sensor);
        assert!(
            stats.deduped.load(Ordering::Relaxed) >= 4,
            "the 4 repeats are counted: {stats:?}"
        );
    }

    /// A zero window reports every repeat.
    #[test]
    fn kernel_reports_every_repeat_without_a_window() {
        driftwatch_testkit::require!(Bpf);
        pin_to_one_cpu();
        let (sensor, rx) = own_records(Duration::ZERO);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        for _ in 0..3 {
            drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
        let mut n = 0;
        while let Ok(r) = rx.recv_timeout(Duration::from_secs(2)) {
            n += usize::from(r.action == NetAction::Connect && r.remote_port == port);
        }
        assert_eq!(n, 3);
        drop(sensor);
    }

    #[test]
    fn parses_proc_net_udp() {
        let v4 = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          123: 0100007F:1F91 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 45678 2 0000000000000000 0\n\
          124: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 45679 2 0000000000000000 0\n\
          125: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 45680 2 0000000000000000 0\n\
          garbage\n";
        let s = parse_proc_net_udp(v4);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].local_port, 8081);
        assert_eq!(s[0].inode, 45678);
        assert_eq!(s[0].action(), NetAction::Listen);
        assert_eq!(s[0].state, 7);
        assert_eq!(s[1].remote_port, 53);
        assert_eq!(s[1].uid, 1000);
        assert_eq!(s[1].action(), NetAction::Connect);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
          1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        let s = parse_proc_net_udp(v6);
        assert_eq!(s[0].local_ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].local_port, 8082);
    }
}
