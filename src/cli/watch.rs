//! `shoal status --watch`: the swarm's overview redrawn in the terminal
//! every second (the verdict, repair's progress, every member) until
//! interrupted. A peer that stops answering is said so on the screen, and
//! the watch goes on until it answers again.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use indicatif::HumanBytes;

use crate::api::{OverviewResponse, StatusResponse};
use crate::client::{Client, chain};

/// How often the screen is redrawn.
const EVERY: Duration = Duration::from_secs(1);

/// Redraws until Ctrl-C. On a terminal each frame replaces the last;
/// otherwise frames follow each other, separated by a blank line.
///
/// # Errors
/// Only if standard output cannot be written.
pub async fn watch(client: &Client) -> Result<()> {
    let terminal = std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = ticks.tick() => {}
        }
        let frame = match tokio::try_join!(client.status(), client.overview()) {
            Ok((status, overview)) => frame(&status, &overview),
            Err(e) => format!("cannot reach the peer at {}: {}\n", client.url(), chain(&e)),
        };
        let mut out = std::io::stdout().lock();
        if terminal {
            // Home, then clear to the end: the new frame over the old.
            write!(out, "\x1b[H\x1b[2J{frame}")?;
        } else {
            writeln!(out, "{frame}")?;
        }
        out.flush()?;
    }
}

/// One screen: the verdict, what is stored and free, repair, members.
fn frame(s: &StatusResponse, o: &OverviewResponse) -> String {
    let mark = match o.level.as_str() {
        "ok" => "OK",
        "warn" => "WARNING",
        _ => "DANGER",
    };
    let mut text = format!("{mark}: {}\n", o.headline);
    for line in &o.details {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(&format!(
        "{} stored (counted once), {} free at {} copies\n",
        HumanBytes(o.stored_bytes),
        HumanBytes(o.free_bytes),
        o.copies
    ));
    let r = &s.repair;
    text.push_str(&format!(
        "repair on this peer: {} items short of a copy, {} queued, {} sent since start\n\n",
        r.under_replicated,
        HumanBytes(r.queued_bytes),
        HumanBytes(r.bytes_sent)
    ));
    text.push_str(&format!(
        "{:<10} {:<8} {:<24} {:>12} {}\n",
        "PEER", "STATE", "API", "LAST HEARD", "DISK"
    ));
    for m in &s.members {
        let id = &m.peer_id[m.peer_id.len().saturating_sub(8)..];
        let heard = match (m.this_peer, m.last_heard_ms) {
            (true, _) => "this peer".to_owned(),
            (false, Some(ms)) => format!("{:.1}s ago", ms as f64 / 1000.0),
            (false, None) => "never".to_owned(),
        };
        text.push_str(&format!(
            "{:<10} {:<8} {:<24} {:>12} {} of {}\n",
            id,
            m.state,
            m.api.as_deref().unwrap_or("-"),
            heard,
            HumanBytes(m.used_bytes),
            HumanBytes(m.capacity_bytes)
        ));
    }
    text
}
