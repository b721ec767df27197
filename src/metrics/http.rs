//! Counting and timing HTTP requests: a middleware for the API's router,
//! which knows each request's route, and a wrapper for any other service
//! (the S3 endpoint), whose requests are counted by method.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Instruments;

/// Records each request under the route pattern it matched (`/v1/files/{*name}`,
/// not the name itself, so the labels stay few), or `unmatched`.
pub async fn track_http(
    State(instruments): State<Instruments>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    instruments.http_request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// A hyper service whose requests are recorded as `PREFIX METHOD` routes.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    prefix: &'static str,
    instruments: Instruments,
}

impl<S> Tracked<S> {
    /// `inner`, recording its requests under `prefix` into `instruments`.
    pub fn new(inner: S, prefix: &'static str, instruments: Instruments) -> Self {
        Tracked {
            inner,
            prefix,
            instruments,
        }
    }
}

impl<S, In, Out> hyper::service::Service<axum::http::Request<In>> for Tracked<S>
where
    S: hyper::service::Service<axum::http::Request<In>, Response = axum::http::Response<Out>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: axum::http::Request<In>) -> Self::Future {
        let route = format!("{} {}", self.prefix, request.method());
        let instruments = self.instruments.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            if let Ok(response) = &answer {
                instruments.http_request(&route, response.status().as_u16(), started.elapsed());
            }
            answer
        })
    }
}
