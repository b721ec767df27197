//! Listing a bucket: S3's prefix, delimiter and pagination over the
//! swarm-wide listing of files.
//!
//! Keys come in byte order from `Files::list`. With a delimiter, keys that
//! share a prefix up to the delimiter fold into one common prefix, and the
//! listing skips past that prefix rather than reading every key under it.
//! The position in a listing is a key cursor (exclusive); continuation
//! tokens are that cursor, base64-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::{S3Result, s3_error};

use s3s::dto::{
    CommonPrefix, ETag, EncodingType, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input,
    ListObjectsV2Output, Object, ObjectStorageClass,
};

use super::errors::s3_error;
use super::names::{key_of, object_prefix};
use super::reads::timestamp;
use crate::files::{FileSummary, Files};
use crate::protocol::MAX_LIST_PAGE;

/// The largest character: a cursor of `prefix` followed by it sorts after
/// every key that starts with `prefix`.
const AFTER_ALL: char = '\u{10FFFF}';

/// The most keys one answer lists, as S3.
pub const MAX_KEYS: usize = 1000;

/// One entry of a listing.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An object.
    Object(FileSummary),
    /// Keys folded at the delimiter.
    Prefix(String),
}

/// A page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    /// Objects and common prefixes, in key order.
    pub entries: Vec<Entry>,
    /// Whether more follow.
    pub truncated: bool,
    /// The cursor the next page starts after, when truncated.
    pub next: Option<String>,
}

/// Lists up to `max_keys` entries of `bucket` under `prefix`, after the key
/// cursor `after`.
///
/// # Errors
/// `ServiceUnavailable` if too few peers answer.
pub async fn page(
    files: &Files,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<String>,
    max_keys: usize,
) -> S3Result<Page> {
    let mut page = Page::default();
    if max_keys == 0 {
        return Ok(page);
    }
    let mut folder = Folder::new(prefix, delimiter);
    let mut cursor = after;
    loop {
        let want = (max_keys - page.entries.len() + 1).clamp(1, MAX_LIST_PAGE);
        let listed = files
            .list(
                object_prefix(bucket, prefix),
                cursor.as_ref().map(|c| object_prefix(bucket, c)),
                want,
            )
            .await
            .map_err(s3_error)?;
        for summary in listed.files {
            let key = key_of(bucket, summary.name.as_str()).to_owned();
            let Some((entry, next)) = folder.fold(key, summary) else {
                continue;
            };
            if page.entries.len() == max_keys {
                page.truncated = true;
                page.next = cursor;
                return Ok(page);
            }
            page.entries.push(entry);
            cursor = Some(next);
        }
        if !listed.truncated {
            return Ok(page);
        }
    }
}

/// Folds keys into common prefixes.
struct Folder<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// The common prefix last returned, whose keys are skipped.
    last: Option<String>,
}

impl<'a> Folder<'a> {
    fn new(prefix: &'a str, delimiter: Option<&'a str>) -> Self {
        Folder {
            prefix,
            delimiter: delimiter.filter(|d| !d.is_empty()),
            last: None,
        }
    }

    /// The entry `key` makes and the cursor after it, or `None` if it
    /// falls in the common prefix already returned.
    fn fold(&mut self, key: String, summary: FileSummary) -> Option<(Entry, String)> {
        if self
            .last
            .as_ref()
            .is_some_and(|last| key.starts_with(last.as_str()))
        {
            return None;
        }
        let rest = key.get(self.prefix.len()..).unwrap_or_default();
        match self
            .delimiter
            .and_then(|d| rest.find(d).map(|at| at + d.len()))
        {
            Some(end) => {
                let common = key[..self.prefix.len() + end].to_owned();
                self.last = Some(common.clone());
                let next = format!("{common}{AFTER_ALL}");
                Some((Entry::Prefix(common), next))
            }
            None => Some((Entry::Object(summary), key)),
        }
    }
}

/// The continuation token for a cursor.
pub fn token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor)
}

/// The cursor a continuation token carries.
///
/// # Errors
/// `InvalidArgument` for a token this endpoint did not give.
pub fn cursor(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token is not valid"))
}

/// The cursor a ListObjects (v1) marker means: after the marker, and after
/// every key under it if it is a common prefix the last page returned.
pub fn marker_cursor(marker: &str, prefix: &str, delimiter: Option<&str>) -> String {
    match delimiter {
        Some(d) if !d.is_empty() && marker.len() > prefix.len() && marker.ends_with(d) => {
            format!("{marker}{AFTER_ALL}")
        }
        _ => marker.to_owned(),
    }
}

/// Characters `encoding-type=url` leaves as they are.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `text` as `encoding-type=url` answers give it.
pub fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, KEEP).to_string()
}

/// The page size a request asks for, within S3's limit.
fn max_keys(asked: Option<i32>) -> usize {
    asked.map_or(MAX_KEYS, |n| {
        usize::try_from(n.max(0)).unwrap_or(0).min(MAX_KEYS)
    })
}

