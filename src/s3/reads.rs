//! The rules of a read, as pure functions: conditional requests, ranges
//! and part numbers.

use s3s::dto::{ETagCondition, Range, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

/// The conditions a request may set on an object's state.
#[derive(Debug, Default)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<ETagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<ETagCondition>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<Timestamp>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<Timestamp>,
}

/// What a failed condition answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// 304 Not Modified (a GET or HEAD whose copy is current).
    NotModified,
    /// 412 Precondition Failed.
    Precondition,
}

impl Failed {
    /// The error to answer with.
    pub fn error(self) -> S3Error {
        match self {
            Failed::NotModified => S3Error::new(S3ErrorCode::NotModified),
            Failed::Precondition => {
                s3_error!(PreconditionFailed, "a condition of the request failed")
            }
        }
    }
}

impl Conditions {
    /// Checks the conditions against an object with ETag `etag` (no
    /// quotes) last modified at `modified` (seconds since the epoch), in
    /// the order RFC 9110 and S3 give: `If-Match` before
    /// `If-Unmodified-Since`, `If-None-Match` before `If-Modified-Since`.
    ///
    /// # Errors
    /// [`Failed`] says how to answer.
    pub fn check(&self, etag: &str, modified: i64) -> Result<(), Failed> {
        let matches = |condition: &ETagCondition| match condition {
            ETagCondition::Any => true,
            ETagCondition::ETag(tag) => tag.value() == etag,
        };
        match &self.if_match {
            Some(condition) if !matches(condition) => return Err(Failed::Precondition),
            Some(_) => {}
            None => {
                if self
                    .if_unmodified_since
                    .as_ref()
                    .is_some_and(|since| modified > seconds(since))
                {
                    return Err(Failed::Precondition);
                }
            }
        }
        match &self.if_none_match {
            Some(condition) if matches(condition) => return Err(Failed::NotModified),
            Some(_) => {}
            None => {
                if self
                    .if_modified_since
                    .as_ref()
                    .is_some_and(|since| modified <= seconds(since))
                {
                    return Err(Failed::NotModified);
                }
            }
        }
        Ok(())
    }
}

/// Seconds since the epoch of a timestamp.
pub fn seconds(timestamp: &Timestamp) -> i64 {
    let at: time::OffsetDateTime = timestamp.clone().into();
    at.unix_timestamp()
}

/// The timestamp `ms` milliseconds after the epoch.
pub fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// The inclusive byte range `range` asks of an object of `size` bytes.
///
/// # Errors
/// `InvalidRange` if it starts past the end (or the object is empty).
pub fn byte_range(range: &Range, size: u64) -> S3Result<(u64, u64)> {
    let unsatisfiable = || s3_error!(InvalidRange, "the requested range is not satisfiable");
    match *range {
        Range::Int { first, last } => {
            if first >= size {
                return Err(unsatisfiable());
            }
            let last = last.map_or(size - 1, |last| last.min(size - 1));
            if last < first {
                return Err(unsatisfiable());
            }
            Ok((first, last))
        }
        Range::Suffix { length } => {
            if length == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            Ok((size - length.min(size), size - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    fn tag(value: &str) -> Option<ETagCondition> {
        Some(ETagCondition::ETag(ETag::Strong(value.into())))
    }

    #[test]
    fn conditions_follow_rfc_9110_order() {
        let none = Conditions::default();
        assert_eq!(none.check("abc", 100), Ok(()));
        let c = Conditions {
            if_match: tag("abc"),
            ..Default::default()
        };
        assert_eq!(c.check("abc", 100), Ok(()));
        assert_eq!(c.check("xyz", 100), Err(Failed::Precondition));
        let c = Conditions {
            if_none_match: tag("abc"),
            ..Default::default()
        };
        assert_eq!(c.check("abc", 100), Err(Failed::NotModified));
        assert_eq!(c.check("xyz", 100), Ok(()));
        let c = Conditions {
            if_modified_since: Some(timestamp(100_000)),
            ..Default::default()
        };
        assert_eq!(c.check("abc", 100), Err(Failed::NotModified));
        assert_eq!(c.check("abc", 101), Ok(()));
        let c = Conditions {
            if_unmodified_since: Some(timestamp(100_000)),
            ..Default::default()
        };
        assert_eq!(c.check("abc", 100), Ok(()));
        assert_eq!(c.check("abc", 101), Err(Failed::Precondition));
        // If-Match decides alone over If-Unmodified-Since.
        let c = Conditions {
            if_match: tag("abc"),
            if_unmodified_since: Some(timestamp(0)),
            ..Default::default()
        };
        assert_eq!(c.check("abc", 100), Ok(()));
        let any = Conditions {
            if_none_match: Some(ETagCondition::Any),
            ..Default::default()
        };
        assert_eq!(any.check("abc", 1), Err(Failed::NotModified));
    }

    #[test]
    fn ranges_are_clamped_and_checked() {
        let int = |first, last| Range::Int { first, last };
        assert_eq!(byte_range(&int(0, Some(9)), 100).unwrap(), (0, 9));
        assert_eq!(byte_range(&int(90, None), 100).unwrap(), (90, 99));
        assert_eq!(byte_range(&int(90, Some(500)), 100).unwrap(), (90, 99));
        assert!(byte_range(&int(100, None), 100).is_err());
        assert!(byte_range(&int(0, None), 0).is_err());
        let suffix = |length| Range::Suffix { length };
        assert_eq!(byte_range(&suffix(10), 100).unwrap(), (90, 99));
        assert_eq!(byte_range(&suffix(500), 100).unwrap(), (0, 99));
        assert!(byte_range(&suffix(0), 100).is_err());
    }
}
