//! The HTTP server: binding (loopback, or anywhere with a token), routing, bearer token
//! (compared in constant time, never logged), CSRF checks on actions, request limits,
//! security headers on every answer, and Server-Sent Events for live alerts.
//!
//! Who needs the token: every state-changing request (a POST: release, isolate, capture),
//! wherever the server listens. A loopback listener is no credential: every local process,
//! and every container sharing the host's network namespace (`--network host`, a
//! `hostNetwork` pod), reaches it. Reads (`/api` GETs, `/metrics`) need it off loopback, and
//! on loopback when [`ApiConfig::token_for_reads`] says so. `/healthz` and the UI's static
//! files never do.
//!
//! It runs on a runtime of its own (two threads) so that slow clients never delay the
//! agent's engine follower; calls into the agent run on its blocking pool.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use driftwatch_model::Priority;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::broadcast::error::RecvError;

use crate::alerts::{AlertFilter, AlertRing, AlertSource, StoredAlert};
use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, MetricsWriter};
use crate::view::{AgentView, ApiError, ContainerSummary, DriftStatus, LastAlert, ManualAction};

type Body = BoxBody<Bytes, Infallible>;

/// The largest request body accepted (actions take `{"confirm": true}`).
pub const MAX_BODY: usize = 4096;
/// The most alerts one query returns.
pub const MAX_LIMIT: usize = 1000;
/// Diff entries returned at most.
pub const MAX_DIFF_ENTRIES: usize = 2000;
/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 512;
/// The header a state-changing request must carry (a custom header cannot be sent
/// cross-origin without a CORS preflight, which this server never grants).
pub const CSRF_HEADER: &str = "x-driftwatch-request";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE_CSS: &str = include_str!("ui/style.css");

/// How the server listens.
#[derive(Clone)]
pub struct ApiConfig {
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

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("ApiConfig")
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

/// Equal in time independent of where the strings differ (the length may still show).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// A running server; stops when dropped.
pub struct ApiServer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Route classes, the label of request counters (a closed set: bounded cardinality).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Route {
    Ui,
    Healthz,
    Metrics,
    Alerts,
    Stream,
    Containers,
    Container,
    Diff,
    Action,
    Rules,
    Actions,
    Other,
}

impl Route {
    const ALL: [Route; 12] = [
        Route::Ui,
        Route::Healthz,
        Route::Metrics,
        Route::Alerts,
        Route::Stream,
        Route::Containers,
        Route::Container,
        Route::Diff,
        Route::Action,
        Route::Rules,
        Route::Actions,
        Route::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Route::Ui => "ui",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Alerts => "alerts",
            Route::Stream => "alerts_stream",
            Route::Containers => "containers",
            Route::Container => "container",
            Route::Diff => "diff",
            Route::Action => "action",
            Route::Rules => "rules",
            Route::Actions => "actions",
            Route::Other => "other",
        }
    }
}

#[derive(Default)]
struct ServerStats {
    requests: [AtomicU64; 12],
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    sse_clients: AtomicU64,
}

struct State {
    config: ApiConfig,
    view: Arc<dyn AgentView>,
    alerts: Arc<dyn AlertSource>,
    ring: Arc<AlertRing>,
    stats: ServerStats,
}

impl ApiServer {
    /// Binds `config.listen` and serves in the background. Queries go to `alerts` (the ring,
    /// or a store); live updates come from `ring`.
    pub fn start(
        config: ApiConfig,
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
                async move { Ok::<_, Infallible>(handle(state, req).await) }
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

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Every answer carries these.
fn secure(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn json_response(status: u16, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"serializing the answer: {e}\"}}").into_bytes());
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status, &serde_json::json!({ "error": e.message }))
}

fn text_response(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Percent-decoding of a query or path component (`+` is a space in queries).
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("bad percent-encoding in {s:?}"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request(format!("{s:?} is not UTF-8")))
}

fn parse_query(q: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k, true)?, percent_decode(v, true)?);
    }
    Ok(out)
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `since`: a duration back from now (`90s`, `15m`, `2h`, `1d`) or seconds since the epoch.
fn parse_since(s: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "since={s:?}: expected a duration (90s, 15m, 2h, 1d) or seconds since the epoch"
        ))
    };
    if let Ok(epoch) = s.parse::<u64>() {
        return epoch.checked_mul(1_000_000_000).ok_or_else(bad);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(bad()),
    };
    Ok(now_ns().saturating_sub(secs.saturating_mul(1_000_000_000)))
}

