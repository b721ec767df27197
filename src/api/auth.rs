//! Who may use the API and the web page.
//!
//! The rule follows the address the API binds, not the client's: bound to
//! a loopback address, every request is served as before (only this
//! machine can connect); bound to any other address, every request needs
//! a token, whatever address it comes from, since a reverse proxy on the
//! same machine would otherwise make every remote client look local.
//!
//! A token comes as `Authorization: Bearer <token>` (the CLI, scripts) or
//! in the cookie the sign-in page sets (the browser; see
//! [`Gate::cookie_name`]). Each route needs a [`Scope`] (see
//! [`needed_scope`]), decided by the route the request matched, never by
//! the raw path, so no spelling of a path can reach a route under another
//! route's rule; `/metrics` and `/health` need none with
//! `--metrics-public`, and the sign-in page and its assets never do. A
//! token's text is never logged: only its name, once it is known.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;
use crate::tokens::{AccessTokens, Grant, LocalToken, Scope, TokenText};

/// The header a page's script sends its form token in.
pub const CSRF_HEADER: &str = "x-shoal-csrf";

/// Whether and how requests are checked.
#[derive(Clone)]
pub struct Gate {
    /// Every request needs a token (the API binds beyond loopback).
    pub required: bool,
    /// `/metrics` and `/health` are open even so.
    pub metrics_public: bool,
    /// The swarm's tokens.
    pub tokens: AccessTokens,
    /// This peer's own admin token.
    local: LocalToken,
    /// The token every change made from the page must carry: drawn at
    /// start, shown only in this peer's own pages, which another site
    /// cannot read. A browser sends the sign-in cookie with any request to
    /// this address, so the cookie alone cannot prove that this peer's
    /// page made the request.
    csrf: Arc<str>,
    /// Whether the API is served over TLS (cookies are then `Secure`).
    pub tls: bool,
    /// The sign-in cookie's name (see [`Gate::cookie_name`]).
    cookie: String,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("required", &self.required)
            .field("metrics_public", &self.metrics_public)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What a request needs, by the route it matched (its pattern, as
/// `MatchedPath` gives it; `None` for a path no route matched): `None`
/// when it is open to anyone.
pub fn needed_scope(method: &Method, route: Option<&str>, metrics_public: bool) -> Option<Scope> {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let Some(route) = route else {
        // Answered "no such route"; still not for strangers.
        return Some(if reads { Scope::ReadOnly } else { Scope::Admin });
    };
    match route {
        "/login" | "/logout" | "/assets/{*path}" => None,
        "/metrics" | "/health" if metrics_public => None,
        // The invite carries the cluster secret.
        "/v1/invite" | "/v1/scrub" | "/v1/leave" | "/v1/tokens" | "/v1/tokens/{*name}"
        | "/v1/s3/keys" | "/v1/s3/keys/import" | "/v1/s3/keys/{id}" => Some(Scope::Admin),
        _ if reads => Some(Scope::ReadOnly),
        "/v1/file" | "/v1/files/{*name}" | "/ui/delete" => Some(Scope::ReadWrite),
        // Anything else that changes something is for admins until it is
        // placed on purpose.
        _ => Some(Scope::Admin),
    }
}

/// The token a request carries: its `Authorization: Bearer` header, else
/// the sign-in cookie called `cookie_name`. `Err` when the header is there
/// but malformed.
fn presented(headers: &HeaderMap, cookie_name: &str) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok().and_then(|v| {
            let (kind, token) = v.trim().split_once(' ')?;
            kind.eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
        return text.map(Some).ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        });
    }
    Ok(cookie(headers, cookie_name))
}

/// The value of cookie `name`, if the request carries it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_owned())
        })
}

impl Gate {
    /// The gate of an API on `port` that needs tokens if `required`.
    ///
    /// # Errors
    /// The operating system's random source fails (for the form token).
    pub fn new(
        required: bool,
        metrics_public: bool,
        tokens: AccessTokens,
        local: LocalToken,
        tls: bool,
        port: u16,
    ) -> Result<Self, getrandom::Error> {
        let mut csrf = [0u8; 16];
        getrandom::fill(&mut csrf)?;
        // Browsers send a host's cookies to all its ports: the port in the
        // name keeps two peers (or anything else) on one machine from
        // reading or overwriting each other's sign-in. Over TLS the
        // `__Host-` prefix also makes browsers refuse the cookie from
        // plain HTTP or with a domain.
        let cookie = if tls {
            format!("__Host-shoal_token_{port}")
        } else {
            format!("shoal_token_{port}")
        };
        Ok(Gate {
            required,
            metrics_public,
            tokens,
            local,
            csrf: Arc::from(hex::encode(csrf)),
            tls,
            cookie,
        })
    }

    /// The form token this peer's pages carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `sent` is this peer's form token, in constant time.
    pub fn is_csrf(&self, sent: &str) -> bool {
        blake3::hash(sent.as_bytes()) == blake3::hash(self.csrf.as_bytes())
    }

    /// The name of the cookie the sign-in is kept in.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// What `text` grants, if it is a token of this swarm or this peer's
    /// own.
    ///
    /// # Errors
    /// The swarm cannot be asked.
    pub async fn grant(&self, text: &str) -> Result<Option<Grant>, ApiError> {
        let Some(token) = TokenText::parse(text) else {
            return Ok(None);
        };
        if self.local.matches(&token) {
            return Ok(Some(Grant {
                name: "this peer's own token".into(),
                scope: Scope::Admin,
            }));
        }
        Ok(self.tokens.check(&token).await?)
    }
}

