//! The `Network` handle's request slots and deadline, against a stand-in
//! for the event loop that holds every command it receives (and with it the
//! request's slot) without answering.

use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};

use super::{Command, MAX_REQUESTS_PER_PEER, MemberList, Network, RequestError};
use crate::gossip::PeerRecord;
use crate::protocol::DataRequest;

/// A handle whose commands arrive on the returned receiver.
fn handle() -> (Network, mpsc::Receiver<Command>) {
    let local_peer = PeerId::random();
    let (commands, received) = mpsc::channel(64);
    let (_, members) = watch::channel(std::sync::Arc::new(MemberList {
        local: PeerRecord {
            peer_id: local_peer,
            incarnation: 1,
            listen: Vec::new(),
            api: None,
            capacity_bytes: 0,
            used_bytes: 0,
            leaving: false,
            extensions: Default::default(),
        },
        members: Vec::new(),
    }));
    let network = Network {
        commands,
        members,
        local_peer,
        in_flight: std::sync::Arc::default(),
    };
    (network, received)
}

fn question() -> DataRequest {
    DataRequest::RangeDigests { ranges: Vec::new() }
}

/// Sends as many unanswered requests to `peer` as it may have in flight,
/// and returns their commands, each holding its slot.
async fn fill_slots(
    network: &Network,
    received: &mut mpsc::Receiver<Command>,
    peer: PeerId,
) -> Vec<Command> {
    for _ in 0..MAX_REQUESTS_PER_PEER {
        let network = network.clone();
        tokio::spawn(async move {
            let _ = network
                .request(peer, question(), Duration::from_secs(60))
                .await;
        });
    }
    let mut held = Vec::new();
    for _ in 0..MAX_REQUESTS_PER_PEER {
        held.push(received.recv().await.expect("the handle is alive"));
    }
    held
}

#[tokio::test]
async fn a_request_with_no_free_slot_times_out_without_being_sent() {
    let (network, mut received) = handle();
    let peer = PeerId::random();
    let _held = fill_slots(&network, &mut received, peer).await;

    let timeout = Duration::from_millis(200);
    let result = network.request(peer, question(), timeout).await;
    assert!(matches!(result, Err(RequestError::Timeout(t)) if t == timeout));
    assert!(received.try_recv().is_err(), "nothing was sent");
}

// On tokio's paused clock, so the timing checked is exact whatever the
// machine's load.
#[tokio::test(start_paused = true)]
async fn waiting_for_a_slot_and_for_the_answer_share_one_deadline() {
    let (network, mut received) = handle();
    let peer = PeerId::random();
    let mut held = fill_slots(&network, &mut received, peer).await;

    // One slot frees up 700 ms in; the answer then never comes. The request
    // must give up 1 s after it started, not 1 s after it got its slot.
    let freed = held.pop().expect("slots are held");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        drop(freed);
    });
    let timeout = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let asking = {
        let network = network.clone();
        tokio::spawn(async move { network.request(peer, question(), timeout).await })
    };
    let sent = received.recv().await.expect("the request got a slot");
    let result = asking.await.expect("the request does not panic");
    let took = started.elapsed();
    assert!(matches!(result, Err(RequestError::Timeout(t)) if t == timeout));
    assert!(took >= timeout, "gave up early: {took:?}");
    assert!(took < Duration::from_millis(1100), "took {took:?}");
    drop(sent);
}
