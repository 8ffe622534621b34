//! Is this in the image? Overlay layers, content verdicts, package databases.
//!
//! [`Judge`] answers, for one file a container process uses, whether its bytes are the
//! image's; [`Differ`] lists every path a container changed, with content verdicts, file
//! classes and the package-level diff. Both read the overlay layer directories directly (no
//! mount, no copy, no write).

mod classify;
mod diff;
mod error;
#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "the test fixture builds layer directories with std::fs"
)]
mod fake_layers;
mod hash;
mod judge;
mod overlay;
pub mod packages;
mod path;
mod provenance;

pub use classify::{ExecKind, FileClass, package_db_kind};
pub use diff::{
    ChangeKind, Diff, DiffError, DiffOptions, DiffStats, DiffWarning, Differ, DockerChange,
    FileDiff, FileKind, Truncation, WalkCap,
};
pub use diff::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES};
pub use error::{JudgeError, LayerIoError};
pub use hash::{DEFAULT_HASH_CACHE_ENTRIES, FileKey, HashCache};
pub use judge::{Change, Judge, Judgement, MetadataChange, content_of};
pub use overlay::LayerOptions;
pub use packages::{Ecosystem, Package, PackageChange, PackageChangeKind};
pub use path::{ContainerPath, MAX_SYMLINK_HOPS, name_fields};
pub use provenance::{
    OwnerCache, compare_with_package, fill_diff_provenance, image_layer_of, layer_diff_id,
    read_owner_index,
};
