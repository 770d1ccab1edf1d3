//! xapi-core's integration tests, linked into one binary (one link, one process).

mod api_calls;
// Reads `api::meta`: built when the `meta` feature is on, as it is in `cargo test --workspace`
// (the simulator asks for it) and in `cargo xtask test`.
#[cfg(feature = "meta")]
mod api_model;
mod api_records;
mod client_data_plane;
mod client_failure_context;
mod client_limits;
mod client_rpc;
mod client_task_events;
mod client_tls;
mod client_upload_redirect;
mod fuzz_regressions;
mod mock_xapi;
mod wire_get_all_records;
mod wire_refs_and_enums;
mod wire_roundtrip;
mod wire_small_types;
