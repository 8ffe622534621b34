//! Image verification, no engine calls: the caller hands in what the engine said.
//!
//! - [`approved`]: the approved-image list (digests, `repo@sha256:` references, or the pinned
//!   `image:` fields of Kubernetes manifests), parsed with `FILE:LINE` errors.
//! - [`assess`]: one container's image against that list: approved, unapproved, unknown,
//!   and whether it was started from a mutable tag.
//! - [`tarsplit`]: the `tar-split.json.gz` Docker keeps per layer (the tar stream's headers
//!   and each file's size and crc64).
//! - [`layers`]: where an image's layers are (Docker's layerdb, a containerd container's
//!   snapshots) and the check of each: an overlay2 layer directory against its tar-split,
//!   naming the files that changed; a stat fingerprint makes an unchanged layer's re-check
//!   cheap.
//! - [`blob_layers`]: a containerd overlayfs snapshot directory against the layer blob in
//!   the content store (tar, gzip or zstd) and its diff id.
//! - [`layer_tree`]: a layer directory's walk and the problems a replay finds in it, for both.

pub mod approved;
pub mod assess;
pub mod blob_layers;
pub mod layer_tree;
pub mod layers;
pub mod tarsplit;

pub use approved::{ApprovedEntry, ApprovedList};
pub use assess::{Assessment, ImageFacts, Status};
pub use layer_tree::{FileProblem, LayerError, ProblemKind};
pub use layers::{
    LayerCache, LayerLocation, LayerRecord, LayerReport, check_layer, locate_layers,
    locate_snapshot_layers,
};
