//! The overlay layers a container's root filesystem is made of, as host paths.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An overlay root filesystem: the writable upper dir over the image's read-only lower dirs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OverlayLayers {
    /// The container's writable layer (overlay `upperdir=`).
    pub upper: PathBuf,
    /// The image's layers, top-most first, in the order of overlay's `lowerdir=` option.
    pub lowers: Vec<PathBuf>,
    /// The merged view as mounted on the host, when it is mounted there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<PathBuf>,
}
