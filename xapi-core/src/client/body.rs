//! Body plumbing for the data plane: the counted upload body and the stall watchdog. (The
//! `AsyncRead` / `Stream` adapters are tokio-util's `StreamReader` and `ReaderStream`.)

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http_body::{Body, Frame, SizeHint};
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
