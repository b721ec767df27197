//! Store tests on a real redb database and real segment files.

use super::*;
use crate::chunk::{ChunkRef, FileName, Hlc, Manifest, RecordHead, Reference, Version};

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 64 * 1024,
        ..StoreConfig::default()
    }
}

pub(super) fn open(dir: &Path) -> (Store, std::thread::JoinHandle<()>) {
    let (store, writer) = Store::open(dir, &config()).unwrap();
    (store, writer.spawn().unwrap())
}

pub(super) async fn close(store: Store, thread: std::thread::JoinHandle<()>) {
    store.shutdown().await;
    drop(store);
    thread.join().unwrap();
}

pub(super) fn chunk(seed: u8, len: usize) -> (ChunkRef, Bytes) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    (ChunkRef::compute(&data), Bytes::from(data))
}

pub(super) async fn put(store: &Store, c: &(ChunkRef, Bytes)) -> PutOutcome {
    put_for(store, c, &[]).await
}

pub(super) async fn put_for(
    store: &Store,
    c: &(ChunkRef, Bytes),
    references: &[Reference],
) -> PutOutcome {
    store
        .put_chunk(ChunkWrite {
            hash: c.0.hash,
            md5: c.0.md5,
            data: c.1.clone(),
            references: references.to_vec(),
            hint_for: None,
        })
        .await
        .unwrap()
}

pub(super) fn reference(name: &str, hlc: u64) -> Reference {
    Reference {
        name: FileName::new(name).unwrap(),
        version: Version {
            hlc: Hlc(hlc),
            writer: "test".into(),
        },
    }
}

pub(super) fn manifest(name: &str, hlc: u64, chunks: &[&(ChunkRef, Bytes)]) -> FileRecord {
    FileRecord::Live(Manifest {
        name: FileName::new(name).unwrap(),
        size: chunks.iter().map(|c| u64::from(c.0.size)).sum(),
        blake3: Blake3Hash::of(b"whatever"),
        chunk_size: 1 << 20,
        chunks: chunks.iter().map(|c| c.0).collect(),
        created_ms: 0,
        version: Version {
            hlc: Hlc(hlc),
            writer: "test".into(),
        },
        extensions: Default::default(),
    })
}

pub(super) fn tombstone(name: &str, hlc: u64) -> FileRecord {
    FileRecord::Deleted {
        name: FileName::new(name).unwrap(),
        version: Version {
            hlc: Hlc(hlc),
            writer: "test".into(),
        },
        deleted_ms: 0,
        extensions: Default::default(),
    }
}

/// Flips one byte of a file on disk, as bit rot would.
fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

pub(super) const COLLECT_NOW: GcPolicy = GcPolicy {
    grace_ms: 0,
    tombstone_ttl_ms: u64::MAX,
};

#[tokio::test]
async fn chunks_round_trip_and_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(1, 10_000);
    assert_eq!(put(&store, &c).await, PutOutcome::Stored);
    assert_eq!(put(&store, &c).await, PutOutcome::AlreadyStored);
    assert_eq!(store.read_chunk(c.0.hash).await.unwrap(), c.1);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.chunks, stats.bytes), (1, 10_000));
    let missing = Blake3Hash::of(b"nope");
    assert!(matches!(
        store.read_chunk(missing).await,
        Err(StoreError::ChunkNotFound(_))
    ));
    assert_eq!(
        store.has_chunks(vec![c.0.hash, missing]).await.unwrap(),
        vec![true, false]
    );
    close(store, thread).await;
}

#[tokio::test]
async fn concurrent_writes_all_land_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let chunks: Vec<_> = (0..40)
        .map(|i| chunk(i, 3_000 + usize::from(i) * 100))
        .collect();
    let writes = chunks.iter().map(|c| put(&store, c));
    futures::future::join_all(writes).await;
    close(store, thread).await;

    let (store, thread) = open(dir.path());
    for c in &chunks {
        assert_eq!(store.read_chunk(c.0.hash).await.unwrap(), c.1);
    }
    assert!(
        store.stats().await.unwrap().segments > 1,
        "64 KiB segments must have rotated"
    );
    close(store, thread).await;
}

#[tokio::test]
async fn flipped_bytes_on_disk_are_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(2, 5_000);
    put(&store, &c).await;
    flip_byte(&store.segments.path(0), 100);
    assert!(matches!(
        store.read_chunk(c.0.hash).await,
        Err(StoreError::Corrupt(h)) if h == c.0.hash
    ));
    close(store, thread).await;
}

#[tokio::test]
async fn unacknowledged_tails_and_stray_segments_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(3, 4_000);
    put(&store, &c).await;
    let segment_path = store.segments.path(0);
    let stray = store.segments.path(99);
    close(store, thread).await;

    // What a crash mid-batch leaves: bytes appended but never indexed, and a
    // new segment created but never committed.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment_path)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0xAA; 777]).unwrap();
    std::fs::write(&stray, b"junk").unwrap();

    let (store, thread) = open(dir.path());
    assert_eq!(std::fs::metadata(&segment_path).unwrap().len(), 4_000);
    assert!(!stray.exists());
    assert_eq!(store.read_chunk(c.0.hash).await.unwrap(), c.1);
    let d = chunk(4, 1_000);
    put(&store, &d).await;
    assert_eq!(store.read_chunk(d.0.hash).await.unwrap(), d.1);
    close(store, thread).await;
}

