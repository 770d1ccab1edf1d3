//! The XAPI failures the simulator raises, with the parameter lists real xapi uses.

use xapi_core::api::ErrorCode;
use xapi_core::wire::Failure;

/// A failure with `code` and `params`.
pub(crate) fn failure<I, S>(code: &str, params: I) -> Failure
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Failure {
        code: ErrorCode::from_code(code),
        params: params.into_iter().map(Into::into).collect(),
    }
}

/// `HANDLE_INVALID [class; ref]`.
pub(crate) fn handle_invalid(class: &str, reference: &str) -> Failure {
    failure("HANDLE_INVALID", [class, reference])
}

/// `UUID_INVALID [class; uuid]`.
pub(crate) fn uuid_invalid(class: &str, uuid: &str) -> Failure {
    failure("UUID_INVALID", [class, uuid])
}

/// `FIELD_TYPE_ERROR [field]`.
pub(crate) fn field_type_error(field: &str) -> Failure {
    failure("FIELD_TYPE_ERROR", [field])
}

/// `SESSION_INVALID [handle]`.
pub(crate) fn session_invalid(handle: &str) -> Failure {
    failure("SESSION_INVALID", [handle])
}

/// `MESSAGE_METHOD_UNKNOWN [method]`.
pub(crate) fn method_unknown(method: &str) -> Failure {
    failure("MESSAGE_METHOD_UNKNOWN", [method])
}

/// `INTERNAL_ERROR [message]`.
pub(crate) fn internal(message: impl Into<String>) -> Failure {
    failure("INTERNAL_ERROR", [message.into()])
}

/// `VM_BAD_POWER_STATE [vm; expected; actual]`, power states in lower case as xapi writes them.
pub(crate) fn vm_bad_power_state(vm: &str, expected: &str, actual: &str) -> Failure {
    failure(
        "VM_BAD_POWER_STATE",
        [
            vm.to_owned(),
            expected.to_lowercase(),
            actual.to_lowercase(),
        ],
    )
}
