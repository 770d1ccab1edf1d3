//! The generated datamodel without the wire: record defaults, enums, error codes and `meta`
//! agree with each other and with the datamodel.

use xapi_core::api::meta::{self, Qualifier, Ty};
use xapi_core::api::{
    BondMode, ClusterRecord, ErrorCode, EventRecord, HostDisplay, HostRecord,
    LatestSyncedUpdatesAppliedState, OnBoot, PoolRecord, SecretRecord, TaskRecord,
    TelemetryFrequency, VdiRecord, Vm, VmPowerState, VmRecord,
};
use xapi_core::wire::{Ref, SmallMap, Value};

#[test]
fn vm_record_default_applies_datamodel_defaults() {
    let vm = VmRecord::default();
    assert_eq!(vm.power_state, VmPowerState::Halted);
    assert!(vm.has_vendor_device, "datamodel default is `true`");
    assert_eq!(vm.generation_id, "0:0");
    assert!((vm.hvm_shadow_multiplier - 1.0).abs() < f64::EPSILON);
    assert!(vm.snapshot_of.is_null());
    assert!(vm.vbds.is_empty());
    assert!(vm.other_config.is_empty());
    assert_eq!(vm.name_label, "");
}

#[test]
fn other_records_apply_their_defaults() {
    let host = HostRecord::default();
    assert_eq!(
        host.license_server,
        SmallMap::from([
            ("address".into(), "localhost".into()),
            ("port".into(), "27000".into()),
        ])
    );
    assert_eq!(host.virtual_hardware_platform_versions, vec![0]);
    assert_eq!(host.display, HostDisplay::Enabled);
    assert_eq!(
        host.latest_synced_updates_applied,
        LatestSyncedUpdatesAppliedState::UnknownState
    );
    assert_eq!(host.timezone, "UTC");
    let pool = PoolRecord::default();
    assert_eq!(pool.local_auth_max_threads, 8);
    assert_eq!(pool.telemetry_frequency, TelemetryFrequency::Weekly);
    assert_eq!(VdiRecord::default().on_boot, OnBoot::Persist);
    assert_eq!(TaskRecord::default().backtrace, "()");
    assert_eq!(EventRecord::<Value>::default().snapshot, None);
}

