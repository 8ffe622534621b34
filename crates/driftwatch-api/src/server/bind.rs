//! Where the server listens: the TCP listener (refused off loopback without a token), the
//! server's own two-thread runtime, and the accept loop that bounds connections served at
//! once and the time a client may take to send its headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};

use super::{ServerStats, State, routes};
use driftwatch_model::AlertSource;

use crate::alerts::AlertRing;
use crate::view::AgentView;

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 512;

/// How the server listens.
#[derive(Clone)]
pub struct ApiServerConfig {
    pub listen: SocketAddr,
    /// The bearer token: required for every state-changing request (without one, they are
    /// all refused), and for reads as [`token_for_reads`](Self::token_for_reads) says.
    /// Required to be set when `listen` is not a loopback address.
    pub token: Option<String>,
    /// Reads (`/api` GETs, `/metrics`) need the token on loopback too (off loopback they
    /// always do).
    pub token_for_reads: bool,
    /// Serve the web UI at `/`.
    pub ui: bool,
    /// A second listener serving `/metrics` and `/healthz` only, without a token (nothing
    /// there changes state or lists alerts): Prometheus scrapes it on the pod network while
    /// `listen` stays on loopback.
    pub metrics_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for ApiServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("ApiServerConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_for_reads", &self.token_for_reads)
            .field("ui", &self.ui)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "refusing to serve the API on {0}: it is not a loopback address, and no token file is configured (--api-token-file, or api.token_file)"
    )]
    NeedsToken(SocketAddr),
    #[error("API token file {path}: {message}")]
    Token { path: String, message: String },
    #[error("binding the API to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("binding the metrics listener to {addr}: {source}")]
    BindMetrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the API's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Which paths a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Listener {
    /// Everything: the UI, `/healthz`, `/metrics` and the API, with the token rules.
    Full,
    /// `/metrics` and `/healthz`, no token; every other path is 404.
    MetricsOnly,
}

/// A non-blocking std listener on `addr` (the port, when 0 was asked, is in its local address).
fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A running server; stops when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl ApiServer {
    /// Binds `config.listen` and serves in the background. Queries go to `alerts` (the ring,
    /// or a store); live updates come from `ring`.
    pub fn start(
        config: ApiServerConfig,
        view: Arc<dyn AgentView>,
        alerts: Arc<dyn AlertSource>,
        ring: Arc<AlertRing>,
    ) -> Result<ApiServer, BindError> {
        if !config.listen.ip().is_loopback() && config.token.is_none() {
            return Err(BindError::NeedsToken(config.listen));
        }
        let listener = bind_std(config.listen).map_err(|source| BindError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| BindError::Bind {
            addr: config.listen,
            source,
        })?;
        let metrics = match config.metrics_listen {
            Some(m) => {
                let bound = bind_std(m).and_then(|l| Ok((l.local_addr()?, l)));
                Some(bound.map_err(|source| BindError::BindMetrics { addr: m, source })?)
            }
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("dw-api")
            .enable_all()
            .build()
            .map_err(BindError::Runtime)?;
        let state = Arc::new(State {
            config,
            view,
            alerts,
            ring,
            stats: ServerStats::default(),
        });
        let (listener, metrics) = {
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| BindError::Bind { addr, source })?;
            let metrics = match metrics {
                Some((m, l)) => Some((
                    m,
                    tokio::net::TcpListener::from_std(l)
                        .map_err(|source| BindError::BindMetrics { addr: m, source })?,
                )),
                None => None,
            };
            (listener, metrics)
        };
        // One stop signal for both loops: a watch, which every receiver sees.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics_addr = metrics.as_ref().map(|(m, _)| *m);
        if let Some((_, l)) = metrics {
            runtime.spawn(accept_loop(
                l,
                Listener::MetricsOnly,
                state.clone(),
                stopped.clone(),
            ));
        }
        runtime.spawn(accept_loop(listener, Listener::Full, state, stopped));
        Ok(ApiServer {
            addr,
            metrics_addr,
            runtime: Some(runtime),
            stop: Some(stop),
        })
    }

    /// The address it listens on (the port, when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics-only listener's address, when one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    serves: Listener,
    state: Arc<State>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stopped.changed() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = stopped.changed() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("API: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(routes::handle(state, serves, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let c = ApiServerConfig {
            listen: "127.0.0.1:1".parse().unwrap(),
            token: Some("supersecrettoken123".into()),
            token_for_reads: true,
            ui: true,
            metrics_listen: None,
        };
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
