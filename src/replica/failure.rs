//! Why one peer did not do what it was asked, as a typed value.
//!
//! The coordinator and the healer decide by kind (a full disk makes a put
//! answer "disk full"; a timeout marks the peer unresponsive for a while;
//! a refusal as not found is an answer, not a failure, for some questions)
//! and keep the words for logs and error messages.

use std::fmt;
use std::time::Duration;

use libp2p::PeerId;

use crate::protocol::Refusal;

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// No answer before the request's deadline.
    Timeout(Duration),
    /// The peer could not be reached or the exchange broke off.
    Unreachable(String),
    /// The peer is known to be unresponsive right now and was not asked.
    Unresponsive,
    /// The peer answered that it would not do it.
    Refused {
        /// Why, in kind.
        reason: Refusal,
        /// Why, in the peer's words.
        message: String,
    },
    /// The peer answered something that does not fit the question (a
    /// different kind of answer, a list of the wrong length, a record for
    /// another name).
    Unexpected(String),
    /// This peer is shutting down.
    Closed,
}

/// A [`PeerError`] with the peer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFailure {
    /// Who failed.
    pub peer: PeerId,
    /// How.
    pub error: PeerError,
}

impl PeerFailure {
    /// A failure of `peer`.
    pub fn new(peer: PeerId, error: PeerError) -> Self {
        PeerFailure { peer, error }
    }

    /// The refusal's kind, when the peer refused.
    pub fn refusal(&self) -> Option<Refusal> {
        match self.error {
            PeerError::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether the peer said it does not hold what was asked for.
    pub fn is_not_found(&self) -> bool {
        self.refusal() == Some(Refusal::NotFound)
    }
}

impl PeerError {
    /// The failure's kind, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerError::Timeout(_) => "timeout",
            PeerError::Unreachable(_) => "unreachable",
            PeerError::Unresponsive => "unresponsive",
            PeerError::Refused { reason, .. } => match reason {
                Refusal::NotFound => "not_found",
                Refusal::Corrupt => "corrupt",
                Refusal::DiskFull => "disk_full",
                Refusal::Invalid => "invalid",
                Refusal::Unavailable => "unavailable",
            },
            PeerError::Unexpected(_) => "unexpected",
            PeerError::Closed => "closed",
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Timeout(after) => write!(f, "no answer within {after:?}"),
            PeerError::Unreachable(why) => write!(f, "unreachable: {why}"),
            PeerError::Unresponsive => write!(f, "not asked: it stopped answering moments ago"),
            PeerError::Refused { message, .. } => write!(f, "refused: {message}"),
            PeerError::Unexpected(what) => write!(f, "unexpected answer: {what}"),
            PeerError::Closed => write!(f, "this peer is shutting down"),
        }
    }
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {}: {}", short_id(&self.peer), self.error)
    }
}

impl std::error::Error for PeerFailure {}

/// The last eight characters of a peer id, which is how logs and messages
/// name peers: enough to tell members apart, short enough to read.
pub fn short_id(peer: &PeerId) -> String {
    let text = peer.to_base58();
    format!("…{}", &text[text.len().saturating_sub(8)..])
}