fn parse_filter(q: &HashMap<String, String>) -> Result<AlertFilter, ApiError> {
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit={l:?} is not a number")))?
            .min(MAX_LIMIT),
        None => 100,
    };
    Ok(AlertFilter {
        since_ns: nonempty("since").map(|s| parse_since(&s)).transpose()?,
        container: nonempty("container"),
        rule: nonempty("rule"),
        tag: nonempty("tag"),
        priority: nonempty("priority")
            .map(|p| {
                p.parse::<Priority>()
                    .map_err(|e| ApiError::bad_request(format!("priority: {e}")))
            })
            .transpose()?,
        after_id: nonempty("after_id")
            .map(|a| {
                a.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("after_id={a:?} is not a number")))
            })
            .transpose()?,
        limit,
    })
}

/// Host names that reach a loopback listener: anything else in `Host` is a DNS-rebinding
/// attempt (a page on evil.example whose name now resolves to 127.0.0.1).
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_host(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    if !state.config.listen.ip().is_loopback() {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if loopback_host(host) {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            "the Host header does not name this loopback listener (DNS rebinding?)",
        ))
    }
}

/// The token check of a read: only when reads need it.
fn check_read_token(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.token_for_reads || !state.config.listen.ip().is_loopback() {
        check_token(state, headers)
    } else {
        Ok(())
    }
}

/// The token check of a state-changing request: always; without a configured token, refused.
fn check_token(state: &State, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.config.token else {
        state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            403,
            "state-changing requests need the API token, and this server has none configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        Err(ApiError::new(
            401,
            "a bearer token is required (Authorization: Bearer <token from the token file>)",
        ))
    }
}

/// A state-changing request must come from our own page (or a script): the custom header,
/// JSON, and no foreign `Origin`.
fn check_csrf(headers: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = |m: &str| Err(ApiError::new(403, m));
    if headers.get(CSRF_HEADER).is_none() {
        return forbidden(
            "missing the X-Driftwatch-Request header (cross-site requests are refused)",
        );
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Err(ApiError::new(
            415,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let ours = [format!("http://{host}"), format!("https://{host}")];
        if !ours.iter().any(|o| o == origin) {
            return forbidden("cross-origin request refused (Origin does not match Host)");
        }
    }
    Ok(())
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return Err(ApiError::new(
            413,
            format!("request body over {MAX_BODY} bytes"),
        ));
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            413,
            format!("request body over {MAX_BODY} bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(format!("reading the body: {e}"))),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let route = classify(&path);
    state.stats.requests[Route::ALL.iter().position(|r| *r == route).unwrap_or(11)]
        .fetch_add(1, Ordering::Relaxed);
    let resp = match route_request(&state, req, &path).await {
        Ok(r) => r,
        Err(e) => {
            if e.status == 403 {
                state.stats.forbidden.fetch_add(1, Ordering::Relaxed);
            }
            let mut r = error_response(&e);
            if e.status == 401 {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"driftwatch\""),
                );
            }
            r
        }
    };
    secure(resp)
}

fn classify(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [""] | ["app.js"] | ["style.css"] => Route::Ui,
        ["healthz"] => Route::Healthz,
        ["metrics"] => Route::Metrics,
        ["api", "v1", "alerts"] => Route::Alerts,
        ["api", "v1", "alerts", "stream"] => Route::Stream,
        ["api", "v1", "containers"] => Route::Containers,
        ["api", "v1", "containers", _] => Route::Container,
        ["api", "v1", "containers", _, "diff"] => Route::Diff,
        ["api", "v1", "containers", _, _] => Route::Action,
        ["api", "v1", "rules"] => Route::Rules,
        ["api", "v1", "actions"] => Route::Actions,
        _ => Route::Other,
    }
}

fn method_is(req: &Request<Incoming>, m: Method, allow: &'static str) -> Result<(), ApiError> {
    if req.method() == m {
        Ok(())
    } else {
        Err(ApiError::new(
            405,
            format!(
                "method {} not allowed here (allowed: {allow})",
                req.method()
            ),
        ))
    }
}

