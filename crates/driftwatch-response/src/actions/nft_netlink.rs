//! The nf_tables netlink messages `isolate` and `release` send, encoded here so that the agent
//! needs no `nft` binary (the container image has none) and no GPL library (`rustables` and
//! `libnftnl` are GPL; this crate is Apache-2.0): the batch that replaces our table, the
//! request that deletes it and the one that looks it up, and the socket they go through.
//!
//! The encoding is pure ([`Batch`]); the socket is opened *inside* a given network namespace
//! (a netlink socket belongs to the namespace it was created in for its whole life), by a
//! short-lived thread that enters the namespace, so the agent's own threads never move.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
/// `NFPROTO_INET`: the `inet` family (IPv4 and IPv6 in one table).
pub const FAMILY_INET: u8 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
/// `NF_DROP` / `NF_ACCEPT`: a chain's policy and a verdict.
pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;
/// `NF_INET_LOCAL_IN`, `NF_INET_FORWARD`, `NF_INET_LOCAL_OUT`.
pub const HOOK_INPUT: u32 = 1;
pub const HOOK_FORWARD: u32 = 2;
pub const HOOK_OUTPUT: u32 = 3;
/// `NFT_META_IIFNAME` / `NFT_META_OIFNAME`.
pub const META_IIFNAME: u32 = 6;
pub const META_OIFNAME: u32 = 7;
/// `IFNAMSIZ`: interface names are compared on all 16 bytes, NUL-padded (an exact match, as
/// `iifname "lo"` is).
const IFNAMSIZ: usize = 16;

/// A base chain of our table: its name, hook, priority and policy, and the interface whose
/// packets it accepts (`(meta key, name)`), if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseChain {
    pub name: &'static str,
    pub hook: u32,
    pub priority: i32,
    pub policy: u32,
    pub accept_if: Option<(u32, &'static str)>,
}

/// Netlink attributes being written into a message.
struct Attrs<'a>(&'a mut Vec<u8>);

impl Attrs<'_> {
    fn raw(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        pad4(self.0);
    }

    fn str(&mut self, kind: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.raw(kind, &b);
    }

    /// nf_tables integers are big-endian.
    fn be32(&mut self, kind: u16, v: u32) {
        self.raw(kind, &v.to_be_bytes());
    }

    fn nested(&mut self, kind: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        f(&mut Attrs(self.0));
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.0[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs<'_>)) {
        self.nested(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name);
            e.nested(NFTA_EXPR_DATA, data);
        });
    }
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

/// A sequence of netlink messages to send in one `send`, each described for error reports.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// `(sequence number, what the message does)` of the messages the kernel acknowledges.
    acked: Vec<(u32, String)>,
    seq: u32,
}

