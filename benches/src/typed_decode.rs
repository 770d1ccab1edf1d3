//! The typed `get_all_records` decodes every side-by-side figure times: the response bytes
//! into `HashMap<Ref<C>, CRecord>` for VM, VDI and VBD, on each wire.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use xapi_core::api::{Vbd, VbdRecord, Vdi, VdiRecord, Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, jsonrpc, xmlrpc};

/// The typed result of `VM.get_all_records`.
pub type AllVms = HashMap<Ref<Vm>, VmRecord>;

/// The classes whose `get_all_records` the comparisons decode, by datamodel name.
pub const CLASSES: [&str; 3] = ["VM", "VDI", "VBD"];

/// One of the two RPC encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// XML-RPC (`POST /`).
    XmlRpc,
    /// JSON-RPC (`POST /jsonrpc`).
    JsonRpc,
}

/// Decodes a `<class>.get_all_records` response into typed records; a failure envelope is an
/// error too.
pub fn decode_all<C, R: DeserializeOwned>(
    wire: Wire,
    bytes: &[u8],
) -> Result<HashMap<Ref<C>, R>, String> {
    let limits = Limits::default();
    let decoded = match wire {
        Wire::XmlRpc => xmlrpc::decode_response::<HashMap<Ref<C>, R>>(bytes, &limits)
            .map_err(|err| format!("XML-RPC decode: {err}"))?,
        Wire::JsonRpc => jsonrpc::decode_response::<HashMap<Ref<C>, R>>(bytes, &limits)
            .map_err(|err| format!("JSON-RPC decode: {err}"))?,
    };
    decoded.map_err(|failure| format!("a failure envelope: {failure:?}"))
}

/// Decodes a `<class>.get_all_records` response of `class` (one of [`CLASSES`]) into its typed
/// records and drops them, as a client that used them would; returns how many there were.
pub fn decode_and_drop(class: &str, wire: Wire, bytes: &[u8]) -> Result<usize, String> {
    match class {
        "VM" => decode_all::<Vm, VmRecord>(wire, bytes).map(|all| all.len()),
        "VDI" => decode_all::<Vdi, VdiRecord>(wire, bytes).map(|all| all.len()),
        "VBD" => decode_all::<Vbd, VbdRecord>(wire, bytes).map(|all| all.len()),
        other => Err(format!("no typed decode for class `{other}`")),
    }
}

/// Decodes an XML-RPC `VM.get_all_records` response; a failure envelope is an error too.
pub fn xmlrpc_all_vms(bytes: &[u8]) -> Result<AllVms, String> {
    decode_all(Wire::XmlRpc, bytes)
}

/// Decodes a JSON-RPC `VM.get_all_records` response; a failure envelope is an error too.
pub fn jsonrpc_all_vms(bytes: &[u8]) -> Result<AllVms, String> {
    decode_all(Wire::JsonRpc, bytes)
}
