//! The daemon's alert sinks and backends over the parts above the agent: the alert store
//! (alerts, action records, network baselines), the responder's queue and the API's ring.
//! Each sink runs on a sensor's thread: none blocks.

use std::io;
use std::sync::Arc;

use driftwatch_agent::{AlertSink, BaselineBackend, BaselineError, BaselineFile};
use driftwatch_api::AlertRing;
use driftwatch_model::Alert;
use driftwatch_response::Responder;
use driftwatch_store::Store;

/// Queues each alert for the store's writer thread; never blocks the pipeline.
pub struct StoreSink(pub Arc<Store>);

impl AlertSink for StoreSink {
    fn emit(&mut self, alert: &Alert) -> io::Result<()> {
        self.0.record_alert(alert);
        Ok(())
    }

    fn name(&self) -> String {
        format!("store {}", self.0.path().display())
    }
}

/// Copies each response action record into the store (the actions log keeps its own).
pub fn action_mirror(store: &Arc<Store>) -> driftwatch_response::ActionMirror {
    let store = store.clone();
    Arc::new(move |record| {
        let stored = serde_json::to_value(record)
            .map_err(|e| e.to_string())
            .and_then(|v| store.record_action(&v).map_err(|e| e.to_string()));
        if let Err(e) = stored {
            tracing::warn!("action record not stored: {e}");
        }
    })
}

/// Writes what is queued and logs the store's counters (`driftwatch run` at exit).
pub fn close_store(store: Arc<Store>) {
    let flushed = store.flush();
    let s = store.snapshot();
    tracing::info!(
        "store: {} alerts written, {} dropped, {} write errors, {} deleted by retention{}",
        s.written,
        s.dropped,
        s.write_errors,
        s.retention_deleted,
        match (&s.degraded, flushed) {
            (Some(why), _) => format!(" (degraded: {why})"),
            (None, false) => " (not all written)".into(),
            (None, true) => String::new(),
        }
    );
    drop(store);
}

/// Hands alerts to the responder's queue; never blocks the sensor thread it runs on.
pub struct ResponseSink(pub Arc<Responder>);

impl AlertSink for ResponseSink {
    fn emit(&mut self, alert: &Alert) -> std::io::Result<()> {
        self.0.submit(alert);
        Ok(())
    }

    fn name(&self) -> String {
        "response playbooks".into()
    }
}

/// Keeps every alert in the API's ring (never blocks).
pub struct RingSink(pub Arc<AlertRing>);

impl AlertSink for RingSink {
    fn emit(&mut self, alert: &Alert) -> std::io::Result<()> {
        self.0.push(alert);
        Ok(())
    }

    fn name(&self) -> String {
        "api alert ring".into()
    }
}

/// Baselines in the alert store's `baselines` table (the same JSON as the file, so export
/// and import are unchanged).
pub struct StoreBaselines(pub Arc<driftwatch_store::Store>);

impl std::fmt::Debug for StoreBaselines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreBaselines({})", self.0.path().display())
    }
}

impl StoreBaselines {
    fn error(&self, e: impl std::fmt::Display) -> BaselineError {
        BaselineError::Backend {
            what: self.describe(),
            msg: e.to_string(),
        }
    }

    fn text(&self) -> Result<String, BaselineError> {
        self.0.baselines_json().map_err(|e| self.error(e))
    }
}

impl BaselineBackend for StoreBaselines {
    fn describe(&self) -> String {
        format!("{} (alert store)", self.0.path().display())
    }

    fn load(&self) -> Result<BaselineFile, BaselineError> {
        BaselineFile::parse(&self.text()?, self.0.path())
    }

    fn save(&self, data: &BaselineFile) -> Result<(), BaselineError> {
        self.0
            .save_baselines_json(&data.to_json())
            .map_err(|e| self.error(e))
    }

    fn version(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let text = self.text().ok()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        Some(h.finish())
    }
}