async fn route_request(
    state: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    check_host(state, req.headers())?;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = parse_query(req.uri().query())?;
    match segs.as_slice() {
        [""] | ["index.html"] if state.config.ui => {
            method_is(&req, Method::GET, "GET")?;
            Ok(text_response("text/html; charset=utf-8", INDEX_HTML))
        }
        ["app.js"] if state.config.ui => {
            method_is(&req, Method::GET, "GET")?;
            Ok(text_response("text/javascript; charset=utf-8", APP_JS))
        }
        ["style.css"] if state.config.ui => {
            method_is(&req, Method::GET, "GET")?;
            Ok(text_response("text/css; charset=utf-8", STYLE_CSS))
        }
        ["healthz"] => {
            method_is(&req, Method::GET, "GET")?;
            let view = state.view.clone();
            let health = blocking(move || view.health()).await?;
            Ok(json_response(
                if health.healthy() { 200 } else { 503 },
                &serde_json::json!({ "healthy": health.healthy(), "components": health.components }),
            ))
        }
        ["metrics"] => {
            method_is(&req, Method::GET, "GET")?;
            check_read_token(state, req.headers())?;
            let st = state.clone();
            let text = blocking(move || metrics_text(&st)).await?;
            Ok(text_response(METRICS_CONTENT_TYPE, text))
        }
        ["api", "v1", rest @ ..] => {
            if req.method() == Method::GET || req.method() == Method::HEAD {
                check_read_token(state, req.headers())?;
            } else {
                check_token(state, req.headers())?;
            }
            api(state, req, rest, &query).await
        }
        _ => Err(ApiError::not_found(format!("no such page: {path}"))),
    }
}

async fn api(
    state: &Arc<State>,
    req: Request<Incoming>,
    rest: &[&str],
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    match rest {
        ["alerts"] => {
            method_is(&req, Method::GET, "GET")?;
            let filter = parse_filter(query)?;
            let alerts = state.alerts.clone();
            let body = blocking(move || {
                let found = alerts.query_alerts_json(&filter);
                let last_id = alerts.last_id();
                // The alerts' JSON was made once, when they came in: joined here, not
                // serialized again for every request.
                let mut body =
                    String::with_capacity(found.iter().map(|j| j.len() + 1).sum::<usize>() + 48);
                body.push_str("{\"alerts\":[");
                for (i, j) in found.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(j);
                }
                body.push_str(&format!("],\"last_id\":{last_id}}}"));
                body
            })
            .await?;
            let mut r = Response::new(full(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        ["alerts", "stream"] => {
            method_is(&req, Method::GET, "GET")?;
            let mut filter = parse_filter(query)?;
            // A reconnecting EventSource says where it was.
            if let Some(last) = req
                .headers()
                .get("last-event-id")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse().ok())
            {
                filter.after_id = Some(last);
            }
            Ok(stream(state.clone(), filter))
        }
        ["containers"] => {
            method_is(&req, Method::GET, "GET")?;
            let st = state.clone();
            let list = blocking(move || {
                let mut list = st.view.containers();
                fill_drift(&st, &mut list);
                list.sort_by(|a, b| {
                    b.running
                        .cmp(&a.running)
                        .then(b.drift.alerts.cmp(&a.drift.alerts))
                        .then(a.name.cmp(&b.name))
                });
                list
            })
            .await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "containers": list }),
            ))
        }
        ["containers", id] => {
            method_is(&req, Method::GET, "GET")?;
            let id = percent_decode(id, false)?;
            let st = state.clone();
            let detail = blocking(move || -> Result<_, ApiError> {
                let mut d = st.view.container(&id)?;
                let mut one = [d.summary.clone()];
                fill_drift(&st, &mut one);
                let [s] = one;
                d.summary = s;
                let about = st.alerts.query_alerts(&AlertFilter {
                    container: Some(d.summary.short_id.clone()),
                    limit: MAX_LIMIT,
                    ..AlertFilter::default()
                });
                for p in &mut d.processes {
                    for a in about.iter().filter(|a| a.pid() == Some(p.pid)) {
                        let v = a.field("drift.verdict");
                        if !v.is_empty() && !p.verdicts.iter().any(|x| x == v) {
                            p.verdicts.push(v.to_string());
                        }
                        if !p.rules.contains(&a.alert.rule) {
                            p.rules.push(a.alert.rule.clone());
                        }
                    }
                }
                Ok(d)
            })
            .await??;
            Ok(json_response(200, &detail))
        }
        ["containers", id, "diff"] => {
            method_is(&req, Method::GET, "GET")?;
            let id = percent_decode(id, false)?;
            let limit = match query.get("limit") {
                Some(l) => l
                    .parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("limit={l:?} is not a number")))?
                    .min(MAX_DIFF_ENTRIES),
                None => 500,
            };
            let view = state.view.clone();
            let diff = blocking(move || view.diff(&id, limit)).await??;
            Ok(json_response(200, &diff))
        }
        ["containers", id, action] => {
            method_is(&req, Method::POST, "POST")?;
            let Some(action) = ManualAction::parse(action) else {
                return Err(ApiError::not_found(format!(
                    "no such action: {action} (isolate, release, capture)"
                )));
            };
            let id = percent_decode(id, false)?;
            check_csrf(req.headers())?;
            let body = read_body(req).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
            if v.get("confirm") != Some(&serde_json::Value::Bool(true)) {
                return Err(ApiError::bad_request(format!(
                    "{} on container {id}: confirm with the body {{\"confirm\": true}}",
                    serde_json::to_value(action)
                        .ok()
                        .and_then(|a| a.as_str().map(String::from))
                        .unwrap_or_default()
                )));
            }
            let view = state.view.clone();
            tracing::info!("API: {action:?} requested on container {id}");
            let record = blocking(move || view.act(&id, action)).await??;
            Ok(json_response(200, &record))
        }
        ["rules"] => {
            method_is(&req, Method::GET, "GET")?;
            let view = state.view.clone();
            let rules = blocking(move || view.rules()).await?;
            Ok(json_response(200, &serde_json::json!({ "rules": rules })))
        }
        ["actions"] => {
            method_is(&req, Method::GET, "GET")?;
            let container = query.get("container").filter(|c| !c.is_empty()).cloned();
            let limit = query
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(100)
                .min(MAX_LIMIT);
            let view = state.view.clone();
            let actions = blocking(move || view.actions(container.as_deref(), limit)).await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "actions": actions }),
            ))
        }
        _ => Err(ApiError::not_found(format!(
            "no such API endpoint: /api/v1/{}",
            rest.join("/")
        ))),
    }
}

