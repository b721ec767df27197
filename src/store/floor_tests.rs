//! Tests of name floors, the references index by name, and the figures
//! about references, on a real redb database and real segment files.

use redb::ReadableTableMetadata;

use super::tables::{NAME_REFERENCES, UNREFERENCED_BYTES};
use super::tests::{COLLECT_NOW, chunk, close, manifest, open, put, put_for, reference, tombstone};
use super::*;
use crate::chunk::{FileName, Hlc, Reference, Version};

fn version(hlc: u64, writer: &str) -> Version {
    Version {
        hlc: Hlc(hlc),
        writer: writer.into(),
    }
}

fn name(name: &str) -> FileName {
    FileName::new(name).unwrap()
}

fn reference_by(name: &str, hlc: u64, writer: &str) -> Reference {
    Reference {
        name: FileName::new(name).unwrap(),
        version: version(hlc, writer),
    }
}

/// The references held here, as (name, clock, writer), in id order.
async fn held(store: &Store) -> Vec<(String, u64, String)> {
    let mut held: Vec<_> = store
        .references(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| (r.name.to_string(), r.version.hlc.0, r.version.writer))
        .collect();
    held.sort();
    held
}

#[tokio::test]
async fn supersede_releases_older_references_and_keeps_equal_and_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let x = chunk(40, 1_000);
    let refs = [
        reference_by("f", 1, "z"),
        reference_by("f", 2, "a"),
        reference_by("f", 2, "b"),
        reference_by("f", 2, "c"),
        reference_by("f", 3, "a"),
        reference_by("g", 1, "a"),
        reference_by("f/longer", 1, "a"),
    ];
    put_for(&store, &x, &refs).await;
    assert_eq!(store.stats().await.unwrap().references, 7);

    // Older by clock, and older by writer at the same clock, go.
    assert_eq!(
        store.supersede(name("f"), version(2, "b")).await.unwrap(),
        2
    );
    let expected = |list: &[(&str, u64, &str)]| {
        list.iter()
            .map(|(n, h, w)| (n.to_string(), *h, w.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        held(&store).await,
        expected(&[
            ("f", 2, "b"),
            ("f", 2, "c"),
            ("f", 3, "a"),
            ("f/longer", 1, "a"),
            ("g", 1, "a"),
        ])
    );
    // The floor never goes down, and releasing again finds nothing.
    assert_eq!(
        store.supersede(name("f"), version(1, "a")).await.unwrap(),
        0
    );
    assert_eq!(
        store.supersede(name("f"), version(2, "b")).await.unwrap(),
        0
    );
    assert_eq!(
        store.claim(vec![x.0.hash], refs[1].clone()).await.unwrap(),
        vec![true]
    );
    assert_eq!(store.stats().await.unwrap().references, 5);

    // Superseding everything leaves the chunk unreferenced, then collected.
    assert_eq!(
        store.supersede(name("f"), version(9, "a")).await.unwrap(),
        3
    );
    assert_eq!(
        store.supersede(name("g"), version(9, "a")).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .supersede(name("f/longer"), version(9, "a"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .collect_garbage(COLLECT_NOW)
            .await
            .unwrap()
            .chunks_removed,
        1
    );
    close(store, thread).await;
}

#[tokio::test]
async fn storing_a_newer_record_releases_the_older_references() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (x, y) = (chunk(41, 2_000), chunk(42, 3_000));
    put_for(&store, &x, &[reference("f", 1)]).await;
    put_for(&store, &y, &[reference("f", 1), reference("f", 2)]).await;
    put_for(&store, &y, &[reference("gone", 1)]).await;

    store.put_record(manifest("f", 2, &[&y])).await.unwrap();
    assert!(store.references_of(x.0.hash, 10).await.unwrap().is_empty());
    assert_eq!(
        store.references_of(y.0.hash, 10).await.unwrap().len(),
        2,
        "the version stored and the other name's stay"
    );
    // A tombstone supersedes too.
    store.put_record(tombstone("gone", 5)).await.unwrap();
    assert_eq!(
        store.references_of(y.0.hash, 10).await.unwrap(),
        vec![reference("f", 2)]
    );
    // An older record changes nothing: the floor is at the stored version.
    assert!(matches!(
        store.put_record(manifest("f", 1, &[&x])).await.unwrap(),
        RecordOutcome::Superseded { .. }
    ));
    assert_eq!(store.stats().await.unwrap().references, 1);
    let report = store.collect_garbage(COLLECT_NOW).await.unwrap();
    assert_eq!((report.chunks_removed, report.bytes_removed), (1, 2_000));
    close(store, thread).await;
}

#[tokio::test]
async fn claims_and_stores_below_the_floor_add_no_reference_but_answer_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (x, y) = (chunk(43, 1_000), chunk(44, 1_000));
    assert_eq!(
        store
            .supersede(name("f"), version(5, "test"))
            .await
            .unwrap(),
        0
    );

    assert_eq!(
        put_for(&store, &x, &[reference("f", 3)]).await,
        PutOutcome::Stored
    );
    assert_eq!(store.read_chunk(x.0.hash).await.unwrap(), x.1);
    assert!(store.references_of(x.0.hash, 10).await.unwrap().is_empty());
    assert_eq!(
        put_for(&store, &x, &[reference("f", 4)]).await,
        PutOutcome::AlreadyStored
    );
    let held = store
        .claim(vec![x.0.hash, y.0.hash], reference("f", 4))
        .await
        .unwrap();
    assert_eq!(held, vec![true, false]);
    assert!(store.references_of(x.0.hash, 10).await.unwrap().is_empty());
    assert_eq!(store.stats().await.unwrap().unreferenced_bytes, 1_000);

    // At the floor and above, references are recorded.
    assert_eq!(
        store
            .claim(vec![x.0.hash], reference("f", 5))
            .await
            .unwrap(),
        vec![true]
    );
    put_for(&store, &y, &[reference("f", 6)]).await;
    assert_eq!(
        store.references_of(x.0.hash, 10).await.unwrap(),
        vec![reference("f", 5)]
    );
    assert_eq!(
        store.references_of(y.0.hash, 10).await.unwrap(),
        vec![reference("f", 6)]
    );
    close(store, thread).await;
}

#[tokio::test]
async fn floors_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let x = chunk(45, 500);
    put(&store, &x).await;
    store
        .supersede(name("f"), version(5, "test"))
        .await
        .unwrap();
    store.put_record(tombstone("t", 7)).await.unwrap();
    close(store, thread).await;

    let (store, thread) = open(dir.path());
    for below in [reference("f", 4), reference("t", 6)] {
        assert_eq!(
            store.claim(vec![x.0.hash], below).await.unwrap(),
            vec![true]
        );
    }
    assert_eq!(store.stats().await.unwrap().references, 0);
    close(store, thread).await;
}

