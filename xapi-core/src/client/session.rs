//! [`SessionHandle`]: a logged-in session, the raw call API every generated call goes through, and
//! the re-login on `SESSION_INVALID`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tracing::Instrument;

use super::connector::Client;
use super::password::Password;
use super::protocol;
use super::task::TaskHandle;
use crate::Error;
use crate::api::{self, ErrorCode, Task};
use crate::wire::{Ref, Value};

/// What a session needs to log in again.
pub(crate) struct LoginParams {
    pub(crate) uname: String,
    pub(crate) password: Password,
    pub(crate) version: String,
    pub(crate) originator: String,
}

struct SessionState {
    client: Client,
    reference: Ref<api::Session>,
}

struct SessionInner {
    state: Mutex<SessionState>,
    login: Option<LoginParams>,
    relogin: tokio::sync::Mutex<()>,
    /// Whether dropping the last clone logs the session out.
    owned: bool,
    logged_out: AtomicBool,
}

/// A logged-in XAPI session. Cheap to clone (shared state behind an `Arc`).
///
/// Every call prepends the session reference. On `SESSION_INVALID` (the session expired, or
/// xapi restarted) a session made by [`Client::login_with_password`] logs in again with the
/// stored credentials and retries, up to [`ClientBuilder::max_relogin`] times. On
/// `HOST_IS_SLAVE` (the pool master moved) it logs in again the same way, which follows the
/// new master.
/// Dropping the last clone logs out in the background (best effort).
///
/// Its `Debug` output never shows the session reference, which is a bearer credential.
///
/// [`ClientBuilder::max_relogin`]: super::ClientBuilder::max_relogin
#[derive(Clone)]
pub struct SessionHandle {
    inner: Arc<SessionInner>,
}

impl SessionHandle {
    pub(crate) fn logged_in(
        client: Client,
        reference: Ref<api::Session>,
        login: LoginParams,
    ) -> Self {
        Self::new(client, reference, Some(login), true)
    }

    pub(crate) fn attached(client: Client, reference: Ref<api::Session>) -> Self {
        Self::new(client, reference, None, false)
    }

    fn new(
        client: Client,
        reference: Ref<api::Session>,
        login: Option<LoginParams>,
        owned: bool,
    ) -> Self {
        Self {
            inner: Arc::new(SessionInner {
                state: Mutex::new(SessionState { client, reference }),
                login,
                relogin: tokio::sync::Mutex::new(()),
                owned,
                logged_out: AtomicBool::new(false),
            }),
        }
    }

    /// The client of the host this session lives on (the pool master after a
    /// `HOST_IS_SLAVE` redirect).
    pub fn client(&self) -> Client {
        self.snapshot_unchecked().0
    }

    /// The session reference: a bearer credential. Hand it only to code that sends it to the
    /// same pool; never log it.
    pub fn reference(&self) -> Ref<api::Session> {
        self.snapshot_unchecked().1
    }

    fn snapshot_unchecked(&self) -> (Client, Ref<api::Session>) {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (state.client.clone(), state.reference.clone())
    }

    pub(crate) fn snapshot(&self) -> Result<(Client, Ref<api::Session>), Error> {
        if self.inner.logged_out.load(Ordering::Acquire) {
            return Err(Error::NotLoggedIn {
                reason: "the session was logged out".into(),
            });
        }
        Ok(self.snapshot_unchecked())
    }

    /// Call `method`, prepending this session's reference to `params` (a tuple or a sequence of
    /// serializable values), and decode the result into `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        let params = protocol::params_to_values(method, &params)?;
        self.call_values(method, &params, None).await
    }

    /// Call `Async.<method>` and return a handle on the task it starts; the handle resolves to
    /// the result of the synchronous message, decoded as `T`.
    pub async fn call_async<T: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<TaskHandle<T>, Error> {
        let params = protocol::params_to_values(method, &params)?;
        let task: Ref<Task> = self
            .call_values(&format!("Async.{method}"), &params, None)
            .await?;
        Ok(TaskHandle::new(self.clone(), task))
    }

    /// The call loop: prepend the reference, send, log in again on `SESSION_INVALID`.
    pub(crate) async fn call_values<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let span = tracing::info_span!("call", method = %method);
        async {
            let mut relogins = 0;
            loop {
                let (client, reference) = self.snapshot()?;
                let mut values = Vec::with_capacity(params.len() + 1);
                values.push(Value::String(reference.as_str().to_owned()));
                values.extend_from_slice(params);
                let reply = client
                    .rpc::<T>(method, &values, &HeaderMap::new(), timeout)
                    .await?;
                match reply.result {
                    Ok(value) => return Ok(value),
                    // SESSION_INVALID: the session expired or xapi restarted. HOST_IS_SLAVE on
                    // a session call: the pool master moved; logging in again follows it.
                    Err(failure)
                        if matches!(
                            failure.code,
                            ErrorCode::SessionInvalid | ErrorCode::HostIsSlave
                        ) && self.inner.login.is_some()
                            && relogins < client.shared().max_relogin =>
                    {
                        relogins += 1;
                        tracing::info!(
                            attempt = relogins,
                            code = failure.code.as_str(),
                            "logging in again"
                        );
                        self.relogin(&reference).await?;
                    }
                    Err(failure) => return Err(crate::error::api_failure(failure)),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Log in again unless another caller already replaced the `stale` reference.
    /// Whether this session holds credentials to log in again.
    pub(crate) fn can_relogin(&self) -> bool {
        self.inner.login.is_some()
    }

    pub(crate) async fn relogin(&self, stale: &Ref<api::Session>) -> Result<(), Error> {
        let Some(login) = &self.inner.login else {
            return Err(Error::NotLoggedIn {
                reason: "no stored credentials to log in again".into(),
            });
        };
        let _guard = self.inner.relogin.lock().await;
        let (client, current) = self.snapshot()?;
        if &current != stale {
            return Ok(());
        }
        let (client, reference) = client.login(login).await?;
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = SessionState { client, reference };
        Ok(())
    }

    /// Log out (`session.logout`). Later calls fail with [`Error::NotLoggedIn`]; dropping the
    /// session no longer logs out.
    pub async fn logout(&self) -> Result<(), Error> {
        let (client, reference) = self.snapshot_unchecked();
        if self.inner.logged_out.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let span = tracing::info_span!("call", method = "session.logout");
        client
            .rpc::<IgnoredAny>(
                "session.logout",
                &[Value::String(reference.into_string())],
                &HeaderMap::new(),
                None,
            )
            .instrument(span)
            .await?
            .result
            .map(|_| ())
            .map_err(crate::error::api_failure)
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if !self.owned || self.logged_out.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("session dropped outside a tokio runtime; not logged out");
            return;
        };
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = state.client.clone();
        let reference = std::mem::take(&mut state.reference);
        runtime.spawn(async move {
            let outcome = client
                .rpc::<IgnoredAny>(
                    "session.logout",
                    &[Value::String(reference.into_string())],
                    &HeaderMap::new(),
                    None,
                )
                .await;
            match outcome {
                Ok(reply) if reply.result.is_ok() => tracing::debug!("dropped session logged out"),
                Ok(_) | Err(_) => tracing::debug!("logout of a dropped session failed"),
            }
        });
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (client, _) = self.snapshot_unchecked();
        f.debug_struct("SessionHandle")
            .field("url", &client.url())
            .field("user", &self.inner.login.as_ref().map(|l| l.uname.as_str()))
            .field("logged_out", &self.inner.logged_out.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
