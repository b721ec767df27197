//! Serving HTTP (the API and the S3 endpoint): accepting connections with
//! limits a public-facing server needs even on loopback.
//!
//! `axum::serve` sets no timers, so a client that opens a connection and
//! sends nothing (or half a request line) holds it, and its file
//! descriptor, forever; enough of them and the peer stops answering. Here
//! every connection must finish sending a request head within
//! [`HEADER_READ_TIMEOUT`] (which also closes idle keep-alive connections),
//! and at most [`MAX_CONNECTIONS`] are served at once; further clients wait
//! in the listen backlog. Shutdown stops accepting, then gives open
//! connections a grace period to finish their requests.
//!
//! A request refused before its body was read (a bad name, an unknown
//! upload) leaves the body unread, or not yet sent: a client that sent
//! `Expect: 100-continue` and tired of waiting for `100 Continue` sends it
//! anyway. Reusing the connection would then read those bytes as the start
//! of the next request, so a refusal of a request with a body closes the
//! connection ([`CloseAfterRefusal`]).
//!
//! With a TLS acceptor (see `tls`), each connection's handshake runs in its
//! own task, within `tls::HANDSHAKE_TIMEOUT`, before HTTP is served on it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client has to send a request's head (or to start its next
/// request on a kept-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long to back off when accepting fails (for example, out of file
/// descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// An error a service or a body may end with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `service` on `listener` until `shutdown` is cancelled, then waits
/// up to `grace` for open connections to finish. Returns whether every
/// connection finished in time; requests still running after that are
/// dropped, which for an upload means it is not acknowledged. `what` names
/// the service in log lines.
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    shutdown: CancellationToken,
    grace: Duration,
    what: &'static str,
) -> bool
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);

    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept an {what} connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = CloseAfterRefusal {
            inner: service.clone(),
        };
        let Some(tls) = tls.clone() else {
            let connection =
                graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%remote, %error, "{what} connection ended with an error");
                }
                drop(slot);
            });
            continue;
        };
        let (builder, watcher, stop) = (builder.clone(), graceful.watcher(), shutdown.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let handshake = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, tls.accept(stream));
            let stream = tokio::select! {
                () = stop.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, %error, "{what} TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "{what} TLS handshake timed out");
                        return;
                    }
                },
            };
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
            if let Err(error) = connection.await {
                tracing::debug!(%remote, %error, "{what} connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(grace) => false,
    }
}

/// Wraps a service so that an answer other than success to a request that
/// carries a body closes the connection (see the module's docs).
#[derive(Clone, Debug)]
pub struct CloseAfterRefusal<S> {
    inner: S,
}

impl<S, B> Service<Request<Incoming>> for CloseAfterRefusal<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let headers = request.headers();
        let sends_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if sends_body && !response.status().is_success() {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}
