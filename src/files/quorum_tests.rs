//! The quorum rules on an in-memory swarm of five peers with injected
//! faults: writes reach W durable copies on whatever part of the
//! preference list is usable, reads count only answers that know, hung
//! and damaged peers are passed over, and too few peers is a clear
//! failure that changes nothing.

use std::time::Duration;

use super::testing::{TestSwarm, content};
use super::{FilesError, PlacementSource};
use crate::chunk::FileName;
use crate::dht::name_position;
use crate::replica::memory::Fault;

const CHUNK: u32 = 64 * 1024;

/// The peers that own the manifest of `name`, in ring order.
fn manifest_owners(t: &TestSwarm, name: &str) -> Vec<libp2p::PeerId> {
    t.view.placement().plan(name_position(name)).owners
}

/// A peer index that is none of `avoid`.
fn other_than(t: &TestSwarm, avoid: &[libp2p::PeerId]) -> usize {
    t.ids
        .iter()
        .position(|p| !avoid.contains(p))
        .expect("a five-peer swarm has a peer outside any three")
}

#[tokio::test]
async fn a_put_reaches_w_copies_with_two_owners_down_and_reads_back_anywhere() {
    let t = TestSwarm::new(5, CHUNK);
    let data = content(5 * CHUNK as usize + 100, 1);
    let owners = manifest_owners(&t, "doc");
    t.kill(owners[0]);
    t.kill(owners[1]);
    let writer = other_than(&t, &owners[..2]);
    let manifest = t.put(writer, "doc", &data).await.unwrap();
    t.settle().await;
    for chunk in &manifest.chunks {
        let holders = t.holders(chunk.hash).await;
        assert!(holders.len() >= 2, "chunk on {holders:?}");
        assert!(!holders.contains(&owners[0]) && !holders.contains(&owners[1]));
    }
    for (i, id) in t.ids.iter().enumerate() {
        if !owners[..2].contains(id) {
            assert!(
                t.get(i, "doc").await.unwrap() == data,
                "read through peer {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_hung_owner_costs_one_timeout_then_is_passed_over() {
    let t = TestSwarm::new(5, CHUNK);
    let owners = manifest_owners(&t, "hung");
    // Hung, not dead: membership still shows it up.
    let hung = owners[0];
    t.swarm.set_fault(&hung, Fault::Hung);
    let writer = other_than(&t, &owners[..1]);
    let data = content(3 * CHUNK as usize, 2);
    t.put(writer, "hung", &data).await.unwrap();
    // The first put runs into the hung peer's deadline with whatever it
    // had in flight at once; after that the peer is passed over.
    let asked = t.swarm.requests_to(&hung);
    assert!(asked >= 1, "the first put tried the hung owner");
    let newer = content(3 * CHUNK as usize, 3);
    t.put(writer, "hung", &newer).await.unwrap();
    assert_eq!(
        t.swarm.requests_to(&hung),
        asked,
        "the second put waited on the hung peer again"
    );
    assert!(t.get(writer, "hung").await.unwrap() == newer);
}

#[tokio::test]
async fn a_manifest_on_stand_ins_is_read_by_a_peer_with_the_same_view() {
    let t = TestSwarm::new(5, CHUNK);
    let owners = manifest_owners(&t, "moved");
    t.kill(owners[0]);
    t.kill(owners[2]);
    let writer = other_than(&t, &owners);
    let data = content(1000, 4);
    t.put(writer, "moved", &data).await.unwrap();
    t.settle().await;
    // Another reader: the live owner and the stand-ins that took the
    // copies meant for the two dead owners answer.
    let reader = t.ids.iter().position(|p| *p == owners[1]).unwrap();
    assert!(t.get(reader, "moved").await.unwrap() == data);
}

#[tokio::test]
async fn not_found_comes_only_from_owners() {
    let t = TestSwarm::new(5, CHUNK);
    let owners = manifest_owners(&t, "ghost");
    let reader = other_than(&t, &owners);
    let err = t.get(reader, "ghost").await.unwrap_err();
    assert!(matches!(err, FilesError::NotFound(_)), "{err}");

    // With two of three owners gone, the stand-ins' silence about the name
    // proves nothing: unavailable, not a false not-found.
    t.kill(owners[0]);
    t.kill(owners[1]);
    let err = t.get(reader, "ghost").await.unwrap_err();
    assert!(matches!(err, FilesError::NotEnoughReplicas { .. }), "{err}");
}

#[tokio::test]
async fn a_damaged_copy_is_passed_over_for_an_intact_one() {
    let t = TestSwarm::new(5, CHUNK);
    let data = content(4 * CHUNK as usize, 5);
    let manifest = t.put(0, "intact", &data).await.unwrap();
    t.settle().await;
    // Every holder of the first chunk but one serves damaged bytes.
    let holders = t.holders(manifest.chunks[0].hash).await;
    for peer in &holders[1..] {
        t.swarm.set_fault(peer, Fault::Damaged);
    }
    for i in 0..5 {
        assert!(
            t.get(i, "intact").await.unwrap() == data,
            "through peer {i}"
        );
    }
}

#[tokio::test]
async fn too_few_peers_fail_the_put_and_keep_the_old_version() {
    let t = TestSwarm::new(5, CHUNK);
    // Past the inline bound, so the put fails placing its chunk, before
    // any manifest is written. (A small file's only write is its manifest,
    // and a manifest write that fails may still surface later.)
    let old = content(20_000, 6);
    t.put(0, "kept", &old).await.unwrap();
    for id in &t.ids[1..] {
        t.kill(*id);
    }
    let err = t.put(0, "kept", &content(20_000, 7)).await.unwrap_err();
    assert!(
        matches!(
            err,
            FilesError::NotEnoughReplicas {
                stored: 1,
                needed: 2,
                ..
            }
        ),
        "{err}"
    );
    for id in &t.ids[1..] {
        t.revive(*id);
    }
    assert!(t.get(3, "kept").await.unwrap() == old);
}

#[tokio::test]
async fn a_late_peer_within_its_deadline_still_counts() {
    let t = TestSwarm::new(3, CHUNK);
    for id in &t.ids[1..] {
        t.swarm
            .set_fault(id, Fault::Late(Duration::from_millis(200)));
    }
    let data = content(2 * CHUNK as usize, 8);
    t.put(0, "slow", &data).await.unwrap();
    t.settle().await;
    assert!(t.get(0, "slow").await.unwrap() == data);
    let name = FileName::new("slow").unwrap();
    let (_, replicas) = t.files(0).stat(&name).await.unwrap();
    assert_eq!(replicas.manifest.len(), 3);
}

#[tokio::test]
async fn a_small_file_lives_in_its_manifest_and_survives_a_lost_owner() {
    let t = TestSwarm::new(5, CHUNK);
    let small = content(crate::chunk::MAX_INLINE_BYTES, 8);
    let m = t.put(0, "small", &small).await.unwrap();
    assert_eq!(m.inline(), Some(small.as_slice()));
    assert_eq!(m.chunks.len(), 1);
    assert!(
        t.holders(m.chunks[0].hash).await.is_empty(),
        "no chunk store holds a small file's bytes"
    );
    // The third copy of the manifest may still be on its way.
    t.settle().await;
    let (_, replicas) = t.files(2).stat(&m.name).await.unwrap();
    assert_eq!(replicas.chunks[0].replicas, replicas.manifest);
    assert_eq!(replicas.manifest.len(), 3);

    let owner = replicas.manifest[0];
    t.kill(owner);
    let reader = t.ids.iter().position(|p| *p != owner).unwrap();
    assert!(t.get(reader, "small").await.unwrap() == small);

    // One byte more is stored in the chunk store as before.
    let larger = content(crate::chunk::MAX_INLINE_BYTES + 1, 9);
    let m = t.put(reader, "larger", &larger).await.unwrap();
    assert_eq!(m.inline(), None);
    assert!(!t.holders(m.chunks[0].hash).await.is_empty());
}

#[tokio::test]
async fn a_small_put_from_a_peer_whose_clock_is_behind_still_wins() {
    let t = TestSwarm::new(5, CHUNK);
    // Peer 0's clock runs ten minutes ahead of everyone else's.
    let ahead = crate::chunk::wall_millis() + 10 * 60 * 1000;
    t.files(0).clock.tick(ahead);
    let first = t.put(0, "note", b"written first").await.unwrap();
    let second = t.put(1, "note", b"written second").await.unwrap();
    assert!(
        second.version > first.version,
        "{} !> {}",
        second.version,
        first.version
    );
    for i in 0..5 {
        assert_eq!(t.get(i, "note").await.unwrap(), b"written second");
    }
}
