//! rpm's package databases (UBI, RHEL, Fedora, Amazon Linux, SUSE images), parsed without
//! I/O from bytes the container controls: the sqlite `rpmdb.sqlite` (rpm 4.16 and later),
//! the Berkeley DB hash `Packages` (RHEL/CentOS 7 and 8, Amazon Linux 2) and SUSE's NDB
//! `Packages.db`. Each stores one rpm header per installed package.

mod bdb;
mod header;
mod ndb;
mod sqlite;

use super::{Ecosystem, Package, PackageFiles};

pub use header::parse_rpm_header;

/// Packages and their files from `rpmdb.sqlite`, with the committed frames of its
/// `rpmdb.sqlite-wal` laid over it when given (rpm checkpoints and removes the WAL when it
/// closes the database cleanly; while a transaction runs, or after rpm was killed, committed
/// rows can be only there). Empty when the file is not an rpm sqlite database.
pub fn parse_rpmdb_sqlite(db: &[u8], wal: Option<&[u8]>) -> Vec<PackageFiles> {
    headers(sqlite::table_blobs(db, wal, "Packages"))
}

/// Packages and their files from a Berkeley DB hash `Packages`.
pub fn parse_rpmdb_bdb(db: &[u8]) -> Vec<PackageFiles> {
    headers(bdb::hash_values(db))
}

/// Packages and their files from SUSE's NDB `Packages.db`.
pub fn parse_rpmdb_ndb(db: &[u8]) -> Vec<PackageFiles> {
    headers(ndb::ndb_blobs(db))
}

/// Packages and their files from any of the three formats, told apart by their first bytes
/// (the file name does not decide: `Packages` has been both Berkeley DB and, after a
/// conversion, something else). `wal` is the sqlite database's `-wal` file, if any.
pub fn parse_rpmdb(db: &[u8], wal: Option<&[u8]>) -> Vec<PackageFiles> {
    try_parse_rpmdb(db, wal).unwrap_or_default()
}

/// As [`parse_rpmdb`], but `None` when `db` is none of the three formats (or a sqlite file
/// without rpm's `Packages` table), so a caller can say "not parsed" rather than "empty".
pub fn try_parse_rpmdb(db: &[u8], wal: Option<&[u8]>) -> Option<Vec<PackageFiles>> {
    blobs(db, wal).map(|b| headers(Some(b)))
}

/// The packages of any rpm database, without their files; `None` as for [`try_parse_rpmdb`].
///
/// rpm installs some names several times at once (`gpg-pubkey`, one per imported key;
/// install-only packages such as `kernel`), while the package diff pairs the two sides by name
/// and architecture: such a name becomes one package whose version lists all of them
/// (`gpg-pubkey 5a6340b3-6229229e, fd431d51-4ae0493b`), so importing a key reads as a change of
/// that list rather than disappearing behind another version.
pub fn try_parse_rpm_packages(db: &[u8], wal: Option<&[u8]>) -> Option<Vec<Package>> {
    let mut all: Vec<Package> = blobs(db, wal)?
        .iter()
        .filter_map(|b| header::parse_rpm_package(b))
        .collect();
    all.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
    let mut out: Vec<Package> = Vec::with_capacity(all.len());
    for p in all {
        match out.last_mut() {
            Some(last) if last.name == p.name && last.arch == p.arch => {
                last.version.push_str(", ");
                last.version.push_str(&p.version);
            }
            _ => out.push(p),
        }
    }
    Some(out)
}

/// The packages of any rpm database, without their files.
pub fn parse_rpm_packages(db: &[u8], wal: Option<&[u8]>) -> Vec<Package> {
    try_parse_rpm_packages(db, wal).unwrap_or_default()
}

/// Each stored header, in whichever format `db` is.
fn blobs(db: &[u8], wal: Option<&[u8]>) -> Option<Vec<Vec<u8>>> {
    if ndb::is_ndb(db) {
        ndb::ndb_blobs(db)
    } else if bdb::is_bdb_hash(db) {
        bdb::hash_values(db)
    } else {
        sqlite::table_blobs(db, wal, "Packages")
    }
}

/// The name of the write-ahead log SQLite keeps beside a database: `rpmdb.sqlite-wal`.
pub const WAL_SUFFIX: &str = "-wal";

fn headers(blobs: Option<Vec<Vec<u8>>>) -> Vec<PackageFiles> {
    let mut out: Vec<PackageFiles> = blobs
        .unwrap_or_default()
        .iter()
        .filter_map(|b| parse_rpm_header(b))
        .collect();
    out.sort_by(|a, b| {
        (&a.package.name, &a.package.arch, &a.package.version).cmp(&(
            &b.package.name,
            &b.package.arch,
            &b.package.version,
        ))
    });
    debug_assert!(out.iter().all(|p| p.ecosystem == Ecosystem::Rpm));
    out
}

#[cfg(test)]
pub(crate) mod tests;
