//! The running agent assembled in one place, above the agent, response, store, API,
//! evidence, outputs and Kubernetes crates: [`ResolvedConfig::resolve`] reads the
//! configuration file with the flags over it and every file it names, [`Daemon::start`]
//! builds the pipeline, store, responder, API and metrics from it, and every adapter between
//! those parts lives here. `driftwatch run` (and so `driftwatch demo` and the integration
//! tests, which run it) only parses flags, resolves, starts, and waits for signals.

mod api_view;
mod daemon;
pub mod logging;
mod metrics;
mod resolved;
mod responder;
mod sinks;
mod snapshot;

pub use api_view::{AgentApi, EVIDENCE_DIR};
pub use daemon::Daemon;
pub use resolved::{NamedFiles, ResolveError, ResolvedConfig, check_named_files};
pub use responder::{kube_client, kube_client_for, load_playbooks};
pub use sinks::{ResponseSink, RingSink, StoreBaselines, StoreSink, action_mirror, close_store};
pub use snapshot::{ApiActions, DaemonSnapshot, OutputSnapshot, ResponseSnapshot, StoreSnapshot};
