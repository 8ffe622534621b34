//! The agent's HTTP side: a JSON API under `/api/v1`, Prometheus `/metrics`, `/healthz` and a
//! web UI, served on loopback by default. Every state-changing request needs the bearer token,
//! on loopback too; reads need it off loopback (or when configured).
//!
//! - [`view`]: what the server reads the agent through ([`AgentView`]), implemented by the
//!   binary over the running agent; the JSON shapes it answers with.
//! - [`alerts`]: the in-memory ring of the last alerts every agent keeps ([`AlertRing`]), the
//!   [`driftwatch_model::AlertSource`] the API queries unless given another (a persistent
//!   store implements the same trait).
//! - [`metrics`]: the Prometheus text format writer ([`MetricsWriter`]) other parts append to.
//! - [`server`]: binding (loopback or token), routing, auth, CSRF, limits, headers, SSE.
//! - [`token`]: the bearer token's file, created 0600 on first start, its mode checked.
//! - `ui/`: the web UI (vanilla JS and CSS, embedded; no CDN).

pub mod alerts;
pub mod metrics;
pub mod server;
pub mod token;
pub mod view;

pub use alerts::AlertRing;
pub use metrics::{MetricsSource, MetricsWriter};
pub use server::{ApiServer, ApiServerConfig, BindError};
pub use view::{
    AgentView, ApiError, ComponentHealth, ContainerDetail, ContainerSummary, Health, ManualAction,
    ProcessNode, RuleSummary,
};
