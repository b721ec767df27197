//! The one place where errors become HTTP statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::dto::ErrorBody;
use crate::chunk::InvalidName;
use crate::files::{FailureKind, FilesError};
use crate::heal::HealError;
use crate::s3::KeyError;
use crate::tokens::TokenError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// From the data path.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// From healing (a scrub, a hand-over).
    #[error(transparent)]
    Heal(#[from] HealError),
    /// The name in the path is not a valid file name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// `If-Match` named another version of the file.
    #[error("the file changed: its content is now {current}")]
    PreconditionFailed {
        /// The current content's BLAKE3.
        current: String,
    },
    /// The requested range lies outside the file.
    #[error("range not satisfiable: the file has {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// From S3 access-key management.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// No such route.
    #[error("no such API route")]
    NoRoute,
    /// The peer is shutting down or a part of it has stopped.
    #[error("{0}")]
    Unavailable(String),
    /// A browser sent the request from another site's page, or named a
    /// host this peer does not answer to.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request carries no token, or one that is not (or no longer) a
    /// token of this swarm.
    #[error("{0}")]
    Unauthorized(String),
    /// The request's token does not allow what it asks.
    #[error("{0}")]
    NotAllowed(String),
    /// From access-token management.
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Files(e) => files_status(e),
            ApiError::Heal(HealError::Store(e)) => kind_status(FailureKind::of_store(e)),
            ApiError::Heal(HealError::HandOverIncomplete { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InvalidName(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Keys(e) => keys_status(e),
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden(_) | ApiError::NotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Tokens(e) => tokens_status(e),
        }
    }
}

fn tokens_status(e: &TokenError) -> StatusCode {
    match e {
        TokenError::InvalidName | TokenError::InvalidExpiry => StatusCode::BAD_REQUEST,
        TokenError::Exists(_) => StatusCode::CONFLICT,
        TokenError::NotFound(_) => StatusCode::NOT_FOUND,
        TokenError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        TokenError::Files(e) => files_status(e),
    }
}

fn keys_status(e: &KeyError) -> StatusCode {
    match e {
        KeyError::NoClusterSecret => StatusCode::CONFLICT,
        KeyError::InvalidId(_) | KeyError::InvalidSecret | KeyError::InvalidName => {
            StatusCode::BAD_REQUEST
        }
        KeyError::Exists(_) => StatusCode::CONFLICT,
        KeyError::NotFound(_) => StatusCode::NOT_FOUND,
        KeyError::Unreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
        KeyError::Files(e) => files_status(e),
    }
}

fn files_status(e: &FilesError) -> StatusCode {
    kind_status(e.kind())
}

fn kind_status(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::NotFound => StatusCode::NOT_FOUND,
        FailureKind::BadRequest => StatusCode::BAD_REQUEST,
        FailureKind::ContentMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        FailureKind::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FailureKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if let ApiError::RangeNotSatisfiable { size } = self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"shoal\""),
            );
        }
        response
    }
}