impl Batch {
    /// One message: header, `nfgenmsg` (family, version 0, resource id) and attributes.
    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        what: Option<String>,
        attrs: impl FnOnce(&mut Attrs<'_>),
    ) {
        self.seq += 1;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        let flags = flags | NLM_F_REQUEST | if what.is_some() { NLM_F_ACK } else { 0 };
        self.bytes.extend_from_slice(&flags.to_ne_bytes());
        self.bytes.extend_from_slice(&self.seq.to_ne_bytes());
        self.bytes.extend_from_slice(&0u32.to_ne_bytes());
        self.bytes.push(family);
        self.bytes.push(0);
        self.bytes.extend_from_slice(&res_id.to_be_bytes());
        attrs(&mut Attrs(&mut self.bytes));
        let len = (self.bytes.len() - start) as u32;
        self.bytes[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        if let Some(w) = what {
            self.acked.push((self.seq, w));
        }
    }

    fn nft(&mut self, msg: u16, flags: u16, what: String, attrs: impl FnOnce(&mut Attrs<'_>)) {
        self.message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            flags,
            FAMILY_INET,
            0,
            Some(what),
            attrs,
        );
    }

    /// A transaction: the kernel applies every message between `BATCH_BEGIN` and `BATCH_END`
    /// or none.
    fn transaction(f: impl FnOnce(&mut Batch)) -> Batch {
        let mut b = Batch::default();
        let subsys = NFNL_SUBSYS_NFTABLES;
        b.message(NFNL_MSG_BATCH_BEGIN, 0, 0, subsys, None, |_| {});
        f(&mut b);
        b.message(NFNL_MSG_BATCH_END, 0, 0, subsys, None, |_| {});
        b
    }

    /// `table inet T` (created if missing), `delete table inet T`, then `T` anew with `chains`:
    /// one atomic transaction that leaves exactly these chains whatever was there.
    pub fn replace_table(table: &str, chains: &[BaseChain]) -> Batch {
        Batch::transaction(|b| {
            b.nft(
                NFT_MSG_NEWTABLE,
                NLM_F_CREATE,
                format!("add table inet {table}"),
                |a| a.str(NFTA_TABLE_NAME, table),
            );
            b.nft(
                NFT_MSG_DELTABLE,
                0,
                format!("delete table inet {table}"),
                |a| a.str(NFTA_TABLE_NAME, table),
            );
            b.nft(
                NFT_MSG_NEWTABLE,
                NLM_F_CREATE,
                format!("add table inet {table}"),
                |a| a.str(NFTA_TABLE_NAME, table),
            );
            for c in chains {
                b.nft(
                    NFT_MSG_NEWCHAIN,
                    NLM_F_CREATE,
                    format!("add chain inet {table} {}", c.name),
                    |a| {
                        a.str(NFTA_CHAIN_TABLE, table);
                        a.str(NFTA_CHAIN_NAME, c.name);
                        a.nested(NFTA_CHAIN_HOOK, |h| {
                            h.be32(NFTA_HOOK_HOOKNUM, c.hook);
                            h.be32(NFTA_HOOK_PRIORITY, c.priority as u32);
                        });
                        a.be32(NFTA_CHAIN_POLICY, c.policy);
                        a.str(NFTA_CHAIN_TYPE, "filter");
                    },
                );
                if let Some((key, ifname)) = c.accept_if {
                    b.nft(
                        NFT_MSG_NEWRULE,
                        NLM_F_CREATE | NLM_F_APPEND,
                        format!("add rule inet {table} {} (accept {ifname})", c.name),
                        |a| {
                            a.str(NFTA_RULE_TABLE, table);
                            a.str(NFTA_RULE_CHAIN, c.name);
                            a.nested(NFTA_RULE_EXPRESSIONS, |l| {
                                l.expr("meta", |d| {
                                    d.be32(NFTA_META_KEY, key);
                                    d.be32(NFTA_META_DREG, NFT_REG_1);
                                });
                                l.expr("cmp", |d| {
                                    d.be32(NFTA_CMP_SREG, NFT_REG_1);
                                    d.be32(NFTA_CMP_OP, NFT_CMP_EQ);
                                    d.nested(NFTA_CMP_DATA, |v| {
                                        v.raw(NFTA_DATA_VALUE, &ifname_bytes(ifname))
                                    });
                                });
                                l.expr("immediate", |d| {
                                    d.be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
                                    d.nested(NFTA_IMMEDIATE_DATA, |v| {
                                        v.nested(NFTA_DATA_VERDICT, |v| {
                                            v.be32(NFTA_VERDICT_CODE, NF_ACCEPT)
                                        })
                                    });
                                });
                            });
                        },
                    );
                }
            }
        })
    }

    /// `delete table inet T`, alone in a transaction.
    pub fn delete_table(table: &str) -> Batch {
        Batch::transaction(|b| {
            b.nft(
                NFT_MSG_DELTABLE,
                0,
                format!("delete table inet {table}"),
                |a| a.str(NFTA_TABLE_NAME, table),
            )
        })
    }

    /// A lookup of table `T` (no transaction: a read).
    pub fn get_table(table: &str) -> Batch {
        let mut b = Batch::default();
        b.nft(
            NFT_MSG_GETTABLE,
            0,
            format!("list table inet {table}"),
            |a| a.str(NFTA_TABLE_NAME, table),
        );
        b
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn ifname_bytes(name: &str) -> [u8; IFNAMSIZ] {
    let mut b = [0; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// The kernel's answer to a batch: the first failing message (what it did, `errno`), else
/// success.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Done,
    Failed { what: String, errno: i32 },
}

/// Reads the acknowledgements in `replies` (netlink messages) for `batch`: `Some` once every
/// acknowledged message has its answer (or one failed), `None` when more are to come. A
/// data reply (a `GETTABLE` answer) counts as its message's success. Pure.
pub fn answers(batch: &Batch, replies: &[u8], seen: &mut Vec<u32>) -> Option<Answer> {
    let mut off = 0;
    while off + 16 <= replies.len() {
        let word = |at: usize| {
            u32::from_ne_bytes(replies[off + at..off + at + 4].try_into().unwrap_or([0; 4]))
        };
        let len = word(0) as usize;
        if len < 16 || off + len > replies.len() {
            break;
        }
        let kind = u16::from_ne_bytes([replies[off + 4], replies[off + 5]]);
        let seq = word(8);
        if kind == NLMSG_ERROR && len >= 20 {
            let errno = -(word(16) as i32);
            // The error's copy of the request header names the message it answers.
            let about = if len >= 36 { word(28) } else { seq };
            if errno != 0 {
                let what = batch
                    .acked
                    .iter()
                    .find(|(s, _)| *s == about)
                    .map_or_else(|| format!("message {about}"), |(_, w)| w.clone());
                return Some(Answer::Failed { what, errno });
            }
            seen.push(about);
        } else if kind != NLMSG_DONE {
            seen.push(seq);
        }
        off += len.next_multiple_of(4);
    }
    batch
        .acked
        .iter()
        .all(|(s, _)| seen.contains(s))
        .then_some(Answer::Done)
}

/// An `NETLINK_NETFILTER` socket of one network namespace.
pub struct NfSocket {
    fd: OwnedFd,
}

impl NfSocket {
    /// Opens the socket in the network namespace `netns` (an open `/proc/<pid>/ns/net`),
    /// from a thread that enters it and ends.
    pub fn open_in(netns: BorrowedFd<'_>) -> std::io::Result<NfSocket> {
        let ns = netns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns on this thread only, with an fd the caller keeps open.
                if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: plain socket(2); the fd returned is ours.
                let fd = unsafe {
                    libc::socket(
                        libc::AF_NETLINK,
                        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                        NETLINK_NETFILTER,
                    )
                };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: the fd was just created and is owned by nothing else.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                // A kernel that never answers must not hang the response worker.
                let tv = libc::timeval {
                    tv_sec: 5,
                    tv_usec: 0,
                };
                // SAFETY: a valid fd and a timeval of the size given.
                unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVTIMEO,
                        (&tv as *const libc::timeval).cast(),
                        std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                    )
                };
                Ok(NfSocket { fd })
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the netns thread panicked")))
        })
    }

