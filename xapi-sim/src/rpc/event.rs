//! `event.from`, `event.inject`, `event.get_current_id`; the legacy `event.register`,
//! `event.unregister` and `event.next` are in [`super::event_legacy`].
//!
//! Tokens are `"%020d,%020d"` (database generation, message generation). Every object changed
//! after the token's generation is reported once (changes are coalesced), as `add` when it was
//! created after the token and `mod` otherwise; deleted objects as `del` without a snapshot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use xapi_core::api::ErrorCode;

use xapi_core::wire::{Failure, Value, xmlrpc};

use super::Call;
use super::args;
use crate::api_error::failure;
use crate::model::store::{Db, Deletion, record_of};
use crate::pool::Pool;
use crate::timestamp;

/// Handle an `event.*` call.
pub(crate) async fn handle(pool: &Arc<Pool>, call: &Call) -> Option<Result<Value, Failure>> {
    let a = &call.args;
    Some(match call.message.name {
        "from" => from(pool, a).await,
        "inject" => inject(pool, a),
        "get_current_id" => Ok(Value::Int(pool.db().generation() as i64)),
        "register" | "unregister" | "next" => {
            let session = call.session.as_deref().unwrap_or_default();
            super::event_legacy::handle(pool, session, call.message.name, a).await
        }
        _ => return None,
    })
}

/// One entry of the subscription list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// `*`
    All,
    /// A class, lower case.
    Class(String),
    /// One object of a class.
    Object(String, String),
}

impl Subscription {
    /// Parse one entry (`*`, a class, `class/ref`); `EVENT_SUBSCRIPTION_PARSE_FAILURE` otherwise.
    pub(crate) fn parse(text: &str) -> Result<Self, Failure> {
        if text == "*" {
            return Ok(Self::All);
        }
        let parse_failure = || failure(ErrorCode::EventSubscriptionParseFailure, [text]);
        match text.split_once('/') {
            Some((class, reference)) if !class.is_empty() && !reference.is_empty() => {
                Ok(Self::Object(class.to_lowercase(), reference.to_owned()))
            }
            Some(_) => Err(parse_failure()),
            None if text.is_empty() => Err(parse_failure()),
            None => Ok(Self::Class(text.to_lowercase())),
        }
    }

    fn matches_class(&self, class: &str) -> bool {
        match self {
            Self::All => true,
            Self::Class(c) | Self::Object(c, _) => *c == class,
        }
    }

    fn matches(&self, class: &str, reference: &str) -> bool {
        match self {
            Self::All => true,
            Self::Class(c) => *c == class,
            Self::Object(c, r) => *c == class && r == reference,
        }
    }
}

/// The token for a generation.
pub(crate) fn token(generation: u64) -> String {
    format!("{generation:020},{:020}", 0)
}

/// The generation in a token; `None` for `""`, a subscription from scratch (every object as it
/// is now, no deletions: it can lose nothing, so it never gets `EVENTS_LOST`).
fn parse_token(text: &str) -> Result<Option<u64>, Failure> {
    if text.is_empty() {
        return Ok(None);
    }
    let db_part = text.split(',').next().unwrap_or_default();
    db_part
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| failure(ErrorCode::EventFromTokenParseFailure, [text]))
}

