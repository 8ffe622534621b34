//! The database's tables and their migrations: a `schema_version` table says which of
//! [`MIGRATIONS`] have run; a database from a newer driftwatch is refused, not guessed at.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::StoreError;

/// Each entry moves the schema from version `i` to `i + 1`. Append only: never edit one that
/// shipped.
const MIGRATIONS: &[&str] = &[
    // 1: alerts with the columns the queries filter on, actions, baselines.
    "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ns INTEGER NOT NULL,
        rule TEXT NOT NULL,
        priority INTEGER NOT NULL,
        source TEXT NOT NULL,
        hostname TEXT NOT NULL,
        container_id TEXT NOT NULL,
        container_name TEXT NOT NULL,
        image TEXT NOT NULL,
        k8s_ns TEXT NOT NULL,
        k8s_pod TEXT NOT NULL,
        tags TEXT NOT NULL,
        output TEXT NOT NULL,
        json TEXT NOT NULL
     );
     CREATE INDEX alerts_time ON alerts(time_ns);
     CREATE INDEX alerts_container_id ON alerts(container_id, time_ns);
     CREATE INDEX alerts_container_name ON alerts(container_name, time_ns);
     CREATE INDEX alerts_rule ON alerts(rule, time_ns);
     CREATE TABLE actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ns INTEGER NOT NULL,
        container_id TEXT NOT NULL,
        container_name TEXT NOT NULL,
        json TEXT NOT NULL
     );
     CREATE INDEX actions_time ON actions(time_ns);
     CREATE TABLE baselines (
        image_key TEXT PRIMARY KEY,
        json TEXT NOT NULL,
        updated_ns INTEGER NOT NULL
     );
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Maps an SQLite error on `path` to what it means for the user.
pub(crate) fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::NotWritable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        _ => StoreError::Sqlite {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// The version recorded in the database, 0 for a new one.
pub(crate) fn version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let has_table: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |_| Ok(true),
        )
        .optional()
        .map_err(|e| classify(path, e))?
        .unwrap_or(false);
    if !has_table {
        return Ok(0);
    }
    conn.query_row("SELECT max(version) FROM schema_version", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .map(|v| v.unwrap_or(0))
    .map_err(|e| classify(path, e))
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in its own transaction.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let mut current = version(conn, path)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    while current < SCHEMA_VERSION {
        let tx = conn.transaction().map_err(|e| classify(path, e))?;
        if current == 0 {
            tx.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                .map_err(|e| classify(path, e))?;
        }
        tx.execute_batch(MIGRATIONS[current as usize])
            .map_err(|e| classify(path, e))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [current + 1],
        )
        .map_err(|e| classify(path, e))?;
        tx.commit().map_err(|e| classify(path, e))?;
        current += 1;
    }
    Ok(())
}

/// Refuses a database this build cannot read (for read-only opens, which never migrate).
pub(crate) fn check_readable(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    match version(conn, path)? {
        0 => Err(StoreError::Empty {
            path: path.to_path_buf(),
        }),
        v if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: v,
            supported: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    }
}
