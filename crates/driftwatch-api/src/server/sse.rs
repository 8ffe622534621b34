//! `/api/v1/alerts/stream`: Server-Sent Events of new alerts. A client that reconnects
//! (`Last-Event-ID`) or falls behind the live broadcast resumes from the alert source by id,
//! so it misses nothing the source still holds; a comment every 15 s keeps proxies from
//! closing an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use tokio::sync::broadcast::error::RecvError;

use super::reply::Body;
use super::{MAX_LIMIT, State};
use driftwatch_model::{AlertQuery, StoredAlert};

use crate::view::ApiError;

fn sse_frame(a: &StoredAlert) -> Bytes {
    let json = serde_json::to_string(a).unwrap_or_default();
    Bytes::from(format!("id: {}\nevent: alert\ndata: {json}\n\n", a.id))
}

struct Follow {
    state: Arc<State>,
    rx: tokio::sync::broadcast::Receiver<StoredAlert>,
    filter: AlertQuery,
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
        match self.state.alerts.query_alerts(&f) {
            Ok(mut found) => {
                found.reverse();
                self.backlog.extend(found);
            }
            // What the source could not give now, the live broadcast may still bring.
            Err(e) => tracing::warn!("API: the alert stream's backlog: {e}"),
        }
    }
}

/// Server-Sent Events: the alerts after `after_id` (or none when not given), then each new
/// one as it comes, filtered; a comment every 15 s keeps proxies from closing it.
pub(super) fn stream(state: Arc<State>, filter: AlertQuery) -> Result<Response<Body>, ApiError> {
    let last = match filter.after_id {
        Some(after) => after,
        None => state.alerts.last_id()?,
    };
    state.stats.sse_clients.fetch_add(1, Ordering::Relaxed);
    let rx = state.ring.subscribe();
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
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_frame_names_its_id_and_event() {
        let a = StoredAlert {
            id: 7,
            time_ns: 1,
            alert: driftwatch_model::Alert {
                time: driftwatch_model::Alert::format_time(1),
                rule: "r".into(),
                priority: driftwatch_model::Priority::Critical,
                source: "syscall".into(),
                hostname: "h".into(),
                output: "line one\nline two".into(),
                tags: vec![],
                output_fields: Default::default(),
            },
        };
        let frame = sse_frame(&a);
        let text = std::str::from_utf8(&frame).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(text, format!("id: 7\nevent: alert\ndata: {json}\n\n"));
        // One data line: a newline in the output is escaped by JSON.
        assert_eq!(text.lines().filter(|l| l.starts_with("data:")).count(), 1);
    }
}
