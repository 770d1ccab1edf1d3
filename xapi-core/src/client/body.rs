//! Body plumbing for the data plane: the counted upload body, download byte streams, and the
//! `AsyncRead` / `Stream` adapters.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::oneshot;

use crate::error::BoxError;

/// How an upload body ended.
#[derive(Debug)]
pub(crate) enum UploadEnd {
    /// Every announced byte was produced.
    Complete,
    /// The stream ended after `actual` of the announced bytes, or went past them.
    LengthMismatch { actual: u64 },
    /// The caller's stream failed.
    Failed(BoxError),
}

/// An upload body of an announced length: counts bytes (for progress and the stall
/// watchdog), refuses more or fewer bytes than announced, and reports how it ended.
pub(crate) struct UploadBody {
    stream: BoxStream<'static, Result<Bytes, BoxError>>,
    expected: u64,
    sent: Arc<AtomicU64>,
    done: Option<oneshot::Sender<UploadEnd>>,
    finished: bool,
}

impl UploadBody {
    pub(crate) fn new(
        stream: BoxStream<'static, Result<Bytes, BoxError>>,
        expected: u64,
    ) -> (Self, Arc<AtomicU64>, oneshot::Receiver<UploadEnd>) {
        let sent = Arc::new(AtomicU64::new(0));
        let (tx, rx) = oneshot::channel();
        (
            Self {
                stream,
                expected,
                sent: sent.clone(),
                done: Some(tx),
                finished: expected == 0,
            },
            sent,
            rx,
        )
    }

    fn finish(&mut self, end: UploadEnd) {
        self.finished = true;
        if let Some(done) = self.done.take() {
            let _ = done.send(end);
        }
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.finished {
            if let Some(done) = this.done.take() {
                let _ = done.send(UploadEnd::Complete);
            }
            return Poll::Ready(None);
        }
        match this.stream.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let total = this.sent.load(Ordering::Relaxed) + chunk.len() as u64;
                if total > this.expected {
                    this.finish(UploadEnd::LengthMismatch { actual: total });
                    return Poll::Ready(Some(Err("upload body is longer than announced".into())));
                }
                this.sent.store(total, Ordering::Relaxed);
                if total == this.expected {
                    this.finished = true;
                    if let Some(done) = this.done.take() {
                        let _ = done.send(UploadEnd::Complete);
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => {
                let text = error.to_string();
                this.finish(UploadEnd::Failed(error));
                Poll::Ready(Some(Err(text.into())))
            }
            Poll::Ready(None) => {
                let actual = this.sent.load(Ordering::Relaxed);
                this.finish(UploadEnd::LengthMismatch { actual });
                Poll::Ready(Some(Err("upload body is shorter than announced".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.expected - self.sent.load(Ordering::Relaxed).min(self.expected))
    }
}

/// Resolves once `counter` has not moved for `inactivity`.
pub(crate) async fn stalled(counter: &AtomicU64, inactivity: Duration) {
    let mut last = counter.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(inactivity).await;
        let now = counter.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

/// Read an `AsyncRead` as a stream of chunks of at most `chunk` bytes.
pub(crate) fn reader_stream<R: AsyncRead + Send + Unpin + 'static>(
    reader: R,
    chunk: usize,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures::stream::unfold(Some(reader), move |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; chunk];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// An `AsyncRead` over a stream of byte chunks.
pub struct StreamReader<S> {
    stream: S,
    current: Bytes,
}

impl<S> StreamReader<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            current: Bytes::new(),
        }
    }
}

impl<S, E> AsyncRead for StreamReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let chunk = self.current.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Ok(bytes))) => self.current = bytes,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.into()))),
            }
        }
    }
}
