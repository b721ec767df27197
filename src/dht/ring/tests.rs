use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn peers(n: usize, seed: u8) -> Vec<PeerId> {
    (0..n)
        .map(|i| {
            let secret = blake3::derive_key("ring test peer", &[seed, i as u8, (i >> 8) as u8]);
            libp2p::identity::Keypair::ed25519_from_bytes(secret)
                .expect("32 bytes")
                .public()
                .to_peer_id()
        })
        .collect()
}

fn equal(peers: &[PeerId]) -> Ring {
    Ring::new(peers.iter().map(|&peer| RingMember {
        peer,
        points: POINTS_PER_REFERENCE,
    }))
}

/// Keys spread like chunk hashes.
fn keys(count: usize) -> Vec<u64> {
    (0..count as u64)
        .map(|i| {
            u64::from_be_bytes(
                blake3::hash(&i.to_be_bytes()).as_bytes()[..8]
                    .try_into()
                    .unwrap(),
            )
        })
        .collect()
}

/// Replica assignments per member over `keys`, with `n` replicas each.
fn loads(ring: &Ring, keys: &[u64], n: usize) -> HashMap<PeerId, usize> {
    let mut loads = HashMap::new();
    for key in keys {
        for owner in ring.owners_at(*key, n) {
            *loads.entry(owner).or_default() += 1;
        }
    }
    loads
}

#[test]
fn owners_are_distinct_and_as_many_as_asked() {
    let ring = equal(&peers(5, 1));
    for key in keys(1000) {
        let owners = ring.owners_at(key, 3);
        assert_eq!(owners.len(), 3);
        assert!(owners[0] != owners[1] && owners[1] != owners[2] && owners[0] != owners[2]);
    }
    assert_eq!(equal(&peers(2, 1)).owners_at(7, 3).len(), 2);
    assert!(Ring::default().owners_at(7, 3).is_empty());
}

#[test]
fn ten_equal_members_share_within_fifteen_percent_of_the_mean() {
    let members = peers(10, 2);
    let ring = equal(&members);
    let keys = keys(200_000);
    for n in [1, 3] {
        let loads = loads(&ring, &keys, n);
        let mean = (keys.len() * n) as f64 / members.len() as f64;
        let max = *loads.values().max().unwrap() as f64;
        eprintln!(
            "10 equal members, n={n}: busiest / mean = {:.3}",
            max / mean
        );
        assert!(
            max <= mean * 1.15,
            "n={n}: max {max} vs mean {mean} ({:.3})",
            max / mean
        );
    }
}

#[test]
fn shares_follow_capacity() {
    let members = peers(4, 3);
    let ring = Ring::new(members.iter().enumerate().map(|(i, &peer)| RingMember {
        peer,
        points: points_for(if i == 0 {
            4 * REFERENCE_CAPACITY
        } else {
            REFERENCE_CAPACITY
        }),
    }));
    let loads = loads(&ring, &keys(100_000), 1);
    let big = loads[&members[0]] as f64;
    let small = loads[&members[1]] as f64;
    assert!(
        (3.0..5.0).contains(&(big / small)),
        "big/small = {}",
        big / small
    );
}

#[test]
fn point_counts_ignore_small_capacity_changes() {
    assert_eq!(points_for(REFERENCE_CAPACITY), POINTS_PER_REFERENCE);
    assert_eq!(
        points_for(REFERENCE_CAPACITY + (1 << 30)),
        POINTS_PER_REFERENCE
    );
    assert_eq!(points_for(0), POINTS_PER_REFERENCE / 4);
    assert_eq!(points_for(u64::MAX), POINTS_PER_REFERENCE * 16);
}

/// The share of replica assignments that change when `after` replaces
/// `before`.
fn moved(before: &Ring, after: &Ring, keys: &[u64], n: usize) -> f64 {
    let mut moved = 0;
    for key in keys {
        let old = before.owners_at(*key, n);
        moved += after
            .owners_at(*key, n)
            .iter()
            .filter(|p| !old.contains(p))
            .count();
    }
    moved as f64 / (keys.len() * n) as f64
}

#[test]
fn adding_or_removing_one_member_moves_about_its_share() {
    let keys = keys(100_000);
    for count in [4, 9, 19] {
        let members = peers(count + 1, 4);
        let small = equal(&members[..count]);
        let large = equal(&members);
        let ideal = 1.0 / (count + 1) as f64;
        for n in [1, 3] {
            let added = moved(&small, &large, &keys, n);
            let removed = moved(&large, &small, &keys, n);
            eprintln!(
                "{count}+1 members, n={n}: moved {:.3} (join) / {:.3} (leave) of the ideal",
                added / ideal,
                removed / ideal
            );
            assert!(
                added <= ideal * 1.1,
                "{count}+1, n={n}: {added:.4} vs ideal {ideal:.4}"
            );
            assert!(
                removed <= ideal * 1.1,
                "{count}+1, n={n}: {removed:.4} vs ideal {ideal:.4}"
            );
        }
    }
}

proptest! {
    #[test]
    fn placement_depends_only_on_the_member_set(order in Just(peers(7, 5)).prop_shuffle(), key in any::<u64>()) {
        let reference = equal(&peers(7, 5));
        let shuffled = equal(&order);
        prop_assert_eq!(reference.owners_at(key, 3), shuffled.owners_at(key, 3));
    }

    #[test]
    fn owners_are_always_members(count in 1usize..12, key in any::<u64>(), n in 1usize..5) {
        let members = peers(count, 6);
        let owners = equal(&members).owners_at(key, n);
        prop_assert_eq!(owners.len(), n.min(count));
        prop_assert!(owners.iter().all(|o| members.contains(o)));
    }
}

#[test]
fn shares_add_up_to_the_whole_ring_and_match_where_keys_land() {
    let members = peers(5, 9);
    let ring = equal(&members);
    let total: f64 = members.iter().map(|p| ring.share(p)).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let sample = keys(20_000);
    for peer in &members {
        let landed = sample
            .iter()
            .filter(|&&k| ring.owners_at(k, 1)[0] == *peer)
            .count() as f64
            / sample.len() as f64;
        assert!(
            (landed - ring.share(peer)).abs() < 0.02,
            "{landed} vs {}",
            ring.share(peer)
        );
    }
    assert_eq!(ring.share(&peers(1, 10)[0]), 0.0);
    assert_eq!(equal(&members[..1]).share(&members[0]), 1.0);
}
