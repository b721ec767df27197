//! An HTTP client for a peer's local API, used by the CLI.
//!
//! Every call names the file through the `?name=` form of the routes, so
//! any valid name (including `.` and `..`) reaches the peer intact. Errors
//! come back typed: a peer that is not running is told apart from a peer
//! that refused the request, and a refusal carries the peer's own one-line
//! explanation.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url, header};

use crate::api::{
    CreateKey, CreateToken, ErrorBody, HandOver, ImportKey, InviteResponse, KeyInfo, ListResponse,
    NewKey, OverviewResponse, PutResponse, ScrubReport, StatResponse, StatusResponse,
};
use crate::chunk::{Blake3Hash, FileAttributes, FileName, format_mode};
use crate::tokens::{NewToken, TokenInfo};

/// The largest JSON answer accepted: room for the manifest of a file of
/// about a terabyte, while a peer gone wrong cannot make the CLI use
/// unbounded memory.
const MAX_JSON_BYTES: usize = 256 * 1024 * 1024;

/// The request header carrying the client's BLAKE3 of an upload.
pub const CONTENT_BLAKE3: &str = "x-shoal-blake3";
/// The request and response header carrying a file's mode, in octal.
pub const FILE_MODE: &str = "x-shoal-mode";
/// The request and response header carrying a file's modification time.
pub const FILE_MTIME: &str = "x-shoal-mtime";

/// What can go wrong talking to a peer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API URL is malformed.
    #[error("invalid API URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No peer answers at the URL.
    #[error(
        "cannot reach a shoal peer at {url} ({reason}); is it running? (set --api or SHOAL_API)"
    )]
    Unreachable {
        /// The API URL.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// The peer refused the request; the message is the peer's.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The peer's explanation.
        message: String,
    },
    /// The exchange broke off or the answer made no sense.
    #[error("{0}")]
    Transfer(String),
}

impl ClientError {
    /// Whether the peer said the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Refused { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// Whether the peer said the file changed since it was looked at.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, ClientError::Refused { status, .. } if *status == StatusCode::PRECONDITION_FAILED)
    }
}

/// A connection to one peer's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
}

