//! Strict reading of query parameters.
//!
//! Form decoding as most libraries do it replaces invalid UTF-8 with U+FFFD,
//! which would let `?name=%ff` and `?name=%fe` name the same file. Here a
//! parameter that does not decode to valid UTF-8 is an error.

use axum::http::Uri;
use percent_encoding::percent_decode_str;

use super::error::ApiError;

/// The first value of query parameter `key` in `uri`, decoded (`+` is a
/// space, `%XX` a byte), or `None` if absent.
///
/// # Errors
/// [`ApiError::BadRequest`] if the key or value is not valid UTF-8 once
/// decoded.
pub fn param(uri: &Uri, key: &str) -> Result<Option<String>, ApiError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(raw_key)? == key {
            return Ok(Some(decode(raw_value)?));
        }
    }
    Ok(None)
}

fn decode(raw: &str) -> Result<String, ApiError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest(format!("query parameter {raw:?} is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn decodes_strictly() {
        assert_eq!(
            param(&uri("/x?name=a%2Fb+c"), "name").unwrap().as_deref(),
            Some("a/b c")
        );
        assert_eq!(
            param(&uri("/x?other=1&name=%E6%97%A5"), "name")
                .unwrap()
                .as_deref(),
            Some("日")
        );
        assert_eq!(
            param(&uri("/x?name="), "name").unwrap().as_deref(),
            Some("")
        );
        assert_eq!(param(&uri("/x?n=1"), "name").unwrap(), None);
        assert_eq!(param(&uri("/x"), "name").unwrap(), None);
        assert!(param(&uri("/x?name=%ff"), "name").is_err());
        assert!(param(&uri("/x?name=ok%ffok"), "name").is_err());
    }
}
