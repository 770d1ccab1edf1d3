//! The IO side (feature `client`): transport, TLS policy, sessions, tasks, events, the HTTP
//! data plane, and the generated calls.
//!
//! - [`Client`] / [`ClientBuilder`]: one host, its [`TlsPolicy`], the [`Protocol`], [`Timeouts`];
//!   session-less calls ([`Client::call_raw`]) and [`Client::login_with_password`].
//! - [`SessionHandle`]: a logged-in session (a reference of class [`crate::api::Session`] plus
//!   the credentials to log in again); the raw call API ([`SessionHandle::call`],
//!   [`SessionHandle::call_async`]) that the generated calls go through, re-login on
//!   `SESSION_INVALID`, logout on drop.
//! - [`calls`]: one generated handle per class (`session.vm()` is a [`calls::VmApi`]).
//! - [`TaskHandle`]: wait for a task with progress (through `event.from` on `task/<ref>`, or
//!   by polling on servers without it), cancel it, decode its result.
//! - [`SessionHandle::events`]: `event.from` as a stream of the generated
//!   [`EventRecord`](crate::api::EventRecord)s, with visible resyncs.
//! - [`SessionHandle::get`] / [`SessionHandle::put`]: the HTTP data plane; uploads that may be
//!   redirected to another pool member (`/import`) go through
//!   [`SessionHandle::put_reopenable`] or [`SessionHandle::put_seekable`], which send the body
//!   again to the new host.
//! - [`Password`]: a password that never shows in logs; [`fetch_fingerprint`]: trust on first
//!   use.

mod answer_buffer;
mod body;
pub mod calls;
mod connection;
mod connector;
mod data_plane;
pub(crate) mod endpoint;
mod event;
mod fingerprint;
mod password;
mod protocol;
mod raw_get;
mod session;
mod task;
mod tls;
mod transport;

pub use connector::{Client, ClientBuilder};
pub use data_plane::{ByteStream, Download, Upload, read_chunks};
pub use event::{EventItem, EventOptions};
pub use fingerprint::{FingerprintParseError, Sha256Fingerprint};
pub use password::Password;
pub use protocol::Protocol;
pub use session::SessionHandle;
pub use task::{TaskHandle, TaskProgress};
pub use tls::{TlsPolicy, fetch_fingerprint};
pub use transport::Timeouts;
