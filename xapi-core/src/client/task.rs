//! [`TaskHandle`]: follow a XAPI task to its end, with progress, cancellation, clean-up, and the
//! decoding of its result (an XML-RPC fragment, whatever the protocol).

use std::marker::PhantomData;
use std::time::Duration;

use futures::Stream;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::session::Session;
use crate::Error;
use crate::api::{ErrorCode, Task};
use crate::wire::{self, Failure, Ref};

/// The status of a task, as `task.status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Still running.
    Pending,
    /// Finished; `result` holds the value.
    Success,
    /// Finished; `error_info` holds the failure.
    Failure,
    /// A cancellation was requested and is in progress.
    Cancelling,
    /// Cancelled.
    Cancelled,
    /// A status this client does not know.
    Other(String),
}

impl TaskStatus {
    fn from_wire(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "success" => Self::Success,
            "failure" => Self::Failure,
            "cancelling" => Self::Cancelling,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the task has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Success | Self::Failure | Self::Cancelled)
    }
}

/// One progress observation of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskProgress {
    /// The status at this observation.
    pub status: TaskStatus,
    /// Progress from 0.0 to 1.0 (export and import handlers update it at most every 10 s).
    pub progress: f64,
}

/// The fields of `task.get_record` this client reads.
#[derive(Debug, Deserialize)]
struct TaskRecord {
    #[serde(default)]
    status: String,
    #[serde(default)]
    progress: f64,
    #[serde(default)]
    result: String,
    #[serde(default)]
    error_info: Vec<String>,
}

/// A running XAPI task whose result decodes as `T`.
pub struct TaskHandle<T> {
    session: Session,
    task: Ref<Task>,
    poll_interval: Duration,
    result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task", &self.task)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> TaskHandle<T> {
    /// Follow an existing task (from `task.create` for an HTTP transfer, or the `task-id`
    /// header of a data-plane response).
    pub fn new(session: Session, task: Ref<Task>) -> Self {
        let poll_interval = session.client().shared().task_poll_interval;
        Self {
            session,
            task,
            poll_interval,
            result: PhantomData,
        }
    }

    /// The task reference.
    pub fn task(&self) -> &Ref<Task> {
        &self.task
    }

    /// Poll the task this often (default: the client's
    /// [`task_poll_interval`](super::ClientBuilder::task_poll_interval)).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    async fn record(session: &Session, task: &Ref<Task>) -> Result<TaskRecord, Error> {
        session.call("task.get_record", (task,)).await
    }

    /// The current status and progress.
    pub async fn poll(&self) -> Result<TaskProgress, Error> {
        let record = Self::record(&self.session, &self.task).await?;
        Ok(TaskProgress {
            status: TaskStatus::from_wire(&record.status),
            progress: record.progress,
        })
    }

    /// A stream of progress observations, one per poll, while the task runs; the last item
    /// is the finished status. It only observes: the task is neither waited for nor destroyed.
    pub fn progress(&self) -> impl Stream<Item = Result<TaskProgress, Error>> + Send + 'static {
        let session = self.session.clone();
        let task = self.task.clone();
        let interval = self.poll_interval;
        futures::stream::unfold(Some(true), move |state| {
            let session = session.clone();
            let task = task.clone();
            async move {
                let first = state?;
                if !first {
                    tokio::time::sleep(interval).await;
                }
                match Self::record(&session, &task).await {
                    Ok(record) => {
                        let status = TaskStatus::from_wire(&record.status);
                        let next = (!status.is_finished()).then_some(false);
                        Some((
                            Ok(TaskProgress {
                                status,
                                progress: record.progress,
                            }),
                            next,
                        ))
                    }
                    Err(e) => Some((Err(e), None)),
                }
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
    pub async fn wait(self) -> Result<T, Error> {
        self.wait_with_progress(|_| {}).await
    }

    /// [`wait`](Self::wait), calling `on_progress` with every observation.
    pub async fn wait_with_progress(
        self,
        mut on_progress: impl FnMut(&TaskProgress),
    ) -> Result<T, Error> {
        let record = loop {
            let record = Self::record(&self.session, &self.task).await?;
            let status = TaskStatus::from_wire(&record.status);
            on_progress(&TaskProgress {
                status: status.clone(),
                progress: record.progress,
            });
            if status.is_finished() {
                break record;
            }
            tokio::time::sleep(self.poll_interval).await;
        };
        if let Err(error) = self
            .session
            .call::<IgnoredAny>("task.destroy", (&self.task,))
            .await
        {
            tracing::warn!(task = %self.task, %error, "could not destroy the finished task");
        }
        self.outcome(record)
    }

    fn outcome(&self, record: TaskRecord) -> Result<T, Error> {
        match TaskStatus::from_wire(&record.status) {
            TaskStatus::Success => decode_task_result(&self.task, &record.result, &self.session),
            TaskStatus::Cancelled => Err(Error::TaskCancelled {
                task: self.task.as_str().to_owned(),
            }),
            _ => {
                let mut info = record.error_info.into_iter();
                match info.next() {
                    Some(code) => Err(Error::Api(Failure {
                        code: ErrorCode::from_code(&code),
                        params: info.collect(),
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

impl Session {
    /// `task.create`: a task to hand to a data-plane handler (the `task` argument of
    /// [`Session::get`] / [`Session::put`]) so that its progress and outcome can be followed
    /// with [`TaskHandle::new`].
    pub async fn create_task(&self, label: &str, description: &str) -> Result<Ref<Task>, Error> {
        self.call("task.create", (label, description)).await
    }
}

/// Decode `task.result` (an XML-RPC `<value>` fragment; `""` for a void result).
fn decode_task_result<T: DeserializeOwned>(
    task: &Ref<Task>,
    result: &str,
    session: &Session,
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
        assert!(TaskStatus::from_wire("success").is_finished());
        assert!(TaskStatus::from_wire("failure").is_finished());
        assert!(TaskStatus::from_wire("cancelled").is_finished());
        assert!(!TaskStatus::from_wire("pending").is_finished());
        assert!(!TaskStatus::from_wire("cancelling").is_finished());
        assert_eq!(
            TaskStatus::from_wire("paused"),
            TaskStatus::Other("paused".into())
        );
    }
}