/// `event.from(classes, token, timeout)`.
async fn from(pool: &Arc<Pool>, a: &[Value]) -> Result<Value, Failure> {
    let subscriptions = args::strings(a, 0)?
        .iter()
        .map(|s| Subscription::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let since = parse_token(&args::string(a, 1)?)?;
    let timeout = args::float(a, 2)?;
    let timeout = if timeout.is_finite() && timeout > 0.0 {
        Duration::from_secs_f64(timeout.min(86_400.0))
    } else {
        Duration::ZERO
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = pool.db().subscribe();
    loop {
        let batch = {
            let db = pool.db();
            collect(&db, &subscriptions, since)?
        };
        if let Some(batch) = batch {
            return Ok(batch);
        }
        if !matches!(
            tokio::time::timeout_at(deadline, changes.changed()).await,
            Ok(Ok(()))
        ) {
            let db = pool.db();
            return Ok(batch_value(
                Vec::new(),
                ref_counts(&db, &subscriptions),
                db.generation(),
            ));
        }
    }
}

/// The events after generation `since` matching the subscriptions (`None`: every object, as
/// for an empty token), or `None` when there are none. `EVENTS_LOST` when deletions after
/// `since` were forgotten.
pub(crate) fn collect(
    db: &Db,
    subscriptions: &[Subscription],
    since: Option<u64>,
) -> Result<Option<Value>, Failure> {
    let deletions: Vec<&Deletion> = match since {
        None => Vec::new(),
        Some(since) => db
            .deletions_since(since)
            .ok_or_else(|| failure(ErrorCode::EventsLost, [] as [&str; 0]))?
            .collect(),
    };
    let since = since.unwrap_or(0);
    let stamp = timestamp::unix_seconds_text();
    let mut events: Vec<(u64, Value)> = Vec::new();
    for table in db.tables() {
        let class = table.meta.name.to_lowercase();
        if !subscriptions.iter().any(|s| s.matches_class(&class)) {
            continue;
        }
        for (reference, object) in &table.objects {
            if object.modified < since
                || !subscriptions.iter().any(|s| s.matches(&class, reference))
            {
                continue;
            }
            let operation = if object.created >= since {
                "add"
            } else {
                "mod"
            };
            let mut event = event_base(object.modified, &stamp, &class, operation, reference);
            event.insert("snapshot".to_owned(), record_of(object));
            events.push((object.modified, Value::Struct(event)));
        }
    }
    for deletion in deletions {
        let class = deletion.class.to_lowercase();
        if subscriptions
            .iter()
            .any(|s| s.matches(&class, &deletion.reference))
        {
            let event = event_base(
                deletion.generation,
                &stamp,
                &class,
                "del",
                &deletion.reference,
            );
            events.push((deletion.generation, Value::Struct(event)));
        }
    }
    if events.is_empty() {
        return Ok(None);
    }
    events.sort_by_key(|(generation, _)| *generation);
    let events = events.into_iter().map(|(_, e)| e).collect();
    Ok(Some(batch_value(
        events,
        ref_counts(db, subscriptions),
        db.generation(),
    )))
}

fn event_base(
    generation: u64,
    stamp: &str,
    class: &str,
    operation: &str,
    reference: &str,
) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("id".to_owned(), Value::String(generation.to_string())),
        ("timestamp".to_owned(), Value::String(stamp.to_owned())),
        ("class".to_owned(), Value::String(class.to_owned())),
        ("operation".to_owned(), Value::String(operation.to_owned())),
        ("ref".to_owned(), Value::String(reference.to_owned())),
    ])
}

/// Number of live objects per subscribed class (lower-case names).
fn ref_counts(db: &Db, subscriptions: &[Subscription]) -> BTreeMap<String, Value> {
    db.tables()
        .map(|t| (t.meta.name.to_lowercase(), t.objects.len()))
        .filter(|(class, _)| subscriptions.iter().any(|s| s.matches_class(class)))
        .map(|(class, count)| (class, Value::Int(count as i64)))
        .collect()
}

fn batch_value(events: Vec<Value>, counts: BTreeMap<String, Value>, generation: u64) -> Value {
    Value::Struct(BTreeMap::from([
        ("events".to_owned(), Value::Array(events)),
        ("valid_ref_counts".to_owned(), Value::Struct(counts)),
        ("token".to_owned(), Value::String(token(generation))),
    ]))
}