/// The objects and common prefixes of a listing page, as S3 lists them.
fn listed(entries: Vec<Entry>, bucket: &str, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let encode = |text: &str| {
        if url {
            url_encode(text)
        } else {
            text.to_owned()
        }
    };
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for entry in entries {
        match entry {
            Entry::Object(summary) => objects.push(Object {
                key: Some(encode(key_of(bucket, summary.name.as_str()))),
                size: Some(i64::try_from(summary.size).unwrap_or(i64::MAX)),
                e_tag: Some(ETag::Strong(summary.etag.clone().unwrap_or_default())),
                last_modified: Some(timestamp(summary.created_ms)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            }),
            Entry::Prefix(prefix) => prefixes.push(CommonPrefix {
                prefix: Some(encode(&prefix)),
            }),
        }
    }
    (objects, prefixes)
}

/// Whether a listing's answer is to be URL-encoded.
fn wants_url(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// ListObjectsV2 (the bucket is known to exist).
///
/// # Errors
/// `InvalidArgument` for a foreign continuation token, or the swarm's.
pub async fn list_v2(files: &Files, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
    let prefix = input.prefix.clone().unwrap_or_default();
    let token_cursor = input
        .continuation_token
        .as_deref()
        .map(cursor)
        .transpose()?;
    let after = token_cursor.max(input.start_after.clone());
    let max = max_keys(input.max_keys);
    let page = page(
        files,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        after,
        max,
    )
    .await?;
    let url = wants_url(input.encoding_type.as_ref());
    let count = page.entries.len();
    let (contents, common_prefixes) = listed(page.entries, &input.bucket, url);
    let encode = |text: String| if url { url_encode(&text) } else { text };
    Ok(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(encode(prefix)),
        delimiter: input.delimiter.map(encode),
        start_after: input.start_after.map(encode),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
        continuation_token: input.continuation_token,
        is_truncated: Some(page.truncated),
        next_continuation_token: page.next.as_deref().map(token),
        contents: Some(contents),
        common_prefixes: Some(common_prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

/// ListObjects, version 1 (the bucket is known to exist).
///
/// # Errors
/// The swarm's.
pub async fn list_v1(files: &Files, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = input
        .marker
        .as_deref()
        .map(|m| marker_cursor(m, &prefix, input.delimiter.as_deref()));
    let max = max_keys(input.max_keys);
    let page = page(
        files,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        after,
        max,
    )
    .await?;
    let url = wants_url(input.encoding_type.as_ref());
    // S3 gives a next marker only with a delimiter; clients use the
    // last key otherwise.
    let next_marker = match page.entries.last() {
        Some(Entry::Prefix(prefix)) if page.truncated => Some(prefix.clone()),
        Some(Entry::Object(summary)) if page.truncated && input.delimiter.is_some() => {
            Some(key_of(&input.bucket, summary.name.as_str()).to_owned())
        }
        _ => None,
    };
    let (contents, common_prefixes) = listed(page.entries, &input.bucket, url);
    let encode = |text: String| if url { url_encode(&text) } else { text };
    Ok(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(prefix)),
        delimiter: input.delimiter.map(encode),
        marker: input.marker.map(encode),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        next_marker: next_marker.map(encode),
        contents: Some(contents),
        common_prefixes: Some(common_prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::FileName;

    fn summary(name: &str) -> FileSummary {
        FileSummary {
            name: FileName::new(name).unwrap(),
            size: 1,
            blake3: crate::chunk::Blake3Hash::of(b""),
            chunks: 1,
            created_ms: 0,
            etag: None,
            attributes: crate::chunk::FileAttributes::default(),
        }
    }

    fn fold_all(prefix: &str, delimiter: Option<&str>, keys: &[&str]) -> Vec<String> {
        let mut folder = Folder::new(prefix, delimiter);
        keys.iter()
            .filter_map(|k| folder.fold((*k).to_owned(), summary(&format!("b/{k}"))))
            .map(|(entry, _)| match entry {
                Entry::Object(s) => s.name.as_str()[2..].to_owned(),
                Entry::Prefix(p) => format!("[{p}]"),
            })
            .collect()
    }

    #[test]
    fn keys_fold_at_the_delimiter_after_the_prefix() {
        let keys = ["a", "dir/x", "dir/y/z", "dir2/q", "e"];
        assert_eq!(
            fold_all("", Some("/"), &keys),
            ["a", "[dir/]", "[dir2/]", "e"]
        );
        assert_eq!(
            fold_all("dir/", Some("/"), &["dir/x", "dir/y/z", "dir/y/zz"]),
            ["dir/x", "[dir/y/]"]
        );
        assert_eq!(fold_all("", None, &keys), keys);
        assert_eq!(
            fold_all("", Some("ir"), &["dir/x", "dir2"]),
            ["[dir]"],
            "delimiters may be longer than one character"
        );
    }

    #[test]
    fn the_cursor_after_a_common_prefix_skips_all_its_keys() {
        let mut folder = Folder::new("", Some("/"));
        let (_, next) = folder.fold("dir/x".into(), summary("b/dir/x")).unwrap();
        assert!(next.as_str() > "dir/\u{10FFFE}zzzz");
        assert!(next.as_str() < "dir0");
        assert_eq!(marker_cursor("dir/", "", Some("/")), next);
        assert_eq!(marker_cursor("key", "", Some("/")), "key");
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let c = "photos/2024/\u{10FFFF}";
        assert_eq!(cursor(&token(c)).unwrap(), c);
        assert!(cursor("not a token!").is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes_and_escapes_the_rest() {
        assert_eq!(url_encode("a b/c+d"), "a%20b/c%2Bd");
        assert_eq!(url_encode("é"), "%C3%A9");
    }
}
