//! Healing rules on an in-memory swarm: stand-in copies are handed back to
//! their owners once they return and dropped only after every owner
//! confirms them, and nothing is dropped while an owner is away.

use super::Healer;
use crate::config::HealingConfig;
use crate::files::testing::{TestSwarm, content};

const CHUNK: u32 = 64 * 1024;

fn healers(t: &TestSwarm) -> Vec<Healer> {
    (0..t.ids.len())
        .map(|i| {
            Healer::new(
                t.swarm.store(&t.ids[i]).clone(),
                t.cluster(i).clone(),
                // Passes here run back to back: the second look is
                // simply the next pass.
                HealingConfig {
                    second_look_after: std::time::Duration::ZERO,
                    ..HealingConfig::default()
                },
                std::time::Duration::from_secs(300),
            )
        })
        .collect()
}

async fn pass_everywhere(healers: &[Healer]) {
    for healer in healers {
        healer.repair_pass().await.unwrap();
    }
}

#[tokio::test]
async fn stand_in_copies_go_back_to_their_owner_and_then_leave_the_stand_in() {
    let t = TestSwarm::new(5, CHUNK);
    let healers = healers(&t);
    let away = t.ids[0];
    t.kill(away);
    let data = content(8 * CHUNK as usize, 9);
    let manifest = t.put(1, "handed", &data).await.unwrap();
    t.settle().await;
    let owned_by_away: Vec<_> = manifest
        .chunks
        .iter()
        .filter(|c| t.chunk_owners(&c.hash).contains(&away))
        .collect();
    assert!(
        !owned_by_away.is_empty(),
        "some chunk of eight should be owned by the peer that is away"
    );

    // While the owner is away, repair keeps every copy where it is.
    pass_everywhere(&healers[1..]).await;
    pass_everywhere(&healers[1..]).await;
    for chunk in &owned_by_away {
        assert!(t.holders(chunk.hash).await.len() >= 2);
    }

    t.revive(away);
    // Two passes find the owner lacking (a copy is sent only after two
    // looks, so repair never races a put), a third drops the surplus.
    for _ in 0..3 {
        pass_everywhere(&healers).await;
    }
    for chunk in &manifest.chunks {
        let mut holders = t.holders(chunk.hash).await;
        let mut owners = t.chunk_owners(&chunk.hash);
        holders.sort();
        owners.sort();
        assert_eq!(holders, owners, "chunk {}", chunk.hash);
    }
    pass_everywhere(&healers).await;
    for healer in &healers {
        let figures = healer.figures();
        assert_eq!(figures.held_chunks, 0, "{figures:?}");
        assert_eq!(figures.held_records, 0, "{figures:?}");
    }
    assert!(t.get(0, "handed").await.unwrap() == data);
}

#[tokio::test]
async fn garbage_is_left_to_collection_and_never_sent_to_owners() {
    let t = TestSwarm::new(4, CHUNK);
    let healers = healers(&t);
    let manifest = t
        .put(0, "gone", &content(2 * CHUNK as usize, 10))
        .await
        .unwrap();
    t.settle().await;
    t.delete(1, "gone").await.unwrap();
    // One owner has collected its copy; the others still wait for their
    // grace time to pass.
    let chunk = manifest.chunks[0].hash;
    let owner = t.chunk_owners(&chunk)[0];
    assert!(t.swarm.store(&owner).drop_chunk(chunk).await.unwrap());
    for _ in 0..3 {
        pass_everywhere(&healers).await;
    }
    assert!(
        !t.holders(chunk).await.contains(&owner),
        "a chunk no version uses was sent back to an owner that had let it go"
    );
}

#[tokio::test]
async fn a_stand_in_whose_copy_belongs_to_a_version_gone_elsewhere_stops_holding_it() {
    use crate::chunk::{FileName, Reference};
    use crate::dht::name_position;
    use crate::replica::ChunkCopy;

    let t = TestSwarm::new(5, CHUNK);
    let healers = healers(&t);
    let manifest = t
        .put(0, "gone", &content(8 * CHUNK as usize, 11))
        .await
        .unwrap();
    t.settle().await;
    // A chunk, and a peer that owns neither it nor the name: the stand-in.
    let name_owners = t.cluster(0).placement().plan(name_position("gone")).owners;
    let (chunk, stand_in) = manifest
        .chunks
        .iter()
        .find_map(|c| {
            let owners = t.chunk_owners(&c.hash);
            t.ids
                .iter()
                .find(|p| !owners.contains(p) && !name_owners.contains(p))
                .map(|p| (c.hash, *p))
        })
        .expect("of eight chunks, one has a peer owning neither it nor the name");
    let owners = t.chunk_owners(&chunk);
    // The stand-in holds a copy for an owner, as a put on its side of a
    // partition leaves it.
    let owner_store = t.swarm.store(&owners[0]);
    let stored = owner_store.stored_chunk(chunk).await.unwrap().unwrap();
    let copy = ChunkCopy {
        hash: chunk,
        md5: stored.md5,
        data: owner_store.read_chunk(chunk).await.unwrap(),
        references: vec![Reference {
            name: FileName::new("gone").unwrap(),
            version: manifest.version.clone(),
        }],
        hint_for: Some(owners[1]),
    };
    t.cluster(0).client().store(stand_in, copy).await.unwrap();
    // The file is deleted where the stand-in does not hear of it; two
    // owners have collected the chunk, the third keeps it unreferenced
    // for its grace time, and never sends it.
    t.kill(stand_in);
    t.delete(1, "gone").await.unwrap();
    t.revive(stand_in);
    for owner in &owners[1..] {
        assert!(t.swarm.store(owner).drop_chunk(chunk).await.unwrap());
    }

    for _ in 0..3 {
        pass_everywhere(&healers).await;
    }
    let i = t.ids.iter().position(|p| *p == stand_in).unwrap();
    let figures = healers[i].figures();
    assert_eq!(
        (figures.held_chunks, figures.under_replicated),
        (0, 0),
        "the stand-in still holds the chunk of a deleted version for its owners: {figures:?}"
    );
    let holders = t.holders(chunk).await;
    assert!(
        !holders.contains(&owners[1]) && !holders.contains(&owners[2]),
        "garbage was sent to owners"
    );
}
