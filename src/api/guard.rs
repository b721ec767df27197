//! Keeping other web sites' pages from reaching the API through a
//! visitor's browser.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Refuses a request that changes something when the browser says it was
/// made by another site's page (`Sec-Fetch-Site`, or an `Origin` that is
/// not this address). A form on any web page can make a browser post to
/// `127.0.0.1`; only this peer's own pages may. Clients that are not
/// browsers (the CLI, curl, S3 tools) send neither header.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && is_cross_site(request.headers()) {
        return ApiError::Forbidden("a request from another site's page is refused")
            .into_response();
    }
    next.run(request).await
}

/// Refuses a request whose `Host` is a name, not an address, while the API
/// listens on loopback only (`loopback_only`).
///
/// A page on another site can point its own name at 127.0.0.1 (DNS
/// rebinding); the browser then treats this peer as that site and lets
/// the page read the answers, the invite and its secret included. Such a
/// request names the other site in `Host`. On loopback, the only names
/// that reach this peer are addresses and `localhost`, so any other name
/// is refused. An API bound beyond loopback is reached by whatever names
/// the network gives the machine, so there every name is served (see the
/// README: bind beyond loopback only on a network you trust).
pub async fn refuse_foreign_host(
    State(loopback_only): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if loopback_only && host.is_some_and(|h| !is_local_host(h)) {
        return ApiError::Forbidden(
            "this peer answers only requests addressed to its IP address or localhost",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether a `Host` value is an IP address or `localhost`, with or
/// without a port.
fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<IpAddr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or(origin);
            origin_host != host
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::{is_cross_site, is_local_host};

    #[test]
    fn only_addresses_and_localhost_are_local_hosts() {
        for host in [
            "127.0.0.1:7070",
            "127.0.0.1",
            "[::1]:7070",
            "localhost:7070",
            "LOCALHOST",
            "app.localhost:7070",
            "192.168.1.10:7070",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.example:7070",
            "evil.example",
            "127.0.0.1.evil.example",
            "[evil]:1",
            "",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn only_browsers_naming_another_site_are_refused() {
        // The CLI, curl and S3 tools send neither header.
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:7070")])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "http://127.0.0.1:7070"),
            ("host", "127.0.0.1:7070")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:7070")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:7070")
        ])));
    }
}
