//! The agent's configuration (`/etc/driftwatch/config.yaml`): the typed schema with its
//! embedded defaults, the key table that documents every key, and the loader that turns the
//! file into a [`Config`] with every problem reported at `FILE:LINE:COL`. Every section is a
//! plain struct whose `Default` is what the agent does with no file at all; the crates that
//! act on a section (outputs, store, API) take it from here, so the file, the reference and
//! the code cannot disagree.

mod append_output;
mod flag_layer;
mod keys;
mod load;
mod render;
mod schema;
mod units;

pub use driftwatch_yaml::{Diagnostic, LoadError, Severity};
pub use flag_layer::{FlagSetting, FlagValue, with_flags};
pub use keys::{Access, Choice, HTTP_KEYS, KEYS, Key, Reload, SECTIONS, key};
pub use load::{FlagError, Loaded, Pos, load, parse_str};
pub use render::{example_yaml, reference_markdown, show_json, show_yaml};
pub use schema::*;
pub use units::{format_duration, format_size, parse_duration, parse_size};

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/driftwatch/config.yaml";

#[cfg(test)]
mod tests;
