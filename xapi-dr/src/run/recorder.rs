//! Making a call while keeping the account: each call's method, subject, times and outcome
//! go into the report and out as a progress event.

use std::future::Future;

use tokio::sync::mpsc;

use super::RunError;
use super::report::{CallOutcome, CallRecord, RunEvent, now_ms};

/// The calls of a run so far, and where its progress events go.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) events: Option<mpsc::UnboundedSender<RunEvent>>,
}

impl Recorder {
    /// Sends a progress event (nobody listening is fine).
    pub(crate) fn emit(&self, event: RunEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// Awaits `call`, recording it as `method` about `subject`. The call's future is boxed
    /// before anything else: the generated calls' futures are large, and a step awaits many.
    pub(crate) fn call<'a, T: 'a>(
        &'a mut self,
        method: &'a str,
        subject: &'a str,
        call: impl Future<Output = Result<T, xapi_core::Error>> + Send + 'a,
    ) -> impl Future<Output = Result<T, RunError>> + Send + 'a {
        let call = Box::pin(call);
        async move {
            let started_ms = now_ms();
            let result = call.await;
            let outcome = match &result {
                Ok(_) => CallOutcome::Ok,
                Err(error) => CallOutcome::Failed {
                    code: match error {
                        xapi_core::Error::Api(failure) => failure.code.as_str().to_owned(),
                        _ => "transport".to_owned(),
                    },
                    message: error.to_string(),
                },
            };
            let record = CallRecord {
                method: method.to_owned(),
                subject: subject.to_owned(),
                started_ms,
                finished_ms: now_ms(),
                outcome,
            };
            self.emit(RunEvent::Call(record.clone()));
            self.calls.push(record);
            result.map_err(|source| RunError::Call {
                method: method.to_owned(),
                subject: subject.to_owned(),
                source: Box::new(source),
            })
        }
    }
}
