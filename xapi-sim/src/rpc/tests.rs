//! Dispatcher tests over a small hand-written datamodel, so that the RPC rules are checked
//! independently of the generated one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use xapi_core::api::meta::{ClassMeta, FieldMeta, MessageMeta, ParamMeta, Qualifier, Ty};
use xapi_core::wire::{Failure, Value};

use super::call;
use crate::clock::SimClock;
use crate::faults::Faults;
use crate::pool::Pool;
use crate::storage::Storage;

const RW: Qualifier = Qualifier::ReadWrite;
const RO: Qualifier = Qualifier::ReadOnlyRuntime;
static STRING: Ty = Ty::String;

const fn f(name: &'static str, ty: Ty, qualifier: Qualifier) -> FieldMeta {
    FieldMeta {
        name,
        ty,
        qualifier,
        default: None,
    }
}

const fn p(name: &'static str, ty: Ty) -> ParamMeta {
    ParamMeta {
        name,
        ty,
        required: true,
    }
}

/// A trailing parameter added in a later release.
const fn opt(name: &'static str, ty: Ty) -> ParamMeta {
    ParamMeta {
        name,
        ty,
        required: false,
    }
}

const fn m(
    name: &'static str,
    params: &'static [ParamMeta],
    result: Ty,
    is_async: bool,
) -> MessageMeta {
    MessageMeta {
        name,
        params,
        result,
        is_async,
        implicit: false,
    }
}

const S: ParamMeta = p("session_id", Ty::Ref("session"));
const STRING_MAP: Ty = Ty::Map(&STRING, &STRING);

