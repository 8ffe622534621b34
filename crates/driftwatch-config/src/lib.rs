//! The agent's configuration (`/etc/driftwatch/config.yaml`): the typed schema with its
//! embedded defaults. Every section is a plain struct whose `Default` is what the agent does
//! with no file at all; the crates that act on a section (outputs, store, API) take it from
//! here, so the file, the reference and the code cannot disagree.

mod schema;

pub use schema::*;

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/driftwatch/config.yaml";
