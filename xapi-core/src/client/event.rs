//! `event.from` as a [`Stream`]: token handling, server-side timeout, and a visible resync
//! when the server lost events.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::session::Session;
use crate::Error;
use crate::api::ErrorCode;
use crate::wire::Value;

/// What happened to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOperation {
    /// The object was created (or is reported by a subscription from token `""`).
    Add,
    /// The object changed.
    Mod,
    /// The object was destroyed; the event has no snapshot.
    Del,
    /// An operation this client does not know.
    Other(String),
}

impl EventOperation {
    fn from_wire(text: &str) -> Self {
        match text {
            "add" => Self::Add,
            "mod" => Self::Mod,
            "del" => Self::Del,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One object change reported by `event.from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<S> {
    /// The class, lower case as the server reports it (`vm`, `task`, ...).
    pub class: String,
    /// What happened.
    pub operation: EventOperation,
    /// The object's reference (`OpaqueRef:...`).
    pub reference: String,
    /// The object's record after the change (absent for [`EventOperation::Del`]).
    pub snapshot: Option<S>,
    /// The token that resumes the subscription right after the batch holding this event.
    pub token: String,
}

/// An item of an [`events`](Session::events) stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem<S> {
    /// An object changed.
    Event(Event<S>),
    /// The server lost events (`EVENTS_LOST`): anything cached from this subscription is stale.
    /// The stream restarts from token `""`, so every current object is reported again as
    /// [`EventOperation::Add`]; reload the cache from those events.
    Resync,
}

/// Options of an [`events`](Session::events) subscription.
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

#[derive(Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned"))]
pub(super) struct RawBatch<S> {
    #[serde(default = "Vec::new")]
    pub(super) events: Vec<RawEvent<S>>,
    pub(super) token: String,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned"))]
pub(super) struct RawEvent<S> {
    pub(super) class: String,
    pub(super) operation: String,
    #[serde(rename = "ref")]
    pub(super) reference: String,
    #[serde(default = "none")]
    pub(super) snapshot: Option<S>,
}

fn none<S>() -> Option<S> {
    None
}

struct EventState<S> {
    session: Session,
    classes: Vec<String>,
    options: EventOptions,
    queue: VecDeque<EventItem<S>>,
    failed: bool,
}

impl Session {
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
                        state.queue.extend(batch.events.into_iter().map(|raw| {
                            EventItem::Event(Event {
                                class: raw.class,
                                operation: EventOperation::from_wire(&raw.operation),
                                reference: raw.reference,
                                snapshot: raw.snapshot,
                                token: token.clone(),
                            })
                        }));
                        state.options.token = token;
                    }
                    Err(Error::Api(failure)) if matches!(failure.code, ErrorCode::EventsLost) => {
                        tracing::warn!("event.from: events lost; resynchronising from token \"\"");
                        state.options.token = String::new();
                        return Some((Ok(EventItem::Resync), Some(state)));
                    }
                    Err(error) if error.is_retryable() => {
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
    session: &Session,
    classes: &[String],
    options: &EventOptions,
) -> Result<RawBatch<S>, Error> {
    event_from(session, classes, &options.token, options.timeout_secs).await
}

/// One `event.from` call: blocks on the server until an event of `classes` after `token`
/// exists or `timeout_secs` pass; the client-side deadline is 6 seconds longer.
pub(super) async fn event_from<S: DeserializeOwned>(
    session: &Session,
    classes: &[String],
    token: &str,
    timeout_secs: f64,
) -> Result<RawBatch<S>, Error> {
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
