//! Which handler a request reaches, and the handlers: the UI's files, `/healthz`,
//! `/metrics` and the JSON API under `/api/v1`. Each checks its method, the Host and token
//! as `auth` decides, and runs calls into the agent on the blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use driftwatch_model::AlertQuery;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};

use super::auth::{self, Access};
use super::bind::Listener;
use super::params::{parse_filter, parse_limit, parse_query, percent_decode};
use super::reply::{Body, error_response, full, json_response, secure, text_response};
use super::{MAX_BODY, MAX_DIFF_ENTRIES, MAX_LIMIT, State, sse};
use crate::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, MetricsWriter};
use crate::view::{ApiError, ContainerSummary, DriftStatus, LastAlert, ManualAction};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");

/// Route classes, the label of request counters (a closed set: bounded cardinality).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Route {
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
    pub(super) const ALL: [Route; 12] = [
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

    /// Its counter's place in [`super::ServerStats::requests`] (the declaration order, which
    /// [`Route::ALL`] follows).
    fn index(self) -> usize {
        self as usize
    }

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

pub(super) async fn handle(
    state: Arc<State>,
    serves: Listener,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let route = classify(&path);
    state.stats.requests[route.index()].fetch_add(1, Ordering::Relaxed);
    let answer = match serves {
        Listener::Full => route_request(&state, req, &path).await,
        Listener::MetricsOnly => metrics_only(&state, req, &path).await,
    };
    let resp = match answer {
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

/// The metrics listener: `/metrics` and `/healthz` without a token, nothing else. It is
/// meant for the pod network, so no Host check either (there is no loopback name to keep).
async fn metrics_only(
    state: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    match path {
        "/metrics" => {
            method_is(&req, Method::GET, "GET")?;
            metrics_page(state).await
        }
        "/healthz" => {
            method_is(&req, Method::GET, "GET")?;
            healthz(state).await
        }
        _ => Err(ApiError::not_found(format!(
            "no such page on the metrics listener: {path} (only /metrics and /healthz)"
        ))),
    }
}

async fn metrics_page(state: &Arc<State>) -> Result<Response<Body>, ApiError> {
    let st = state.clone();
    let text = blocking(move || metrics_text(&st)).await?;
    Ok(text_response(METRICS_CONTENT_TYPE, text))
}

async fn healthz(state: &Arc<State>) -> Result<Response<Body>, ApiError> {
    let view = state.view.clone();
    let health = blocking(move || view.health()).await?;
    Ok(json_response(
        if health.healthy() { 200 } else { 503 },
        &serde_json::json!({ "healthy": health.healthy(), "components": health.components }),
    ))
}

async fn route_request(
    state: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    auth::check_host(&state.config, req.headers()).map_err(|r| state.refuse(r))?;
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
            healthz(state).await
        }
        ["metrics"] => {
            method_is(&req, Method::GET, "GET")?;
            auth::check_token(&state.config, Access::Read, req.headers())
                .map_err(|r| state.refuse(r))?;
            metrics_page(state).await
        }
        ["api", "v1", rest @ ..] => {
            let access = if req.method() == Method::GET || req.method() == Method::HEAD {
                Access::Read
            } else {
                Access::Change
            };
            auth::check_token(&state.config, access, req.headers()).map_err(|r| state.refuse(r))?;
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
                let found = alerts.query_alerts_json(&filter)?;
                let last_id = alerts.last_id()?;
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
                Ok::<_, ApiError>(body)
            })
            .await??;
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
            sse::stream(state.clone(), filter)
        }
        ["containers"] => {
            method_is(&req, Method::GET, "GET")?;
            let st = state.clone();
            let list = blocking(move || {
                let mut list = st.view.containers();
                fill_drift(&st, &mut list)?;
                list.sort_by(|a, b| {
                    b.running
                        .cmp(&a.running)
                        .then(b.drift.alerts.cmp(&a.drift.alerts))
                        .then(a.name.cmp(&b.name))
                });
                Ok::<_, ApiError>(list)
            })
            .await??;
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
                fill_drift(&st, &mut one)?;
                let [s] = one;
                d.summary = s;
                let about = st.alerts.query_alerts(&AlertQuery {
                    container: Some(d.summary.short_id.clone()),
                    limit: MAX_LIMIT,
                    ..AlertQuery::default()
                })?;
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
            let limit = parse_limit(query, 500, MAX_DIFF_ENTRIES)?;
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
            auth::check_csrf(req.headers()).map_err(|r| state.refuse(r))?;
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
fn fill_drift(state: &State, list: &mut [ContainerSummary]) -> Result<(), ApiError> {
    let all = state.alerts.query_alerts(&AlertQuery {
        limit: usize::MAX,
        ..AlertQuery::default()
    })?;
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_classify_into_the_closed_route_set() {
        for (path, route) in [
            ("/", Route::Ui),
            ("/app.js", Route::Ui),
            ("/style.css", Route::Ui),
            // Served, but counted with the unknown pages (as it always was).
            ("/index.html", Route::Other),
            ("/healthz", Route::Healthz),
            ("/metrics", Route::Metrics),
            ("/metrics/", Route::Other),
            ("/api/v1/alerts", Route::Alerts),
            ("/api/v1/alerts/stream", Route::Stream),
            ("/api/v1/containers", Route::Containers),
            ("/api/v1/containers/web", Route::Container),
            ("/api/v1/containers/web/diff", Route::Diff),
            ("/api/v1/containers/web/isolate", Route::Action),
            ("/api/v1/containers/web/anything", Route::Action),
            ("/api/v1/containers/web/diff/x", Route::Other),
            ("/api/v1/rules", Route::Rules),
            ("/api/v1/actions", Route::Actions),
            ("/api/v2/alerts", Route::Other),
            ("/api/v1", Route::Other),
            ("//healthz", Route::Healthz),
            ("/nothing", Route::Other),
        ] {
            assert_eq!(classify(path), route, "{path}");
        }
    }

    #[test]
    fn every_route_has_its_own_label_and_counter() {
        let labels: std::collections::BTreeSet<_> = Route::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Route::ALL.len());
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
    }
}
