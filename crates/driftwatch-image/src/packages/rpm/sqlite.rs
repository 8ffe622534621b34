//! A read-only reader of the SQLite file format for one purpose: the rows of rpm's
//! `Packages(hnum, blob)` table in `rpmdb.sqlite`, with the committed frames of its
//! write-ahead log laid over the main file.
//!
//! Written here rather than linking SQLite because the file is the container's: SQLite
//! itself trusts its database (a crafted file is a known route to memory bugs in it, and it
//! would want to write a `-shm` and recover a hot journal beside the container's file), while
//! this reader needs only table b-trees, overflow chains and record headers. Every page is
//! visited at most once per read (a bitmap), so loops and shared subtrees cost nothing, and
//! work and memory stay proportional to the file.

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const LEAF_TABLE: u8 = 0x0d;
const INTERIOR_TABLE: u8 = 0x05;
const WAL_MAGIC_LE: u32 = 0x377f_0682;
const WAL_MAGIC_BE: u32 = 0x377f_0683;

/// The database pages, each from the WAL's last committed frame for it or else from the
/// main file.
struct Pages<'a> {
    db: &'a [u8],
    page_size: usize,
    usable: usize,
    count: usize,
    /// Page number (1-based) -> the WAL frame's page bytes.
    wal: std::collections::HashMap<u32, &'a [u8]>,
}

impl<'a> Pages<'a> {
    fn open(db: &'a [u8], wal: Option<&'a [u8]>) -> Option<Self> {
        if db.get(..16)? != MAGIC {
            return None;
        }
        let page_size = match u16::from_be_bytes([*db.get(16)?, *db.get(17)?]) {
            1 => 65536,
            n if n >= 512 && n.is_power_of_two() => usize::from(n),
            _ => return None,
        };
        let reserved = usize::from(*db.get(20)?);
        let usable = page_size.checked_sub(reserved).filter(|u| *u >= 480)?;
        let mut pages = Pages {
            db,
            page_size,
            usable,
            count: db.len() / page_size,
            wal: Default::default(),
        };
        if let Some(wal) = wal {
            pages.overlay_wal(wal);
        }
        Some(pages)
    }

    /// Lays the WAL's committed frames over the main file. A frame counts when its salts
    /// match the WAL header's and the running checksum holds up to it; only frames up to the
    /// last commit frame (one whose "database size" field is set) are used, as SQLite does.
    fn overlay_wal(&mut self, wal: &'a [u8]) {
        let Some(head) = wal.get(..32) else { return };
        let magic = be32(head, 0);
        let big = match magic {
            WAL_MAGIC_BE => true,
            WAL_MAGIC_LE => false,
            _ => return,
        };
        if be32(head, 8) as usize != self.page_size {
            return;
        }
        let salts = &head[16..24];
        let mut sum = wal_checksum(big, &head[..24], (0, 0));
        if (sum.0, sum.1) != (be32(head, 24), be32(head, 28)) {
            return;
        }
        let mut pending = Vec::new();
        let mut committed = std::collections::HashMap::new();
        let mut db_pages = None;
        for frame in wal[32..].chunks_exact(24 + self.page_size) {
            let (fh, page) = frame.split_at(24);
            if &fh[8..16] != salts {
                break;
            }
            sum = wal_checksum(big, &fh[..8], sum);
            sum = wal_checksum(big, page, sum);
            if (sum.0, sum.1) != (be32(fh, 16), be32(fh, 20)) {
                break;
            }
            pending.push((be32(fh, 0), page));
            let commit_size = be32(fh, 4);
            if commit_size != 0 {
                committed.extend(pending.drain(..));
                db_pages = Some(commit_size as usize);
            }
        }
        if let Some(n) = db_pages {
            // A page past the main file exists only as a frame: a larger size is a lie, and
            // would size the visited-page bitmap from 4 bytes of the container's choosing.
            self.count = n.min(self.count + committed.len());
            self.wal = committed;
        }
    }

    /// Page `n` (1-based), `None` past the end.
    fn get(&self, n: u32) -> Option<&'a [u8]> {
        let i = n as usize;
        if i == 0 || i > self.count {
            return None;
        }
        if let Some(p) = self.wal.get(&n) {
            return Some(p);
        }
        let start = (i - 1).checked_mul(self.page_size)?;
        self.db.get(start..start + self.page_size)
    }
}