static MODEL: &[ClassMeta] = &[
    ClassMeta {
        name: "session",
        fields: &[
            f("uuid", Ty::String, RO),
            f("this_host", Ty::Ref("host"), RO),
            f("last_active", Ty::DateTime, RO),
            f("pool", Ty::Bool, RO),
            f("is_local_superuser", Ty::Bool, RO),
            f("auth_user_name", Ty::String, RO),
            f("originator", Ty::String, RO),
        ],
        messages: &[
            m(
                "login_with_password",
                &[
                    p("uname", Ty::String),
                    p("pwd", Ty::String),
                    opt("version", Ty::String),
                    opt("originator", Ty::String),
                ],
                Ty::Ref("session"),
                false,
            ),
            m("logout", &[S], Ty::Void, false),
        ],
    },
    ClassMeta {
        name: "task",
        fields: &[
            f("uuid", Ty::String, RO),
            f("name_label", Ty::String, RO),
            f("name_description", Ty::String, RO),
            f("allowed_operations", Ty::Set(&Ty::String), RO),
            f("created", Ty::DateTime, RO),
            f("finished", Ty::DateTime, RO),
            f("status", Ty::String, RO),
            f("resident_on", Ty::Ref("host"), RO),
            f("progress", Ty::Float, RO),
            f("result", Ty::String, RO),
            f("error_info", Ty::Set(&Ty::String), RO),
        ],
        messages: &[
            m(
                "get_record",
                &[S, p("self", Ty::Ref("task"))],
                Ty::Record("task"),
                false,
            ),
            m(
                "get_status",
                &[S, p("self", Ty::Ref("task"))],
                Ty::String,
                false,
            ),
            m("cancel", &[S, p("task", Ty::Ref("task"))], Ty::Void, true),
            m("destroy", &[S, p("self", Ty::Ref("task"))], Ty::Void, false),
        ],
    },
    ClassMeta {
        name: "pool",
        fields: &[
            f("uuid", Ty::String, RO),
            f("name_label", Ty::String, RW),
            f("master", Ty::Ref("host"), RO),
        ],
        messages: &[m("get_all", &[S], Ty::Set(&Ty::Ref("pool")), false)],
    },
    ClassMeta {
        name: "host",
        fields: &[
            f("uuid", Ty::String, RO),
            f("name_label", Ty::String, RW),
            f("enabled", Ty::Bool, RO),
            f("resident_VMs", Ty::Set(&Ty::Ref("VM")), RO),
        ],
        messages: &[],
    },
    ClassMeta {
        name: "VM",
        fields: &[
            f("uuid", Ty::String, RO),
            f("name_label", Ty::String, RW),
            f("power_state", Ty::String, RO),
            f("is_a_template", Ty::Bool, RW),
            f("resident_on", Ty::Ref("host"), RO),
            f("domid", Ty::Int, RO),
            f("order", Ty::Int, RW),
            f("start_delay", Ty::Int, RW),
            f("shutdown_delay", Ty::Int, RW),
            f("appliance", Ty::Ref("VM_appliance"), RW),
            f("memory_static_max", Ty::Int, RW),
            f("other_config", STRING_MAP, RW),
            f("tags", Ty::Set(&STRING), RW),
        ],
        messages: &[
            m("get_all", &[S], Ty::Set(&Ty::Ref("VM")), false),
            m(
                "get_all_records",
                &[S],
                Ty::Map(&Ty::Ref("VM"), &Ty::Record("VM")),
                false,
            ),
            m(
                "get_record",
                &[S, p("self", Ty::Ref("VM"))],
                Ty::Record("VM"),
                false,
            ),
            m(
                "get_by_uuid",
                &[S, p("uuid", Ty::String)],
                Ty::Ref("VM"),
                false,
            ),
            m(
                "get_by_name_label",
                &[S, p("label", Ty::String)],
                Ty::Set(&Ty::Ref("VM")),
                false,
            ),
            m(
                "get_power_state",
                &[S, p("self", Ty::Ref("VM"))],
                Ty::String,
                false,
            ),
            m(
                "get_memory_static_max",
                &[S, p("self", Ty::Ref("VM"))],
                Ty::Int,
                false,
            ),
            m(
                "set_memory_static_max",
                &[S, p("self", Ty::Ref("VM")), p("value", Ty::Int)],
                Ty::Void,
                false,
            ),
            m(
                "add_to_other_config",
                &[
                    S,
                    p("self", Ty::Ref("VM")),
                    p("key", Ty::String),
                    p("value", Ty::String),
                ],
                Ty::Void,
                false,
            ),
            m(
                "remove_from_other_config",
                &[S, p("self", Ty::Ref("VM")), p("key", Ty::String)],
                Ty::Void,
                false,
            ),
            m(
                "add_tags",
                &[S, p("self", Ty::Ref("VM")), p("value", Ty::String)],
                Ty::Void,
                false,
            ),
            m(
                "start",
                &[
                    S,
                    p("vm", Ty::Ref("VM")),
                    p("start_paused", Ty::Bool),
                    p("force", Ty::Bool),
                ],
                Ty::Void,
                true,
            ),
            m(
                "clean_shutdown",
                &[S, p("vm", Ty::Ref("VM"))],
                Ty::Void,
                true,
            ),
        ],
    },
    ClassMeta {
        name: "VM_appliance",
        fields: &[
            f("uuid", Ty::String, RO),
            f("name_label", Ty::String, RW),
            f("VMs", Ty::Set(&Ty::Ref("VM")), RO),
        ],
        messages: &[m(
            "start",
            &[S, p("self", Ty::Ref("VM_appliance")), p("paused", Ty::Bool)],
            Ty::Void,
            true,
        )],
    },
    ClassMeta {
        name: "event",
        fields: &[],
        messages: &[
            m(
                "from",
                &[
                    S,
                    p("classes", Ty::Set(&STRING)),
                    p("token", Ty::String),
                    p("timeout", Ty::Float),
                ],
                Ty::EventBatch,
                false,
            ),
            m(
                "inject",
                &[S, p("class", Ty::String), p("ref", Ty::String)],
                Ty::String,
                false,
            ),
        ],
    },
];

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