#[tokio::test]
async fn reference_figures_follow_claims_releases_drops_and_collection() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (x, y, z) = (chunk(46, 1_000), chunk(47, 2_000), chunk(48, 4_000));
    let figures = |s: StoreStats| (s.referenced_bytes, s.unreferenced_bytes, s.references);

    put(&store, &x).await;
    assert_eq!(figures(store.stats().await.unwrap()), (0, 1_000, 0));
    put_for(&store, &y, &[reference("a", 1)]).await;
    assert_eq!(figures(store.stats().await.unwrap()), (2_000, 1_000, 1));
    store
        .claim(vec![x.0.hash], reference("b", 1))
        .await
        .unwrap();
    assert_eq!(figures(store.stats().await.unwrap()), (3_000, 0, 2));
    put_for(&store, &z, &[reference("a", 1)]).await;
    assert_eq!(figures(store.stats().await.unwrap()), (7_000, 0, 2));

    store.release(reference("a", 1).id()).await.unwrap();
    assert_eq!(figures(store.stats().await.unwrap()), (1_000, 6_000, 1));
    assert!(store.drop_chunk(y.0.hash).await.unwrap());
    assert_eq!(figures(store.stats().await.unwrap()), (1_000, 4_000, 1));
    assert!(store.drop_chunk(x.0.hash).await.unwrap());
    assert_eq!(figures(store.stats().await.unwrap()), (0, 4_000, 1));
    close(store, thread).await;

    let (store, thread) = open(dir.path());
    assert_eq!(figures(store.stats().await.unwrap()), (0, 4_000, 1));
    store.collect_garbage(COLLECT_NOW).await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.bytes, figures(stats)), (0, (0, 0, 1)));
    close(store, thread).await;
}

#[tokio::test]
async fn an_older_data_directory_gets_the_name_index_and_the_byte_count_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let (x, y) = (chunk(49, 1_500), chunk(50, 2_500));
    put_for(&store, &x, &[reference("f", 1), reference("f", 2)]).await;
    put(&store, &y).await;
    close(store, thread).await;

    // What a data directory written before them looks like.
    {
        let db = redb::Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(NAME_REFERENCES).unwrap());
        txn.open_table(tables::COUNTERS)
            .unwrap()
            .remove(UNREFERENCED_BYTES)
            .unwrap();
        txn.commit().unwrap();
    }

    let (store, thread) = open(dir.path());
    {
        let db = store.db.get().unwrap();
        let txn = redb::ReadableDatabase::begin_read(&*db).unwrap();
        assert_eq!(txn.open_table(NAME_REFERENCES).unwrap().len().unwrap(), 2);
        let counters = txn.open_table(tables::COUNTERS).unwrap();
        assert_eq!(
            counters.get(UNREFERENCED_BYTES).unwrap().unwrap().value(),
            2_500
        );
    }
    assert_eq!(
        store
            .supersede(name("f"), version(2, "test"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.references_of(x.0.hash, 10).await.unwrap(),
        vec![reference("f", 2)]
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.referenced_bytes, stats.unreferenced_bytes),
        (1_500, 2_500)
    );
    close(store, thread).await;
}

#[tokio::test]
async fn collection_drops_floors_only_when_old_and_unused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, thread) = open(dir.path());
    let x = chunk(51, 500);
    put(&store, &x).await;
    store
        .supersede(name("unused"), version(5, "test"))
        .await
        .unwrap();
    store
        .put_record(manifest("recorded", 5, &[&x]))
        .await
        .unwrap();
    store
        .claim(vec![x.0.hash], reference("referenced", 5))
        .await
        .unwrap();
    store
        .supersede(name("referenced"), version(5, "test"))
        .await
        .unwrap();

    assert_eq!(
        store
            .collect_garbage(COLLECT_NOW)
            .await
            .unwrap()
            .floors_dropped,
        0
    );
    let expire = GcPolicy {
        grace_ms: u64::MAX,
        tombstone_ttl_ms: 0,
    };
    assert_eq!(
        store.collect_garbage(expire).await.unwrap().floors_dropped,
        1
    );
    // Without its floor, an old reference of the unused name is recorded
    // again; the others still refuse theirs.
    for (name, recorded) in [("unused", 1), ("recorded", 0), ("referenced", 0)] {
        let before = store.stats().await.unwrap().references;
        store
            .claim(vec![x.0.hash], reference(name, 4))
            .await
            .unwrap();
        let after = store.stats().await.unwrap().references;
        assert_eq!(after - before, recorded, "{name}");
    }
    // Touched floors are kept until they are unused too.
    assert_eq!(
        store.collect_garbage(expire).await.unwrap().floors_dropped,
        0
    );
    close(store, thread).await;
}
