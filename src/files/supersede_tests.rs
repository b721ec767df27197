//! Letting go of old versions on an in-memory swarm: a peer that missed
//! the releases of older versions while it was away drops their holds on
//! its chunks as soon as a newer write of the name is acknowledged.

use super::testing::{TestSwarm, content};
use crate::chunk::Manifest;

const CHUNK: u32 = 64 * 1024;

/// The versions of `name` whose references the store of peer `i` holds
/// on the chunks of `manifest`.
async fn held_versions(t: &TestSwarm, i: usize, manifest: &Manifest) -> Vec<crate::chunk::Version> {
    let store = t.swarm.store(&t.ids[i]);
    let mut versions = Vec::new();
    for chunk in &manifest.chunks {
        for reference in store.references_of(chunk.hash, 64).await.unwrap() {
            if !versions.contains(&reference.version) {
                versions.push(reference.version);
            }
        }
    }
    versions
}

#[tokio::test]
async fn a_peer_that_missed_releases_lets_go_at_the_next_write_of_the_name() {
    let t = TestSwarm::new(5, CHUNK);
    let first = t
        .put(0, "n", &content(6 * CHUNK as usize, 1))
        .await
        .unwrap();
    t.settle().await;
    // A peer holding some of the first version's chunks goes away...
    let away = (1..5)
        .find(|&i| {
            first
                .chunks
                .iter()
                .any(|c| t.chunk_owners(&c.hash).contains(&t.ids[i]))
        })
        .expect("some peer other than the writer owns a chunk");
    assert!(
        held_versions(&t, away, &first)
            .await
            .contains(&first.version)
    );
    t.kill(t.ids[away]);
    // ...misses the second write's notice...
    t.put(0, "n", &content(6 * CHUNK as usize, 2))
        .await
        .unwrap();
    t.settle().await;
    t.revive(t.ids[away]);
    assert!(
        held_versions(&t, away, &first)
            .await
            .contains(&first.version)
    );
    // ...and lets the first version go once a third write is acknowledged.
    let third = t
        .put(0, "n", &content(6 * CHUNK as usize, 3))
        .await
        .unwrap();
    t.settle().await;
    let held = held_versions(&t, away, &first).await;
    assert!(held.is_empty(), "still held: {held:?}");
    assert!(third.version > first.version);
}

#[tokio::test]
async fn a_delete_lets_go_of_every_version_everywhere() {
    let t = TestSwarm::new(4, CHUNK);
    let manifest = t
        .put(1, "gone", &content(4 * CHUNK as usize, 4))
        .await
        .unwrap();
    t.settle().await;
    t.delete(2, "gone").await.unwrap();
    for i in 0..4 {
        let held = held_versions(&t, i, &manifest).await;
        assert!(held.is_empty(), "peer {i} still holds {held:?}");
    }
}

#[tokio::test]
async fn a_small_file_written_over_a_large_one_lets_its_chunks_go() {
    let t = TestSwarm::new(4, CHUNK);
    let large = t
        .put(0, "shrinks", &content(4 * CHUNK as usize, 5))
        .await
        .unwrap();
    t.settle().await;
    let small = t.put(1, "shrinks", b"tiny now").await.unwrap();
    assert!(small.inline().is_some());
    t.settle().await;
    for i in 0..4 {
        let held = held_versions(&t, i, &large).await;
        assert!(held.is_empty(), "peer {i} still holds {held:?}");
    }
}
