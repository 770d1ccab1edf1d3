//! Faults that tests switch on at run time, in process ([`Faults`]) or over the admin endpoint
//! (`POST /_sim/fault?...`, see the crate documentation).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use xapi_core::api::ErrorCode;
use xapi_core::wire::Failure;

/// The switchable faults of one simulator (all pools share them). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

/// What is switched on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FaultState {
    /// Extra delay before every RPC response.
    response_delay: Option<Duration>,
    /// How many of the next HTTP requests get a 500 with an HTML body.
    http_500_remaining: u32,
    /// After this many more authenticated calls, the session used is invalidated.
    session_invalid_after: Option<u64>,
    /// The next Async task fails midway (at progress 0.5) with this error code.
    fail_next_task: Option<String>,
    /// The next data-plane download is cut after this many bytes.
    cut_after_bytes: Option<u64>,
    /// SRs (by uuid) with no space left.
    full_srs: Vec<String>,
    /// The next uncompressed export gets a wrong checksum member.
    corrupt_next_checksum: bool,
    /// The next export's disk source stalls this long after its first MiB.
    stall_next_export: Option<Duration>,
    /// Calls of given methods that must fail.
    failing_calls: Vec<CallFault>,
    /// Pools (by name) whose master moved, and the address of the new one.
    moved_masters: Vec<(String, String)>,
}

