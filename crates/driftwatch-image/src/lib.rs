//! Is this in the image? Overlay layers, content verdicts, package databases.
//!
//! [`Judge`] answers, for one file a container process uses, whether its bytes are the
//! image's: it reads the overlay layer directories directly (no mount, no copy, no write).

mod error;
#[cfg(test)]
mod fake_layers;
mod hash;
mod judge;
mod overlay;
mod path;

pub use error::{JudgeError, LayerIoError};
pub use hash::{DEFAULT_HASH_CACHE_ENTRIES, FileKey, HashCache};
pub use judge::{Change, Judge, Judgement, MetadataChange};
pub use overlay::{LayerOptions, MAX_SYMLINK_HOPS};
pub use path::ContainerPath;
