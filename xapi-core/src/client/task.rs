//! [`TaskHandle`]: follow a XAPI task to its end, with progress, cancellation, clean-up, and the
//! decoding of its result (an XML-RPC fragment, whatever the protocol).
//!
//! A task is watched with `event.from(["task/<ref>"], token, timeout)`: the server answers as
//! soon as the task changes, so a wait costs one blocked call per change instead of a poll
//! every interval. Servers without `event.from` (`MESSAGE_METHOD_UNKNOWN`) are polled with
//! `task.get_record` instead.

use std::marker::PhantomData;
use std::time::Duration;

use futures::Stream;
use serde::de::{DeserializeOwned, IgnoredAny};

use tracing::Instrument;

use super::event;
use super::session::SessionHandle;
use crate::Error;
use crate::api::{ErrorCode, EventOperation, Task, TaskRecord, TaskStatusType};
use crate::error::TimeoutKind;
use crate::wire::{self, Failure, Ref};

/// One progress observation of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskProgress {
    /// The status at this observation.
    pub status: TaskStatusType,
    /// Progress from 0.0 to 1.0 (export and import handlers update it at most every 10 s).
    pub progress: f64,
}

impl TaskProgress {
    /// Whether the task has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        is_finished(&self.status)
    }
}

/// Whether a task in `status` has finished: success, failure or cancelled.
fn is_finished(status: &TaskStatusType) -> bool {
    matches!(
        status,
        TaskStatusType::Success | TaskStatusType::Failure | TaskStatusType::Cancelled
    )
}

/// What a task record shows of its progress.
fn observation(record: &TaskRecord) -> TaskProgress {
    TaskProgress {
        status: record.status.clone(),
        progress: record.progress,
    }
}

/// The server-side wait of one `event.from` call on a task, in seconds (as Xen Orchestra).
const DEFAULT_EVENT_TIMEOUT_SECS: f64 = 60.1;

/// How a [`TaskWatcher`] learns about changes.
#[derive(Debug)]
enum WatchMode {
    /// Nothing observed yet: read the record once (this also checks that the task exists).
    Start,
    /// Blocking `event.from` calls on `task/<ref>`, resuming from `token`.
    Events { token: String },
    /// `task.get_record` every poll interval (servers without `event.from`).
    Polling,
}

/// Yields each new state of one task, by events or by polling.
struct TaskWatcher {
    session: SessionHandle,
    task: Ref<Task>,
    poll_interval: Duration,
    event_timeout_secs: f64,
    mode: WatchMode,
    last: Option<TaskProgress>,
}

impl TaskWatcher {
    async fn record(&self) -> Result<TaskRecord, Error> {
        self.session.call("task.get_record", (&self.task,)).await
    }

    /// The next state of the task that differs from the last one returned.
    async fn next(&mut self) -> Result<TaskRecord, Error> {
        loop {
            let record = self.next_record().await?;
            let observation = observation(&record);
            if self.last.as_ref() != Some(&observation) {
                self.last = Some(observation);
                return Ok(record);
            }
        }
    }

