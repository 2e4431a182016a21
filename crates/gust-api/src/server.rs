//! The listener: HTTP/1.1 connections with a header timeout (which also closes idle
//! keep-alive connections) and a cap on open connections, so that one local client holding
//! thousands of idle or slow connections cannot starve the others of file descriptors.
//!
//! At the cap, a new connection makes room by closing the connection idle longest (one with
//! no request in progress, such as a slowloris still sending headers); only when every
//! connection is busy is the new one closed unanswered. Each is logged, at most once a second.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// How the listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A connection must send a complete request head within this long of opening or of
    /// its previous response, or it is closed (slow headers and idle keep-alive alike).
    pub header_timeout: Duration,
}

#[derive(Debug)]
struct Connection {
    /// Requests being handled now, until their response body has been written.
    busy: AtomicUsize,
    /// When a request last started or ended, in ms since the listener started.
    last_active_ms: AtomicU64,
    /// When a response body last handed hyper a frame, in ms since the listener started.
    last_frame_ms: AtomicU64,
    /// Set when a body frame was handed over and hyper has not asked for the next one: a
    /// client that stops reading leaves it set.
    frame_unwritten: std::sync::atomic::AtomicBool,
    close: Notify,
}

/// A response body whose writing has stalled this long (the client stopped reading) has
/// its connection dropped.
const WRITE_STALL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    last_warning: Mutex<Option<Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    /// Logs `message` unless a warning was logged less than a second ago.
    fn warn(&self, message: &str, open: usize) {
        let mut last = lock(&self.last_warning);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            tracing::warn!(open, "connection limit reached: {message}");
        }
    }
}

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (idle connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let epoch = Instant::now();
    let (closing_tx, closing) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait
                    // a moment rather than spin; closing connections frees descriptors.
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let open = lock(&registry.open).len();
        if open >= limits.max_connections && !make_room(&registry) {
            registry.warn(
                "every connection is busy; closed a new one unanswered",
                open,
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            busy: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            last_frame_ms: AtomicU64::new(0),
            frame_unwritten: std::sync::atomic::AtomicBool::new(false),
            close: Notify::new(),
        });
        lock(&registry.open).insert(id, Arc::clone(&connection));
        let registry = Arc::clone(&registry);
        let router = router.clone();
        let builder = builder.clone();
        let mut closing = closing.clone();
        tasks.spawn(async move {
            let tracked = Arc::clone(&connection);
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    let router = router.clone();
                    let tracked = Arc::clone(&tracked);
                    // Function URLs and HTTP APIs tell functions the client's address.
                    request.extensions_mut().insert(Peer(peer));
                    async move {
                        let active = Active::begin(tracked, epoch);
                        let response = router.oneshot(request).await?;
                        Ok::<_, std::convert::Infallible>(
                            response.map(|inner| axum::body::Body::new(Tracked { inner, active })),
                        )
                    }
                });
            let served = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(served);
            let mut asked_to_close = false;
            let mut stall_check = tokio::time::interval(Duration::from_secs(1));
            stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = served.as_mut() => break,
                    _ = stall_check.tick() => {
                        let now = epoch.elapsed().as_millis() as u64;
                        let stalled = connection.frame_unwritten.load(Ordering::Relaxed)
                            && now.saturating_sub(connection.last_frame_ms.load(Ordering::Relaxed))
                                > WRITE_STALL.as_millis() as u64;
                        // The client stopped reading: dropping the connection frees it.
                        if stalled {
                            break;
                        }
                    }
                    () = connection.close.notified(), if !asked_to_close => {
                        asked_to_close = true;
                        served.as_mut().graceful_shutdown();
                    }
                    _ = closing.wait_for(|c| *c), if !asked_to_close => {
                        asked_to_close = true;
                        served.as_mut().graceful_shutdown();
                    }
                }
            }
            lock(&registry.open).remove(&id);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Requests in flight finish (a client that stopped reading a response is dropped by
    // its connection's stall check, so it cannot hold the shutdown).
    while tasks.join_next().await.is_some() {}
}

/// Closes the connection idle longest; `false` when every connection has a request in
/// progress.
fn make_room(registry: &Registry) -> bool {
    let victim = {
        let mut open = lock(&registry.open);
        let oldest = open
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, c)| c.last_active_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        // Out of the count now: it closes as soon as its task sees the notification.
        oldest.and_then(|id| open.remove(&id))
    };
    match victim {
        Some(connection) => {
            connection.close.notify_one();
            registry.warn("closed the connection idle longest to make room", 0);
            true
        }
        None => false,
    }
}

/// Marks a connection busy while a request is handled and its response written.
struct Active {
    connection: Arc<Connection>,
    epoch: Instant,
}

impl Active {
    fn begin(connection: Arc<Connection>, epoch: Instant) -> Self {
        connection.busy.fetch_add(1, Ordering::Relaxed);
        connection
            .last_active_ms
            .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        Active { connection, epoch }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A response body that keeps its connection busy until it is written (or dropped), and
/// notes each frame handed to hyper so a stalled write is seen.
struct Tracked {
    inner: axum::body::Body,
    active: Active,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let connection = Arc::clone(&self.active.connection);
        connection.frame_unwritten.store(false, Ordering::Relaxed);
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &polled {
            connection
                .last_frame_ms
                .store(self.active.now_ms(), Ordering::Relaxed);
            connection.frame_unwritten.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.connection.busy.fetch_sub(1, Ordering::Relaxed);
        self.connection
            .last_active_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}
