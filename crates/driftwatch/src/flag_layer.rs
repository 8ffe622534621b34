//! Turning parsed flags into the configuration's last layer: each flag given becomes a
//! setting of the key it names, for `run`, and for the commands whose flags `run` shares
//! (`--kubeconfig`, the image-verification flags).

use std::path::Path;

use driftwatch_config::{FlagSetting, FlagValue};

/// A path as the configuration layer takes it.
pub(crate) fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A flag given sets its key (`Some`); one not given leaves the file's.
pub(crate) fn set(
    out: &mut Vec<FlagSetting>,
    flag: &'static str,
    key: &'static str,
    value: Option<String>,
) {
    if let Some(v) = value {
        out.push(FlagSetting::scalar(flag, key, v));
    }
}

/// A switch given sets its key to `value`.
pub(crate) fn switch(
    out: &mut Vec<FlagSetting>,
    on: bool,
    flag: &'static str,
    key: &'static str,
    value: bool,
) {
    if on {
        out.push(FlagSetting::scalar(flag, key, value.to_string()));
    }
}

/// Repeated flags add their items to the file's list.
pub(crate) fn append(
    out: &mut Vec<FlagSetting>,
    flag: &'static str,
    key: &'static str,
    items: Vec<String>,
) {
    if !items.is_empty() {
        out.push(FlagSetting {
            flag,
            key,
            value: FlagValue::Append(items),
        });
    }
}
