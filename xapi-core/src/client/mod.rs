//! The IO side: transport, TLS policy, sessions, tasks, events and the HTTP data plane.
//!
//! Placeholder contract; the client implementation replaces the bodies.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::api::Task;
use crate::wire::Ref;

/// A logged-in XAPI session. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Session {
    _private: (),
}

impl Session {
    /// Call `method`, prepending this session's reference to `params` (a tuple or a sequence of
    /// serializable values), and decode the result into `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        _method: &str,
        _params: impl Serialize,
    ) -> Result<T, Error> {
        todo!("client: Session::call")
    }

    /// Call `Async.<method>` and return a handle on the task it starts; the handle resolves to
    /// the result of the synchronous message, decoded as `T`.
    pub async fn call_async<T: DeserializeOwned>(
        &self,
        _method: &str,
        _params: impl Serialize,
    ) -> Result<TaskHandle<T>, Error> {
        todo!("client: Session::call_async")
    }
}

/// A running XAPI task whose result decodes as `T`.
pub struct TaskHandle<T> {
    session: Session,
    task: Ref<Task>,
    result: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> TaskHandle<T> {
    /// The task reference.
    pub fn task(&self) -> &Ref<Task> {
        &self.task
    }

    /// Wait for the task to finish, destroy it, and decode its result.
    pub async fn wait(self) -> Result<T, Error> {
        let _ = &self.session;
        todo!("client: TaskHandle::wait")
    }
}