/// Counts of the alerts the source keeps, per container (by short id).
fn fill_drift(state: &State, list: &mut [ContainerSummary]) {
    let all = state.alerts.query_alerts(&AlertFilter {
        limit: usize::MAX,
        ..AlertFilter::default()
    });
    let mut by: BTreeMap<&str, DriftStatus> = BTreeMap::new();
    // Newest first: the first seen is the last alert.
    for a in &all {
        let id = a.container_id();
        if id.is_empty() {
            continue;
        }
        let d = by.entry(id).or_default();
        d.alerts += 1;
        for (map, field) in [
            (&mut d.by_kind, "drift.kind"),
            (&mut d.by_verdict, "drift.verdict"),
        ] {
            let v = a.field(field);
            if !v.is_empty() {
                *map.entry(v.to_string()).or_default() += 1;
            }
        }
        *d.by_priority
            .entry(a.alert.priority.as_str().to_string())
            .or_default() += 1;
        if d.last_alert.is_none() {
            d.last_alert = Some(LastAlert {
                id: a.id,
                time: a.alert.time.clone(),
                rule: a.alert.rule.clone(),
                priority: a.alert.priority.as_str().to_string(),
            });
        }
    }
    for c in list {
        if let Some(d) = by.get(c.short_id.as_str()) {
            c.drift = d.clone();
        }
    }
}

fn metrics_text(state: &State) -> String {
    let mut w = MetricsWriter::new();
    let by_rule = state.ring.counts_by_rule();
    let samples: Vec<([(&str, &str); 2], u64)> = by_rule
        .iter()
        .map(|((rule, p), n)| ([("rule", rule.as_str()), ("priority", p.as_str())], *n))
        .collect();
    let refs: Vec<(&[(&str, &str)], u64)> = samples.iter().map(|(l, n)| (&l[..], *n)).collect();
    w.counter(
        "driftwatch_alerts_by_rule_total",
        "Alerts raised since the agent started, by rule and priority.",
        &refs,
    );
    w.gauge1(
        "driftwatch_alert_ring_alerts",
        "Alerts held in the in-memory ring the API serves.",
        state.ring.len() as f64,
    );
    let routes: Vec<([(&str, &str); 1], u64)> = Route::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                [("route", r.as_str())],
                state.stats.requests[i].load(Ordering::Relaxed),
            )
        })
        .collect();
    let refs: Vec<(&[(&str, &str)], u64)> = routes.iter().map(|(l, n)| (&l[..], *n)).collect();
    w.counter(
        "driftwatch_api_requests_total",
        "HTTP API requests, by route.",
        &refs,
    );
    w.counter1(
        "driftwatch_api_unauthorized_total",
        "API requests refused for a missing or wrong bearer token.",
        state.stats.unauthorized.load(Ordering::Relaxed),
    );
    w.counter1(
        "driftwatch_api_forbidden_total",
        "API requests refused as cross-site or with a foreign Host.",
        state.stats.forbidden.load(Ordering::Relaxed),
    );
    w.gauge1(
        "driftwatch_api_stream_clients",
        "Clients following /api/v1/alerts/stream.",
        state.stats.sse_clients.load(Ordering::Relaxed) as f64,
    );
    state.view.metrics(&mut w);
    w.finish()
}