impl Client {
    /// A client for the API at `api` (for example `http://127.0.0.1:7070`).
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] if `api` is not an http URL.
    pub fn new(api: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: api.to_owned(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(api).map_err(|e| bad(&e.to_string()))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(bad("only http:// and https:// URLs are supported"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Client { base, http })
    }

    /// The same client, sending `token` (if any) as `Authorization: Bearer`
    /// with every request, and trusting the certificates in `ca_pem` (PEM,
    /// if any) for `https://` besides none other: a peer's certificate is
    /// usually its owner's own, which no public authority signed.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] if the token cannot travel in a header or
    /// `ca_pem` holds no usable certificate.
    pub fn with_credentials(
        mut self,
        token: Option<&str>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: self.base.to_string(),
            reason: reason.to_owned(),
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(token) = token {
            let mut value = header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| bad("the token holds characters a header cannot carry"))?;
            value.set_sensitive(true);
            let mut headers = header::HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| bad(&format!("the CA file holds no usable certificate: {e}")))?;
            if certificates.is_empty() {
                return Err(bad("the CA file holds no PEM certificate"));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        self.http = builder.build().map_err(|e| bad(&e.to_string()))?;
        Ok(self)
    }

    /// Whether the API this client talks to is on this machine (a
    /// loopback address or `localhost`).
    pub fn is_local(&self) -> bool {
        self.base.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    }

    /// The API URL this client talks to.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn request(&self, method: Method, route: &str) -> RequestBuilder {
        let url = self
            .base
            .join(route)
            .expect("routes are fixed relative paths");
        self.http.request(method, url)
    }

    fn file_request(&self, method: Method, route: &str, name: &FileName) -> RequestBuilder {
        self.request(method, route)
            .query(&[("name", name.as_str())])
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("the peer answered {status}"));
        Err(ClientError::Refused { status, message })
    }

    fn transport_error(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            // The innermost cause is the one that says why ("Connection refused").
            let mut innermost: &dyn std::error::Error = &e;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            let reason = innermost.to_string();
            ClientError::Unreachable {
                url: self.base.to_string(),
                reason,
            }
        } else {
            ClientError::Transfer(format!("request to {} failed: {}", self.base, chain(&e)))
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let unexpected = |what: String| {
            ClientError::Transfer(format!("unexpected answer from the peer: {what}"))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JSON_BYTES as u64)
        {
            return Err(unexpected(format!(
                "more than {MAX_JSON_BYTES} bytes of JSON"
            )));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| unexpected(chain(&e)))?;
            if body.len() + piece.len() > MAX_JSON_BYTES {
                return Err(unexpected(format!(
                    "more than {MAX_JSON_BYTES} bytes of JSON"
                )));
            }
            body.extend_from_slice(&piece);
        }
        serde_json::from_slice(&body).map_err(|e| unexpected(e.to_string()))
    }

    /// Uploads `body` as `name`, recording `attributes` with it. With
    /// `expected`, the peer checks the content against the BLAKE3 computed
    /// here and stores nothing on a mismatch.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn put(
        &self,
        name: &FileName,
        body: reqwest::Body,
        expected: Option<Blake3Hash>,
        attributes: &FileAttributes,
    ) -> Result<PutResponse, ClientError> {
        let mut request = self
            .file_request(Method::PUT, "v1/file", name)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some(expected) = expected {
            request = request.header(CONTENT_BLAKE3, expected.to_hex());
        }
        if let Some(mode) = attributes.mode {
            request = request.header(FILE_MODE, format_mode(mode));
        }
        if let Some(mtime) = attributes.mtime {
            request = request.header(FILE_MTIME, mtime.to_string());
        }
        self.json(request).await
    }

    /// Records `attributes` as `name`'s mode and time, provided its content
    /// is still `blake3`; the content is not sent again.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with 412 if the file changed; see the type.
    pub async fn set_attributes(
        &self,
        name: &FileName,
        blake3: &str,
        attributes: &FileAttributes,
    ) -> Result<PutResponse, ClientError> {
        let mut request = self
            .file_request(Method::PATCH, "v1/file", name)
            .header(header::IF_MATCH, format!("\"{blake3}\""));
        if let Some(mode) = attributes.mode {
            request = request.header(FILE_MODE, format_mode(mode));
        }
        if let Some(mtime) = attributes.mtime {
            request = request.header(FILE_MTIME, mtime.to_string());
        }
        self.json(request).await
    }

    /// The manifest of `name` with each chunk's replicas.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn stat(&self, name: &FileName) -> Result<StatResponse, ClientError> {
        self.json(self.file_request(Method::GET, "v1/manifest", name))
            .await
    }

    /// Starts downloading `name`, provided its content is still `blake3`.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with 412 if the file changed; see the type.
    pub async fn download(&self, name: &FileName, blake3: &str) -> Result<Response, ClientError> {
        let request = self
            .file_request(Method::GET, "v1/file", name)
            .header(header::IF_MATCH, format!("\"{blake3}\""));
        self.send(request).await
    }

    /// Starts downloading `name` from byte `offset` on (the whole file for
    /// 0), provided its content is still `blake3`.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with 412 if the file changed;
    /// [`ClientError::Transfer`] if the peer ignored the range; see the
    /// type.
    pub async fn download_from(
        &self,
        name: &FileName,
        blake3: &str,
        offset: u64,
    ) -> Result<Response, ClientError> {
        if offset == 0 {
            return self.download(name, blake3).await;
        }
        let request = self
            .file_request(Method::GET, "v1/file", name)
            .header(header::IF_MATCH, format!("\"{blake3}\""))
            .header(header::RANGE, format!("bytes={offset}-"));
        let response = self.send(request).await?;
        if response.status() != StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::Transfer(format!(
                "the peer answered a request for bytes {offset}- with {} instead of 206",
                response.status()
            )));
        }
        Ok(response)
    }

    /// Deletes `name`.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn delete(&self, name: &FileName) -> Result<(), ClientError> {
        self.send(self.file_request(Method::DELETE, "v1/file", name))
            .await?;
        Ok(())
    }

    /// Creates an S3 access key called `name`.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn create_key(&self, name: &str) -> Result<NewKey, ClientError> {
        let body = CreateKey {
            name: name.to_owned(),
        };
        self.json(self.request(Method::POST, "v1/s3/keys").json(&body))
            .await
    }

    /// Adds an S3 access key made elsewhere.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn import_key(&self, key: &ImportKey) -> Result<NewKey, ClientError> {
        self.json(self.request(Method::POST, "v1/s3/keys/import").json(key))
            .await
    }

    /// Every S3 access key (never a secret).
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(self.request(Method::GET, "v1/s3/keys")).await
    }

    /// Removes the S3 access key `id` everywhere.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn remove_key(&self, id: &str) -> Result<(), ClientError> {
        let encoded = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
        self.send(self.request(Method::DELETE, &format!("v1/s3/keys/{encoded}")))
            .await?;
        Ok(())
    }

    /// Creates an access token.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn create_token(&self, body: &CreateToken) -> Result<NewToken, ClientError> {
        self.json(self.request(Method::POST, "v1/tokens").json(body))
            .await
    }

    /// Every access token (never its text).
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        self.json(self.request(Method::GET, "v1/tokens")).await
    }

    /// Removes the access token called `name` everywhere.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn remove_token(&self, name: &str) -> Result<(), ClientError> {
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        self.send(self.request(Method::DELETE, &format!("v1/tokens/{encoded}")))
            .await?;
        Ok(())
    }

    /// One page of the files whose names start with `prefix`.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListResponse, ClientError> {
        let mut query = vec![("prefix", prefix.to_owned()), ("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        self.json(self.request(Method::GET, "v1/files").query(&query))
            .await
    }

    /// The peer's status.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.json(self.request(Method::GET, "v1/status")).await
    }

    /// Has the peer hand everything over and leave the swarm for good.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn leave(&self) -> Result<HandOver, ClientError> {
        self.json(self.request(Method::POST, "v1/leave")).await
    }

    /// The swarm's overview: the verdict on its data's safety and figures.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn overview(&self) -> Result<OverviewResponse, ClientError> {
        self.json(self.request(Method::GET, "v1/overview")).await
    }

    /// The invite that lets another peer join this one's swarm.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn invite(&self) -> Result<InviteResponse, ClientError> {
        self.json(self.request(Method::GET, "v1/invite")).await
    }

    /// Has the peer scrub its store now, and returns what it found.
    ///
    /// # Errors
    /// [`ClientError`] as described on the type.
    pub async fn scrub(&self) -> Result<ScrubReport, ClientError> {
        self.json(self.request(Method::POST, "v1/scrub")).await
    }
}

