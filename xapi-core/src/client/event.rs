//! `event.from` as a [`Stream`]: token handling, server-side timeout, and a visible resync
//! when the server lost events.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use serde::de::DeserializeOwned;

use super::session::SessionHandle;
use crate::Error;
use crate::api::{ErrorCode, EventBatch, EventRecord};
use crate::wire::Value;

/// An item of an [`events`](SessionHandle::events) stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem<S> {
    /// An object changed: the generated [`EventRecord`] (its `snapshot` decoded as `S`; absent
    /// for [`EventOperation::Del`](crate::api::EventOperation::Del)).
    Event {
        /// The event as `event.from` reported it.
        event: EventRecord<S>,
        /// The token that resumes the subscription right after the batch holding this event.
        token: String,
    },
    /// The server lost events (`EVENTS_LOST`): anything cached from this subscription is stale.
    /// The stream restarts from token `""`, so every current object is reported again as
    /// [`EventOperation::Add`](crate::api::EventOperation::Add); reload the cache from those
    /// events.
    Resync,
}

/// Options of an [`events`](SessionHandle::events) subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOptions {
    /// Start from this token (`""`: every current object is reported first).
    pub token: String,
    /// The server-side wait of one `event.from` call, in seconds (default 60.1, as Xen
    /// Orchestra). The client-side deadline of the call is this plus 6 seconds.
    pub timeout_secs: f64,
    /// Pause before calling again after a retryable error (default 1 s).
    pub retry_delay: Duration,
}

impl Default for EventOptions {
    fn default() -> Self {
        Self {
            token: String::new(),
            timeout_secs: 60.1,
            retry_delay: Duration::from_secs(1),
        }
    }
}

struct EventState<S> {
    session: SessionHandle,
    classes: Vec<String>,
    options: EventOptions,
    queue: VecDeque<EventItem<S>>,
    failed: bool,
}

impl SessionHandle {
    /// Subscribe to changes of `classes` (`"*"`, class names such as `"vm"`, or
    /// `"<class>/<ref>"`) with `event.from`, as a stream that runs until dropped.
    ///
    /// Snapshots decode as `S` (a record type, or [`serde::de::IgnoredAny`] to skip them).
    /// `EVENTS_LOST` yields [`EventItem::Resync`] and restarts from token `""`. A retryable error
    /// (connection, timeout) is yielded and the subscription goes on after
    /// [`EventOptions::retry_delay`]; any other error is yielded and ends the stream.
    pub fn events<S: DeserializeOwned + Send + 'static>(
        &self,
        classes: &[&str],
        options: EventOptions,
    ) -> impl Stream<Item = Result<EventItem<S>, Error>> + Send + 'static {
        let state = EventState {
            session: self.clone(),
            classes: classes.iter().map(|c| (*c).to_owned()).collect(),
            options,
            queue: VecDeque::new(),
            failed: false,
        };
        futures::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                if let Some(item) = state.queue.pop_front() {
                    return Some((Ok(item), Some(state)));
                }
                if state.failed {
                    tokio::time::sleep(state.options.retry_delay).await;
                    state.failed = false;
                }
                match next_batch::<S>(&state.session, &state.classes, &state.options).await {
                    Ok(batch) => {
                        let token = batch.token;
                        state.queue.extend(batch.events.into_iter().map(|event| {
                            EventItem::Event {
                                event,
                                token: token.clone(),
                            }
                        }));
                        state.options.token = token;
                    }
                    Err(Error::Api(failure)) if matches!(failure.code, ErrorCode::EventsLost) => {
                        tracing::warn!("event.from: events lost; resynchronising from token \"\"");
                        state.options.token = String::new();
                        return Some((Ok(EventItem::Resync), Some(state)));
                    }
                    Err(error) if error.is_retryable_if_idempotent() => {
                        state.failed = true;
                        return Some((Err(error), Some(state)));
                    }
                    Err(error) => return Some((Err(error), None)),
                }
            }
        })
    }
}

async fn next_batch<S: DeserializeOwned>(
    session: &SessionHandle,
    classes: &[String],
    options: &EventOptions,
) -> Result<EventBatch<S>, Error> {
    event_from(session, classes, &options.token, options.timeout_secs).await
}

/// One `event.from` call: blocks on the server until an event of `classes` after `token`
/// exists or `timeout_secs` pass; the client-side deadline is 6 seconds longer.
pub(super) async fn event_from<S: DeserializeOwned>(
    session: &SessionHandle,
    classes: &[String],
    token: &str,
    timeout_secs: f64,
) -> Result<EventBatch<S>, Error> {
    let params = [
        Value::Array(classes.iter().map(|c| Value::String(c.clone())).collect()),
        Value::String(token.to_owned()),
        Value::Double(timeout_secs),
    ];
    let deadline = Duration::from_secs_f64(timeout_secs.max(0.0) + 6.0);
    session
        .call_values("event.from", &params, Some(deadline))
        .await
}
