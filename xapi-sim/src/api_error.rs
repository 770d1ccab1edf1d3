//! The XAPI failures the simulator raises, with the parameter lists real xapi uses.

use xapi_core::api::ErrorCode;
use xapi_core::wire::Failure;

/// A failure with `code` and `params`.
pub(crate) fn failure<I, S>(code: ErrorCode, params: I) -> Failure
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Failure {
        code,
        params: params.into_iter().map(Into::into).collect(),
    }
}

/// `HANDLE_INVALID [class; ref]`.
pub(crate) fn handle_invalid(class: &str, reference: &str) -> Failure {
    failure(ErrorCode::HandleInvalid, [class, reference])
}

/// `UUID_INVALID [class; uuid]`.
pub(crate) fn uuid_invalid(class: &str, uuid: &str) -> Failure {
    failure(ErrorCode::UuidInvalid, [class, uuid])
}

/// `FIELD_TYPE_ERROR [field]`.
pub(crate) fn field_type_error(field: &str) -> Failure {
    failure(ErrorCode::FieldTypeError, [field])
}

/// `SESSION_INVALID [handle]`.
pub(crate) fn session_invalid(handle: &str) -> Failure {
    failure(ErrorCode::SessionInvalid, [handle])
}

/// `MESSAGE_METHOD_UNKNOWN [method]`.
pub(crate) fn method_unknown(method: &str) -> Failure {
    failure(ErrorCode::MessageMethodUnknown, [method])
}

/// `INTERNAL_ERROR [message]`.
pub(crate) fn internal(message: impl Into<String>) -> Failure {
    failure(ErrorCode::InternalError, [message.into()])
}

/// `VM_BAD_POWER_STATE [vm; expected; actual]`, power states in lower case as xapi writes them.
pub(crate) fn vm_bad_power_state(vm: &str, expected: &str, actual: &str) -> Failure {
    failure(
        ErrorCode::VmBadPowerState,
        [
            vm.to_owned(),
            expected.to_lowercase(),
            actual.to_lowercase(),
        ],
    )
}

/// The code of an SM backend error numbered `number` (`SR_BACKEND_FAILURE_44`): xapi appends
/// the SM's error number to `SR_BACKEND_FAILURE`, so these codes are not in the datamodel.
pub(crate) fn sr_backend_failure_code(number: u32) -> ErrorCode {
    ErrorCode::from_code(&format!(
        "{}_{number}",
        ErrorCode::SrBackendFailure.as_str()
    ))
}