#[test]
fn fields_without_default_take_the_zero_of_their_type() {
    let vdi = VdiRecord::default();
    assert_eq!(vdi.virtual_size, 0);
    assert!(!vdi.sharable);
    assert!(vdi.sr.is_null());
    // An enum without a datamodel default is "not sent": Unknown("").
    assert_eq!(vdi.r#type.as_str(), "");
    assert!(!vdi.r#type.is_known());
}

#[test]
fn enums_round_trip_their_wire_strings() {
    for value in VmPowerState::ALL {
        assert_eq!(VmPowerState::from_wire(value.as_str()), *value);
    }
    assert_eq!(VmPowerState::from_wire("Running"), VmPowerState::Running);
    assert_eq!(
        VmPowerState::from_wire("Hibernating"),
        VmPowerState::Unknown("Hibernating".to_owned())
    );
    assert_eq!(BondMode::from_wire("balance-slb"), BondMode::BalanceSlb);
    assert_eq!(BondMode::BalanceSlb.to_string(), "balance-slb");
    assert_eq!(
        LatestSyncedUpdatesAppliedState::from_wire("unknown"),
        LatestSyncedUpdatesAppliedState::UnknownState
    );
}

#[test]
fn every_meta_enum_has_its_values() {
    assert_eq!(meta::ENUMS.len(), 73);
    let power = meta::enumeration("vm_power_state").unwrap();
    assert_eq!(power.values, ["Halted", "Paused", "Running", "Suspended"]);
    let total: usize = meta::ENUMS.iter().map(|e| e.values.len()).sum();
    assert_eq!(total, 360, "SOURCE.md: 73 enums with 360 values");
}

#[test]
fn error_codes_round_trip_and_name_their_parameters() {
    let code = ErrorCode::from_code("VM_BAD_POWER_STATE");
    assert_eq!(code, ErrorCode::VmBadPowerState);
    assert_eq!(code.as_str(), "VM_BAD_POWER_STATE");
    assert_eq!(code.param_names(), ["vm", "expected", "actual"]);
    assert!(code.is_declared());
    assert_eq!(ErrorCode::SessionInvalid.param_names(), ["handle"]);
    // Upstream names these with a phrase or an acronym; names are identifiers.
    assert_eq!(ErrorCode::HostIsSlave.param_names(), ["master"]);
    assert_eq!(
        ErrorCode::AuthAlreadyEnabled.param_names(),
        ["current_auth_type", "current_service_name"]
    );
    assert_eq!(ErrorCode::PifIsVlan.param_names(), ["pif"]);
    assert_eq!(ErrorCode::EventsLost.as_str(), "EVENTS_LOST");
    let other = ErrorCode::from_code("SR_BACKEND_FAILURE_46");
    assert_eq!(other, ErrorCode::Other("SR_BACKEND_FAILURE_46".to_owned()));
    assert_eq!(other.as_str(), "SR_BACKEND_FAILURE_46");
    assert!(other.param_names().is_empty());
    assert!(!other.is_declared());
    // Declared by api_errors.ml without a parameter list upstream.
    assert!(!ErrorCode::from_code("VDI_IO_ERROR").is_declared());
    assert_eq!(ErrorCode::HandleInvalid.to_string(), "HANDLE_INVALID");
}

#[test]
fn meta_describes_every_class() {
    assert_eq!(meta::CLASSES.len(), 72);
    let fields: usize = meta::CLASSES.iter().map(|c| c.fields.len()).sum();
    assert_eq!(fields, 922);
    let vm = meta::class("vm").unwrap();
    assert_eq!(vm.name, "VM");
    let power = vm.field("power_state").unwrap();
    assert_eq!(power.ty, Ty::Enum("vm_power_state"));
    assert_eq!(power.qualifier, Qualifier::ReadOnlyConstructor);
    assert_eq!(power.default, Some("Halted"));
    assert_eq!(
        vm.field("name_label").unwrap().qualifier,
        Qualifier::ReadWrite
    );
    let start = vm.message("start").unwrap();
    assert!(start.is_async && !start.implicit);
    assert_eq!(start.params.len(), 4);
    assert_eq!(start.params[1].ty, Ty::Ref("VM"));
    assert_eq!(start.result, Ty::Void);
    let records = vm.message("get_all_records").unwrap();
    assert_eq!(records.result, Ty::Map(&Ty::Ref("VM"), &Ty::Record("VM")));
    assert!(!vm.message("get_record").unwrap().is_async);
    let from = meta::class("event").unwrap().message("from").unwrap();
    assert_eq!(from.result, Ty::EventBatch);
}

#[test]
fn meta_async_flags_match_source_md() {
    let live: usize = meta::CLASSES.iter().map(|c| c.messages.len()).sum();
    let is_async = |class: &str, message: &str| {
        meta::class(class)
            .and_then(|c| c.message(message))
            .unwrap_or_else(|| panic!("{class}.{message} is missing"))
            .is_async
    };
    // 2,007 messages of which 87 are removed and left out.
    assert_eq!(live, 2007 - 87);
    for (class, message) in [
        ("VM", "snapshot"),
        ("VM", "clone"),
        ("VDI", "open_database"),
        ("task", "cancel"),
        ("VBD", "destroy"),
        ("task", "set_other_config"),
        ("event", "register"),
    ] {
        assert!(is_async(class, message), "{class}.{message} is async");
    }
    for (class, message) in [
        ("session", "login_with_password"),
        ("event", "from"),
        ("VM", "get_record"),
        ("VM", "set_other_config"),
        ("task", "create"),
        ("message", "create"),
    ] {
        assert!(!is_async(class, message), "{class}.{message} is not async");
    }
}

#[test]
fn debug_redacts_secret_fields() {
    let secret = SecretRecord {
        uuid: "6b1d".into(),
        value: "hunter2".into(),
        ..SecretRecord::default()
    };
    let shown = format!("{secret:?}");
    assert!(
        shown.contains("6b1d") && !shown.contains("hunter2"),
        "{shown}"
    );
    let cluster = ClusterRecord {
        cluster_token: "tok-123".into(),
        ..ClusterRecord::default()
    };
    assert!(!format!("{cluster:?}").contains("tok-123"));
}

#[test]
fn refs_are_typed_and_nullable() {
    let vm: Ref<Vm> = Ref::new("OpaqueRef:5d0a");
    assert!(!vm.is_null());
    assert!(Ref::<Vm>::null().is_null());
    let record = VmRecord {
        name_label: "web-01".into(),
        resident_on: Ref::new("OpaqueRef:host"),
        ..VmRecord::default()
    };
    assert_eq!(record.resident_on.as_str(), "OpaqueRef:host");
}
