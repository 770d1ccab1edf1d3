//! Following many XAPI tasks through one shared `event.from` stream, instead of one watch per
//! task: a run starts VMs one after another, and every start's task completes through this
//! single subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use tokio::sync::oneshot;
use xapi_core::api::{Task, TaskRecord, TaskStatusType};
use xapi_core::client::{EventItem, EventOptions, SessionHandle};
use xapi_core::wire::Ref;

#[derive(Default)]
struct Waiting {
    /// Tasks someone waits for.
    waiters: HashMap<String, oneshot::Sender<TaskRecord>>,
    /// Tasks that finished before anyone asked (the event can beat the registration).
    finished: HashMap<String, TaskRecord>,
}

/// The most finished tasks kept for a registration that has not come yet.
const FINISHED_KEPT: usize = 4096;

/// One event stream on the `task` class, dispatching finished tasks to whoever waits for them.
/// Dropping it stops the stream.
pub(crate) struct TaskTracker {
    waiting: Arc<Mutex<Waiting>>,
    pump: tokio::task::JoinHandle<()>,
}

impl TaskTracker {
    /// Subscribes to task events with `session`.
    pub(crate) fn new(session: &SessionHandle) -> Self {
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let events = session.events::<TaskRecord>(&["task"], EventOptions::default());
        let shared = Arc::clone(&waiting);
        let pump = tokio::spawn(async move {
            futures::pin_mut!(events);
            while let Some(item) = events.next().await {
                // Transient errors are retried by the stream itself; a fatal one ends it and
                // the waiters see their channel close.
                let Ok(EventItem::Event { event, .. }) = item else {
                    continue;
                };
                let Some(record) = event.snapshot else {
                    continue;
                };
                if record.status == TaskStatusType::Pending {
                    continue;
                }
                let mut waiting = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let key = (*event.r#ref).to_owned();
                if let Some(waiter) = waiting.waiters.remove(&key) {
                    let _ = waiter.send(record);
                } else {
                    if waiting.finished.len() >= FINISHED_KEPT {
                        waiting.finished.clear();
                    }
                    waiting.finished.insert(key, record);
                }
            }
        });
        Self { waiting, pump }
    }

    /// Waits until `task` has finished and returns its record. `None` if the event stream
    /// ended (the pool went away).
    pub(crate) async fn finished(&self, task: &Ref<Task>) -> Option<TaskRecord> {
        let receiver = {
            let mut waiting = self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(record) = waiting.finished.remove(task.as_str()) {
                return Some(record);
            }
            let (sender, receiver) = oneshot::channel();
            waiting.waiters.insert(task.as_str().to_owned(), sender);
            receiver
        };
        receiver.await.ok()
    }
}

impl Drop for TaskTracker {
    fn drop(&mut self) {
        self.pump.abort();
    }
}