/// The XML-RPC response to a successful `event.from`, as xapi writes it: the counts of
/// `valid_ref_counts` are int32 in xapi (`<i4>`, where its int64 values are untyped text), a
/// kind the generic writer has no variant for, so they are retyped here. JSON-RPC sends both
/// kinds as numbers and needs nothing.
pub(crate) fn encode_xmlrpc_batch(batch: &Value) -> Vec<u8> {
    let plain = xmlrpc::encode_response(Ok(batch));
    let Value::Struct(fields) = batch else {
        return plain;
    };
    let Some(counts @ Value::Struct(by_class)) = fields.get("valid_ref_counts") else {
        return plain;
    };
    let untyped = format!(
        "<name>valid_ref_counts</name>{}",
        xmlrpc::encode_value(counts)
    );
    let mut typed = String::from("<name>valid_ref_counts</name><value><struct>");
    for (class, count) in by_class {
        let count = count
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(i32::MAX);
        let _ = write!(
            typed,
            "<member><name>{class}</name><value><i4>{count}</i4></value></member>"
        );
    }
    typed.push_str("</struct></value>");
    match String::from_utf8(plain) {
        Ok(text) => text.replacen(&untyped, &typed, 1).into_bytes(),
        Err(err) => err.into_bytes(),
    }
}

/// `event.inject(class, ref)`: report the object as modified; returns the new token.
fn inject(pool: &Pool, a: &[Value]) -> Result<Value, Failure> {
    let class_text = args::string(a, 0)?;
    let reference = args::string(a, 1)?;
    let class = pool
        .classes
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&class_text))
        .map_or(class_text.as_str(), |c| c.name);
    let mut db = pool.db();
    db.touch(class, &reference)?;
    Ok(Value::String(token(db.generation() - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_like_xapi() {
        assert_eq!(Subscription::parse("*").unwrap(), Subscription::All);
        assert_eq!(
            Subscription::parse("VM").unwrap(),
            Subscription::Class("vm".into())
        );
        assert_eq!(
            Subscription::parse("task/OpaqueRef:1").unwrap(),
            Subscription::Object("task".into(), "OpaqueRef:1".into())
        );
        assert_eq!(
            Subscription::parse("vm/").unwrap_err().code,
            ErrorCode::EventSubscriptionParseFailure
        );
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_fail() {
        assert_eq!(token(42), "00000000000000000042,00000000000000000000");
        assert_eq!(parse_token(&token(42)).unwrap(), Some(42));
        assert_eq!(parse_token("").unwrap(), None);
        let err = parse_token("soon").unwrap_err();
        assert_eq!(err.code, ErrorCode::EventFromTokenParseFailure);
        assert_eq!(err.params, vec!["soon"]);
    }

    #[test]
    fn an_empty_token_never_loses_events_even_after_a_restart() {
        use crate::model::db_form::to_database;
        use crate::model::store::tests::TEST_CLASSES;
        let mut db = Db::new(TEST_CLASSES, "t");
        let vm = db.create("VM", BTreeMap::new()).unwrap();
        let gone = db.create("VM", BTreeMap::new()).unwrap();
        db.destroy("VM", &gone).unwrap();
        let xml = xapi_dr::metadata::db_xml_bytes(&to_database(&db));
        let saved = xapi_dr::metadata::read_db_xml(&xml[..]).unwrap();
        // a restarted pool has forgotten the deletions before it started
        let restarted = Db::from_database(TEST_CLASSES, "t", &saved);
        let subscriptions = [Subscription::parse("vm").unwrap()];
        let err = collect(&restarted, &subscriptions, Some(0)).unwrap_err();
        assert_eq!(err.code, ErrorCode::EventsLost);
        let Some(Value::Struct(batch)) = collect(&restarted, &subscriptions, None).unwrap() else {
            panic!("an empty token gets every object")
        };
        let Value::Array(events) = &batch["events"] else {
            panic!("events is an array")
        };
        assert_eq!(events.len(), 1, "{events:?}");
        let Value::Struct(event) = &events[0] else {
            panic!("an event is a struct")
        };
        assert_eq!(event["ref"], Value::String(vm));
        assert_eq!(event["operation"], Value::String("add".into()));
    }
}
