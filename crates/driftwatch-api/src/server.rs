//! The HTTP server: binding (loopback, or anywhere with a token), routing, bearer token
//! (compared in constant time, never logged), CSRF checks on actions, request limits,
//! security headers on every answer, and Server-Sent Events for live alerts.
//!
//! Who needs the token: every state-changing request (a POST: release, isolate, capture),
//! wherever the server listens. A loopback listener is no credential: every local process,
//! and every container sharing the host's network namespace (`--network host`, a
//! `hostNetwork` pod), reaches it. Reads (`/api` GETs, `/metrics`) need it off loopback, and
//! on loopback when [`ApiServerConfig::token_for_reads`] says so. `/healthz` and the UI's static
//! files never do.
//!
//! It runs on a runtime of its own (two threads) so that slow clients never delay the
//! agent's engine follower; calls into the agent run on its blocking pool.
//!
//! - `bind`: the listener, the server's runtime and its accept loop.
//! - `auth`: the Host, token and CSRF decisions (pure, over the configuration and headers).
//! - `routes`: which handler a path reaches, and the handlers.
//! - `params`: query strings into alert queries (pure).
//! - `reply`: the answers' bodies and the headers every answer carries.
//! - `sse`: the live alert stream.

mod auth;
mod bind;
mod params;
mod reply;
mod routes;
mod sse;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use bind::{ApiServer, ApiServerConfig, BindError};

use driftwatch_model::AlertSource;

use crate::alerts::AlertRing;
use crate::view::{AgentView, ApiError};

/// The largest request body accepted (actions take `{"confirm": true}`).
pub const MAX_BODY: usize = 4096;
/// The most alerts one query returns.
pub const MAX_LIMIT: usize = 1000;
/// Diff entries returned at most.
pub const MAX_DIFF_ENTRIES: usize = 2000;
/// The header a state-changing request must carry (a custom header cannot be sent
/// cross-origin without a CORS preflight, which this server never grants).
pub const CSRF_HEADER: &str = "x-driftwatch-request";

/// What the server counts about itself, for `/metrics`.
#[derive(Default)]
struct ServerStats {
    /// By [`routes::Route`], in [`routes::Route::ALL`]'s order.
    requests: [AtomicU64; routes::Route::ALL.len()],
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    sse_clients: AtomicU64,
}

/// What every connection's handlers share.
struct State {
    config: ApiServerConfig,
    view: Arc<dyn AgentView>,
    alerts: Arc<dyn AlertSource>,
    ring: Arc<AlertRing>,
    stats: ServerStats,
}

impl State {
    /// A refused request's answer; token refusals are counted here (403s in general where
    /// every answer is seen).
    fn refuse(&self, refusal: auth::Refusal) -> ApiError {
        if refusal.is_token() {
            self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
        refusal.into()
    }
}
