//! Streamed responses as HTTP bodies: `InvokeWithResponseStream`'s event stream, and a
//! function URL's raw chunked body (after the HTTP integration prelude, when the function
//! sent one). Each chunk goes out as soon as the engine hands it over.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use gust_engine::{ResponseStream, StreamEvent};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

use crate::eventstream;

/// `InvokeWithResponseStream`'s body: a `PayloadChunk` per chunk, then `InvokeComplete`.
#[derive(Debug)]
pub(crate) struct EventStreamBody {
    events: mpsc::Receiver<StreamEvent>,
    /// Whether `InvokeComplete` carries `LogResult` (`X-Amz-Log-Type: Tail`).
    log_tail: bool,
    /// Chunks held back from before the body started (none normally).
    first: Option<Bytes>,
    done: bool,
}

impl EventStreamBody {
    pub(crate) fn new(stream: ResponseStream, log_tail: bool) -> Self {
        EventStreamBody {
            events: stream.events,
            log_tail,
            first: None,
            done: false,
        }
    }

    /// A whole buffered answer as one chunk and its completion (a function that did not
    /// stream, called through `InvokeWithResponseStream`).
    pub(crate) fn buffered(
        body: Bytes,
        error: Option<(String, String)>,
        log_tail: Option<String>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(2);
        let mut first = None;
        if error.is_none() {
            first = Some(eventstream::payload_chunk(&body));
        }
        let _ = tx.try_send(StreamEvent::Complete {
            error,
            log_tail: log_tail.clone().unwrap_or_default(),
        });
        EventStreamBody {
            events: rx,
            log_tail: log_tail.is_some(),
            first,
            done: false,
        }
    }
}

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.events.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(event) => event,
        };
        let frame = match event {
            Some(StreamEvent::Chunk(data)) => eventstream::payload_chunk(&data),
            Some(StreamEvent::Complete { error, log_tail }) => {
                self.done = true;
                let log = self
                    .log_tail
                    .then(|| base64::engine::general_purpose::STANDARD.encode(log_tail));
                let (code, details) = match &error {
                    Some((code, details)) => (Some(code.as_str()), Some(details.as_str())),
                    None => (None, None),
                };
                eventstream::invoke_complete(code, details, log.as_deref())
            }
            // The engine's task ended without completing (the server is shutting down).
            None => {
                self.done = true;
                eventstream::invoke_complete(
                    Some("ServiceException"),
                    Some("The invocation ended unexpectedly."),
                    None,
                )
            }
        };
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

/// A function URL's streamed body: the bytes after the prelude, then each chunk; a
/// failure mid-stream ends the body where it was (the status was sent already).
#[derive(Debug)]
pub(crate) struct RawStreamBody {
    events: mpsc::Receiver<StreamEvent>,
    first: Option<Bytes>,
    done: bool,
}

impl Body for RawStreamBody {
    type Data = Bytes;
    /// A stream that failed (or timed out) after its head went out: the connection is
    /// broken off without the final chunk, so the client sees a truncated response rather
    /// than a complete one.
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            if !first.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(first))));
            }
        }
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.events.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(StreamEvent::Chunk(data))) if data.is_empty() => continue,
                Poll::Ready(Some(StreamEvent::Chunk(data))) => {
                    return Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(StreamEvent::Complete {
                    error: Some((code, _)),
                    ..
                })) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(std::io::Error::other(code))));
                }
                Poll::Ready(_) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

/// Node's `HttpResponseStream.from` content type: a JSON prelude, 8 NUL bytes, the body.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// The prelude is small; a function that sends more before its separator is broken.
const PRELUDE_MAX: usize = 64 * 1024;

/// What a function URL answers before its streamed body.
#[derive(Debug)]
pub(crate) struct StreamHead {
    /// The prelude (`{statusCode, headers, cookies}`), or `None` for a plain stream.
    pub(crate) prelude: Option<Bytes>,
    /// The runtime's content type.
    pub(crate) content_type: String,
    /// The body.
    pub(crate) body: RawStreamBody,
    /// The invocation failed before any body byte (the whole error, as for a buffered
    /// answer).
    pub(crate) failed: bool,
}

/// Reads a streamed response's head: with the HTTP integration content type, the chunks up
/// to the 8-NUL separator are the prelude.
pub(crate) async fn head(mut stream: ResponseStream) -> StreamHead {
    let content_type = stream.content_type.clone();
    if stream.content_type != HTTP_INTEGRATION {
        return StreamHead {
            content_type,
            prelude: None,
            body: RawStreamBody {
                events: stream.events,
                first: None,
                done: false,
            },
            failed: false,
        };
    }
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        match stream.events.recv().await {
            Some(StreamEvent::Chunk(data)) => {
                buffer.extend_from_slice(&data);
                if let Some(at) = buffer.windows(8).position(|w| w == [0u8; 8]) {
                    let prelude = Some(Bytes::copy_from_slice(&buffer[..at]));
                    let rest = Bytes::copy_from_slice(&buffer[at + 8..]);
                    return StreamHead {
                        content_type: "application/octet-stream".into(),
                        failed: false,
                        prelude,
                        body: RawStreamBody {
                            events: stream.events,
                            first: Some(rest),
                            done: false,
                        },
                    };
                }
                if buffer.len() > PRELUDE_MAX {
                    break;
                }
            }
            Some(StreamEvent::Complete { error, .. }) => {
                // Ended before the separator: a complete prelude-only answer, or a failure.
                let prelude = error.is_none().then(|| Bytes::from(buffer));
                let (tx, rx) = mpsc::channel(1);
                drop(tx);
                return StreamHead {
                    content_type: "application/octet-stream".into(),
                    failed: prelude.is_none(),
                    prelude,
                    body: RawStreamBody {
                        events: rx,
                        first: None,
                        done: true,
                    },
                };
            }
            None => break,
        }
    }
    StreamHead {
        content_type,
        prelude: None,
        body: RawStreamBody {
            events: stream.events,
            first: None,
            done: true,
        },
        failed: true,
    }
}