fn sse_frame(a: &StoredAlert) -> Bytes {
    let json = serde_json::to_string(a).unwrap_or_default();
    Bytes::from(format!("id: {}\nevent: alert\ndata: {json}\n\n", a.id))
}

struct Follow {
    state: Arc<State>,
    rx: tokio::sync::broadcast::Receiver<StoredAlert>,
    filter: AlertFilter,
    backlog: VecDeque<StoredAlert>,
    last: u64,
    started: bool,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.state.stats.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Follow {
    /// Alerts after `self.last` from the source, oldest first.
    fn refill(&mut self) {
        let mut f = self.filter.clone();
        f.after_id = Some(self.last);
        f.limit = MAX_LIMIT;
        let mut found = self.state.alerts.query_alerts(&f);
        found.reverse();
        self.backlog.extend(found);
    }
}

/// Server-Sent Events: the alerts after `after_id` (or none when not given), then each new
/// one as it comes, filtered; a comment every 15 s keeps proxies from closing it.
fn stream(state: Arc<State>, filter: AlertFilter) -> Response<Body> {
    state.stats.sse_clients.fetch_add(1, Ordering::Relaxed);
    let rx = state.ring.subscribe();
    let last = filter.after_id.unwrap_or_else(|| state.alerts.last_id());
    let follow = Follow {
        state,
        rx,
        filter,
        backlog: VecDeque::new(),
        last,
        started: false,
    };
    let s = futures_util::stream::unfold(follow, |mut f| async move {
        if !f.started {
            f.started = true;
            f.refill();
            // Tells the client the stream is open, with the id it starts after.
            let hello = format!("event: hello\ndata: {{\"last_id\":{}}}\n\n", f.last);
            return Some((Ok::<_, Infallible>(Frame::data(Bytes::from(hello))), f));
        }
        loop {
            if let Some(a) = f.backlog.pop_front() {
                if a.id <= f.last {
                    continue;
                }
                f.last = a.id;
                return Some((Ok(Frame::data(sse_frame(&a))), f));
            }
            tokio::select! {
                r = f.rx.recv() => match r {
                    Ok(a) => {
                        if a.id <= f.last {
                            continue;
                        }
                        if !f.filter.matches(&a) {
                            continue;
                        }
                        f.last = a.id;
                        return Some((Ok(Frame::data(sse_frame(&a))), f));
                    }
                    Err(RecvError::Lagged(_)) => f.refill(),
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => {
                    return Some((Ok(Frame::data(Bytes::from_static(b": keep-alive\n\n"))), f));
                }
            }
        }
    });
    let mut r = Response::new(StreamBody::new(s).boxed());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:7878",
            "localhost:1",
            "[::1]:7878",
            "LOCALHOST",
            "127.1.2.3",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "10.0.0.1",
            "",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn queries_decode() {
        let q = parse_query(Some("rule=Drop+and%20execute&limit=5&x")).unwrap();
        assert_eq!(q["rule"], "Drop and execute");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "");
        assert!(parse_query(Some("a=%zz")).is_err());
        let f = parse_filter(&parse_query(Some("priority=warning&limit=99999")).unwrap()).unwrap();
        assert_eq!(f.priority, Some(Priority::Warning));
        assert_eq!(f.limit, MAX_LIMIT);
        assert!(parse_filter(&parse_query(Some("priority=loud")).unwrap()).is_err());
        assert!(parse_filter(&parse_query(Some("since=5x")).unwrap()).is_err());
        let f = parse_filter(&parse_query(Some("since=5m")).unwrap()).unwrap();
        assert!(f.since_ns.unwrap() < now_ns());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = ApiConfig {
            listen: "127.0.0.1:1".parse().unwrap(),
            token: Some("supersecrettoken123".into()),
            token_for_reads: true,
            ui: true,
        };
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