/// One armed [`Faults::fail_call`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallFault {
    /// `Class.message`, without `Async.`.
    method: String,
    /// Calls of the method still to let through before the failing one.
    let_through: u64,
    /// The failure the call gets.
    code: ErrorCode,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Delay every RPC response by `delay` (`None` switches it off).
    pub fn set_response_delay(&self, delay: Option<Duration>) {
        self.lock().response_delay = delay;
    }

    /// Answer the next `count` HTTP requests with `500 Internal Server Error` and an HTML body.
    pub fn fail_next_requests_with_http_500(&self, count: u32) {
        self.lock().http_500_remaining = count;
    }

    /// After `calls` more calls with a valid session, invalidate the session of the next one and
    /// answer `SESSION_INVALID`, as xapi does after a restart.
    pub fn invalidate_session_after(&self, calls: u64) {
        self.lock().session_invalid_after = Some(calls);
    }

    /// Make the next Async task fail at progress 0.5 with `code` (for example `SR_BACKEND_FAILURE`).
    pub fn fail_next_task(&self, code: impl Into<String>) {
        self.lock().fail_next_task = Some(code.into());
    }

    /// Cut the next data-plane download (export, raw VDI, or the next NBD connection's reads)
    /// after `bytes` bytes: the connection drops mid-body and the task fails. An HTTP download
    /// that ends before `bytes` (the export of a VM without disks) hands the fault on to the
    /// next download rather than using it up.
    pub fn cut_next_download_after(&self, bytes: u64) {
        self.lock().cut_after_bytes = Some(bytes);
    }

    /// Make the SR with this uuid full: creating, copying or importing disks on it fails with
    /// `SR_BACKEND_FAILURE_44` ("There is insufficient space").
    pub fn fill_sr(&self, sr_uuid: impl Into<String>) {
        let sr_uuid = sr_uuid.into();
        let mut state = self.lock();
        if !state.full_srs.contains(&sr_uuid) {
            state.full_srs.push(sr_uuid);
        }
    }

    /// Give the next uncompressed `/export` (or raw tar export) a wrong first checksum member,
    /// so that a verifying reader rejects that chunk.
    pub fn corrupt_next_export_checksum(&self) {
        self.lock().corrupt_next_checksum = true;
    }

    /// Make the disk source of the next `/export` stall for `duration` after its first MiB,
    /// so that the XVA writer sends xapi's zero-length keep-alive chunks (every 5 s).
    pub fn stall_next_export(&self, duration: Duration) {
        self.lock().stall_next_export = Some(duration);
    }

    /// Make the `nth` call (1 for the very next one) of `method` (`Class.message`, such as
    /// `VM.recover`; its `Async.` form counts and fails too, through its task) from now on fail
    /// with `code` and the parameter `fault injected by xapi-sim`, before it does anything.
    /// Calls the simulator makes inside another call, as xapi makes them through its own API
    /// (the `PBD.plug` of `DR_task.create`), count as well. Several may be armed at once.
    pub fn fail_call(&self, method: &str, nth: u64, code: ErrorCode) {
        self.lock().failing_calls.push(CallFault {
            method: method.strip_prefix("Async.").unwrap_or(method).to_owned(),
            let_through: nth.saturating_sub(1),
            code,
        });
    }

    /// Record that the master of pool `pool` is now the member at `address`: the old master's
    /// listener answers as a member (`HOST_IS_SLAVE [address]`, data-plane redirects) and the
    /// member at `address` serves the pool. Use [`SimHandle::designate_master`], which also
    /// updates `pool.master`.
    ///
    /// [`SimHandle::designate_master`]: crate::SimHandle::designate_master
    pub(crate) fn move_master(&self, pool: &str, address: &str) {
        let mut state = self.lock();
        state.moved_masters.retain(|(p, _)| p != pool);
        state
            .moved_masters
            .push((pool.to_owned(), address.to_owned()));
    }

    /// The address of pool `pool`'s master when it moved.
    pub(crate) fn moved_master(&self, pool: &str) -> Option<String> {
        self.lock()
            .moved_masters
            .iter()
            .find(|(p, _)| p == pool)
            .map(|(_, a)| a.clone())
    }

    /// Switch every fault off.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// The response delay in force.
    pub(crate) fn response_delay(&self) -> Option<Duration> {
        self.lock().response_delay
    }

    /// Whether this request must get an HTTP 500 (consumes one).
    pub(crate) fn take_http_500(&self) -> bool {
        let mut state = self.lock();
        if state.http_500_remaining > 0 {
            state.http_500_remaining -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the session of this call must be invalidated (counts one call).
    pub(crate) fn take_session_invalid(&self) -> bool {
        let mut state = self.lock();
        match state.session_invalid_after {
            Some(0) => {
                state.session_invalid_after = None;
                true
            }
            Some(n) => {
                state.session_invalid_after = Some(n - 1);
                false
            }
            None => false,
        }
    }

    /// The byte count after which this download must be cut, if any (consumes it).
    pub(crate) fn take_cut(&self) -> Option<u64> {
        self.lock().cut_after_bytes.take()
    }

    /// Arms the cut again for the next download, after one that ended before `bytes`, unless
    /// another cut was armed meanwhile.
    pub(crate) fn hand_on_cut(&self, bytes: u64) {
        self.lock().cut_after_bytes.get_or_insert(bytes);
    }

    /// Whether this export must carry a wrong checksum (consumes the fault).
    pub(crate) fn take_corrupt_checksum(&self) -> bool {
        std::mem::take(&mut self.lock().corrupt_next_checksum)
    }

    /// How long the next export's source must stall, if at all (consumes the fault).
    pub(crate) fn take_stall(&self) -> Option<Duration> {
        self.lock().stall_next_export.take()
    }

    /// Whether the SR with this uuid is full.
    pub(crate) fn is_sr_full(&self, sr_uuid: &str) -> bool {
        self.lock().full_srs.iter().any(|s| s == sr_uuid)
    }

    /// Count one call of `method` (`Class.message`, without `Async.`): the failure it must end
    /// with when a [`Faults::fail_call`] for it comes due (consumed).
    pub(crate) fn take_call_failure(&self, method: &str) -> Option<Failure> {
        let mut state = self.lock();
        let mut due = None;
        state.failing_calls.retain_mut(|fault| {
            if fault.method != method {
                return true;
            }
            if fault.let_through == 0 {
                if due.is_none() {
                    due = Some(fault.code.clone());
                    return false;
                }
                return true;
            }
            fault.let_through -= 1;
            true
        });
        due.map(|code| Failure {
            code,
            params: vec!["fault injected by xapi-sim".to_owned()],
        })
    }

    /// The error code the next task must fail with, if any (consumes it).
    pub(crate) fn take_task_failure(&self) -> Option<String> {
        self.lock().fail_next_task.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xapi_core::api::ErrorCode;

    #[test]
    fn session_fault_fires_once_after_the_given_calls() {
        let faults = Faults::default();
        faults.invalidate_session_after(2);
        assert!(!faults.take_session_invalid());
        assert!(!faults.take_session_invalid());
        assert!(faults.take_session_invalid());
        assert!(!faults.take_session_invalid());
    }

    #[test]
    fn http_500_counts_down() {
        let faults = Faults::default();
        faults.fail_next_requests_with_http_500(1);
        assert!(faults.take_http_500());
        assert!(!faults.take_http_500());
        faults.fail_next_task(ErrorCode::SrBackendFailure.as_str());
        faults.clear();
        assert_eq!(faults.take_task_failure(), None);
    }

    #[test]
    fn the_nth_call_of_a_method_fails_once() {
        let faults = Faults::default();
        faults.fail_call("Async.VM.recover", 2, ErrorCode::SrBackendFailure);
        assert_eq!(faults.take_call_failure("VM.start"), None);
        assert_eq!(faults.take_call_failure("VM.recover"), None);
        let failed = faults
            .take_call_failure("VM.recover")
            .expect("the second call fails");
        assert_eq!(failed.code, ErrorCode::SrBackendFailure);
        assert_eq!(faults.take_call_failure("VM.recover"), None);
    }
}
