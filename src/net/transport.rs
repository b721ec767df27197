//! The swarm's transport, and plain words for why connections fail.
//!
//! TCP, then noise, then yamux. The cluster secret is bound into noise as
//! the handshake's prologue (see [`crate::secret`]): a peer with another
//! secret fails the handshake on its first authenticated message, so it is
//! refused in one round trip and never reaches any protocol. QUIC is not
//! offered: it authenticates with TLS, which has no prologue, so it would be
//! a way into a swarm around the secret.

use std::error::Error;
use std::io;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::{DialError, ListenError};
use libp2p::{Swarm, SwarmBuilder, noise, tcp, yamux};
use prometheus_client::registry::Registry;

use super::behaviour::Behaviour;
use super::{BuildError, NetConfig};
use crate::secret::noise_prologue;

/// How long a connection may take to be established, handshake included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an unused connection is kept. Members stay connected to each
/// other so a crash shows at once as a closed connection.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The log's explanation for a handshake that failed.
pub const HANDSHAKE_FAILED: &str = "handshake failed: wrong or missing cluster secret?";

/// Builds the swarm for `key`, admitting only peers that hold `config`'s
/// cluster secret, with its transport's byte counts in `registry`.
///
/// # Errors
/// [`BuildError`] naming the part that could not be built.
pub fn build_swarm(
    key: Keypair,
    config: &NetConfig,
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, BuildError> {
    let prologue = noise_prologue(config.secret.as_ref());
    let builder = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            move |key: &Keypair| noise::Config::new(key).map(|c| c.with_prologue(prologue)),
            yamux::Config::default,
        )
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_dns()
        .map_err(BuildError::Dns)?
        .with_bandwidth_metrics(registry);
    // Built here rather than in libp2p's constructor callback, whose error
    // type would keep only the words of what went wrong.
    let behaviour = Behaviour::new(&key, config)?;
    let Ok(builder) = builder.with_behaviour(|_| behaviour);
    Ok(builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .with_connection_timeout(CONNECTION_TIMEOUT)
        .build())
}

/// Why a dial failed, in words for the log and for error messages.
pub fn describe_dial_error(error: &DialError) -> String {
    match error {
        DialError::Transport(attempts) if attempts.len() == 1 => describe(&attempts[0].1),
        DialError::Transport(attempts) => {
            let reasons: Vec<String> = attempts
                .iter()
                .map(|(addr, e)| format!("{addr}: {}", describe(e)))
                .collect();
            reasons.join("; ")
        }
        DialError::LocalPeerId { .. } => "that address is this peer's own".into(),
        DialError::WrongPeerId { obtained, .. } => {
            format!("the peer there is {obtained}, not the one named in the address")
        }
        DialError::NoAddresses => "no known address".into(),
        DialError::Denied { cause } => format!("refused locally: {cause}"),
        other => other.to_string(),
    }
}

/// Whether every address of a failed dial refused this peer's handshake:
/// the peer there holds another cluster secret, and redialling it is
/// pointless until someone fixes the configuration.
pub fn rejected_by_handshake(error: &DialError) -> bool {
    match error {
        DialError::Transport(attempts) => {
            !attempts.is_empty()
                && attempts
                    .iter()
                    .all(|(_, e)| matches!(handshake_failure(e), Some(HandshakeFailure::Rejected)))
        }
        _ => false,
    }
}

/// Why an incoming connection failed, in words for the log.
pub fn describe_listen_error(error: &ListenError) -> String {
    match error {
        ListenError::Transport(e) => describe(e),
        other => other.to_string(),
    }
}

/// The log's explanation for a handshake the other side broke off, which is
/// what the side that accepted the connection sees when the secrets differ.
pub const HANDSHAKE_ABORTED: &str =
    "the other side broke off the handshake: wrong or missing cluster secret, or not a shoal peer?";

/// How a noise handshake ended badly, if it did.
enum HandshakeFailure {
    /// The cryptography failed: between shoal peers, different secrets.
    Rejected,
    /// The connection broke or carried garbage mid-handshake.
    Aborted,
}

fn handshake_failure(error: &(dyn Error + 'static)) -> Option<HandshakeFailure> {
    let noise_error = find::<noise::Error>(error)?;
    Some(match noise_error {
        // libp2p-noise reports a failed decryption (the prologues differ) as
        // invalid data wrapping the cipher's error.
        noise::Error::Io(io)
            if io.kind() == io::ErrorKind::InvalidData
                && io.to_string().to_lowercase().contains("decrypt") =>
        {
            HandshakeFailure::Rejected
        }
        noise::Error::Io(_) => HandshakeFailure::Aborted,
        _ => HandshakeFailure::Rejected,
    })
}

fn describe(error: &(dyn Error + 'static)) -> String {
    match handshake_failure(error) {
        Some(HandshakeFailure::Rejected) => return HANDSHAKE_FAILED.into(),
        Some(HandshakeFailure::Aborted) => return HANDSHAKE_ABORTED.into(),
        None => {}
    }
    let text = chain_text(error);
    let lower = text.to_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("timeout has been reached") || lower.contains("timed out") {
        "timed out".into()
    } else if lower.contains("connection reset") {
        "connection reset".into()
    } else if lower.contains("multistream select failed") || lower.contains("protocol negotiation")
    {
        "the other side does not speak shoal's protocol".into()
    } else if lower.contains("network is unreachable") || lower.contains("no route to host") {
        "no route to that address".into()
    } else {
        text
    }
}

/// The first error of type `T` anywhere in the chain, looking inside
/// `io::Error`s too (whose `source` skips the error they wrap).
fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| find::<T>(inner))
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Every message in the chain, inside wrapped `io::Error`s too, on one
/// line.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    collect_messages(error, &mut parts);
    let text = parts.join(": ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn collect_messages(error: &(dyn Error + 'static), parts: &mut Vec<String>) {
    let mut current = Some(error);
    while let Some(e) = current {
        let part = e.to_string();
        let part = part.trim().trim_start_matches(':').trim().to_owned();
        if !part.is_empty() && !parts.iter().any(|p| p.contains(&part)) {
            parts.push(part);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            collect_messages(inner, parts);
        }
        current = e.source();
    }
}
