//! The store on real SQLite files in temporary directories: what goes in comes back out,
//! filters and paging, retention, baselines, concurrent read-only readers, bad files, a full
//! queue, and a filesystem that runs out of space (a small tmpfs, as root).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use driftwatch_model::{Alert, Priority};
use driftwatch_store::{AlertQuery, AlertReader, AlertSource, Order, RuleMatch, Store, StoreError};

const SEC: i64 = 1_000_000_000;

/// A stored alert's time (ns since the epoch, after 1970) from this file's signed times.
fn ns(t: i64) -> u64 {
    u64::try_from(t).expect("a time after 1970")
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn alert(time_ns: i64, rule: &str, prio: Priority, id: &str, name: &str, tags: &[&str]) -> Alert {
    Alert {
        time: Alert::format_time(time_ns as u64),
        rule: rule.into(),
        priority: prio,
        source: "syscall".into(),
        hostname: "host1".into(),
        output: format!("{rule} in {name}"),
        // Sorted, as an alert's JSON has them (Falco's tags are a set): what is read back
        // equals what was recorded.
        tags: tags
            .iter()
            .map(|t| t.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        output_fields: [
            ("container.id".to_string(), serde_json::json!(&id[..12])),
            ("container.full_id".to_string(), serde_json::json!(id)),
            ("container.name".to_string(), serde_json::json!(name)),
            (
                "container.image.repository".to_string(),
                serde_json::json!("app"),
            ),
            ("container.image.tag".to_string(), serde_json::json!("1")),
            ("proc.pid".to_string(), serde_json::json!(42)),
        ]
        .into_iter()
        .collect(),
    }
}

const WEB: &str = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
const DB: &str = "aa00bb11cc22dd33ee44ff5566778899aabbccddeeff00112233445566778899";

fn config(path: &Path) -> driftwatch_config::StoreConfig {
    driftwatch_config::StoreConfig {
        path: path.to_path_buf(),
        ..Default::default()
    }
}

fn rules(v: &[driftwatch_store::StoredAlert]) -> Vec<&str> {
    v.iter().map(|s| s.alert.rule.as_str()).collect()
}

#[test]
fn alerts_round_trip_with_ids_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/driftwatch.db");
    let store = Store::open(&config(&path)).unwrap();
    let t = now_ns();
    let a = alert(
        t,
        "Drop and execute new binary in container",
        Priority::Critical,
        WEB,
        "web",
        &["drift", "container"],
    );
    store.record_alert(&a);
    assert!(store.flush());
    let got = store.query_alerts(&AlertQuery::default()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].alert, a, "the Falco JSON comes back as it went in");
    assert_eq!(got[0].time_ns, ns(t));
    assert!(got[0].id > 0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let s = store.snapshot();
    assert_eq!(
        (s.queued, s.written, s.dropped, s.write_errors),
        (1, 1, 0, 0)
    );
    assert!(s.db_bytes > 0);
    assert_eq!(s.oldest_alert_ns, Some(t));
    assert_eq!(s.degraded, None);
}

#[test]
fn alerts_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let t = now_ns();
    {
        let store = Store::open(&config(&path)).unwrap();
        for i in 0..10 {
            store.record_alert(&alert(
                t + i,
                &format!("r{i}"),
                Priority::Warning,
                WEB,
                "web",
                &[],
            ));
        }
        // No flush: dropping the store writes what is queued.
    }
    let store = Store::open(&config(&path)).unwrap();
    let got = store.query_alerts(&AlertQuery::default()).unwrap();
    assert_eq!(got.len(), 10);
    store.record_alert(&alert(t + 10, "r10", Priority::Warning, WEB, "web", &[]));
    assert!(store.flush());
    let got = store.query_alerts(&AlertQuery::default()).unwrap();
    assert_eq!(got[0].alert.rule, "r10");
    assert!(got[0].id > got[1].id, "ids keep increasing across restarts");
}

fn filled() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(&dir.path().join("d.db"))).unwrap();
    let t = now_ns() - 3600 * SEC;
    let list = [
        alert(
            t,
            "Drop and execute new binary in container",
            Priority::Critical,
            WEB,
            "web",
            &["drift", "binary_drift"],
        ),
        alert(
            t + 60 * SEC,
            "Outbound connection not in baseline",
            Priority::Warning,
            WEB,
            "web",
            &["network_drift"],
        ),
        alert(
            t + 120 * SEC,
            "Drop and execute new binary in container",
            Priority::Critical,
            DB,
            "db",
            &["drift", "binary_drift"],
        ),
        alert(
            t + 180 * SEC,
            "Config file modified",
            Priority::Notice,
            DB,
            "db",
            &["drift"],
        ),
        alert(
            t + 240 * SEC,
            "Debug thing",
            Priority::Debug,
            WEB,
            "3f2a",
            &[],
        ),
    ];
    for a in &list {
        store.record_alert(a);
    }
    assert!(store.flush());
    (dir, store, t)
}

