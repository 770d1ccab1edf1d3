//! The IO side: transport, TLS policy, sessions, tasks, events and the HTTP data plane.
//!
//! - [`Client`] / [`ClientBuilder`]: one host, its [`TlsPolicy`], the [`Protocol`], [`Timeouts`];
//!   session-less calls ([`Client::call_raw`]) and [`Client::login_with_password`].
//! - [`Session`]: the raw call API ([`Session::call`], [`Session::call_async`]) that the
//!   generated API goes through, re-login on `SESSION_INVALID`, logout on drop.
//! - [`TaskHandle`]: wait for a task with progress (through `event.from` on `task/<ref>`, or
//!   by polling on servers without it), cancel it, decode its result.
//! - [`Session::events`]: `event.from` as a stream, with visible resyncs.
//! - [`Session::get`] / [`Session::put`]: the HTTP data plane; uploads that may be redirected
//!   to another pool member (`/import`) go through [`Session::put_reopenable`] or
//!   [`Session::put_seekable`], which send the body again to the new host.
//! - [`fetch_fingerprint`]: trust on first use.

mod body;
mod connection;
mod connector;
mod data_plane;
pub(crate) mod endpoint;
mod event;
mod fingerprint;
mod protocol;
mod secret;
mod session;
mod task;
mod tls;
mod transport;

pub use body::StreamReader;
pub use connector::{Client, ClientBuilder};
pub use data_plane::{ByteStream, Download, Upload, read_chunks};
pub use event::{Event, EventItem, EventOperation, EventOptions};
pub use fingerprint::{FingerprintParseError, Sha256Fingerprint};
pub use protocol::Protocol;
pub use secret::{Password, RedactCredentials, Secret};
pub use session::Session;
pub use task::{TaskHandle, TaskProgress, TaskStatus};
pub use tls::{TlsPolicy, fetch_fingerprint};
pub use transport::Timeouts;
