//! HTTP `Range` requests, resolved against a file's size (RFC 9110 §14).
//!
//! One byte range is served as `206 Partial Content`. A header that is not a
//! valid byte-range set, or that asks for several ranges, is ignored and the
//! whole file is served, which the RFC allows and which every client
//! handles; a valid range wholly outside the file is `416`.

use http_range_header::{EndPosition, StartPosition};

/// What to send for a request's `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file.
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range cannot be served.
    Unsatisfiable,
}

/// Resolves `header` (the `Range` value, if any) for a file of `size` bytes.
pub fn resolve(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let parsed = match http_range_header::parse_range_header(header) {
        Ok(parsed) => parsed,
        // `bytes=-0` asks for the last zero bytes: a valid request that no
        // representation can satisfy.
        Err(http_range_header::RangeUnsatisfiableError::ZeroSuffix) => {
            return RangeRequest::Unsatisfiable;
        }
        Err(_) => return RangeRequest::Full,
    };
    let [range] = parsed.ranges.as_slice() else {
        return RangeRequest::Full;
    };
    let (start, end) = match (range.start, range.end) {
        (StartPosition::Index(s), EndPosition::Index(e)) if e < s => return RangeRequest::Full,
        (StartPosition::Index(s), EndPosition::Index(e)) => (s, e),
        (StartPosition::Index(s), EndPosition::LastByte) => (s, u64::MAX),
        (StartPosition::FromLast(n), _) if n == 0 || size == 0 => {
            return RangeRequest::Unsatisfiable;
        }
        (StartPosition::FromLast(n), _) => (size.saturating_sub(n), u64::MAX),
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(size - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn resolves_the_forms_of_a_single_range() {
        assert_eq!(resolve(None, 100), Full);
        assert_eq!(
            resolve(Some("bytes=0-9"), 100),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            resolve(Some("bytes=90-"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=50-500"), 100),
            Partial { start: 50, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=-10"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=-1000"), 100),
            Partial { start: 0, end: 99 }
        );
    }

    #[test]
    fn out_of_file_is_unsatisfiable_and_nonsense_is_ignored() {
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=9-3"), 100), Full);
        assert_eq!(resolve(Some("items=0-3"), 100), Full);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(resolve(Some("garbage"), 100), Full);
    }
}
