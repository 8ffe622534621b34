//! SUSE's NDB `Packages.db` (rpm's own format, openSUSE and SLES 15): a slot table of
//! (package index, block offset, block count) and blobs in 16-byte blocks, each blob an rpm
//! header behind a small head, all little-endian.

const HDR_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_MAGIC: &[u8; 4] = b"BlbS";
const PAGE: usize = 4096;
const SLOT: usize = 16;
const BLOCK: usize = 16;
/// The file header takes the first two slots.
const HEADER: usize = 32;

pub(super) fn is_ndb(db: &[u8]) -> bool {
    db.get(..4) == Some(HDR_MAGIC)
}

/// Every blob a live slot points at whose head names the same package index. `None` when
/// `db` is not an NDB package file.
pub(super) fn ndb_blobs(db: &[u8]) -> Option<Vec<Vec<u8>>> {
    if !is_ndb(db) || le32(db, 4)? != 0 {
        return None;
    }
    let slot_pages = le32(db, 12)? as usize;
    let slots_end = slot_pages.checked_mul(PAGE)?.min(db.len());
    let mut out = Vec::new();
    for slot in db.get(HEADER..slots_end)?.chunks_exact(SLOT) {
        let (Some(idx), Some(off), Some(cnt)) = (le32(slot, 4), le32(slot, 8), le32(slot, 12))
        else {
            continue;
        };
        if &slot[..4] != SLOT_MAGIC || idx == 0 {
            continue;
        }
        let start = (off as usize).checked_mul(BLOCK)?;
        let span = (cnt as usize).checked_mul(BLOCK)?;
        let Some(blob) = start.checked_add(span).and_then(|end| db.get(start..end)) else {
            continue;
        };
        if blob.get(..4) != Some(BLOB_MAGIC) || le32(blob, 4) != Some(idx) {
            continue;
        }
        let Some(len) = le32(blob, 12) else { continue };
        if let Some(data) = blob.get(16..16usize.saturating_add(len as usize)) {
            out.push(data.to_vec());
        }
    }
    Some(out)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
