//! `VIF.move(self, network)`: put a VIF on another network, as xapi does (a running VM's VIF
//! is unplugged and plugged again, which the simulator need not model beyond the field).

use xapi_core::api::ErrorCode;
use xapi_core::wire::{Failure, Value};

use super::args;
use crate::api_error::failure;
use crate::model::store::Db;

/// Whether `(class, message)` is `VIF.move`.
pub(crate) fn handles(class: &str, message: &str) -> bool {
    class == "VIF" && message == "move"
}

/// Moves the VIF `args[0]` to the network `args[1]`.
pub(crate) fn handle(db: &mut Db, a: &[Value]) -> Result<Value, Failure> {
    let vif = args::string(a, 0)?;
    let network = args::string(a, 1)?;
    db.object("VIF", &vif)?;
    if !db.exists("network", &network) {
        return Err(failure(ErrorCode::HandleInvalid, ["network", &network]));
    }
    db.set_field("VIF", &vif, "network", Value::String(network))?;
    Ok(Value::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_vif_move_is_handled() {
        assert!(handles("VIF", "move"));
        assert!(!handles("VIF", "plug"));
        assert!(!handles("VM", "move"));
    }
}