struct Fixture {
    _dir: tempfile::TempDir,
    pool: Arc<Pool>,
    session: String,
    host: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let pool = Arc::new(Pool::new(
        "t",
        MODEL,
        "pw",
        SimClock::new(1000.0),
        Faults::default(),
        storage,
    ));
    let host = {
        let mut db = pool.db();
        let host = db
            .create(
                "host",
                BTreeMap::from([("enabled".to_owned(), Value::Bool(true))]),
            )
            .unwrap();
        db.create("pool", BTreeMap::from([("master".to_owned(), s(&host))]))
            .unwrap();
        host
    };
    let session = match call(
        &pool,
        "session.login_with_password",
        vec![s("root"), s("pw")],
    )
    .await
    {
        Ok(Value::String(session)) => session,
        other => panic!("login failed: {other:?}"),
    };
    Fixture {
        _dir: dir,
        pool,
        session,
        host,
    }
}

impl Fixture {
    async fn call(&self, method: &str, mut params: Vec<Value>) -> Result<Value, Failure> {
        params.insert(0, s(&self.session));
        call(&self.pool, method, params).await
    }

    fn vm(&self, pairs: &[(&str, Value)]) -> String {
        let mut fields: BTreeMap<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        fields
            .entry("power_state".to_owned())
            .or_insert_with(|| s("Halted"));
        self.pool.db().create("VM", fields).unwrap()
    }
}

fn code(result: Result<Value, Failure>) -> (String, Vec<String>) {
    let err = result.expect_err("the call must fail");
    (err.code.as_str().to_owned(), err.params)
}

