//! Every decoder that reads bytes from outside, as a plain `fn(&[u8])`.
//!
//! The fuzz targets in `fuzz/` call these functions; so do
//! `tests/fuzz_corpora.rs`, which replays every committed corpus input
//! under `cargo test`, and a proptest of random byte strings per decoder,
//! so CI keeps every input that ever failed fixed without a fuzzer. Each
//! function panics only when a property breaks: a round trip that does not
//! come back, a value that passed validation but breaks its own limits.
//! A decoder refusing the bytes is the expected answer to garbage.

use crate::chunk::{FileName, FileRecord, MAX_NAME_LEN, Mtime, parse_mode};
use crate::codec;
use crate::gossip::{self, Rumor};
use crate::invite::Invite;
use crate::net::WireMessage;
use crate::protocol::{DataRequest, DataResponse, MAX_MESSAGE_BYTES};
use crate::tokens::TokenText;

/// A decoder's name (its fuzz target's) and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// The targets by name, for the replay test and the fuzz crate.
pub const TARGETS: [Target; 9] = [
    ("data_request", data_request),
    ("data_response", data_response),
    ("membership_request", membership_request),
    ("membership_response", membership_response),
    ("rumor", rumor),
    ("file_record", file_record),
    ("invite", invite),
    ("token", token),
    ("http_inputs", http_inputs),
];

/// Decodes `bytes` as a framed message and, if that works, checks that
/// encoding it again decodes to the same encoding.
fn wire_round_trip<M: WireMessage>(bytes: &[u8]) {
    let Ok(message) = M::from_bytes(bytes) else {
        return;
    };
    let encoded = message.to_bytes().expect("a decoded message encodes again");
    assert!(encoded.len() <= M::MAX_BYTES, "re-encoded past the limit");
    let again = M::from_bytes(&encoded).expect("a re-encoded message decodes");
    assert_eq!(
        again.to_bytes().expect("encodes"),
        encoded,
        "encoding is stable"
    );
}

/// A data-protocol request from a peer (`/shoal/data/*`).
pub fn data_request(bytes: &[u8]) {
    wire_round_trip::<DataRequest>(bytes);
}

/// A data-protocol response from a peer.
pub fn data_response(bytes: &[u8]) {
    wire_round_trip::<DataResponse>(bytes);
}

/// A membership request from a peer (pings, joins).
pub fn membership_request(bytes: &[u8]) {
    wire_round_trip::<gossip::Request>(bytes);
}

/// A membership response from a peer.
pub fn membership_response(bytes: &[u8]) {
    wire_round_trip::<gossip::Response>(bytes);
}

/// A rumour received over gossipsub.
pub fn rumor(bytes: &[u8]) {
    let Ok(rumor) = Rumor::decode(bytes) else {
        return;
    };
    let encoded = rumor.encode().expect("a decoded rumour encodes");
    let again = Rumor::decode(&encoded).expect("a re-encoded rumour decodes");
    assert_eq!(again.encode().expect("encodes"), encoded);
}

/// A file record (manifest or tombstone) as peers send them, under the
/// data protocol's limit; a manifest that validates must describe chunks
/// that add up.
pub fn file_record(bytes: &[u8]) {
    let Ok(record) = codec::decode_limited::<FileRecord, MAX_MESSAGE_BYTES>(bytes) else {
        return;
    };
    if let FileRecord::Live(manifest) = &record
        && manifest.validate().is_ok()
    {
        let total: u64 = manifest.chunks.iter().map(|c| u64::from(c.size)).sum();
        assert_eq!(total, manifest.size);
        if manifest.size > 0 {
            let (index, within) = manifest
                .locate(manifest.size - 1)
                .expect("the last byte of a valid manifest is in a chunk");
            assert!(within < manifest.chunks[index].size);
        }
    }
    let encoded = codec::encode(&record).expect("a decoded record encodes");
    let again: FileRecord = codec::decode(&encoded).expect("a re-encoded record decodes");
    assert_eq!(again, record);
}

/// An invite line, as pasted by a user.
pub fn invite(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(invite) = Invite::parse(text) {
        let again = Invite::parse(&invite.to_string()).expect("a printed invite parses");
        assert!(again == invite, "an invite round-trips");
    }
}

/// An access token, as sent in `Authorization` or the sign-in form.
pub fn token(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(token) = TokenText::parse(text) {
        assert_eq!(TokenText::parse(&token.reveal()), Some(token));
    }
}

/// What the HTTP API and S3 take from a request's text: a file name, a
/// `Range` header, a query string, a mode and a time, an S3 bucket and
/// key. The first byte picks the file size the range is resolved against.
pub fn http_inputs(bytes: &[u8]) {
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(name) = FileName::new(text) {
        assert!(name.as_str() == text && text.len() <= MAX_NAME_LEN);
    }
    let size = u64::from(first) << (first % 40);
    if let crate::api::RangeRequest::Partial { start, end } =
        crate::api::resolve_range(Some(text), size)
    {
        assert!(start <= end && end < size, "{start}-{end} of {size}");
    }
    if let Ok(uri) = format!("/v1/file?{text}").parse::<axum::http::Uri>() {
        let _ = crate::api::query_param(&uri, "name");
    }
    if let Ok(time) = Mtime::parse(text) {
        assert_eq!(Mtime::parse(&time.to_string()), Ok(time));
    }
    let _ = parse_mode(text);
    let (bucket, key) = text.split_once('/').unwrap_or((text, ""));
    let _ = crate::s3::check_bucket(bucket);
    let _ = crate::s3::object_file(bucket, key);
}
