//! Invites: one line that lets a new peer join a swarm, carrying the
//! cluster secret and the addresses of live members.
//!
//! The line is text, so that a user can see which addresses it names:
//!
//! ```text
//! shoal-invite-1:<64 hex digits of the secret, or "open">@<multiaddr>,<multiaddr>,...
//! ```
//!
//! Every address ends in `/p2p/<peer id>`, so the joining peer knows whom
//! it reaches. Whoever holds an invite holds the secret: it is as
//! sensitive as the secret file itself.

use std::fmt;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::secret::ClusterSecret;

/// What every invite starts with; the number is the format's version.
pub const INVITE_PREFIX: &str = "shoal-invite-1:";

/// The most addresses an invite carries: enough to reach a swarm with
/// several members down, short enough to paste.
pub const MAX_INVITE_ADDRS: usize = 16;

/// The longest invite accepted, in bytes.
pub const MAX_INVITE_LEN: usize = 8192;

/// What stands for the secret in an invite to a swarm without one.
const OPEN: &str = "open";

/// Why a line is not a usable invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not an invite at all, or from a newer shoal.
    #[error("not a shoal invite: it must start with {INVITE_PREFIX} (from `shoal invite`)")]
    NotAnInvite,
    /// Longer than any invite shoal makes.
    #[error("the invite is {0} bytes long; invites are at most {MAX_INVITE_LEN}")]
    TooLong(usize),
    /// The secret part is not 64 hex digits (or `open`).
    #[error("the invite's secret is damaged: expected 64 hexadecimal digits before the @")]
    BadSecret,
    /// No `@` and addresses.
    #[error("the invite names no member to join through")]
    NoAddresses,
    /// More addresses than an invite carries.
    #[error("the invite names {0} addresses; invites carry at most {MAX_INVITE_ADDRS}")]
    TooManyAddresses(usize),
    /// An address that does not parse or cannot be dialled.
    #[error("the invite's address {addr:?} is unusable: {reason}")]
    BadAddress {
        /// The address as written.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed invite.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    /// The swarm's secret; `None` for a swarm that runs without one.
    pub secret: Option<ClusterSecret>,
    /// Members to join through, each with its `/p2p/` peer id.
    pub addrs: Vec<Multiaddr>,
}

impl Invite {
    /// An invite to the swarm with `secret`, through the first
    /// [`MAX_INVITE_ADDRS`] of `addrs` that carry a peer id and TCP.
    pub fn new(secret: Option<ClusterSecret>, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        let addrs = addrs
            .into_iter()
            .filter(|a| check_addr(a).is_ok())
            .take(MAX_INVITE_ADDRS)
            .collect();
        Invite { secret, addrs }
    }

    /// Parses the line `shoal invite` printed; surrounding whitespace is
    /// ignored.
    ///
    /// # Errors
    /// [`InviteError`] naming the first thing wrong.
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        if text.len() > MAX_INVITE_LEN {
            return Err(InviteError::TooLong(text.len()));
        }
        let body = text
            .trim()
            .strip_prefix(INVITE_PREFIX)
            .ok_or(InviteError::NotAnInvite)?;
        let (secret, addrs) = body.split_once('@').ok_or(InviteError::NoAddresses)?;
        let secret = match secret {
            OPEN => None,
            hex => Some(ClusterSecret::parse(hex, "invite").map_err(|_| InviteError::BadSecret)?),
        };
        let written: Vec<&str> = addrs.split(',').filter(|a| !a.is_empty()).collect();
        if written.is_empty() {
            return Err(InviteError::NoAddresses);
        }
        if written.len() > MAX_INVITE_ADDRS {
            return Err(InviteError::TooManyAddresses(written.len()));
        }
        let addrs = written
            .into_iter()
            .map(|text| {
                let bad = |reason: String| InviteError::BadAddress {
                    addr: text.to_owned(),
                    reason,
                };
                let addr: Multiaddr = text.parse().map_err(|e| bad(format!("{e}")))?;
                check_addr(&addr).map_err(|reason| bad(reason.to_owned()))?;
                Ok(addr)
            })
            .collect::<Result<_, _>>()?;
        Ok(Invite { secret, addrs })
    }
}

/// The line form, which [`Invite::parse`] reads back.
impl fmt::Display for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = self
            .secret
            .as_ref()
            .map_or_else(|| OPEN.to_owned(), ClusterSecret::to_hex);
        let addrs: Vec<String> = self.addrs.iter().map(ToString::to_string).collect();
        write!(f, "{INVITE_PREFIX}{secret}@{}", addrs.join(","))
    }
}

/// Never shows the secret.
impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("secret", &self.secret)
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// Whether `addr` is one a joining peer can dial and knows whom it
/// reaches: TCP, and a peer id at the end.
fn check_addr(addr: &Multiaddr) -> Result<(), &'static str> {
    if !addr.iter().any(|p| matches!(p, Protocol::Tcp(_))) {
        return Err("shoal peers speak TCP");
    }
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        return Err("it must end in /p2p/<peer id>");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
