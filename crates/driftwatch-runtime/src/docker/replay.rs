//! Docker's (or podman's) container event subscription for [`crate::events::reconnecting`]:
//! filtered to container lifecycle events, resumed after a reconnect from a little before the
//! newest event seen, and the replayed ones recognised and dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use driftwatch_model::ContainerId;
use futures_util::future::BoxFuture;
use futures_util::stream::StreamExt;

use super::client::DockerClient;
use crate::source::{EngineEvent, RuntimeError};

/// Docker's (or Podman's) container events, replayed after a reconnect from a little before
/// the newest one seen.
///
/// Events do not come in `timeNano` order: under parallel churn dockerd publishes some up
/// to a few ms after a later-stamped one (14 of 1,632 in a 400-container churn here).
/// Dropping every event stamped at or before the newest seen, as a replay filter, lost those,
/// destroys among them, and their containers stayed "live" in the agent for good. Replays
/// are recognised by the event itself instead.
pub(super) struct DockerEvents {
    inner: Arc<DockerClient>,
    /// The newest `timeNano` seen.
    last_nano: Option<i64>,
    /// (timeNano, container, action) of the last [`SEEN_EVENTS`] events passed on.
    seen: HashSet<(i64, String, String)>,
    order: VecDeque<(i64, String, String)>,
}

/// Events remembered to recognise a replay: more than dockerd keeps for `since` (256).
const SEEN_EVENTS: usize = 4096;
/// A replay starts this long before the newest event seen, for events published late.
const REPLAY_MARGIN_NS: i64 = 2_000_000_000;

impl DockerEvents {
    pub(super) fn new(inner: Arc<DockerClient>) -> DockerEvents {
        DockerEvents {
            inner,
            last_nano: None,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// `since` for a resubscription, as Docker's `seconds.nanoseconds`.
    fn since(&self) -> Option<String> {
        let n = self.last_nano?.saturating_sub(REPLAY_MARGIN_NS).max(0);
        Some(format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000))
    }

    /// Whether this event was passed on already (a replay); remembers it if not.
    fn replayed(&mut self, key: (i64, String, String)) -> bool {
        self.last_nano = Some(self.last_nano.map_or(key.0, |l| l.max(key.0)));
        if !self.seen.insert(key.clone()) {
            return true;
        }
        self.order.push_back(key);
        while self.order.len() > SEEN_EVENTS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        false
    }
}

impl crate::events::EventFeed for DockerEvents {
    type Item = EventMessage;

    fn label(&self) -> &str {
        self.inner.engine().as_str()
    }

    fn backoff(&self) -> (Duration, Duration) {
        (self.inner.cfg.backoff_initial, self.inner.cfg.backoff_max)
    }

    fn subscribe(
        &mut self,
    ) -> BoxFuture<'_, Result<crate::events::Feed<EventMessage>, RuntimeError>> {
        Box::pin(async move {
            let d = self.inner.ping().await?;
            let mut opts = EventsOptionsBuilder::new().filters(&HashMap::from([
                ("type", vec!["container"]),
                ("event", vec!["create", "start", "die", "destroy"]),
            ]));
            if let Some(since) = self.since() {
                opts = opts.since(&since);
            }
            let inner = self.inner.clone();
            Ok(d.events(Some(opts.build()))
                .map(move |r| r.map_err(|e| inner.error("events", e, None).to_string()))
                .boxed())
        })
    }

    fn lost(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            *self.inner.client.lock().await = None;
        })
    }

    fn translate(&mut self, msg: EventMessage) -> Option<EngineEvent> {
        if msg.typ != Some(EventMessageTypeEnum::CONTAINER) {
            return None;
        }
        let actor = msg.actor?.id?;
        let action = msg.action?;
        if let Some(n) = msg.time_nano
            && self.replayed((n, actor.clone(), action.clone()))
        {
            return None;
        }
        let id = ContainerId::new(actor.as_str()).ok()?;
        Some(match action.as_str() {
            "create" => EngineEvent::Created(id),
            "start" => EngineEvent::Started(id),
            "die" => EngineEvent::Died(id),
            "destroy" => EngineEvent::Destroyed(id),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{DockerConfig, DockerSource};
    use crate::events::EventFeed;

    fn event(nano: i64, action: &str, id: &str) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some(id.into()),
                attributes: None,
            }),
            time_nano: Some(nano),
            ..Default::default()
        }
    }

    /// The order dockerd really delivered in a parallel churn here: a destroy stamped
    /// 0.08 ms before the start of another container, delivered after it. Both are passed
    /// on; after a reconnect, the replay (from 2 s before the newest) passes on only what
    /// was not seen.
    #[test]
    fn events_out_of_time_order_are_kept_and_replays_are_dropped() {
        let src = DockerSource::new(DockerConfig::default());
        let mut feed = DockerEvents::new(src.inner.clone());
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let t = 1_795_918_836_669_916_702_i64;
        let id = |x: &str| ContainerId::new(x).unwrap();
        assert_eq!(
            feed.translate(event(t, "start", &b)),
            Some(EngineEvent::Started(id(&b)))
        );
        assert_eq!(
            feed.translate(event(t - 78_592, "destroy", &a)),
            Some(EngineEvent::Destroyed(id(&a)))
        );
        // Same time, another container: not a replay either.
        assert_eq!(
            feed.translate(event(t, "die", &c)),
            Some(EngineEvent::Died(id(&c)))
        );
        assert_eq!(feed.since().as_deref(), Some("1795918834.669916702"));
        // The replay after a reconnect: all three again, then one new.
        for (n, act, who) in [
            (t, "start", &b),
            (t - 78_592, "destroy", &a),
            (t, "die", &c),
        ] {
            assert_eq!(feed.translate(event(n, act, who)), None, "{act} replayed");
        }
        assert_eq!(
            feed.translate(event(t + 5, "destroy", &b)),
            Some(EngineEvent::Destroyed(id(&b)))
        );
        // Bounded: the oldest are forgotten first.
        for i in 0..(SEEN_EVENTS as i64 + 10) {
            feed.translate(event(t + 10 + i, "create", &c));
        }
        assert!(feed.seen.len() <= SEEN_EVENTS);
        assert_eq!(feed.seen.len(), feed.order.len());
    }
}