#[tokio::test]
async fn newer_record_versions_win_whether_or_not_chunks_are_here() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    // A manifest's owners need not hold its chunks.
    let c = chunk(5, 100);
    assert_eq!(
        store.put_record(manifest("f", 10, &[&c])).await.unwrap(),
        RecordOutcome::Applied
    );
    assert_eq!(
        store.put_record(manifest("f", 10, &[&c])).await.unwrap(),
        RecordOutcome::Unchanged
    );
    assert_eq!(
        store.put_record(tombstone("f", 5)).await.unwrap(),
        RecordOutcome::Superseded { newer: Hlc(10) }
    );
    let name = FileName::new("f").unwrap();
    assert!(store.record(&name).await.unwrap().unwrap().live().is_some());
    assert_eq!(store.stats().await.unwrap().files, 1);
    assert_eq!(
        store.put_record(tombstone("f", 11)).await.unwrap(),
        RecordOutcome::Replaced
    );
    assert!(store.record(&name).await.unwrap().unwrap().live().is_none());
    let head = store.head(&name).await.unwrap().unwrap();
    assert_eq!((head.version.hlc, head.live), (Hlc(11), None));
    assert_eq!(store.stats().await.unwrap().files, 0);
    close(store, thread).await;
}

#[tokio::test]
async fn claims_say_what_is_held_and_shared_chunks_live_until_the_last_release() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (x, y, z) = (chunk(6, 20_000), chunk(7, 20_000), chunk(8, 20_000));
    let (a, b) = (reference("a", 1), reference("b", 1));
    put_for(&store, &x, std::slice::from_ref(&a)).await;
    put_for(&store, &y, std::slice::from_ref(&a)).await;
    // b finds y already here and claims it; z is not here yet.
    let held = store
        .claim(vec![y.0.hash, z.0.hash, z.0.hash], b.clone())
        .await
        .unwrap();
    assert_eq!(held, vec![true, false, false]);
    put_for(&store, &z, std::slice::from_ref(&b)).await;
    assert_eq!(
        store
            .collect_garbage(COLLECT_NOW)
            .await
            .unwrap()
            .chunks_removed,
        0
    );

    assert_eq!(store.release(a.id()).await.unwrap(), 2);
    let report = store.collect_garbage(COLLECT_NOW).await.unwrap();
    assert_eq!((report.chunks_removed, report.bytes_removed), (1, 20_000));
    assert!(matches!(
        store.read_chunk(x.0.hash).await,
        Err(StoreError::ChunkNotFound(_))
    ));
    assert_eq!(store.read_chunk(y.0.hash).await.unwrap(), y.1);

    // Releasing twice changes nothing; releasing b frees the rest.
    assert_eq!(store.release(a.id()).await.unwrap(), 0);
    assert_eq!(store.release(b.id()).await.unwrap(), 2);
    let report = store.collect_garbage(COLLECT_NOW).await.unwrap();
    assert_eq!(report.chunks_removed, 2);
    assert_eq!(store.stats().await.unwrap().chunks, 0);
    close(store, thread).await;
}

#[tokio::test]
async fn hinted_copies_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(9, 500);
    store
        .put_chunk(ChunkWrite {
            hash: c.0.hash,
            md5: c.0.md5,
            data: c.1.clone(),
            references: vec![reference("h", 1)],
            hint_for: Some(b"owner".to_vec()),
        })
        .await
        .unwrap();
    assert_eq!(store.stats().await.unwrap().hinted_chunks, 1);
    close(store, thread).await;
}

#[tokio::test]
async fn grace_protects_unreferenced_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (a, b) = (chunk(10, 1_000), chunk(11, 1_000));
    put(&store, &a).await;
    put(&store, &b).await;
    let hour = GcPolicy {
        grace_ms: 3_600_000,
        tombstone_ttl_ms: u64::MAX,
    };
    assert_eq!(store.collect_garbage(hour).await.unwrap().chunks_removed, 0);
    assert_eq!(store.read_chunk(a.0.hash).await.unwrap(), a.1);
    assert_eq!(
        store
            .collect_garbage(COLLECT_NOW)
            .await
            .unwrap()
            .chunks_removed,
        2
    );
    close(store, thread).await;
}

