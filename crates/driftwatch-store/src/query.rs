//! Reading alerts back: [`AlertQuery`]s (by time, container, rule, tag and priority, paged
//! by id) as SQL, on any connection (the agent's own, or a read-only one while the agent
//! writes); the [`AlertSource`] of a database another process writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_model::{
    Alert, AlertQuery, AlertSource, AlertSourceError, Order, RuleMatch, StoredAlert,
};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::StoreError;
use crate::columns::priority_code;
use crate::schema::{check_readable, classify};

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs `q` on `conn`; `path` names the database in errors.
pub(crate) fn run_query(
    conn: &Connection,
    path: &Path,
    q: &AlertQuery,
) -> Result<Vec<StoredAlert>, StoreError> {
    let mut sql = String::from("SELECT id, time_ns, json FROM alerts WHERE 1");
    let mut params: Vec<Box<dyn ToSql>> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, v: Box<dyn ToSql>| {
        params.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    // Times and ids are INTEGER (i64) columns; past their range a bound is past every row.
    let column = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(s) = q.since_ns {
        push(&mut sql, " AND time_ns >= ?", Box::new(column(s)));
    }
    if let Some(u) = q.until_ns {
        push(&mut sql, " AND time_ns < ?", Box::new(column(u)));
    }
    if let Some(c) = &q.container {
        // The one rule of `StoredAlert::is_about`: the name, or an id prefix of at least 4
        // hex characters in either case.
        if c.len() >= 4 && is_hex(c) {
            // GLOB on a hex prefix (no metacharacters) uses the index, LIKE would not.
            let lower = c.to_ascii_lowercase();
            push(
                &mut sql,
                " AND (container_id GLOB ?",
                Box::new(format!("{lower}*")),
            );
            push(&mut sql, " OR container_name = ?)", Box::new(c.clone()));
        } else {
            push(&mut sql, " AND container_name = ?", Box::new(c.clone()));
        }
    }
    if let Some(r) = &q.rule {
        let clause = match q.rule_match {
            RuleMatch::Contains => " AND instr(rule, ?) > 0",
            RuleMatch::Exact => " AND rule = ?",
        };
        push(&mut sql, clause, Box::new(r.clone()));
    }
    if let Some(t) = &q.tag {
        push(
            &mut sql,
            " AND instr(tags, ?) > 0",
            Box::new(format!(",{t},")),
        );
    }
    if let Some(p) = q.min_priority {
        push(&mut sql, " AND priority <= ?", Box::new(priority_code(p)));
    }
    if let Some(a) = q.after_id {
        push(&mut sql, " AND id > ?", Box::new(column(a)));
    }
    sql.push_str(match q.order {
        Order::NewestFirst => " ORDER BY id DESC",
        Order::OldestFirst => " ORDER BY id ASC",
    });
    push(
        &mut sql,
        " LIMIT ?",
        Box::new(i64::try_from(q.limit).unwrap_or(i64::MAX)),
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| classify(path, e))?;
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p.as_ref()).collect();
    let rows = stmt
        .query_map(refs.as_slice(), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(|e| classify(path, e))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, time_ns, json) = row.map_err(|e| classify(path, e))?;
        let alert: Alert = serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
            path: path.to_path_buf(),
            id,
            msg: e.to_string(),
        })?;
        // SQLite's ids start at 1; a time before 1970 reads as 1970.
        out.push(StoredAlert {
            id: u64::try_from(id).unwrap_or_default(),
            time_ns: u64::try_from(time_ns).unwrap_or_default(),
            alert,
        });
    }
    Ok(out)
}

/// The highest alert id stored so far on `conn` (0 when none).
pub(crate) fn last_id(conn: &Connection, path: &Path) -> Result<u64, StoreError> {
    let id: i64 = conn
        .query_row("SELECT coalesce(max(id), 0) FROM alerts", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    Ok(u64::try_from(id).unwrap_or_default())
}

/// A read-only view of a database that the agent may be writing at the same time (WAL
/// readers never block the writer).
pub struct AlertReader {
    path: PathBuf,
    conn: std::sync::Mutex<Connection>,
}

impl AlertReader {
    pub fn open(path: &Path) -> Result<AlertReader, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| classify(path, e))?;
        check_readable(&conn, path)?;
        Ok(AlertReader {
            path: path.to_path_buf(),
            conn: std::sync::Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The baselines stored in this database, as the JSON baseline file's text.
    pub fn baselines_json(&self) -> Result<String, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        crate::baselines::load_json(&conn, &self.path)
    }

    /// Stored action records (JSON objects), oldest first.
    pub fn actions(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        crate::actions::list(&conn, &self.path)
    }
}

impl AlertSource for AlertReader {
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, AlertSourceError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(run_query(&conn, &self.path, q)?)
    }

    fn last_id(&self) -> Result<u64, AlertSourceError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(last_id(&conn, &self.path)?)
    }
}