/// An error with its sources, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_names_survive_in_the_query_form() {
        let client = Client::new("http://127.0.0.1:7070").unwrap();
        for raw in ["..", ".", "a/../b", "100% sure?&x=#"] {
            let name = FileName::new(raw).unwrap();
            let request = client
                .file_request(Method::GET, "v1/file", &name)
                .build()
                .unwrap();
            let url = request.url();
            assert_eq!(url.path(), "/v1/file");
            let (_, value) = url.query_pairs().find(|(k, _)| k == "name").unwrap();
            assert_eq!(value, raw);
        }
    }

    #[test]
    fn urls_are_checked_and_a_path_prefix_is_kept() {
        assert!(Client::new("not a url").is_err());
        assert!(Client::new("ftp://example.org").is_err());
        assert!(Client::new("https://example.org").is_ok());
        assert!(Client::new("https://127.0.0.1:7070").unwrap().is_local());
        assert!(Client::new("http://[::1]:7070").unwrap().is_local());
        assert!(Client::new("http://localhost:7070").unwrap().is_local());
        assert!(!Client::new("http://192.168.1.2:7070").unwrap().is_local());
        let client = Client::new("http://127.0.0.1:1/prefix").unwrap();
        let request = client.request(Method::GET, "v1/status").build().unwrap();
        assert_eq!(request.url().path(), "/prefix/v1/status");
    }
}