#[tokio::test]
async fn deleted_data_gives_its_disk_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let chunks: Vec<_> = (0..30).map(|i| chunk(100 + i, 60_000)).collect();
    for c in &chunks {
        put(&store, c).await;
    }
    let big = reference("big", 1);
    for c in &chunks {
        put_for(&store, c, std::slice::from_ref(&big)).await;
    }
    let full = store.stats().await.unwrap();
    assert_eq!(full.bytes, 30 * 60_000);
    assert!(full.disk_bytes >= full.bytes);

    store.release(big.id()).await.unwrap();
    let report = store.collect_garbage(COLLECT_NOW).await.unwrap();
    assert_eq!(report.chunks_removed, 30);
    assert!(
        report.segments_removed >= 28,
        "sealed segments must be deleted: {report:?}"
    );
    let empty = store.stats().await.unwrap();
    assert_eq!((empty.chunks, empty.bytes), (0, 0));
    let segment_disk = store.segments.disk_usage().unwrap();
    assert!(
        segment_disk <= 8192,
        "only partial blocks may remain, found {segment_disk} bytes"
    );
    close(store, thread).await;
}

#[tokio::test]
async fn tombstones_are_purged_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    store.put_record(tombstone("gone", 1)).await.unwrap();
    let policy = GcPolicy {
        grace_ms: 0,
        tombstone_ttl_ms: 0,
    };
    assert_eq!(
        store
            .collect_garbage(policy)
            .await
            .unwrap()
            .tombstones_purged,
        1
    );
    assert!(
        store
            .record(&FileName::new("gone").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    close(store, thread).await;
}

#[tokio::test]
async fn heads_filter_by_prefix_include_tombstones_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(12, 10);
    for name in ["a/1", "a/2", "a/3", "b/1", "a0"] {
        store.put_record(manifest(name, 1, &[&c])).await.unwrap();
    }
    store.put_record(tombstone("a/2", 2)).await.unwrap();
    let names = |heads: &[RecordHead]| {
        heads
            .iter()
            .map(|h| (h.name.to_string(), h.live.is_some()))
            .collect::<Vec<_>>()
    };
    let (page, more) = store.heads("a/".into(), None, 1).await.unwrap();
    assert_eq!((names(&page), more), (vec![("a/1".into(), true)], true));
    let (page, more) = store
        .heads("a/".into(), Some("a/1".into()), 10)
        .await
        .unwrap();
    assert_eq!(
        (names(&page), more),
        (vec![("a/2".into(), false), ("a/3".into(), true)], false)
    );
    let (all, _) = store.heads(String::new(), None, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    close(store, thread).await;
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    assert!(matches!(
        Store::open(dir.path(), &config()),
        Err(StoreError::Locked(_))
    ));
    close(store, thread).await;
}

#[tokio::test]
async fn writing_a_chunk_again_replaces_a_damaged_stored_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let c = chunk(13, 6_000);
    put(&store, &c).await;
    flip_byte(&store.segments.path(0), 10);
    assert!(matches!(
        store.read_chunk(c.0.hash).await,
        Err(StoreError::Corrupt(_))
    ));

    assert_eq!(put(&store, &c).await, PutOutcome::Stored);
    assert_eq!(store.read_chunk(c.0.hash).await.unwrap(), c.1);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.chunks, stats.bytes),
        (1, 6_000),
        "the damaged copy no longer counts"
    );
    assert_eq!(put(&store, &c).await, PutOutcome::AlreadyStored);
    close(store, thread).await;
}

#[tokio::test]
async fn range_digests_agree_on_equal_contents_and_differ_on_any_difference() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, thread_a) = open(dir_a.path());
    let (b, thread_b) = open(dir_b.path());
    let c = chunk(30, 1000);
    for store in [&a, &b] {
        put(store, &c).await;
        for name in ["x", "y", "z"] {
            store.put_record(manifest(name, 1, &[&c])).await.unwrap();
        }
    }
    let whole = vec![(0, None), (0, Some(1 << 63)), (1 << 63, None)];
    assert_eq!(
        a.range_digests(whole.clone()).await.unwrap(),
        b.range_digests(whole.clone()).await.unwrap()
    );
    assert_eq!(
        a.record_range_digests(whole.clone()).await.unwrap(),
        b.record_range_digests(whole.clone()).await.unwrap()
    );
    assert_eq!(a.record_range_digests(whole.clone()).await.unwrap()[0].0, 3);

    // A newer version of one record, and one more chunk, on one side only.
    b.put_record(tombstone("y", 2)).await.unwrap();
    put(&b, &chunk(31, 1000)).await;
    assert_ne!(
        a.record_range_digests(vec![(0, None)]).await.unwrap(),
        b.record_range_digests(vec![(0, None)]).await.unwrap()
    );
    assert_ne!(
        a.range_digests(vec![(0, None)]).await.unwrap(),
        b.range_digests(vec![(0, None)]).await.unwrap()
    );
    let (hashes, more) = b.hashes_in_range(0, None, None, 1).await.unwrap();
    assert_eq!((hashes.len(), more), (1, true));
    let (rest, more) = b
        .hashes_in_range(0, None, Some(hashes[0]), 10)
        .await
        .unwrap();
    assert_eq!((rest.len(), more), (1, false));
    let (heads, more) = b.record_heads_in_range(0, None, None, 10).await.unwrap();
    assert_eq!((heads.len(), more), (3, false));
    close(a, thread_a).await;
    close(b, thread_b).await;
}
