//! The membership protocol's messages and their size limits.
//!
//! Rumours travel over gossipsub on one topic; probes and joins are direct
//! request/response exchanges. Every message is decoded under a byte limit
//! (see [`crate::codec`]) and validated before the membership looks at it.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::record::{InvalidRecord, MemberState, PeerRecord};
use crate::codec::{self, CodecError};

/// The gossipsub topic membership rumours are published on.
pub const MEMBERSHIP_TOPIC: &str = "shoal/membership/2";

/// The largest rumour, encoded. An announcement with the maximum number of
/// addresses fits with room to spare.
pub const MAX_RUMOR_BYTES: usize = 8 * 1024;

/// The largest probe or join request, encoded.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// The largest answer, encoded: a member table of [`MAX_TABLE_MEMBERS`]
/// full records.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The most members a table answer may list.
pub const MAX_TABLE_MEMBERS: usize = 4096;

/// A membership message that cannot be used: it does not decode, or its
/// contents break the limits.
#[derive(Debug, thiserror::Error)]
pub enum InvalidMessage {
    /// The bytes are not a message, or exceed the size limit.
    #[error(transparent)]
    Decode(#[from] CodecError),
    /// A peer record in it breaks the limits.
    #[error(transparent)]
    Record(#[from] InvalidRecord),
    /// A member table longer than [`MAX_TABLE_MEMBERS`].
    #[error("a table of {0} members")]
    TableTooLarge(usize),
}

/// News about a member, published to every peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rumor {
    /// A peer is alive, as described. Published periodically by the peer
    /// itself, and once by the peer a newcomer joined through.
    Alive(PeerRecord),
    /// The publisher's probes of `peer` at `incarnation` failed.
    Suspect {
        /// The suspected peer.
        peer: PeerId,
        /// The incarnation suspected.
        incarnation: u64,
    },
    /// `peer` at `incarnation` is declared failed (or, when the publisher is
    /// `peer` itself, is leaving).
    Dead {
        /// The failed peer.
        peer: PeerId,
        /// The incarnation declared dead.
        incarnation: u64,
    },
}

impl Rumor {
    /// Encodes the rumour for publishing.
    ///
    /// # Errors
    /// [`CodecError`] if it cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Decodes and validates a rumour received from another peer.
    ///
    /// # Errors
    /// [`InvalidMessage`] saying what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Self, InvalidMessage> {
        let rumor: Rumor = codec::decode_limited::<_, MAX_RUMOR_BYTES>(bytes)?;
        if let Rumor::Alive(record) = &rumor {
            record.validate()?;
        }
        Ok(rumor)
    }
}

/// A direct request from one peer to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Are you there? Carries the incarnation at which the sender suspects
    /// the receiver, if it does, so the receiver can refute at once.
    Ping {
        /// The receiver's incarnation the sender suspects.
        suspected_at: Option<u64>,
    },
    /// Ping `target` on my behalf and tell me whether it answered.
    PingReq {
        /// The peer to probe.
        target: PeerId,
    },
    /// Here is who I am; send me your member table if I ask for it.
    Join {
        /// The sender's record.
        record: PeerRecord,
        /// Whether to answer with the whole table.
        want_table: bool,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The ping (or the relayed ping) was answered.
    Ack,
    /// The relayed ping got no answer in time.
    Nack,
    /// The answerer's member table, itself included.
    Table(Vec<TableEntry>),
}

/// One row of a member table handed to a joiner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The member's latest record known to the sender.
    pub record: PeerRecord,
    /// Its state as the sender sees it.
    pub state: MemberState,
}

impl Request {
    /// Checks a decoded request's contents.
    ///
    /// # Errors
    /// [`InvalidMessage`] naming the first thing wrong.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Request::Join { record, .. } => Ok(record.validate()?),
            Request::Ping { .. } | Request::PingReq { .. } => Ok(()),
        }
    }
}

impl Response {
    /// Checks a decoded answer's contents.
    ///
    /// # Errors
    /// [`InvalidMessage`] naming the first thing wrong.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            Response::Table(entries) if entries.len() > MAX_TABLE_MEMBERS => {
                Err(InvalidMessage::TableTooLarge(entries.len()))
            }
            Response::Table(entries) => Ok(entries.iter().try_for_each(|e| e.record.validate())?),
            Response::Ack | Response::Nack => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(addrs: usize) -> PeerRecord {
        PeerRecord {
            peer_id: PeerId::random(),
            incarnation: 7,
            listen: (0..addrs)
                .map(|i| format!("/ip4/10.0.0.{i}/tcp/7071").parse().unwrap())
                .collect(),
            api: Some("127.0.0.1:7070".parse().unwrap()),
            capacity_bytes: 1 << 40,
            used_bytes: 1 << 30,
            leaving: false,
            extensions: Default::default(),
        }
    }

    #[test]
    fn rumors_round_trip() {
        for rumor in [
            Rumor::Alive(record(3)),
            Rumor::Suspect {
                peer: PeerId::random(),
                incarnation: 3,
            },
            Rumor::Dead {
                peer: PeerId::random(),
                incarnation: u64::MAX,
            },
        ] {
            assert_eq!(Rumor::decode(&rumor.encode().unwrap()).unwrap(), rumor);
        }
    }

    #[test]
    fn the_largest_valid_announcement_fits_the_limit() {
        let rumor = Rumor::Alive(record(super::super::record::MAX_LISTEN_ADDRS));
        assert!(rumor.encode().unwrap().len() < MAX_RUMOR_BYTES / 4);
    }

    #[test]
    fn invalid_announcements_are_refused() {
        let too_many = Rumor::Alive(record(17));
        assert!(matches!(
            Rumor::decode(&too_many.encode().unwrap()),
            Err(InvalidMessage::Record(InvalidRecord::TooManyAddrs(17)))
        ));
        let mut overfull = record(1);
        overfull.used_bytes = overfull.capacity_bytes + 1;
        assert!(matches!(
            Rumor::decode(&Rumor::Alive(overfull).encode().unwrap()),
            Err(InvalidMessage::Record(InvalidRecord::OverCapacity))
        ));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for bytes in [
            &[][..],
            &[0xff; 9],
            &[0, 0x26, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                Rumor::decode(bytes),
                Err(InvalidMessage::Decode(_))
            ));
        }
    }

    #[test]
    fn an_oversized_table_is_refused() {
        let entry = TableEntry {
            record: record(1),
            state: MemberState::Alive,
        };
        let table = Response::Table(vec![entry; MAX_TABLE_MEMBERS + 1]);
        let error = table.validate().unwrap_err();
        assert!(
            matches!(error, InvalidMessage::TableTooLarge(n) if n == MAX_TABLE_MEMBERS + 1),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "a table of 4097 members");
    }
}
