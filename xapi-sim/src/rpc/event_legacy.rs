//! The legacy event API still served by xapi: `event.register(classes)` subscribes the
//! session, `event.next()` blocks until something changed since the previous `next` (or the
//! registration) and returns those events, `event.unregister(classes)` drops classes.
//!
//! Clients fall back to it when `event.from` is unknown; it shares `event.from`'s change log,
//! so coalescing and `EVENTS_LOST` behave the same. A session that never registered gets
//! `SESSION_NOT_REGISTERED` from `next`.

use std::sync::Arc;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value};

use super::args;
use super::event::{Subscription, collect};
use crate::api_error::failure;
use crate::pool::{LegacyRegistration, Pool};

/// Handle `event.register`, `event.unregister` or `event.next` for `session`.
pub(crate) async fn handle(
    pool: &Arc<Pool>,
    session: &str,
    message: &str,
    a: &[Value],
) -> Result<Value, Failure> {
    match message {
        "register" => register(pool, session, &args::strings(a, 0)?),
        "unregister" => {
            unregister(pool, session, &args::strings(a, 0)?);
            Ok(Value::Nil)
        }
        _ => next(pool, session).await,
    }
}

fn register(pool: &Pool, session: &str, classes: &[String]) -> Result<Value, Failure> {
    for class in classes {
        Subscription::parse(class)?;
    }
    let generation = pool.db().generation();
    let mut registrations = lock(pool);
    let registration =
        registrations
            .entry(session.to_owned())
            .or_insert_with(|| LegacyRegistration {
                classes: Vec::new(),
                delivered: generation,
            });
    for class in classes {
        let class = class.to_lowercase();
        if !registration.classes.contains(&class) {
            registration.classes.push(class);
        }
    }
    Ok(Value::Nil)
}

fn unregister(pool: &Pool, session: &str, classes: &[String]) {
    if let Some(registration) = lock(pool).get_mut(session) {
        registration
            .classes
            .retain(|c| !classes.iter().any(|gone| gone.eq_ignore_ascii_case(c)));
    }
}

/// Drop the registration of a session that logs out.
pub(crate) fn forget(pool: &Pool, session: &str) {
    lock(pool).remove(session);
}

/// Block until there are events for the session's subscriptions, then return them.
async fn next(pool: &Arc<Pool>, session: &str) -> Result<Value, Failure> {
    let mut changes = pool.db().subscribe();
    loop {
        let Some(registration) = lock(pool).get(session).cloned() else {
            return Err(failure(ErrorCode::SessionNotRegistered, [session]));
        };
        let subscriptions = registration
            .classes
            .iter()
            .map(|c| Subscription::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        let found = {
            let db = pool.db();
            collect(&db, &subscriptions, Some(registration.delivered))?
                .map(|batch| (batch, db.generation()))
        };
        if let Some((batch, generation)) = found {
            if let Some(registration) = lock(pool).get_mut(session) {
                registration.delivered = generation;
            }
            return Ok(events_of(batch));
        }
        if changes.changed().await.is_err() {
            // the pool is shutting down: nothing will change any more
            return Ok(Value::Array(Vec::new()));
        }
    }
}

/// The `events` array of an `event.from`-shaped batch.
fn events_of(batch: Value) -> Value {
    match batch {
        Value::Struct(mut fields) => fields
            .remove("events")
            .unwrap_or_else(|| Value::Array(Vec::new())),
        other => other,
    }
}

fn lock(
    pool: &Pool,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, LegacyRegistration>> {
    pool.legacy_events
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