#[tokio::test]
async fn login_checks_user_and_password() {
    let fx = fixture().await;
    let (c, params) = code(
        call(
            &fx.pool,
            "session.login_with_password",
            vec![s("admin"), s("pw")],
        )
        .await,
    );
    assert_eq!(c, "SESSION_AUTHENTICATION_FAILED");
    assert_eq!(params[0], "admin");
    let (c, _) = code(
        call(
            &fx.pool,
            "session.login_with_password",
            vec![s("root"), s("nope"), s("1.0"), s("")],
        )
        .await,
    );
    assert_eq!(c, "SESSION_AUTHENTICATION_FAILED");
    assert_eq!(
        fx.pool
            .db()
            .str_field("session", &fx.session, "this_host")
            .unwrap(),
        fx.host
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let fx = fixture().await;
    fx.call("session.logout", vec![]).await.unwrap();
    let (c, params) = code(fx.call("VM.get_all", vec![]).await);
    assert_eq!(
        (c.as_str(), params),
        ("SESSION_INVALID", vec![fx.session.clone()])
    );
}

#[tokio::test]
async fn unknown_method_and_wrong_arity_fail_like_xapi() {
    let fx = fixture().await;
    assert_eq!(
        code(fx.call("VM.fly", vec![]).await),
        ("MESSAGE_METHOD_UNKNOWN".into(), vec!["VM.fly".into()])
    );
    assert_eq!(
        code(fx.call("Async.VM.get_all", vec![]).await).0,
        "MESSAGE_METHOD_UNKNOWN"
    );
    assert_eq!(
        code(fx.call("VM.get_record", vec![]).await),
        (
            "MESSAGE_PARAMETER_COUNT_MISMATCH".into(),
            vec!["VM.get_record".into(), "1".into(), "0".into()]
        )
    );
    // no session check before the arity check, and the session is checked before the handle
    let (c, _) = code(
        call(
            &fx.pool,
            "VM.get_record",
            vec![s("OpaqueRef:bogus"), s("x")],
        )
        .await,
    );
    assert_eq!(c, "SESSION_INVALID");
    assert_eq!(
        code(fx.call("VM.get_record", vec![s("OpaqueRef:x")]).await),
        (
            "HANDLE_INVALID".into(),
            vec!["VM".into(), "OpaqueRef:x".into()]
        )
    );
}

#[tokio::test]
async fn generic_getters_setters_and_maps_work_from_the_datamodel() {
    let fx = fixture().await;
    let vm = fx.vm(&[("name_label", s("web"))]);
    assert_eq!(
        fx.call("VM.get_all", vec![]).await.unwrap(),
        Value::Array(vec![s(&vm)])
    );
    assert_eq!(
        fx.call("VM.get_by_name_label", vec![s("web")])
            .await
            .unwrap(),
        Value::Array(vec![s(&vm)])
    );
    fx.call("VM.set_memory_static_max", vec![s(&vm), s("4294967296")])
        .await
        .unwrap();
    assert_eq!(
        fx.call("VM.get_memory_static_max", vec![s(&vm)])
            .await
            .unwrap(),
        Value::Int(4_294_967_296)
    );
    let (c, params) = code(
        fx.call("VM.set_memory_static_max", vec![s(&vm), s("lots")])
            .await,
    );
    assert_eq!(
        (c.as_str(), params),
        ("FIELD_TYPE_ERROR", vec!["value".to_owned()])
    );
    fx.call("VM.add_to_other_config", vec![s(&vm), s("k"), s("v")])
        .await
        .unwrap();
    let (c, params) = code(
        fx.call("VM.add_to_other_config", vec![s(&vm), s("k"), s("w")])
            .await,
    );
    assert_eq!(c, "MAP_DUPLICATE_KEY");
    assert_eq!(params[0], "VM");
    assert_eq!(params[1], "other_config");
    assert_eq!(params[3], "k");
    fx.call("VM.remove_from_other_config", vec![s(&vm), s("k")])
        .await
        .unwrap();
    let Value::Struct(record) = fx.call("VM.get_record", vec![s(&vm)]).await.unwrap() else {
        panic!("a record is a struct")
    };
    assert_eq!(record["other_config"], Value::Struct(BTreeMap::new()));
    let Value::String(uuid) = &record["uuid"] else {
        panic!("uuid is a string")
    };
    assert_eq!(
        fx.call("VM.get_by_uuid", vec![s(uuid)]).await.unwrap(),
        s(&vm)
    );
    // a setter the datamodel does not declare does not exist (power_state is read-only)
    assert_eq!(
        code(
            fx.call("VM.set_power_state", vec![s(&vm), s("Running")])
                .await
        )
        .0,
        "MESSAGE_METHOD_UNKNOWN"
    );
    // a message the simulator has no handler for says so
    assert_eq!(
        code(fx.call("VM.add_tags", vec![s(&vm), s("x")]).await).0,
        "NOT_IMPLEMENTED"
    );
}

#[tokio::test]
async fn power_state_rules_follow_xapi() {
    let fx = fixture().await;
    let vm = fx.vm(&[]);
    let (c, params) = code(fx.call("VM.clean_shutdown", vec![s(&vm)]).await);
    assert_eq!(
        (c.as_str(), params),
        (
            "VM_BAD_POWER_STATE",
            vec![vm.clone(), "running".into(), "halted".into()]
        )
    );
    fx.call(
        "VM.start",
        vec![s(&vm), Value::Bool(false), Value::Bool(false)],
    )
    .await
    .unwrap();
    assert_eq!(
        fx.call("VM.get_power_state", vec![s(&vm)]).await.unwrap(),
        s("Running")
    );
    assert_eq!(
        fx.pool
            .db()
            .refs_field("host", &fx.host, "resident_VMs")
            .unwrap(),
        vec![vm.clone()]
    );
    let (c, params) = code(
        fx.call(
            "VM.start",
            vec![s(&vm), Value::Bool(false), Value::Bool(false)],
        )
        .await,
    );
    assert_eq!(
        (c.as_str(), params),
        (
            "VM_BAD_POWER_STATE",
            vec![vm.clone(), "halted".into(), "running".into()]
        )
    );
    fx.call("VM.clean_shutdown", vec![s(&vm)]).await.unwrap();
    assert!(
        fx.pool
            .db()
            .refs_field("host", &fx.host, "resident_VMs")
            .unwrap()
            .is_empty()
    );
    let template = fx.vm(&[("is_a_template", Value::Bool(true))]);
    let (c, _) = code(
        fx.call(
            "VM.start",
            vec![s(&template), Value::Bool(true), Value::Bool(false)],
        )
        .await,
    );
    assert_eq!(c, "VM_IS_TEMPLATE");
}

#[tokio::test]
async fn appliance_starts_groups_in_order_and_sleeps_start_delays() {
    let fx = fixture().await;
    let app = fx
        .pool
        .db()
        .create("VM_appliance", BTreeMap::new())
        .unwrap();
    let a = fx.vm(&[
        ("appliance", s(&app)),
        ("order", Value::Int(0)),
        ("start_delay", Value::Int(30)),
    ]);
    let b = fx.vm(&[
        ("appliance", s(&app)),
        ("order", Value::Int(1)),
        ("start_delay", Value::Int(10)),
    ]);
    let c = fx.vm(&[
        ("appliance", s(&app)),
        ("order", Value::Int(1)),
        ("start_delay", Value::Int(5)),
    ]);
    let mut changes = fx.pool.db().subscribe();
    let watcher = {
        let pool = Arc::clone(&fx.pool);
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        tokio::spawn(async move {
            // the first VM of the later group must not run before the earlier group is up
            loop {
                let seen = {
                    let db = pool.db();
                    let state = |vm: &str| db.str_field("VM", vm, "power_state").unwrap();
                    (state(&b) == "Running" || state(&c) == "Running").then(|| state(&a))
                };
                if let Some(first) = seen {
                    return first;
                }
                if changes.changed().await.is_err() {
                    return String::new();
                }
            }
        })
    };
    fx.call("VM_appliance.start", vec![s(&app), Value::Bool(false)])
        .await
        .unwrap();
    assert_eq!(watcher.await.unwrap(), "Running");
    for vm in [&a, &b, &c] {
        assert_eq!(
            fx.pool.db().str_field("VM", vm, "power_state").unwrap(),
            "Running"
        );
    }
    // 30 s for the first group, then 10 s and 5 s slept in parallel
    assert_eq!(fx.pool.clock.slept(), Duration::from_secs(45));
}

#[tokio::test]
async fn session_fault_invalidates_after_the_given_calls() {
    let fx = fixture().await;
    fx.pool.faults.invalidate_session_after(1);
    fx.call("VM.get_all", vec![]).await.unwrap();
    assert_eq!(
        code(fx.call("VM.get_all", vec![]).await).0,
        "SESSION_INVALID"
    );
    // the session stays gone, as after a toolstack restart
    assert_eq!(
        code(fx.call("VM.get_all", vec![]).await).0,
        "SESSION_INVALID"
    );
}

#[tokio::test]
async fn event_from_reports_changes_once_and_times_out_empty() {
    let fx = fixture().await;
    let batch = fx
        .call(
            "event.from",
            vec![Value::Array(vec![s("vm")]), s(""), Value::Double(0.0)],
        )
        .await
        .unwrap();
    let Value::Struct(batch) = batch else {
        panic!("a batch is a struct")
    };
    let Value::String(token) = batch["token"].clone() else {
        panic!("token is a string")
    };
    assert_eq!(batch["events"], Value::Array(Vec::new()));
    let vm = fx.vm(&[]);
    fx.call("VM.set_memory_static_max", vec![s(&vm), Value::Int(1)])
        .await
        .unwrap();
    fx.call("VM.set_memory_static_max", vec![s(&vm), Value::Int(2)])
        .await
        .unwrap();
    let batch = fx
        .call(
            "event.from",
            vec![Value::Array(vec![s("VM")]), s(&token), Value::Double(5.0)],
        )
        .await
        .unwrap();
    let Value::Struct(batch) = batch else {
        panic!("a batch is a struct")
    };
    let Value::Array(events) = &batch["events"] else {
        panic!("events is an array")
    };
    assert_eq!(
        events.len(),
        1,
        "two changes of one object coalesce into one event"
    );
    let Value::Struct(event) = &events[0] else {
        panic!("an event is a struct")
    };
    assert_eq!(event["operation"], s("add"));
    assert_eq!(event["class"], s("vm"));
    assert_eq!(event["ref"], s(&vm));
    let Value::Struct(counts) = &batch["valid_ref_counts"] else {
        panic!("counts is a struct")
    };
    assert_eq!(counts["vm"], Value::Int(1));
    let Value::String(token) = batch["token"].clone() else {
        panic!("token is a string")
    };
    // nothing new: the call blocks for the timeout and returns no events
    let started = std::time::Instant::now();
    let batch = fx
        .call(
            "event.from",
            vec![Value::Array(vec![s("vm")]), s(&token), Value::Double(0.2)],
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    let Value::Struct(batch) = batch else {
        panic!("a batch is a struct")
    };
    assert_eq!(batch["events"], Value::Array(Vec::new()));
    // a change made while waiting wakes the caller
    let pool = Arc::clone(&fx.pool);
    let vm2 = vm.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.db().destroy("VM", &vm2).unwrap();
    });
    let batch = fx
        .call(
            "event.from",
            vec![Value::Array(vec![s("vm")]), s(&token), Value::Double(30.0)],
        )
        .await
        .unwrap();
    let Value::Struct(batch) = batch else {
        panic!("a batch is a struct")
    };
    let Value::Array(events) = &batch["events"] else {
        panic!("events is an array")
    };
    let Value::Struct(event) = &events[0] else {
        panic!("an event is a struct")
    };
    assert_eq!(event["operation"], s("del"));
    assert!(!event.contains_key("snapshot"));
}