    async fn next_record(&mut self) -> Result<TaskRecord, Error> {
        loop {
            match &mut self.mode {
                WatchMode::Start => {
                    let record = self.record().await?;
                    self.mode = WatchMode::Events {
                        token: String::new(),
                    };
                    return Ok(record);
                }
                WatchMode::Polling => {
                    tokio::time::sleep(self.poll_interval).await;
                    return self.record().await;
                }
                WatchMode::Events { token } => {
                    let classes = [format!("task/{}", self.task)];
                    let batch = event::event_from::<TaskRecord>(
                        &self.session,
                        &classes,
                        token,
                        self.event_timeout_secs,
                    )
                    .await;
                    match batch {
                        Ok(batch) => {
                            *token = batch.token;
                            let latest = batch
                                .events
                                .into_iter()
                                .rev()
                                .find(|e| e.r#ref == self.task.as_str());
                            match latest {
                                Some(event) if event.operation == EventOperation::Del => {
                                    return Err(Error::Protocol {
                                        url: self.session.client().url(),
                                        reason: format!(
                                            "task {} was destroyed before it finished",
                                            self.task
                                        ),
                                    });
                                }
                                Some(event) => {
                                    if let Some(record) = event.snapshot {
                                        return Ok(record);
                                    }
                                }
                                // The server-side timeout passed without a change.
                                None => {}
                            }
                        }
                        Err(Error::Api(failure))
                            if matches!(failure.code, ErrorCode::MessageMethodUnknown) =>
                        {
                            tracing::debug!(
                                task = %self.task,
                                "event.from is unknown to this server; polling the task"
                            );
                            self.mode = WatchMode::Polling;
                            return self.record().await;
                        }
                        Err(Error::Api(failure))
                            if matches!(failure.code, ErrorCode::EventsLost) =>
                        {
                            if token.is_empty() {
                                // Even a subscription from scratch lost events: this server
                                // cannot be followed by events (asking again would spin).
                                tracing::debug!(task = %self.task, "events lost from an empty token; polling the task");
                                self.mode = WatchMode::Polling;
                            } else {
                                tracing::debug!(task = %self.task, "events lost; reading the task again");
                                *token = String::new();
                            }
                            return self.record().await;
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        }
    }
}

/// A running XAPI task whose result decodes as `T`.
///
/// Waiting reads the task once, then follows it with `event.from` (one blocked call per
/// change); on servers without `event.from` it polls `task.get_record` every
/// [`with_poll_interval`](Self::with_poll_interval).
pub struct TaskHandle<T> {
    session: SessionHandle,
    task: Ref<Task>,
    poll_interval: Duration,
    event_timeout_secs: f64,
    deadline: Option<Duration>,
    result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task", &self.task)
            .field("poll_interval", &self.poll_interval)
            .field("event_timeout_secs", &self.event_timeout_secs)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> TaskHandle<T> {
    /// Follow an existing task (from `task.create` for an HTTP transfer, or the `task-id`
    /// header of a data-plane response).
    pub fn new(session: SessionHandle, task: Ref<Task>) -> Self {
        let poll_interval = session.client().shared().task_poll_interval;
        Self {
            session,
            task,
            poll_interval,
            event_timeout_secs: DEFAULT_EVENT_TIMEOUT_SECS,
            deadline: None,
            result: PhantomData,
        }
    }

    /// The task reference.
    pub fn task(&self) -> &Ref<Task> {
        &self.task
    }

    /// Poll the task this often when the server has no `event.from` (default: the client's
    /// [`task_poll_interval`](super::ClientBuilder::task_poll_interval)).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The server-side wait of each `event.from` call (default 60.1 s); the call's client-side
    /// deadline is 6 seconds longer. A quiet task costs one call per this period.
    pub fn with_event_timeout(mut self, timeout: Duration) -> Self {
        self.event_timeout_secs = timeout.as_secs_f64();
        self
    }

    /// Give up [`wait`](Self::wait) after `timeout` with [`Error::Timeout`] of kind
    /// [`TimeoutKind::Task`](crate::error::TimeoutKind::Task) (default: wait as long as the
    /// task runs). The task itself goes on and is not destroyed: [`cancel`](Self::cancel) it
    /// if it must stop.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(timeout);
        self
    }

    fn watcher(&self) -> TaskWatcher {
        TaskWatcher {
            session: self.session.clone(),
            task: self.task.clone(),
            poll_interval: self.poll_interval,
            event_timeout_secs: self.event_timeout_secs,
            mode: WatchMode::Start,
            last: None,
        }
    }

    /// The current status and progress (one `task.get_record`).
    pub async fn poll(&self) -> Result<TaskProgress, Error> {
        Ok(observation(&self.watcher().record().await?))
    }

    /// A stream of progress observations while the task runs, one per change the server
    /// reports (or per poll on servers without `event.from`); the last item is the finished
    /// status. It only observes: the task is neither waited for nor destroyed.
    pub fn progress(&self) -> impl Stream<Item = Result<TaskProgress, Error>> + Send + 'static {
        futures::stream::unfold(Some(self.watcher()), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(record) => {
                    let observation = observation(&record);
                    let next = (!observation.is_finished()).then_some(watcher);
                    Some((Ok(observation), next))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Ask the server to cancel the task. Fails with `OPERATION_NOT_ALLOWED` when the task
    /// cannot be cancelled; [`wait`](Self::wait) then reports [`Error::TaskCancelled`] if it was.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.session
            .call::<IgnoredAny>("task.cancel", (&self.task,))
            .await
            .map(|_| ())
    }

    /// Wait for the task to finish, destroy it, and decode its result.
    ///
    /// If the wait itself fails (a broken connection, [`with_timeout`](Self::with_timeout)),
    /// the task is left running and not destroyed: a new handle on the same reference
    /// ([`TaskHandle::new`]) waits again from the task's current state.
    pub async fn wait(self) -> Result<T, Error> {
        self.wait_with_progress(|_| {}).await
    }

    /// [`wait`](Self::wait), calling `on_progress` with every observed change.
    pub async fn wait_with_progress(
        self,
        mut on_progress: impl FnMut(&TaskProgress),
    ) -> Result<T, Error> {
        let span = tracing::info_span!("task", task = %self.task);
        let mut watcher = self.watcher();
        let watch = async {
            loop {
                let record = watcher.next().await?;
                let observation = observation(&record);
                on_progress(&observation);
                if observation.is_finished() {
                    return Ok::<_, Error>(record);
                }
            }
        }
        .instrument(span.clone());
        let record = match self.deadline {
            None => watch.await?,
            Some(after) => {
                tokio::time::timeout(after, watch)
                    .await
                    .map_err(|_| Error::Timeout {
                        url: self.task.as_str().to_owned(),
                        kind: TimeoutKind::Task,
                        after,
                    })??
            }
        };
        if let Err(error) = self
            .session
            .call::<IgnoredAny>("task.destroy", (&self.task,))
            .await
        {
            tracing::warn!(task = %self.task, %error, "could not destroy the finished task");
        }
        span.in_scope(|| self.outcome(record))
    }

    fn outcome(&self, record: TaskRecord) -> Result<T, Error> {
        match record.status {
            TaskStatusType::Success => {
                decode_task_result(&self.task, &record.result, &self.session)
            }
            TaskStatusType::Cancelled => Err(Error::TaskCancelled {
                task: self.task.as_str().to_owned(),
            }),
            _ => {
                let mut info = record.error_info.into_iter();
                match info.next() {
                    Some(code) => Err(crate::error::api_failure(Failure {
                        code: ErrorCode::from_code(&code),
                        params: info.map(Into::into).collect(),
                    })),
                    None => Err(Error::Protocol {
                        url: self.session.client().url(),
                        reason: format!("task {} failed without error_info", self.task),
                    }),
                }
            }
        }
    }
}

impl SessionHandle {
    /// `task.create`: a task to hand to a data-plane handler (the `task` argument of
    /// [`SessionHandle::get`] / [`SessionHandle::put`]) so that its progress and outcome can be followed
    /// with [`TaskHandle::new`].
    pub async fn create_task(&self, label: &str, description: &str) -> Result<Ref<Task>, Error> {
        self.call("task.create", (label, description)).await
    }
}

/// Decode `task.result` (an XML-RPC `<value>` fragment; `""` for a void result).
fn decode_task_result<T: DeserializeOwned>(
    task: &Ref<Task>,
    result: &str,
    session: &SessionHandle,
) -> Result<T, Error> {
    let fragment = if result.trim().is_empty() {
        "<value></value>"
    } else {
        result
    };
    let limits = session.client().shared().limits;
    wire::xmlrpc::decode_value::<T>(fragment.as_bytes(), &limits).map_err(|source| {
        Error::DecodeResponse {
            method: format!("task.result of {task}"),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_statuses_are_the_terminal_ones() {
        use TaskStatusType as S;
        assert!(is_finished(&S::Success));
        assert!(is_finished(&S::Failure));
        assert!(is_finished(&S::Cancelled));
        assert!(!is_finished(&S::Pending));
        assert!(!is_finished(&S::Cancelling));
        assert!(!is_finished(&S::Unknown("paused".into())));
    }
}
