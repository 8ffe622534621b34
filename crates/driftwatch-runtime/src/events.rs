//! The reconnecting event stream both engines share: subscribe, pass translated events on,
//! and when the subscription breaks report [`EngineEvent::Disconnected`] once, retry with
//! doubling backoff, and report [`EngineEvent::Reconnected`] when it is back.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::source::{EngineEvent, RuntimeError};

/// A subscription's items, stream errors already worded as one line.
pub(crate) type Feed<T> = BoxStream<'static, Result<T, String>>;

/// One engine's event subscription.
pub(crate) trait EventFeed: Send + 'static {
    type Item: Send + 'static;
    /// Names the engine in messages ("docker", "podman", "containerd").
    fn label(&self) -> &str;
    /// First reconnect delay, and the most it doubles to.
    fn backoff(&self) -> (Duration, Duration);
    /// Connects (or reuses the client) and subscribes.
    fn subscribe(&mut self) -> BoxFuture<'_, Result<Feed<Self::Item>, RuntimeError>>;
    /// The event an item is, or None to skip it.
    fn translate(&mut self, item: Self::Item) -> Option<EngineEvent>;
    /// The subscription ended or failed: drop the client so the next attempt reconnects.
    fn lost(&mut self) -> BoxFuture<'_, ()>;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Initial,
    Up,
    Down,
}

struct State<F: EventFeed> {
    feed: F,
    stream: Option<Feed<F::Item>>,
    link: Link,
    backoff: Duration,
}

/// The endless event stream of `feed` (see [`crate::EngineSource::events`]).
pub(crate) fn reconnecting<F: EventFeed>(feed: F) -> BoxStream<'static, EngineEvent> {
    let backoff = feed.backoff().0;
    let state = State {
        feed,
        stream: None,
        link: Link::Initial,
        backoff,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        let ev = st.next_event().await;
        Some((ev, st))
    })
    .boxed()
}

impl<F: EventFeed> State<F> {
    async fn next_event(&mut self) -> EngineEvent {
        loop {
            if let Some(stream) = self.stream.as_mut() {
                let reason = match stream.next().await {
                    Some(Ok(item)) => match self.feed.translate(item) {
                        Some(ev) => return ev,
                        None => continue,
                    },
                    Some(Err(reason)) => reason,
                    None => format!("{}: event stream ended", self.feed.label()),
                };
                self.stream = None;
                self.link = Link::Down;
                self.feed.lost().await;
                tracing::warn!(%reason, "{} event stream lost; reconnecting", self.feed.label());
                return EngineEvent::Disconnected { reason };
            }
            let (initial, max) = self.feed.backoff();
            match self.feed.subscribe().await {
                Ok(stream) => {
                    self.stream = Some(stream);
                    self.backoff = initial;
                    let was_down = self.link == Link::Down;
                    self.link = Link::Up;
                    if was_down {
                        tracing::info!("{} event stream reconnected", self.feed.label());
                        return EngineEvent::Reconnected;
                    }
                }
                Err(e) => {
                    let first = self.link != Link::Down;
                    self.link = Link::Down;
                    if first {
                        return EngineEvent::Disconnected {
                            reason: e.to_string(),
                        };
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(max);
                }
            }
        }
    }
}