/// Whether a refused request is a browser asking for a page, which is
/// better sent to the sign-in page than shown a JSON error.
fn wants_page(request: &Request) -> bool {
    let path = request.uri().path();
    *request.method() == Method::GET
        && !path.starts_with("/v1/")
        && path != "/metrics"
        && path != "/health"
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// Serves a request only if it carries a token that allows it (see the
/// module documentation). The grant goes into the request's extensions
/// for the handlers.
pub async fn require_token(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !gate.required {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some(needed) = needed_scope(request.method(), route.as_deref(), gate.metrics_public) else {
        return next.run(request).await;
    };
    let from_cookie = !request.headers().contains_key(header::AUTHORIZATION);
    let grant = match presented(request.headers(), gate.cookie_name()) {
        Err(refusal) => return refusal.into_response(),
        Ok(None) if wants_page(&request) => return Redirect::to("/login").into_response(),
        Ok(None) => {
            return ApiError::Unauthorized(
                "this peer needs a token: send `Authorization: Bearer <token>` (the CLI reads SHOAL_TOKEN)"
                    .into(),
            )
            .into_response();
        }
        Ok(Some(text)) => match gate.grant(&text).await {
            Ok(grant) => grant,
            Err(error) => return error.into_response(),
        },
    };
    let Some(grant) = grant else {
        if wants_page(&request) {
            return Redirect::to("/login").into_response();
        }
        return ApiError::Unauthorized(
            "the token is not valid here: it was removed, has expired, or belongs to another swarm"
                .into(),
        )
        .into_response();
    };
    if grant.scope < needed {
        return ApiError::NotAllowed(format!(
            "the token {:?} is {}; this needs {}",
            grant.name,
            grant.scope.name(),
            needed.name()
        ))
        .into_response();
    }
    // A change made with the cookie must come from this peer's page: its
    // script sends the form token in a header, its forms in their body
    // (checked by their handlers).
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if from_cookie && changes && route.as_deref() != Some("/ui/delete") {
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|sent| gate.is_csrf(sent)) {
            return ApiError::Forbidden(
                "a change made with the page's sign-in needs the page's form token: reload the page",
            )
            .into_response();
        }
    }
    request.extensions_mut().insert(grant);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_scopes_their_effects_call_for() {
        let need = |m: Method, p: &str| needed_scope(&m, Some(p), false);
        assert_eq!(need(Method::GET, "/v1/files"), Some(Scope::ReadOnly));
        assert_eq!(need(Method::HEAD, "/v1/file"), Some(Scope::ReadOnly));
        assert_eq!(need(Method::GET, "/"), Some(Scope::ReadOnly));
        assert_eq!(need(Method::GET, "/metrics"), Some(Scope::ReadOnly));
        assert_eq!(need(Method::PUT, "/v1/file"), Some(Scope::ReadWrite));
        assert_eq!(need(Method::PATCH, "/v1/file"), Some(Scope::ReadWrite));
        assert_eq!(
            need(Method::DELETE, "/v1/files/{*name}"),
            Some(Scope::ReadWrite)
        );
        assert_eq!(need(Method::POST, "/ui/delete"), Some(Scope::ReadWrite));
        assert_eq!(need(Method::GET, "/v1/invite"), Some(Scope::Admin));
        assert_eq!(need(Method::GET, "/v1/s3/keys"), Some(Scope::Admin));
        assert_eq!(need(Method::DELETE, "/v1/s3/keys/{id}"), Some(Scope::Admin));
        assert_eq!(need(Method::GET, "/v1/tokens"), Some(Scope::Admin));
        assert_eq!(
            need(Method::DELETE, "/v1/tokens/{*name}"),
            Some(Scope::Admin)
        );
        assert_eq!(need(Method::POST, "/v1/scrub"), Some(Scope::Admin));
        assert_eq!(need(Method::POST, "/v1/leave"), Some(Scope::Admin));
        assert_eq!(need(Method::POST, "/v1/unknown"), Some(Scope::Admin));
        assert_eq!(need(Method::GET, "/login"), None);
        assert_eq!(need(Method::POST, "/login"), None);
        assert_eq!(need(Method::GET, "/assets/{*path}"), None);
        assert_eq!(needed_scope(&Method::GET, Some("/metrics"), true), None);
        assert_eq!(needed_scope(&Method::GET, Some("/health"), true), None);
        // A path no route matched is answered 404, to token holders only.
        assert_eq!(
            needed_scope(&Method::GET, None, true),
            Some(Scope::ReadOnly)
        );
        assert_eq!(needed_scope(&Method::POST, None, true), Some(Scope::Admin));
    }

    #[test]
    fn tokens_come_from_the_header_or_else_the_cookie() {
        let mut headers = HeaderMap::new();
        let name = "shoal_token_7070";
        assert_eq!(presented(&headers, name).unwrap(), None);
        headers.insert(
            header::COOKIE,
            "a=b; shoal_token_7071=other; shoal_token_7070=tok"
                .parse()
                .unwrap(),
        );
        assert_eq!(presented(&headers, name).unwrap().as_deref(), Some("tok"));
        headers.insert(header::AUTHORIZATION, "bearer  hdr ".parse().unwrap());
        assert_eq!(presented(&headers, name).unwrap().as_deref(), Some("hdr"));
        headers.insert(header::AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert!(presented(&headers, name).is_err());
    }
}
