//! A cap on open connections per port. Each accepted connection takes a
//! slot until it closes; when every slot is taken, a new connection is
//! closed at once and counted, so idle or slow clients cannot pile up file
//! descriptors and tasks without bound.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{Metrics, PortLabels};

/// Wraps an acceptor so that at most `max` connections are open at once.
#[derive(Clone)]
pub struct Capped<A> {
    inner: A,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    port: &'static str,
}

impl<A> Capped<A> {
    /// `port` names the port in the metrics (`webhook` or `admin`).
    pub fn new(inner: A, max: usize, metrics: Arc<Metrics>, port: &'static str) -> Capped<A> {
        Capped { inner, slots: Arc::new(Semaphore::new(max.max(1))), metrics, port }
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
    type Service = A::Service;
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
        let accepting = self.inner.accept(stream, service);
        async move {
            let guard = OpenGuard { _permit: permit, open };
            let (stream, service) = accepting.await?;
            Ok((Slot { inner: stream, _guard: guard }, service))
        }
        .boxed()
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

/// A connection holding its slot until dropped.
pub struct Slot<S> {
    inner: S,
    _guard: OpenGuard,
}

impl<S: AsyncRead + Unpin> AsyncRead for Slot<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