#[test]
fn filters_by_container_rule_tag_priority_and_time() {
    let (_dir, store, t) = filled();
    let q = |q: AlertQuery| {
        rules(&store.query_alerts(&q).unwrap())
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    // A container by name (exact) or by id prefix; "3f2a" is both a prefix of WEB and a name.
    assert_eq!(
        q(AlertQuery {
            container: Some("db".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("3f2a1b".into()),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("3F2A1B9C".into()),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("web".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("3f2a".into()),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("we".into()),
            ..Default::default()
        })
        .len(),
        0,
        "names match exactly"
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("3f2".into()),
            ..Default::default()
        })
        .len(),
        0,
        "an id prefix has at least 4 characters, as the API's ring requires"
    );
    assert_eq!(
        q(AlertQuery {
            container: Some("nosuch".into()),
            ..Default::default()
        })
        .len(),
        0
    );
    // Rule: exact or substring.
    assert_eq!(
        q(AlertQuery {
            rule: Some("Drop and execute new binary in container".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(AlertQuery {
            rule: Some("baseline".into()),
            ..Default::default()
        }),
        ["Outbound connection not in baseline"]
    );
    // The API's `rule=` names a rule exactly.
    assert_eq!(
        q(AlertQuery {
            rule: Some("baseline".into()),
            rule_match: RuleMatch::Exact,
            ..Default::default()
        })
        .len(),
        0
    );
    assert_eq!(
        q(AlertQuery {
            rule: Some("Outbound connection not in baseline".into()),
            rule_match: RuleMatch::Exact,
            ..Default::default()
        }),
        ["Outbound connection not in baseline"]
    );
    // Tags match whole tags only.
    assert_eq!(
        q(AlertQuery {
            tag: Some("drift".into()),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        q(AlertQuery {
            tag: Some("binary".into()),
            ..Default::default()
        })
        .len(),
        0
    );
    // At least a priority.
    assert_eq!(
        q(AlertQuery {
            min_priority: Some(Priority::Critical),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(AlertQuery {
            min_priority: Some(Priority::Notice),
            ..Default::default()
        })
        .len(),
        4
    );
    // Time: since inclusive, until exclusive.
    assert_eq!(
        q(AlertQuery {
            since_ns: Some(ns(t + 120 * SEC)),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        q(AlertQuery {
            until_ns: Some(ns(t + 120 * SEC)),
            ..Default::default()
        })
        .len(),
        2
    );
    assert_eq!(
        q(AlertQuery {
            since_ns: Some(ns(t + 60 * SEC)),
            until_ns: Some(ns(t + 180 * SEC)),
            container: Some("db".into()),
            ..Default::default()
        }),
        ["Drop and execute new binary in container"]
    );
    // Combined filters are AND.
    assert_eq!(
        q(AlertQuery {
            container: Some("web".into()),
            tag: Some("binary_drift".into()),
            min_priority: Some(Priority::Critical),
            ..Default::default()
        })
        .len(),
        1
    );
}

#[test]
fn ordering_limit_and_after_id() {
    let (_dir, store, _) = filled();
    let newest = store.query_alerts(&AlertQuery::default()).unwrap();
    let oldest = store
        .query_alerts(&AlertQuery {
            order: Order::OldestFirst,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(newest.len(), 5);
    assert_eq!(newest[0].alert.rule, "Debug thing");
    assert_eq!(
        oldest[0].alert.rule,
        "Drop and execute new binary in container"
    );
    let ids: Vec<u64> = oldest.iter().map(|s| s.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let page = store
        .query_alerts(&AlertQuery {
            limit: 2,
            order: Order::OldestFirst,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 2);
    let rest = store
        .query_alerts(&AlertQuery {
            after_id: Some(page[1].id),
            order: Order::OldestFirst,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0].id, ids[2]);
    let none = store
        .query_alerts(&AlertQuery {
            after_id: Some(ids[4]),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn retention_deletes_alerts_older_than_max_age_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let now = now_ns();
    {
        let store = Store::open(&config(&path)).unwrap();
        store.record_alert(&alert(
            now - 3 * 86400 * SEC,
            "old",
            Priority::Warning,
            WEB,
            "web",
            &[],
        ));
        store.record_alert(&alert(
            now - 2 * 3600 * SEC,
            "recent",
            Priority::Warning,
            WEB,
            "web",
            &[],
        ));
        store.record_action(&serde_json::json!({"time": Alert::format_time((now - 3 * 86400 * SEC) as u64), "action": "kill", "container": {"id": "abc"}})).unwrap();
        store.record_action(&serde_json::json!({"time": Alert::format_time(now as u64), "action": "kill", "container": {"id": "abc"}})).unwrap();
        assert!(store.flush());
        assert_eq!(store.query_alerts(&AlertQuery::default()).unwrap().len(), 2);
    }
    let cfg = driftwatch_config::StoreConfig {
        max_age: Duration::from_secs(86400),
        ..config(&path)
    };
    let store = Store::open(&cfg).unwrap();
    assert!(store.flush(), "retention ran before the flush was answered");
    assert_eq!(
        rules(&store.query_alerts(&AlertQuery::default()).unwrap()),
        ["recent"]
    );
    assert_eq!(store.actions().unwrap().len(), 1);
    assert_eq!(store.snapshot().retention_deleted, 1);
    assert_eq!(store.snapshot().oldest_alert_ns, Some(now - 2 * 3600 * SEC));
}

#[test]
fn retention_keeps_the_database_under_max_bytes_by_deleting_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let t = now_ns();
    let big = "x".repeat(2000);
    {
        let store = Store::open(&config(&path)).unwrap();
        for i in 0..3000 {
            let mut a = alert(t + i, &format!("r{i}"), Priority::Warning, WEB, "web", &[]);
            a.output = big.clone();
            store.record_alert(&a);
        }
        assert!(store.flush());
    }
    let before = std::fs::metadata(&path).unwrap().len();
    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, 2, "incremental auto_vacuum");
    drop(c);
    assert!(before > 6_000_000, "{before}");
    let max = 2 * 1024 * 1024;
    let store = Store::open(&driftwatch_config::StoreConfig {
        max_bytes: max,
        ..config(&path)
    })
    .unwrap();
    assert!(store.flush());
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after <= max, "file is {after} bytes, over {max}");
    let left = store
        .query_alerts(&AlertQuery {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    assert!(!left.is_empty() && left.len() < 3000, "{}", left.len());
    assert_eq!(left[0].alert.rule, "r2999", "the newest are kept");
    let deleted = store.snapshot().retention_deleted;
    assert_eq!(deleted as usize + left.len(), 3000);
    // Freed pages are reused: writing as much again keeps the file near the limit.
    let n = left.len();
    for i in 0..n as i64 {
        let mut a = alert(t + 5000 + i, "again", Priority::Warning, WEB, "web", &[]);
        a.output = big.clone();
        store.record_alert(&a);
    }
    assert!(store.flush());
    drop(store);
    let reopened = Store::open(&driftwatch_config::StoreConfig {
        max_bytes: max,
        ..config(&path)
    })
    .unwrap();
    assert!(reopened.flush());
    assert!(std::fs::metadata(&path).unwrap().len() <= max);
    drop(reopened);
}

/// One container's alert storm does not push a neighbour's (older) alerts out: over
/// `max_bytes`, the container over its share loses its oldest first.
#[test]
fn retention_takes_from_the_container_over_its_share_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let t = now_ns();
    let big = "x".repeat(2000);
    {
        let store = Store::open(&config(&path)).unwrap();
        for i in 0..100 {
            let mut a = alert(t + i, "neighbour", Priority::Warning, DB, "db", &[]);
            a.output = big.clone();
            store.record_alert(&a);
        }
        for i in 0..3000 {
            let mut a = alert(t + 1000 + i, "storm", Priority::Warning, WEB, "web", &[]);
            a.output = big.clone();
            store.record_alert(&a);
        }
        assert!(store.flush());
    }
    let max = 2 * 1024 * 1024;
    let store = Store::open(&driftwatch_config::StoreConfig {
        max_bytes: max,
        container_percent: 50,
        ..config(&path)
    })
    .unwrap();
    assert!(store.flush());
    assert!(std::fs::metadata(&path).unwrap().len() <= max);
    let left = store
        .query_alerts(&AlertQuery {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    let neighbour = left.iter().filter(|a| a.alert.rule == "neighbour").count();
    let storm = left.iter().filter(|a| a.alert.rule == "storm").count();
    assert_eq!(
        neighbour, 100,
        "the neighbour's alerts are all kept ({storm} of the storm's)"
    );
    assert!(storm > 0 && storm < 3000, "{storm}");
    assert_eq!(left[0].alert.rule, "storm", "the storm's newest are kept");
    assert!(
        store
            .stats()
            .retention_over_share
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[test]
fn queue_full_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let store = Store::open(&driftwatch_config::StoreConfig {
        queue_size: 8,
        ..config(&path)
    })
    .unwrap();
    // Hold the write lock from another connection so the writer cannot drain the queue.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t = now_ns();
    for i in 0..10_000 {
        store.record_alert(&alert(t + i, "burst", Priority::Warning, WEB, "web", &[]));
    }
    let s = store.snapshot();
    assert_eq!(s.queued + s.dropped, 10_000);
    // The writer holds at most a batch, the queue at most 8: nearly all were dropped.
    assert!(s.dropped >= 10_000 - 8 - 4096, "{s:?}");
    blocker.execute_batch("COMMIT").unwrap();
    assert!(store.flush());
    let s = store.snapshot();
    assert_eq!(s.written, s.queued, "{s:?}");
    let stored = store
        .query_alerts(&AlertQuery {
            limit: 100_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stored.len() as u64, s.written);
}

#[test]
fn a_reader_reads_while_the_store_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let store = Store::open(&config(&path)).unwrap();
    let reader = AlertReader::open(&path).unwrap();
    assert_eq!(reader.last_id().unwrap(), 0);
    let t = now_ns();
    let mut seen = 0;
    let mut last = 0;
    for round in 0..20 {
        for i in 0..50 {
            store.record_alert(&alert(
                t + round * 100 + i,
                "r",
                Priority::Warning,
                WEB,
                "web",
                &[],
            ));
        }
        // Follow by id while the writer keeps writing.
        let new = reader
            .query_alerts(&AlertQuery {
                after_id: Some(last),
                order: Order::OldestFirst,
                limit: 10_000,
                ..Default::default()
            })
            .unwrap();
        if let Some(l) = new.last() {
            last = l.id;
        }
        seen += new.len();
    }
    assert!(store.flush());
    let new = reader
        .query_alerts(&AlertQuery {
            after_id: Some(last),
            order: Order::OldestFirst,
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    seen += new.len();
    assert_eq!(seen, 1000, "every alert seen exactly once by id");
    // After the writer closed cleanly (SQLite removed its -wal and -shm files), a reader
    // still opens the file.
    drop(reader);
    drop(store);
    let reader = AlertReader::open(&path).unwrap();
    assert_eq!(
        reader
            .query_alerts(&AlertQuery {
                limit: 5000,
                ..Default::default()
            })
            .unwrap()
            .len(),
        1000
    );
    // A read-only connection cannot write.
    let ro =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    assert!(ro.execute("DELETE FROM alerts", []).is_err());
}

#[test]
fn bad_files_give_errors_that_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // Not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        "this is not SQLite, just text that is long enough to look like a header........",
    )
    .unwrap();
    let e = Store::open(&config(&junk)).err().expect("junk opens");
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    assert!(e.to_string().contains(&junk.display().to_string()), "{e}");
    let e = AlertReader::open(&junk).err().expect("junk reads");
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    // Missing, for readers.
    let missing = dir.path().join("none.db");
    let e = AlertReader::open(&missing).err().unwrap();
    assert!(matches!(e, StoreError::Missing { .. }), "{e:?}");
    assert!(e.to_string().contains("none.db"), "{e}");
    // A database from a newer driftwatch.
    let newer = dir.path().join("newer.db");
    drop(Store::open(&config(&newer)).unwrap());
    let c = rusqlite::Connection::open(&newer).unwrap();
    c.execute("INSERT INTO schema_version (version) VALUES (999)", [])
        .unwrap();
    drop(c);
    let e = Store::open(&config(&newer)).err().unwrap();
    assert!(
        matches!(e, StoreError::NewerSchema { found: 999, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("newer.db") && e.to_string().contains("999"),
        "{e}"
    );
    assert!(matches!(
        AlertReader::open(&newer).err().unwrap(),
        StoreError::NewerSchema { .. }
    ));
    // Another program's SQLite database.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(matches!(
        AlertReader::open(&other).err().unwrap(),
        StoreError::Empty { .. }
    ));
    // A directory where the file should be created cannot be (a file is in the way).
    let blocked = dir.path().join("file-not-dir");
    std::fs::write(&blocked, "").unwrap();
    let e = Store::open(&config(&blocked.join("d.db"))).err().unwrap();
    assert!(e.to_string().contains("file-not-dir"), "{e}");
}

#[test]
fn a_corrupt_database_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    {
        let store = Store::open(&config(&path)).unwrap();
        store.record_alert(&alert(now_ns(), "r", Priority::Warning, WEB, "web", &[]));
        assert!(store.flush());
    }
    // Overwrite the header: SQLite no longer recognizes it.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&path, bytes).unwrap();
    let e = Store::open(&config(&path)).err().unwrap();
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    assert!(
        e.to_string().contains("d.db") && e.to_string().contains("move it away"),
        "{e}"
    );
}

#[test]
fn baselines_migrate_from_the_json_file_once_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baselines.json");
    let json = r#"{"version": 1, "images": {"sha256:abc": {"image": "app:1", "first_seen": 1764337015,
        "learn_until": 1764337315, "listeners": ["9090/tcp"], "destinations": ["10.0.0.5:5432/tcp"]}}}"#;
    std::fs::write(&file, json).unwrap();
    let store = Store::open(&config(&dir.path().join("d.db"))).unwrap();
    assert_eq!(store.migrate_baseline_file(&file).unwrap(), 1);
    let back: serde_json::Value = serde_json::from_str(&store.baselines_json().unwrap()).unwrap();
    let orig: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(back, orig, "the export format is the file's");
    // Only once: a later file (or a reset store) is not taken in again.
    std::fs::write(&file, r#"{"version": 1, "images": {"sha256:def": {}}}"#).unwrap();
    assert_eq!(store.migrate_baseline_file(&file).unwrap(), 0);
    store
        .save_baselines_json(r#"{"version": 1, "images": {}}"#)
        .unwrap();
    assert_eq!(store.migrate_baseline_file(&file).unwrap(), 0);
    let empty: serde_json::Value = serde_json::from_str(&store.baselines_json().unwrap()).unwrap();
    assert_eq!(empty["images"], serde_json::json!({}));
    // A broken file is an error naming it.
    let store2 = Store::open(&config(&dir.path().join("d2.db"))).unwrap();
    std::fs::write(&file, "{not json").unwrap();
    let e = store2.migrate_baseline_file(&file).err().unwrap();
    assert!(e.to_string().contains("baselines.json"), "{e}");
    // Readable from a read-only reader too.
    let reader = AlertReader::open(&dir.path().join("d.db")).unwrap();
    assert!(reader.baselines_json().unwrap().contains("\"images\""));
}

/// A 1 MiB tmpfs, unmounted when dropped.
struct SmallFs(tempfile::TempDir);

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn disk_full_degrades_counts_and_recovers() {
    driftwatch_testkit::require!(Root("mounts a small tmpfs"));
    let fs = SmallFs(tempfile::tempdir().unwrap());
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "dwstore"])
        .arg(fs.0.path())
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    let path = fs.0.path().join("d.db");
    let store = Store::open(&driftwatch_config::StoreConfig {
        queue_size: 100_000,
        ..config(&path)
    })
    .unwrap();
    // Take most of the space, then write until the database cannot grow.
    let filler = fs.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1024 * 1024]).unwrap();
    let big = "y".repeat(4000);
    let t = now_ns();
    let mut i = 0;
    while store.snapshot().degraded.is_none() {
        for _ in 0..50 {
            let mut a = alert(t + i, "fill", Priority::Warning, WEB, "web", &[]);
            a.output = big.clone();
            store.record_alert(&a);
            i += 1;
        }
        store.flush();
        assert!(i < 2000, "2 MiB should have filled: {:?}", store.snapshot());
    }
    let s = store.snapshot();
    assert!(s.write_errors >= 1, "{s:?}");
    let reason = s.degraded.unwrap();
    assert!(reason.starts_with("disk full"), "{reason}");
    // Still accepting (queueing) alerts, still answering queries.
    store.record_alert(&alert(
        t + i,
        "while full",
        Priority::Warning,
        WEB,
        "web",
        &[],
    ));
    assert!(store.query_alerts(&AlertQuery::default()).is_ok());
    // Space returns: the waiting alerts are written and the degraded flag clears.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.snapshot().degraded.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {:?}",
            store.snapshot()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(store.flush());
    let s = store.snapshot();
    assert_eq!(s.written, s.queued, "nothing queued was lost: {s:?}");
    let last = store
        .query_alerts(&AlertQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(last[0].alert.rule, "while full");
    drop(store);
}