    /// Sends `batch` and waits for the kernel's answer to each of its messages.
    pub fn run(&self, batch: &Batch) -> std::io::Result<Answer> {
        // SAFETY: a sockaddr_nl zeroed is the kernel (pid 0) as destination.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let bytes = batch.bytes();
        // SAFETY: a valid fd, buffer and address of the sizes given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: a valid fd and a buffer of the size given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(a) = answers(batch, &buf[..n as usize], &mut seen) {
                return Ok(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of a buffer: `(type, flags, seq, payload)`.
    fn split(b: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes([b[off + 4], b[off + 5]]);
            let flags = u16::from_ne_bytes([b[off + 6], b[off + 7]]);
            let seq = u32::from_ne_bytes(b[off + 8..off + 12].try_into().unwrap());
            out.push((kind, flags, seq, b[off + 16..off + len].to_vec()));
            off += len;
        }
        out
    }

    #[test]
    fn a_table_lookup_is_one_acked_getttable_for_the_inet_family() {
        let b = Batch::get_table("t");
        let m = split(b.bytes());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, (10 << 8) | 1);
        assert_eq!(m[0].1, NLM_F_REQUEST | NLM_F_ACK);
        // nfgenmsg: inet, version 0; then NFTA_TABLE_NAME "t\0" padded to 4.
        assert_eq!(m[0].3, vec![1, 0, 0, 0, 6, 0, 1, 0, b't', 0, 0, 0]);
    }

    #[test]
    fn replacing_is_one_transaction_that_adds_deletes_then_builds_the_table() {
        let chains = [BaseChain {
            name: "input",
            hook: HOOK_INPUT,
            priority: -300,
            policy: NF_DROP,
            accept_if: Some((META_IIFNAME, "lo")),
        }];
        let b = Batch::replace_table("t", &chains);
        let kinds: Vec<u16> = split(b.bytes()).iter().map(|m| m.0).collect();
        let nft = |m: u16| (10 << 8) | m;
        assert_eq!(
            kinds,
            vec![0x10, nft(0), nft(2), nft(0), nft(3), nft(6), 0x11]
        );
        let all = split(b.bytes());
        // The batch markers carry the subsystem as resource id and ask for no ack.
        assert_eq!(all[0].3[2..4], 10u16.to_be_bytes());
        assert_eq!(all[0].1, NLM_F_REQUEST);
        let chain = &all[4].3;
        let prio = (-300i32 as u32).to_be_bytes();
        assert!(chain.windows(4).any(|w| w == prio), "{chain:?}");
        // The rule compares all 16 bytes of the interface name: "lo" and NULs.
        let rule = &all[5].3;
        let mut lo = [0u8; 16];
        lo[..2].copy_from_slice(b"lo");
        assert!(rule.windows(16).any(|w| w == lo));
        assert!(rule.windows(10).any(|w| w == b"immediate\0"));
        assert_eq!(b.acked.len(), 5);
    }

    fn ack(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-errno).to_ne_bytes());
        // The request's header: length, type, flags, seq, pid.
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m
    }

    #[test]
    fn answers_wait_for_every_ack_and_name_the_failing_message() {
        let b = Batch::delete_table("t");
        let seq = b.acked[0].0;
        let mut seen = Vec::new();
        assert_eq!(answers(&b, &[], &mut seen), None);
        assert_eq!(answers(&b, &ack(seq, 0), &mut seen), Some(Answer::Done));
        let mut seen = Vec::new();
        assert_eq!(
            answers(&b, &ack(seq, libc::ENOENT), &mut seen),
            Some(Answer::Failed {
                what: "delete table inet t".into(),
                errno: libc::ENOENT
            })
        );
        // A truncated message is not read past.
        assert_eq!(answers(&b, &ack(seq, 0)[..20], &mut Vec::new()), None);
    }
}
