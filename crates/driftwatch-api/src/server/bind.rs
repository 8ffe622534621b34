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
}

impl std::fmt::Debug for ApiServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("ApiServerConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_for_reads", &self.token_for_reads)
            .field("ui", &self.ui)
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
    #[error("starting the API's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running server; stops when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
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
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| BindError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| BindError::Bind {
            addr: config.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| BindError::Bind { addr, source })?;
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
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|source| BindError::Bind { addr, source })?
        };
        runtime.spawn(accept_loop(listener, state, stopped));
        Ok(ApiServer {
            addr,
            runtime: Some(runtime),
            stop: Some(stop),
        })
    }

    /// The address it listens on (the port, when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
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
    state: Arc<State>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut stopped => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut stopped => return,
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
                async move { Ok::<_, Infallible>(routes::handle(state, req).await) }
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
        };
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
