//! Reading alerts back: filters by time, container, rule, tag and priority, paged by id, on
//! any connection (the agent's own, or a read-only one while the agent writes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use driftwatch_model::{Alert, Priority};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::StoreError;
use crate::columns::priority_code;
use crate::schema::{check_readable, classify};

/// Which alerts, in which order. The default is every alert, newest first, at most 100.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertQuery {
    /// Nanoseconds since the epoch, inclusive.
    pub since_ns: Option<i64>,
    /// Nanoseconds since the epoch, exclusive.
    pub until_ns: Option<i64>,
    /// A container id prefix (hex) or an exact container name.
    pub container: Option<String>,
    /// The exact rule name, or a substring of it.
    pub rule: Option<String>,
    /// Alerts carrying this tag.
    pub tag: Option<String>,
    /// This priority or a more severe one.
    pub min_priority: Option<Priority>,
    /// Only alerts stored after this id (for following new ones).
    pub after_id: Option<i64>,
    pub limit: usize,
    pub order: Order,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

impl Default for AlertQuery {
    fn default() -> Self {
        AlertQuery {
            since_ns: None,
            until_ns: None,
            container: None,
            rule: None,
            tag: None,
            min_priority: None,
            after_id: None,
            limit: 100,
            order: Order::NewestFirst,
        }
    }
}

/// One stored alert: its id (increasing in the order alerts were stored, never reused) and
/// the alert as it was emitted.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAlert {
    pub id: i64,
    pub time_ns: i64,
    pub alert: Alert,
}

/// Something that answers alert queries: the agent's [`crate::Store`] or an
/// [`AlertReader`] on a database another process writes.
pub trait AlertSource: Send + Sync {
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError>;
}

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
    if let Some(s) = q.since_ns {
        push(&mut sql, " AND time_ns >= ?", Box::new(s));
    }
    if let Some(u) = q.until_ns {
        push(&mut sql, " AND time_ns < ?", Box::new(u));
    }
    if let Some(c) = &q.container {
        if is_hex(c) {
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
        push(&mut sql, " AND instr(rule, ?) > 0", Box::new(r.clone()));
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
        push(&mut sql, " AND id > ?", Box::new(a));
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
        out.push(StoredAlert { id, time_ns, alert });
    }
    Ok(out)
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

    /// The highest alert id stored so far (0 when none).
    pub fn last_id(&self) -> Result<i64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("SELECT coalesce(max(id), 0) FROM alerts", [], |r| r.get(0))
            .map_err(|e| classify(&self.path, e))
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
    fn query_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        run_query(&conn, &self.path, q)
    }
}