#[tokio::test]
async fn event_inject_token_sees_the_injected_object() {
    let fx = fixture().await;
    let pool_ref = fx.pool.db().refs("pool").unwrap().remove(0);
    let Value::String(token) = fx
        .call("event.inject", vec![s("pool"), s(&pool_ref)])
        .await
        .unwrap()
    else {
        panic!("inject returns a token")
    };
    let batch = fx
        .call(
            "event.from",
            vec![Value::Array(vec![s("pool")]), s(&token), Value::Double(1.0)],
        )
        .await
        .unwrap();
    let Value::Struct(batch) = batch else {
        panic!("a batch is a struct")
    };
    let Value::Array(events) = &batch["events"] else {
        panic!("events is an array")
    };
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn cancelled_task_ends_cancelled() {
    let fx = fixture().await;
    fx.pool.clock.set_speed(1.0);
    let vm = fx.vm(&[("start_delay", Value::Int(3600))]);
    let Value::String(task) = fx
        .call(
            "Async.VM.start",
            vec![s(&vm), Value::Bool(false), Value::Bool(false)],
        )
        .await
        .unwrap()
    else {
        panic!("Async returns a task ref")
    };
    assert_eq!(
        fx.call("task.get_status", vec![s(&task)]).await.unwrap(),
        s("pending")
    );
    fx.call("task.cancel", vec![s(&task)]).await.unwrap();
    assert_eq!(
        fx.call("task.get_status", vec![s(&task)]).await.unwrap(),
        s("cancelled")
    );
    let info = fx
        .pool
        .db()
        .refs_field("task", &task, "error_info")
        .unwrap();
    assert_eq!(info, vec!["TASK_CANCELLED".to_owned(), task.clone()]);
    let (c, _) = code(fx.call("task.cancel", vec![s(&task)]).await);
    assert_eq!(c, "OPERATION_NOT_ALLOWED");
    fx.call("task.destroy", vec![s(&task)]).await.unwrap();
    assert_eq!(
        code(fx.call("task.get_status", vec![s(&task)]).await).0,
        "HANDLE_INVALID"
    );
}

#[tokio::test]
async fn failing_async_call_reports_error_info() {
    let fx = fixture().await;
    let Value::String(task) = fx
        .call("Async.VM.clean_shutdown", vec![s("OpaqueRef:gone")])
        .await
        .unwrap()
    else {
        panic!("Async returns a task ref")
    };
    for _ in 0..100 {
        if fx.pool.db().str_field("task", &task, "status").unwrap() != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        fx.pool.db().str_field("task", &task, "status").unwrap(),
        "failure"
    );
    assert_eq!(
        fx.pool
            .db()
            .refs_field("task", &task, "error_info")
            .unwrap(),
        vec![
            "HANDLE_INVALID".to_owned(),
            "VM".into(),
            "OpaqueRef:gone".into()
        ]
    );
}
