//! Data-path tests of one peer alone: every key's owners are this peer,
//! so these cover the coordinator's own logic over a real store; the
//! quorum rules across peers are in `quorum_tests.rs`, and
//! tests/replication.rs runs them on real processes.

use bytes::Bytes;
use futures::Stream;

use super::testing::TestSwarm;
use super::*;
use crate::chunk::{Blake3Hash, FileName, Manifest};

struct Fixture {
    files: Files,
    store: Store,
    _swarm: TestSwarm,
}

fn fixture(chunk_size: u32) -> Fixture {
    let swarm = TestSwarm::new(1, chunk_size);
    Fixture {
        files: swarm.files(0).clone(),
        store: swarm.swarm.store(&swarm.ids[0]).clone(),
        _swarm: swarm,
    }
}

fn name(s: &str) -> FileName {
    FileName::new(s).unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// The body as a stream of pieces of awkward sizes.
fn body(content: &[u8]) -> impl Stream<Item = Result<Bytes, String>> + Send + use<> {
    let pieces: Vec<Result<Bytes, String>> = content
        .chunks(1000)
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    futures::stream::iter(pieces)
}

async fn read_all(files: &Files, m: &Manifest, start: u64, end: u64) -> Vec<u8> {
    let sources = files.locate(m, start, end).await.unwrap();
    let parts: Vec<Bytes> = files
        .read_range(m.clone(), sources, start, end)
        .try_collect()
        .await
        .unwrap();
    parts.concat()
}

use futures::TryStreamExt;

#[tokio::test]
async fn files_round_trip_at_chunk_boundaries() {
    let f = fixture(4096);
    for len in [0, 1, 4095, 4096, 4097, 3 * 4096 + 17] {
        let content = data(len);
        let m = f.files.put(name("f"), body(&content), None).await.unwrap();
        assert_eq!(m.size, len as u64);
        assert_eq!(m.blake3, Blake3Hash::of(&content));
        assert_eq!(m.chunks.len(), len.div_ceil(4096));
        m.validate().unwrap();
        let read = f.files.manifest(&name("f")).await.unwrap();
        assert_eq!(read, m);
        if len > 0 {
            assert_eq!(read_all(&f.files, &m, 0, len as u64 - 1).await, content);
        }
    }
}

#[tokio::test]
async fn ranges_cross_chunk_boundaries() {
    let f = fixture(4096);
    let content = data(20_000);
    let m = f.files.put(name("r"), body(&content), None).await.unwrap();
    for (start, end) in [
        (0, 0),
        (4095, 4096),
        (100, 12_000),
        (19_999, 19_999),
        (8192, 12_287),
    ] {
        assert_eq!(
            read_all(&f.files, &m, start, end).await,
            &content[start as usize..=end as usize],
            "range {start}-{end}"
        );
    }
}

#[tokio::test]
async fn failed_uploads_leave_the_previous_version() {
    let f = fixture(4096);
    let old = f
        .files
        .put(name("keep"), body(b"old content"), None)
        .await
        .unwrap();

    let cut: Vec<Result<Bytes, String>> = vec![
        Ok(Bytes::from(data(10_000))),
        Err("connection reset".into()),
    ];
    let err = f
        .files
        .put(name("keep"), futures::stream::iter(cut), None)
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::Body { .. }), "{err}");

    let wrong = Blake3Hash::of(b"something else");
    let err = f
        .files
        .put(name("keep"), body(&data(9000)), Some(wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::ContentMismatch { .. }), "{err}");

    assert_eq!(f.files.manifest(&name("keep")).await.unwrap(), old);
    let right = Blake3Hash::of(b"new");
    f.files
        .put(name("keep"), body(b"new"), Some(right))
        .await
        .unwrap();
    assert_eq!(f.files.manifest(&name("keep")).await.unwrap().blake3, right);
}

#[tokio::test]
async fn deleted_files_are_gone_and_overwrites_win() {
    let f = fixture(4096);
    f.files.put(name("d"), body(b"one"), None).await.unwrap();
    let second = f.files.put(name("d"), body(b"two"), None).await.unwrap();
    assert_eq!(f.files.manifest(&name("d")).await.unwrap(), second);
    f.files.delete(&name("d")).await.unwrap();
    assert!(matches!(
        f.files.manifest(&name("d")).await,
        Err(FilesError::NotFound(_))
    ));
    assert!(matches!(
        f.files.delete(&name("d")).await,
        Err(FilesError::NotFound(_))
    ));
    assert!(
        f.files
            .list(String::new(), None, 10)
            .await
            .unwrap()
            .files
            .is_empty()
    );
    let again = f.files.put(name("d"), body(b"three"), None).await.unwrap();
    assert!(again.version > second.version);
}

#[tokio::test]
async fn stat_reports_local_replicas_and_missing_chunks_are_named() {
    let f = fixture(4096);
    let m = f
        .files
        .put(name("s"), body(&data(9000)), None)
        .await
        .unwrap();
    let (_, replicas) = f.files.stat(&name("s")).await.unwrap();
    assert_eq!(replicas.chunks.len(), 3);
    assert!(
        replicas
            .chunks
            .iter()
            .all(|p| p.replicas == vec![f.files.local_peer()])
    );
    assert_eq!(replicas.manifest, vec![f.files.local_peer()]);
    f.files.locate(&m, 0, m.size - 1).await.unwrap();

    // Drop the file's chunks behind its back: the manifest now names chunks
    // no one holds.
    f.store.release(m.reference_id()).await.unwrap();
    f.store
        .collect_garbage(crate::store::GcPolicy {
            grace_ms: 0,
            tombstone_ttl_ms: u64::MAX,
        })
        .await
        .unwrap();
    let err = f.files.locate(&m, 0, m.size - 1).await.unwrap_err();
    assert!(
        matches!(err, FilesError::MissingChunk { index: 0, .. }),
        "{err}"
    );
}
