//! Turning the data path's failures into the S3 errors clients expect.

use s3s::{S3Error, S3ErrorCode, s3_error};

use crate::files::{FailureKind, FilesError};

/// The S3 error for a failure of the data path.
pub fn s3_error(error: FilesError) -> S3Error {
    let message = error.to_string();
    let code = match &error {
        FilesError::NotFound(_) => S3ErrorCode::NoSuchKey,
        // s3s checks the signature of each `aws-chunked` piece as the body
        // streams, and its error type is private: its message names it.
        FilesError::Body { reason, .. } if reason.contains("SignatureMismatch") => {
            S3ErrorCode::SignatureDoesNotMatch
        }
        FilesError::Body { .. } => S3ErrorCode::IncompleteBody,
        FilesError::ContentMismatch { .. } | FilesError::DigestMismatch { .. } => {
            S3ErrorCode::BadDigest
        }
        FilesError::TooLarge { .. } => S3ErrorCode::EntityTooLarge,
        other => match other.kind() {
            FailureKind::Unavailable => S3ErrorCode::ServiceUnavailable,
            FailureKind::DiskFull => {
                let mut full = S3Error::with_message(
                    S3ErrorCode::Custom("InsufficientStorage".into()),
                    message,
                );
                full.set_status_code(hyper::StatusCode::INSUFFICIENT_STORAGE);
                return full;
            }
            _ => {
                tracing::warn!(%error, "an S3 request failed");
                S3ErrorCode::InternalError
            }
        },
    };
    S3Error::with_message(code, message)
}

/// The error for a bucket that does not exist.
pub fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "the bucket does not exist")
}
