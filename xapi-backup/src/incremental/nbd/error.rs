//! What can go wrong talking NBD, with where it happened.

/// An NBD failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NbdError {
    /// The TCP connection could not be made (nothing was read).
    #[error("nbd {address}: cannot connect: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("nbd {address}: {during}: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// What was being done.
        during: &'static str,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The peer does not speak fixed-newstyle NBD.
    #[error("nbd {address}: not a fixed-newstyle NBD server: {reason}")]
    NotNbd {
        /// `host:port`.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// The server refused an option.
    #[error("nbd {address}: option {option} refused with {reply}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    OptionRefused {
        /// `host:port`.
        address: String,
        /// The option (`NBD_OPT_GO`, `NBD_OPT_STARTTLS`).
        option: &'static str,
        /// The error reply's name (`NBD_REP_ERR_TLS_REQD`, ...).
        reply: &'static str,
        /// The server's message, if any.
        message: String,
    },
    /// The TLS upgrade failed (a certificate other than the one pinned, for one).
    #[error("nbd {address}: TLS: {reason}")]
    Tls {
        /// `host:port`.
        address: String,
        /// Why.
        reason: String,
    },
    /// A read request was refused.
    #[error("nbd {address}: read of {length} bytes at offset {offset} failed: {errno} ({error})")]
    Read {
        /// `host:port`.
        address: String,
        /// Offset asked.
        offset: u64,
        /// Length asked.
        length: u32,
        /// The error number the server sent.
        error: u32,
        /// Its name.
        errno: &'static str,
    },
    /// A read outside the export, or not aligned to its minimum block size.
    #[error(
        "nbd: read of {length} bytes at offset {offset} is outside the export ({size} bytes) or not aligned to {min_block} bytes"
    )]
    BadRange {
        /// Offset asked.
        offset: u64,
        /// Length asked.
        length: u64,
        /// The export's size.
        size: u64,
        /// Its minimum block size.
        min_block: u32,
    },
    /// The server broke the protocol during transmission.
    #[error("nbd {address}: protocol error: {reason}")]
    Protocol {
        /// `host:port`.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// Every server `VDI.get_nbd_info` listed failed; the last error.
    #[error("nbd: none of the {tried} servers answered; last: {last}")]
    NoServer {
        /// How many were tried.
        tried: usize,
        /// The last failure.
        last: Box<NbdError>,
    },
    /// A sink given to [`super::NbdClient::read_ranges`] refused the data.
    #[error("nbd: the data of offset {offset} was refused: {source}")]
    Sink {
        /// Offset of the data.
        offset: u64,
        /// The sink's error.
        #[source]
        source: std::io::Error,
    },
}
