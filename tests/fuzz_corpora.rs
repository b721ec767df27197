//! Every input the fuzzers ever kept, replayed: each file under
//! `fuzz/corpus/<target>/` goes through `shoal::fuzzing::<target>`, so an
//! input that once crashed a decoder (and was added to the corpus when the
//! crash was fixed) keeps it fixed without a fuzzer in CI. A proptest of
//! random byte strings runs through every target too.
//!
//! `cargo test --test fuzz_corpora -- --ignored` (re)writes the seed inputs
//! (`seed-*`): one well-formed value per decoder, for the fuzzers to start
//! from.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use shoal::chunk::{
    Blake3Hash, ChunkRef, Extensions, FileName, FileRecord, Hlc, Manifest, Md5Hash, Version,
};
use shoal::fuzzing::TARGETS;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

#[test]
fn every_kept_input_still_decodes_without_a_panic() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        let dir = corpus(target);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for {target} at {}: {e}", dir.display()));
        let mut seen = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&input));
            assert!(outcome.is_ok(), "{target} panics on {}", path.display());
            seen += 1;
        }
        assert!(seen > 0, "the corpus of {target} is empty");
        replayed += seen;
    }
    assert!(replayed >= TARGETS.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_make_no_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for (_, run) in TARGETS {
            run(&bytes);
        }
    }
}

/// One well-formed input per target.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let manifest = Manifest {
        name: FileName::new("photos/2026/beach.jpg").unwrap(),
        size: 5,
        blake3: Blake3Hash::of(b"hello"),
        chunk_size: 1024 * 1024,
        chunks: vec![ChunkRef::compute(b"hello")],
        created_ms: 1_764_000_000_000,
        version: Version {
            hlc: Hlc(1 << 20),
            writer: "12D3KooWseed".into(),
        },
        extensions: Extensions::none(),
    };
    let record = FileRecord::Live(manifest);
    let store = shoal::protocol::DataRequest::Store {
        hash: Blake3Hash::of(b"hello"),
        md5: Md5Hash::of(b"hello"),
        data: Bytes::from_static(b"hello"),
        references: Vec::new(),
        hint_for: None,
    };
    let put = shoal::protocol::DataRequest::PutRecord {
        record: record.clone(),
    };
    let invite = shoal::invite::Invite::new(None, ["/ip4/192.168.1.10/tcp/7071".parse().unwrap()]);
    vec![
        ("data_request", shoal::codec::encode(&store).unwrap()),
        ("data_request", shoal::codec::encode(&put).unwrap()),
        ("file_record", shoal::codec::encode(&record).unwrap()),
        ("invite", invite.to_string().into_bytes()),
        (
            "token",
            shoal::tokens::TokenText::generate()
                .unwrap()
                .reveal()
                .into_bytes(),
        ),
        ("http_inputs", b"\x20bytes=0-99".to_vec()),
        ("http_inputs", b"\x10name=a%2Fb&after=x".to_vec()),
        ("http_inputs", b"\x00bucket/key/with spaces.txt".to_vec()),
        ("http_inputs", b"\x08-1.250000000".to_vec()),
    ]
}

#[test]
#[ignore = "writes the seed inputs into fuzz/corpus"]
fn write_seeds() {
    for (i, (target, input)) in seeds().into_iter().enumerate() {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{i}")), input).unwrap();
    }
}
