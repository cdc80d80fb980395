//! A cap on open connections per port, and the clocks of each connection.
//!
//! Each accepted connection takes a slot until it closes; when every slot is
//! taken, a new connection is closed at once and counted, so idle or slow
//! clients cannot pile up file descriptors and tasks without bound.
//!
//! A connection is in one of three phases, and two clocks bound them:
//! - *head*: from accept (TLS handshake included), or from the first byte
//!   after an idle spell, until the request's headers are parsed and the
//!   handler is called. Bounded by the header timeout (10 s by default), so
//!   a client that sends half a header is cut.
//! - *busy*: a request is being read and answered. The body timeout and the
//!   request deadline of the handlers bound this phase, not the clocks here.
//! - *idle*: the response went out and the client has sent nothing since.
//!   Bounded by the idle timeout, which is meant to be longer than the
//!   client's own idle timeout (kube-apiserver drops idle connections after
//!   90 s), so the client closes first and never pays a new TLS handshake
//!   for a pause between reviews.
//!
//! The phase is shared by the stream (which sees bytes arrive) and the
//! per-connection service (which sees a request start and end). Bytes that
//! arrive while a request is busy (pipelining, which kube-apiserver never
//! does) start no head clock; hyper's own header timeout, set to idle plus
//! header, still bounds them.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::{Metrics, PortLabels};

/// How long a connection may spend sending a request's headers, and idle
/// between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    /// From accept, or from the first byte after an idle spell, until the
    /// headers are parsed.
    pub header: Duration,
    /// From a response until the next request's first byte.
    pub idle: Duration,
}

/// Wraps an acceptor so that at most `max` connections are open at once,
/// each bounded by its [`Clocks`].
#[derive(Clone)]
pub struct Capped<A> {
    inner: A,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    port: &'static str,
    clocks: Clocks,
}

impl<A> Capped<A> {
    /// `port` names the port in the metrics (`webhook` or `admin`).
    pub fn new(inner: A, max: usize, clocks: Clocks, metrics: Arc<Metrics>, port: &'static str) -> Capped<A> {
        Capped { inner, slots: Arc::new(Semaphore::new(max.max(1))), metrics, port, clocks }
    }
}

impl<I, S, A> Accept<I, S> for Capped<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Slot<A::Stream>;
    type Service = Tracked<A::Service>;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let labels = PortLabels { port: self.port };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.metrics.connections_refused.get_or_create(&labels).inc();
            drop(stream);
            return futures::future::ready(Err(io::Error::other("connection limit reached"))).boxed();
        };
        let open = self.metrics.open_connections.get_or_create(&labels).clone();
        open.inc();
        let phase = Arc::new(Mutex::new(Phase::Head(Instant::now())));
        let clocks = self.clocks;
        let accepting = self.inner.accept(stream, service);
        async move {
            let guard = OpenGuard { _permit: permit, open };
            let (stream, service) = accepting.await?;
            let service = Tracked { inner: service, phase: phase.clone() };
            Ok((Slot { inner: stream, _guard: guard, phase, clocks, timer: None }, service))
        }
        .boxed()
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for headers since this instant.
    Head(Instant),
    /// A request is being handled.
    Busy,
    /// Idle since this instant.
    Idle(Instant),
}

fn lock(phase: &Mutex<Phase>) -> std::sync::MutexGuard<'_, Phase> {
    // The lock is only held to read or write a `Phase`, which cannot panic;
    // a poisoned lock still holds a valid value.
    phase.lock().unwrap_or_else(|e| e.into_inner())
}

impl Phase {
    fn deadline(self, clocks: Clocks) -> Option<Instant> {
        match self {
            Phase::Head(since) => Some(since + clocks.header),
            Phase::Idle(since) => Some(since + clocks.idle),
            Phase::Busy => None,
        }
    }
}

/// The per-connection service: marks the connection busy while a request
/// is handled, idle once its response is ready (or the request is dropped).
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    phase: Arc<Mutex<Phase>>,
}

struct IdleOnDrop(Arc<Mutex<Phase>>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        *lock(&self.0) = Phase::Idle(Instant::now());
    }
}

impl<S, R> tower_service::Service<R> for Tracked<S>
where
    S: tower_service::Service<R>,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answering<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Answering<S::Future> {
        *lock(&self.phase) = Phase::Busy;
        Answering { inner: self.inner.call(request), done: Some(IdleOnDrop(self.phase.clone())) }
    }
}

/// A request being answered: the connection turns idle when the answer is
/// ready or the request is dropped. (The services below answer with boxed
/// futures, so this one needs no box of its own.)
pub struct Answering<F> {
    inner: F,
    done: Option<IdleOnDrop>,
}

impl<F: std::future::Future + Unpin> std::future::Future for Answering<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let answer = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        self.done = None;
        Poll::Ready(answer)
    }
}

struct OpenGuard {
    _permit: OwnedSemaphorePermit,
    open: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// A connection holding its slot until dropped. Reading from it fails with
/// `TimedOut` once the deadline of its phase has passed, which makes hyper
/// close it.
pub struct Slot<S> {
    inner: S,
    _guard: OpenGuard,
    phase: Arc<Mutex<Phase>>,
    clocks: Clocks,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Slot<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut phase = lock(&this.phase);
                    if let Phase::Idle(_) = *phase {
                        *phase = Phase::Head(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let phase = *lock(&this.phase);
                let Some(deadline) = phase.deadline(this.clocks) else {
                    return Poll::Pending;
                };
                // The timer is never later than the deadline, but may be
                // earlier: each request moves the deadline of the idle phase
                // later, and moving a timer is a trip to the timer wheel, so
                // it is moved later only when it goes off.
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() > deadline {
                    timer.as_mut().reset(deadline);
                }
                loop {
                    match timer.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) if Instant::now() < deadline => timer.as_mut().reset(deadline),
                        Poll::Ready(()) => {
                            let what = match phase {
                                Phase::Idle(_) => "idle timeout",
                                _ => "header timeout",
                            };
                            tracing::debug!(what, "closing connection");
                            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Slot<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