/// SQLite's WAL checksum: two running sums over pairs of 32-bit words, in the byte order the
/// WAL magic names.
fn wal_checksum(big: bool, bytes: &[u8], (mut s0, mut s1): (u32, u32)) -> (u32, u32) {
    let word = |c: &[u8]| {
        let b = [c[0], c[1], c[2], c[3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    for pair in bytes.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Pages already read in this pass: a page reached twice (a loop, or a crafted shared
/// subtree or overflow chain) is not read again.
struct Seen(Vec<u64>);

impl Seen {
    fn new(pages: usize) -> Self {
        Seen(vec![0; pages.div_ceil(64) + 1])
    }

    /// True the first time `n` is marked.
    fn mark(&mut self, n: u32) -> bool {
        let (w, b) = (n as usize / 64, n % 64);
        match self.0.get_mut(w) {
            Some(word) if *word & (1 << b) == 0 => {
                *word |= 1 << b;
                true
            }
            _ => false,
        }
    }
}

/// The `blob` column of every row of table `table`, found through the schema table.
/// `None` when the file is not a SQLite database or has no such table; damaged pages and
/// rows are skipped.
pub(super) fn table_blobs(db: &[u8], wal: Option<&[u8]>, table: &str) -> Option<Vec<Vec<u8>>> {
    let pages = Pages::open(db, wal)?;
    let mut seen = Seen::new(pages.count);
    let mut root = None;
    walk_table(&pages, &mut seen, 1, |record| {
        let cols = columns(record, 5);
        let is = |i: usize, want: &[u8]| matches!(cols.get(i), Some(Value::Text(t)) if t.eq_ignore_ascii_case(want));
        if root.is_none()
            && is(0, b"table")
            && is(1, table.as_bytes())
            && let Some(Value::Int(n)) = cols.get(3)
        {
            root = u32::try_from(*n).ok();
        }
    });
    let root = root?;
    let mut out = Vec::new();
    let mut seen = Seen::new(pages.count);
    walk_table(&pages, &mut seen, root, |record| {
        // `hnum INTEGER PRIMARY KEY` is the rowid: stored as NULL; the blob is column 1.
        if let Some(Value::Blob(b)) = columns(record, 2).get(1) {
            out.push(b.to_vec());
        }
    });
    Some(out)
}

/// Calls `row` with each record (payload) of the table b-tree rooted at `root`, depth-first
/// with an explicit stack.
fn walk_table(pages: &Pages<'_>, seen: &mut Seen, root: u32, mut row: impl FnMut(&[u8])) {
    let mut stack = vec![root];
    let mut payload = Vec::new();
    while let Some(n) = stack.pop() {
        if !seen.mark(n) {
            continue;
        }
        let Some(page) = pages.get(n) else { continue };
        let head = if n == 1 { 100 } else { 0 };
        let Some(&kind) = page.get(head) else {
            continue;
        };
        let cells = u16::from_be_bytes([page[head + 3], page[head + 4]]) as usize;
        let ptrs_at = head + if kind == INTERIOR_TABLE { 12 } else { 8 };
        let Some(ptrs) = page.get(ptrs_at..ptrs_at + cells * 2) else {
            continue;
        };
        let cell_at = |i: usize| usize::from(u16::from_be_bytes([ptrs[2 * i], ptrs[2 * i + 1]]));
        match kind {
            INTERIOR_TABLE => {
                let Some(right) = page.get(head + 8..head + 12) else {
                    continue;
                };
                stack.push(be32(right, 0));
                // Pushed in reverse so rows come out in rowid order.
                for i in (0..cells).rev() {
                    if let Some(c) = page.get(cell_at(i)..cell_at(i) + 4) {
                        stack.push(be32(c, 0));
                    }
                }
            }
            LEAF_TABLE => {
                for i in 0..cells {
                    payload.clear();
                    if leaf_payload(pages, seen, page, cell_at(i), &mut payload).is_some() {
                        row(&payload);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The whole payload of the table-leaf cell at `at`, following its overflow chain.
fn leaf_payload(
    pages: &Pages<'_>,
    seen: &mut Seen,
    page: &[u8],
    at: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    let (len, n) = varint(page.get(at..)?)?;
    let (_rowid, m) = varint(page.get(at + n..)?)?;
    let body = at + n + m;
    let u = pages.usable;
    // A payload is never larger than the file that holds it.
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= pages.count * u)?;
    let max_local = u - 35;
    let local = if len <= max_local {
        len
    } else {
        let min_local = (u - 12) * 32 / 255 - 23;
        let k = min_local + (len - min_local) % (u - 4);
        if k <= max_local { k } else { min_local }
    };
    out.extend_from_slice(page.get(body..body + local)?);
    if local == len {
        return Some(());
    }
    let mut next = be32(page.get(body + local..body + local + 4)?, 0);
    while out.len() < len {
        if !seen.mark(next) {
            return None;
        }
        let ov = pages.get(next)?;
        let take = (len - out.len()).min(u - 4);
        out.extend_from_slice(ov.get(4..4 + take)?);
        next = be32(ov, 0);
    }
    Some(())
}

enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
    Other,
}

/// The first `want` columns of a record (header of serial types, then the values).
fn columns(record: &[u8], want: usize) -> Vec<Value<'_>> {
    let mut out = Vec::new();
    let Some((hlen, n)) = varint(record) else {
        return out;
    };
    let Some(hlen) = usize::try_from(hlen).ok().filter(|h| *h <= record.len()) else {
        return out;
    };
    let mut at = n;
    let mut body = hlen;
    while at < hlen && out.len() < want {
        let Some((t, n)) = varint(&record[at..hlen]) else {
            break;
        };
        at += n;
        let size = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return out,
            t => usize::try_from((t - 12) / 2).unwrap_or(usize::MAX),
        };
        let Some(v) = body.checked_add(size).and_then(|e| record.get(body..e)) else {
            break;
        };
        body += size;
        out.push(match t {
            0 => Value::Null,
            1..=6 => {
                let mut x = if v[0] & 0x80 != 0 { -1i64 } else { 0 };
                for b in v {
                    x = (x << 8) | i64::from(*b);
                }
                Value::Int(x)
            }
            8 => Value::Int(0),
            9 => Value::Int(1),
            t if t >= 12 && t % 2 == 0 => Value::Blob(v),
            t if t >= 13 => Value::Text(v),
            _ => Value::Other,
        });
    }
    out
}

/// SQLite's variable-length integer: up to 9 bytes, 7 bits each, the 9th all 8.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for i in 0..9 {
        let c = *b.get(i)?;
        if i == 8 {
            return Some(((x << 8) | u64::from(c), 9));
        }
        x = (x << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL whose commit frame claims 4 billion pages (checksums recomputed, as a
    /// container can): the page count stays what the file and the frames can hold.
    #[test]
    fn wal_commit_size_is_bounded_by_the_frames() {
        let fixture = crate::packages::rpm::tests::fixture;
        let db = fixture("image.sqlite");
        let mut wal = fixture("pending.sqlite-wal");
        let big = be32(&wal, 0) == WAL_MAGIC_BE;
        let page_size = be32(&wal, 8) as usize;
        let mut sum = wal_checksum(big, &wal[..24], (0, 0));
        let mut at = 32;
        while at + 24 + page_size <= wal.len() {
            if be32(&wal, at + 4) != 0 {
                wal[at + 4..at + 8].copy_from_slice(&u32::MAX.to_be_bytes());
            }
            sum = wal_checksum(big, &wal[at..at + 8], sum);
            sum = wal_checksum(big, &wal[at + 24..at + 24 + page_size], sum);
            wal[at + 16..at + 20].copy_from_slice(&sum.0.to_be_bytes());
            wal[at + 20..at + 24].copy_from_slice(&sum.1.to_be_bytes());
            at += 24 + page_size;
        }
        let pages = Pages::open(&db, Some(&wal)).unwrap();
        assert!(!pages.wal.is_empty(), "the re-checksummed frames are used");
        assert_eq!(pages.count, db.len() / 4096 + pages.wal.len());
        assert_eq!(
            table_blobs(&db, Some(&wal), "Packages").map(|b| b.len()),
            Some(5)
        );
    }

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }
}
