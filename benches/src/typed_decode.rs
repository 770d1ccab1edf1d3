//! The typed `VM.get_all_records` decode every side-by-side figure times: the response bytes
//! into `HashMap<Ref<Vm>, VmRecord>`, on each wire.

use std::collections::HashMap;

use xapi_core::api::{Vm, VmRecord};
use xapi_core::wire::{Limits, Ref, jsonrpc, xmlrpc};

/// The typed result of `VM.get_all_records`.
pub type AllVms = HashMap<Ref<Vm>, VmRecord>;

/// Decodes an XML-RPC `VM.get_all_records` response; a failure envelope is an error too.
pub fn xmlrpc_all_vms(bytes: &[u8]) -> Result<AllVms, String> {
    match xmlrpc::decode_response::<AllVms>(bytes, &Limits::default()) {
        Ok(Ok(vms)) => Ok(vms),
        Ok(Err(failure)) => Err(format!("a failure envelope: {failure:?}")),
        Err(err) => Err(format!("XML-RPC decode: {err}")),
    }
}

/// Decodes a JSON-RPC `VM.get_all_records` response; a failure envelope is an error too.
pub fn jsonrpc_all_vms(bytes: &[u8]) -> Result<AllVms, String> {
    match jsonrpc::decode_response::<AllVms>(bytes, &Limits::default()) {
        Ok(Ok(vms)) => Ok(vms),
        Ok(Err(failure)) => Err(format!("a failure envelope: {failure:?}")),
        Err(err) => Err(format!("JSON-RPC decode: {err}")),
    }
}
