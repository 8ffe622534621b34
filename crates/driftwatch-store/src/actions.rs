//! The response playbooks' action records, kept as the JSON objects the actions log holds.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::StoreError;
use driftwatch_model::clock::{now_ns, parse_time_ns};

use crate::columns::column_ns;
use crate::schema::classify;

/// Appends one action record (a JSON object with `time` and `container.{id,name}`).
pub(crate) fn append(
    conn: &Connection,
    path: &Path,
    record: &serde_json::Value,
) -> Result<(), StoreError> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let time_ns = record["time"]
        .as_str()
        .and_then(parse_time_ns)
        .map_or_else(|| column_ns(now_ns()), column_ns);
    conn.prepare_cached(
        "INSERT INTO actions (time_ns, container_id, container_name, json) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            time_ns,
            s(&record["container"]["id"]),
            s(&record["container"]["name"]),
            record.to_string()
        ])
    })
    .map(|_| ())
    .map_err(|e| classify(path, e))
}

/// Every stored record, oldest first.
pub(crate) fn list(conn: &Connection, path: &Path) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT json FROM actions ORDER BY id")
        .map_err(|e| classify(path, e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| classify(path, e))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| classify(path, e))
}
