//! What a peer reports to Prometheus at `GET /metrics`: one registry
//! shared with libp2p's own metrics, the instruments the rest of the code
//! records into as it works, and the figures read afresh at each scrape.
//!
//! Figures that another part already keeps (members, store sizes, repair
//! counters) are not mirrored into metrics as they change: the scrape asks
//! for them and hands them over as a [`Snapshot`], which a collector turns
//! into samples. Only what nothing else keeps (request counts and
//! durations) is recorded as it happens, through [`Instruments`].

mod http;
mod snapshot;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use http::{Tracked, track_http};
pub use snapshot::{MemberCounts, Snapshot};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Builds the registry: shoal's own metrics are registered by
/// [`MetricsBuilder::new`], libp2p's through [`MetricsBuilder::registry`]
/// while the swarm is built; [`MetricsBuilder::finish`] freezes it.
#[derive(Debug)]
pub struct MetricsBuilder {
    registry: Registry,
    instruments: Instruments,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl Default for MetricsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsBuilder {
    /// A registry holding shoal's metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let instruments = Instruments::default();
        instruments.register(&mut registry);
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(snapshot::Collected(snapshot.clone())));
        MetricsBuilder {
            registry,
            instruments,
            snapshot,
        }
    }

    /// The registry, for libp2p to add its metrics to.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The instruments to record requests into.
    pub fn instruments(&self) -> Instruments {
        self.instruments.clone()
    }

    /// The finished registry, ready to be scraped.
    pub fn finish(self) -> Metrics {
        Metrics {
            registry: Arc::new(self.registry),
            snapshot: self.snapshot,
            scraping: Arc::default(),
            instruments: self.instruments,
        }
    }
}

/// The finished registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    snapshot: Arc<Mutex<Snapshot>>,
    scraping: Arc<Mutex<()>>,
    instruments: Instruments,
}

impl Metrics {
    /// Every metric in the text format, with the scrape-time figures taken
    /// from `snapshot`.
    pub fn render(&self, snapshot: Snapshot) -> String {
        // Held through encoding so that two scrapes at once each report
        // the figures they gathered.
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The instruments recorded into.
    pub fn instruments(&self) -> Instruments {
        self.instruments.clone()
    }
}

/// A route of the HTTP API or the S3 endpoint, and the status answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    route: String,
    status: u16,
}

/// A route alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

/// A kind of request to another peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerOp {
    op: &'static str,
}

/// A kind of request to another peer, and why it failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerOpFailure {
    op: &'static str,
    reason: &'static str,
}

/// Buckets from half a millisecond to about 16 seconds, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// What is recorded as it happens. Cheap to clone; a default value records
/// into metrics no registry exports (for tests and tools).
#[derive(Debug, Clone)]
pub struct Instruments {
    http_requests: Family<HttpRequest, Counter>,
    http_duration: Histograms<Route>,
    peer_duration: Histograms<PeerOp>,
    peer_failures: Family<PeerOpFailure, Counter>,
}

impl Default for Instruments {
    fn default() -> Self {
        Instruments {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(duration_histogram),
            peer_duration: Family::new_with_constructor(duration_histogram),
            peer_failures: Family::default(),
        }
    }
}

impl Instruments {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "shoal_http_requests",
            "HTTP requests answered, by route and status",
            self.http_requests.clone(),
        );
        registry.register(
            "shoal_http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by route",
            self.http_duration.clone(),
        );
        registry.register(
            "shoal_peer_request_duration_seconds",
            "Time for another peer (or this one) to answer a data request, by kind",
            self.peer_duration.clone(),
        );
        registry.register(
            "shoal_peer_requests_failed",
            "Data requests to peers that failed, by kind and reason",
            self.peer_failures.clone(),
        );
    }

    /// One HTTP request answered on `route` with `status` after `took`.
    pub fn http_request(&self, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.http_duration
            .get_or_create(&Route {
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.http_requests
            .get_or_create(&HttpRequest { route, status })
            .inc();
    }

    /// One data request of kind `op` that ended after `took`, failed for
    /// `failure` if any.
    pub fn peer_request(&self, op: &'static str, took: Duration, failure: Option<&'static str>) {
        self.peer_duration
            .get_or_create(&PeerOp { op })
            .observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.peer_failures
                .get_or_create(&PeerOpFailure { op, reason })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests;
