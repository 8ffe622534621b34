//! Berkeley DB hash databases as rpm used them until 4.16 (`/var/lib/rpm/Packages` on
//! RHEL/CentOS 7 and 8, Amazon Linux 2): the data items of every hash page, each an rpm
//! header, inline or on a chain of overflow pages.
//!
//! Read page by page instead of through the hash's bucket structure: every key/data pair
//! lives on some hash page, and rpm's `Packages` holds nothing but (header number, header)
//! pairs, so a linear pass finds them all with no trust in the bucket arithmetic. Overflow
//! pages are each read at most once.

const HASH_MAGIC: u32 = 0x0006_1561;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
/// The generic page header: lsn, pgno, prev, next, entries, hf_offset, level, type.
const PAGE_HEADER: usize = 26;

/// True when `db` starts with a Berkeley DB hash metadata page.
pub(super) fn is_bdb_hash(db: &[u8]) -> bool {
    Order::of(db).is_some()
}

#[derive(Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn of(db: &[u8]) -> Option<Order> {
        let m = db.get(12..16)?;
        let m = [m[0], m[1], m[2], m[3]];
        if u32::from_le_bytes(m) == HASH_MAGIC {
            Some(Order::Little)
        } else if u32::from_be_bytes(m) == HASH_MAGIC {
            Some(Order::Big)
        } else {
            None
        }
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        let s = [s[0], s[1], s[2], s[3]];
        Some(match self {
            Order::Little => u32::from_le_bytes(s),
            Order::Big => u32::from_be_bytes(s),
        })
    }

    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at.checked_add(2)?)?;
        let s = [s[0], s[1]];
        Some(match self {
            Order::Little => u16::from_le_bytes(s),
            Order::Big => u16::from_be_bytes(s),
        })
    }
}

/// The data item of every key/data pair on the hash pages. `None` when `db` is not a BDB
/// hash database.
pub(super) fn hash_values(db: &[u8]) -> Option<Vec<Vec<u8>>> {
    let order = Order::of(db)?;
    let page_size = order.u32(db, 20)? as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let count = db.len() / page_size;
    let mut seen = vec![false; count];
    let page = |n: usize| db.get(n * page_size..(n + 1) * page_size);
    let mut out = Vec::new();
    for n in 1..count {
        let Some(p) = page(n) else { break };
        if !matches!(p[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = usize::from(order.u16(p, 20)?);
        // Items are (key, data) pairs; their offsets follow the header, each item ending
        // where the previous one (in index order) begins.
        for i in (1..entries).step_by(2) {
            let Some(at) = order.u16(p, PAGE_HEADER + 2 * i).map(usize::from) else {
                break;
            };
            let Some(end) = order.u16(p, PAGE_HEADER + 2 * (i - 1)).map(usize::from) else {
                break;
            };
            let Some(item) = p.get(at..end.max(at)) else {
                continue;
            };
            match item.first() {
                Some(&H_KEYDATA) => out.push(item[1..].to_vec()),
                Some(&H_OFFPAGE) => {
                    let (Some(first), Some(len)) = (order.u32(item, 4), order.u32(item, 8)) else {
                        continue;
                    };
                    if let Some(v) = overflow(order, &page, &mut seen, first, len as usize) {
                        out.push(v);
                    }
                }
                _ => {}
            }
        }
    }
    Some(out)
}

/// The bytes of an overflow chain: on each page `hf_offset` says how many it holds.
fn overflow<'a>(
    order: Order,
    page: &impl Fn(usize) -> Option<&'a [u8]>,
    seen: &mut [bool],
    first: u32,
    len: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut next = first as usize;
    while out.len() < len {
        let mark = seen.get_mut(next)?;
        if *mark || next == 0 {
            return None;
        }
        *mark = true;
        let p = page(next)?;
        if p[25] != P_OVERFLOW {
            return None;
        }
        let here = usize::from(order.u16(p, 22)?);
        let take = here.min(len - out.len());
        out.extend_from_slice(p.get(PAGE_HEADER..PAGE_HEADER + take)?);
        next = order.u32(p, 16)? as usize;
    }
    Some(out)
}
