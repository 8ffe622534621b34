//! A small blocking Kubernetes API client for response actions on pods: isolate (a deny-all
//! NetworkPolicy for that one pod), release, delete, evict, label, read.
//!
//! - [`config`]: [`KubeConfig`], in-cluster, from a kubeconfig, or explicit.
//! - [`client`]: [`KubeClient`], one HTTP request per API call, no retries: the caller's
//!   failure policy decides what to do with a [`KubeError`].
//! - [`names`]: namespace and pod names are checked as DNS names before they go into a URL
//!   (they come from alerts, so from what a container did), and the isolation policy's name.
//! - [`objects`]: the objects read and the bodies sent, as data (no I/O).
//! - `fake` (cargo feature `fake`): an in-process fake API server serving the real paths and
//!   JSON, which records every request.
//!
//! No Kubernetes API server runs on the machines this project is built and tested on, so the
//! tests run against the fake: they check every request this crate sends (method, path,
//! content type, body, token) and how it reads the answers, but not a real API server's
//! admission, validation or NetworkPolicy enforcement. Another crate's tests enable the fake
//! with a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! driftwatch-kube = { workspace = true, features = ["fake"] }
//! ```

pub mod client;
pub mod config;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod names;
pub mod objects;

pub use client::KubeClient;
pub use config::{ClientCertPem, ConfigError, KubeConfig};
pub use error::KubeError;
pub use names::{InvalidName, NameKind, isolation_policy_name};
pub use objects::{
    ISOLATED_POD_ANNOTATION, ISOLATION_LABEL, MANAGED_BY, MANAGED_BY_LABEL, MERGE_PATCH, OwnerRef,
    Pod,
};
