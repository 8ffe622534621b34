//! What can go wrong with a request: each error names the request (`DELETE
//! /api/v1/namespaces/x/pods/y`) and keeps what the API server said.

use std::io;
use std::path::PathBuf;

use crate::names::InvalidName;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A namespace or pod name that is not a valid Kubernetes name; no request was made.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No HTTP response: connection refused, TLS failure, timeout.
    #[error("{request}: {source}")]
    Transport {
        request: String,
        #[source]
        source: ureq::Error,
    },
    /// The API server answered with a non-2xx status. `reason` and `message` come from its
    /// `Status` object (`NotFound`, `pods "x" not found`); for a body that is no `Status`
    /// (a proxy's error page), `reason` is empty and `message` is the start of the body.
    #[error("{request}: HTTP {status}{}: {message}", fmt_reason(reason))]
    Api {
        request: String,
        status: u16,
        reason: String,
        message: String,
    },
    /// An eviction refused with 429: a PodDisruptionBudget does not allow it now.
    #[error("{request}: eviction blocked by a PodDisruptionBudget (HTTP 429): {message}")]
    EvictionBlocked { request: String, message: String },
    /// A 2xx response whose body is not what the request returns.
    #[error("{request}: unexpected response body: {message}")]
    Decode { request: String, message: String },
    /// The bearer token file could not be read.
    #[error("reading the bearer token {path}: {source}")]
    TokenFile { path: PathBuf, source: io::Error },
    /// The pod shares its node's network (`hostNetwork: true`): a NetworkPolicy does not apply
    /// to it, so isolation would do nothing. Nothing was changed.
    #[error(
        "pod {namespace}/{pod} uses the node's network (hostNetwork: true): a NetworkPolicy cannot isolate it"
    )]
    HostNetwork { namespace: String, pod: String },
}

fn fmt_reason(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    }
}

impl KubeError {
    /// The HTTP status the API server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Api { status, .. } => Some(*status),
            KubeError::EvictionBlocked { .. } => Some(429),
            _ => None,
        }
    }

    /// The API's `Status.reason` (`NotFound`, `AlreadyExists`, `Forbidden`, ...), if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            KubeError::Api { reason, .. } if !reason.is_empty() => Some(reason),
            _ => None,
        }
    }

    /// The object (or the URL) does not exist: HTTP 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}
