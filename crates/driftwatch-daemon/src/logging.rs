//! The agent's log on standard error, with a filter that `logging.level` sets and a reload
//! (SIGHUP) changes. `DRIFTWATCH_LOG` wins over the configuration.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

const ENV: &str = "DRIFTWATCH_LOG";

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

pub fn init() {
    let filter = EnvFilter::try_from_env(ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = FILTER.set(handle);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .init();
}

/// Applies `logging.level`. Returns false when `DRIFTWATCH_LOG` is set (it wins) or the
/// level is already in force.
pub fn set_level(level: &str) -> Result<bool, String> {
    if std::env::var_os(ENV).is_some() {
        return Ok(false);
    }
    let Some(handle) = FILTER.get() else {
        return Ok(false);
    };
    let new = EnvFilter::builder()
        .parse(level)
        .map_err(|e| format!("logging.level {level:?}: {e}"))?;
    let same = handle
        .with_current(|f| f.to_string() == new.to_string())
        .unwrap_or(false);
    if same {
        return Ok(false);
    }
    handle.reload(new).map_err(|e| e.to_string())?;
    Ok(true)
}
