//! Per-image network baselines, one row per image holding that image's entry of the JSON
//! baseline file (`driftwatch baseline export` still writes that file's format). The store
//! does not interpret an entry: the agent's baseline module owns its meaning.

use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::StoreError;
use driftwatch_model::clock::now_ns;

use crate::columns::column_ns;
use crate::schema::classify;

/// The baseline file's version this layout holds.
const FILE_VERSION: u64 = 1;

/// Every stored baseline as the baseline file's JSON text.
pub(crate) fn load_json(conn: &Connection, path: &Path) -> Result<String, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT image_key, json FROM baselines ORDER BY image_key")
        .map_err(|e| classify(path, e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| classify(path, e))?;
    let mut images = Map::new();
    for row in rows {
        let (key, json) = row.map_err(|e| classify(path, e))?;
        let v: Value = serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
            path: path.to_path_buf(),
            id: 0,
            msg: format!("baseline of image {key}: {e}"),
        })?;
        images.insert(key, v);
    }
    let file = serde_json::json!({"version": FILE_VERSION, "images": images});
    Ok(serde_json::to_string_pretty(&file).unwrap_or_default() + "\n")
}

/// Replaces every stored baseline with those of the baseline file text `json`.
pub(crate) fn save_json(conn: &mut Connection, path: &Path, json: &str) -> Result<(), StoreError> {
    let file: Value =
        serde_json::from_str(json).map_err(|e| StoreError::BadBaselines { msg: e.to_string() })?;
    let images = match file.get("images") {
        Some(Value::Object(m)) => m.clone(),
        None => Map::new(),
        Some(_) => {
            return Err(StoreError::BadBaselines {
                msg: "`images` is not an object".into(),
            });
        }
    };
    let tx = conn.transaction().map_err(|e| classify(path, e))?;
    tx.execute("DELETE FROM baselines", [])
        .map_err(|e| classify(path, e))?;
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO baselines (image_key, json, updated_ns) VALUES (?1, ?2, ?3)",
            )
            .map_err(|e| classify(path, e))?;
        let now = column_ns(now_ns());
        for (key, v) in images {
            ins.execute(params![key, v.to_string(), now])
                .map_err(|e| classify(path, e))?;
        }
    }
    tx.commit().map_err(|e| classify(path, e))
}
