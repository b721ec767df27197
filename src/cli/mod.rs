//! The command-line side: one function per subcommand, printing human text
//! or, with `--json`, JSON whose field names are a stable contract.
//!
//! These functions return `anyhow` errors with context; `main` prints them
//! as one `error: ...` line. Results go to stdout, progress and diagnostics
//! to stderr.

mod attrs;
mod get;
mod partial;
mod progress;
mod put;
pub mod s3;
pub mod token;
mod tree;
pub mod verify;
pub mod watch;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use indicatif::HumanBytes;

pub use get::get;
pub use put::put;
pub use tree::{DEFAULT_JOBS, get_tree, put_tree};

use crate::api::{FileEntry, StatResponse, StatusResponse};
use crate::chunk::{FileName, MAX_NAME_LEN};
use crate::client::Client;
use crate::identity;
use crate::secret::ClusterSecret;

/// Files fetched per listing request.
const LIST_PAGE: usize = 1000;

/// Parses a user-given file name.
fn file_name(raw: &str) -> Result<FileName> {
    Ok(FileName::new(raw)?)
}

/// Prints one line of results on stdout. A failure (such as a closed pipe)
/// is an error to return, never a panic.
fn stdout_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM, so a command can stop and clean
/// up instead of being killed mid-write.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        // Without handlers the default action (exit) applies; never resolve.
        _ => std::future::pending().await,
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A file's modification time in RFC 3339 to the nanosecond, or in
/// seconds since 1970 where RFC 3339 cannot write it (before 1970, after
/// 9999).
fn modified(mtime: crate::chunk::Mtime) -> String {
    const LAST_WRITABLE: i64 = 253_402_300_799;
    match mtime.to_system() {
        Some(time) if (0..=LAST_WRITABLE).contains(&mtime.secs) => {
            humantime::format_rfc3339_nanos(time).to_string()
        }
        _ => format!("{mtime} s since 1970"),
    }
}

pub(crate) fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `shoal id`: prints the peer id of the identity in `data_dir`, creating
/// the identity if there is none yet.
///
/// # Errors
/// The identity cannot be read or created.
pub fn id(data_dir: &Path) -> Result<()> {
    let keypair = identity::load_or_create(data_dir)?;
    stdout_line(&keypair.public().to_peer_id().to_string())
}

/// `shoal keygen`: prints a new cluster secret, or writes it to a new
/// file that only its owner can read.
///
/// # Errors
/// No randomness, or the file exists or cannot be written.
pub fn keygen(output: Option<&Path>) -> Result<()> {
    let secret = ClusterSecret::generate()?;
    let Some(path) = output else {
        return stdout_line(&secret.to_hex());
    };
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", secret.to_hex())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `shoal ls`: lists files whose names start with `prefix`, following
/// pages until the end. JSON output is an array of objects with `name`,
/// `size`, `blake3`, `chunks` and `created_ms`, streamed as it arrives.
///
/// # Errors
/// The peer cannot be reached or refuses.
pub async fn ls(client: &Client, prefix: &str, json: bool) -> Result<()> {
    if prefix.len() > MAX_NAME_LEN {
        anyhow::bail!(
            "the prefix is {} bytes long; names, and so prefixes, are at most {MAX_NAME_LEN}",
            prefix.len()
        );
    }
    let mut out = std::io::stdout().lock();
    let mut after: Option<String> = None;
    let mut first = true;
    if json {
        write!(out, "[")?;
    }
    loop {
        let page = client.list(prefix, after.as_deref(), LIST_PAGE).await?;
        for file in &page.files {
            if json {
                write!(
                    out,
                    "{}\n  {}",
                    if first { "" } else { "," },
                    serde_json::to_string(file)?
                )?;
            } else {
                print_entry(&mut out, file)?;
            }
            first = false;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if json {
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(())
}

fn print_entry(out: &mut impl Write, file: &FileEntry) -> Result<()> {
    writeln!(
        out,
        "{:>12}  {}  {}",
        file.size,
        timestamp(file.created_ms),
        file.name
    )?;
    Ok(())
}

/// `shoal rm`: deletes a file.
///
/// # Errors
/// The name is invalid, the file does not exist, or the peer fails.
pub async fn rm(client: &Client, name: &str) -> Result<()> {
    let name = file_name(name)?;
    client.delete(&name).await?;
    stdout_line(&format!("deleted {name}"))
}

/// `shoal stat`: shows a file's manifest and where its chunks are.
///
/// # Errors
/// The name is invalid, the file does not exist, or the peer fails.
pub async fn stat(client: &Client, name: &str, json: bool) -> Result<()> {
    let name = file_name(name)?;
    let stat = client.stat(&name).await?;
    if json {
        return print_json(&stat);
    }
    print_stat(&stat)
}

fn print_stat(stat: &StatResponse) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "name     {}", stat.name)?;
    writeln!(out, "size     {} ({})", stat.size, HumanBytes(stat.size))?;
    writeln!(out, "blake3   {}", stat.blake3)?;
    writeln!(out, "created  {}", timestamp(stat.created_ms))?;
    let attributes = attrs::of_report(stat.mode.as_deref(), stat.mtime.as_deref());
    if let Some(mode) = attributes.mode {
        writeln!(out, "mode     {}", crate::chunk::format_mode(mode))?;
    }
    if let Some(mtime) = attributes.mtime {
        writeln!(out, "modified {}", modified(mtime))?;
    }
    writeln!(
        out,
        "version  {} by {}",
        stat.version.hlc.0, stat.version.writer
    )?;
    writeln!(
        out,
        "chunks   {} of up to {}",
        stat.chunks.len(),
        HumanBytes(u64::from(stat.chunk_size))
    )?;
    for chunk in &stat.chunks {
        let replicas = if chunk.replicas.is_empty() {
            "MISSING".to_owned()
        } else {
            chunk.replicas.join(",")
        };
        writeln!(
            out,
            "  {:>6}  {:>8}  {}  md5 {}  on {}",
            chunk.index, chunk.size, chunk.blake3, chunk.md5, replicas
        )?;
    }
    Ok(())
}

/// `shoal status`: shows the peer, the swarm's members and the store.
///
/// # Errors
/// The peer cannot be reached.
pub async fn status(client: &Client, json: bool) -> Result<()> {
    let status = client
        .status()
        .await
        .context("cannot get the peer's status")?;
    if json {
        return print_json(&status);
    }
    print_status(&status)
}

/// `shoal invite`: prints the line that lets another peer join the swarm
/// (`shoal node --invite LINE`), or with `json` also the addresses it names
/// and the secret's fingerprint.
///
/// # Errors
/// The peer cannot be reached or knows no address to offer.
pub async fn invite(client: &Client, json: bool) -> Result<()> {
    let invite = client.invite().await.context("cannot make an invite")?;
    if json {
        return print_json(&invite);
    }
    stdout_line(&invite.invite)
}

/// `shoal leave`: has the peer hand everything over, then stop.
///
/// # Errors
/// The peer cannot be reached or could not hand everything over.
pub async fn leave(client: &Client, json: bool) -> Result<()> {
    let report = client.leave().await.context("cannot leave")?;
    if json {
        return print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "handed over {} chunk copies ({}) and {} manifests in {:.1}s; the peer is stopping",
        report.copies_sent,
        HumanBytes(report.bytes_sent),
        report.records_sent,
        report.took_ms as f64 / 1000.0
    )?;
    Ok(())
}

/// `shoal scrub`: has the peer re-hash everything it stores now.
///
/// # Errors
/// The peer cannot be reached or the scrub failed.
pub async fn scrub(client: &Client, json: bool) -> Result<()> {
    let report = client.scrub().await.context("scrub failed")?;
    if json {
        return print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "checked {} chunks ({}): {} damaged, {} repaired from other peers, {} not repaired yet",
        report.checked,
        HumanBytes(report.bytes),
        report.damaged,
        report.repaired,
        report.unrepaired
    )?;
    Ok(())
}

/// `1234` ms as `1.2s`, longer spans in whole units.
fn short_duration(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..120_000 => format!("{}s", ms / 1000),
        120_000..7_200_000 => format!("{}m", ms / 60_000),
        _ => format!("{}h", ms / 3_600_000),
    }
}

fn print_status(s: &StatusResponse) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "peer     {}", s.peer_id)?;
    writeln!(out, "version  {}", s.version)?;
    let scheme = if s.tls { "https" } else { "http" };
    writeln!(out, "api      {scheme}://{}", s.api)?;
    if let Some(s3) = &s.s3 {
        writeln!(out, "s3       {scheme}://{s3}")?;
    }
    if !s.listen.is_empty() {
        writeln!(out, "listen   {}", s.listen.join(" "))?;
    }
    writeln!(
        out,
        "uptime   {}",
        humantime::format_duration(Duration::from_secs(s.uptime_s))
    )?;
    writeln!(
        out,
        "store    {} manifests, {} chunks ({} kept for a down owner), {} of data, {} on disk",
        s.store.files,
        s.store.chunks,
        s.store.hinted_chunks,
        HumanBytes(s.store.bytes),
        HumanBytes(s.store.disk_bytes)
    )?;
    writeln!(
        out,
        "space    {} used by current versions, {} awaiting collection ({} version holds)",
        HumanBytes(s.store.referenced_bytes),
        HumanBytes(s.store.unreferenced_bytes),
        s.store.references
    )?;
    writeln!(
        out,
        "copies   {} of every chunk and manifest; writes wait for {}, reads ask {}",
        s.replication.replicas, s.replication.write_quorum, s.replication.read_quorum
    )?;
    let r = &s.repair;
    writeln!(
        out,
        "repair   {} passes; last pass found {} items missing on an owner and held {} chunks and {} manifests for other owners; sent {} copies ({}) and {} manifests; dropped {} surplus copies; {} failed sends",
        r.passes,
        r.under_replicated,
        r.held_chunks,
        r.held_records,
        r.copies_sent,
        HumanBytes(r.bytes_sent),
        r.records_sent,
        r.surplus_dropped,
        r.failures
    )?;
    if let Some(scrub) = &s.last_scrub {
        writeln!(
            out,
            "scrub    last checked {} chunks: {} damaged, {} repaired",
            scrub.checked, scrub.damaged, scrub.repaired
        )?;
    }
    writeln!(
        out,
        "sent     {} in {} chunks to other peers ({} chunk copies were already there); received {}",
        HumanBytes(s.transfer.chunk_bytes_sent),
        s.transfer.chunks_sent,
        s.transfer.chunks_already_held,
        HumanBytes(s.transfer.chunk_bytes_received)
    )?;
    let count = |state: &str| s.members.iter().filter(|m| m.state == state).count();
    writeln!(
        out,
        "members  {} ({} alive, {} suspect, {} dead)",
        s.members.len(),
        count("alive"),
        count("suspect"),
        count("dead")
    )?;
    for m in &s.members {
        let heard = match (m.this_peer, m.last_heard_ms) {
            (true, _) => "this peer".to_owned(),
            (false, Some(ms)) => format!("heard {} ago", short_duration(ms)),
            (false, None) => "never heard".to_owned(),
        };
        let addrs = if m.addrs.is_empty() {
            "-".to_owned()
        } else {
            m.addrs.join(" ")
        };
        writeln!(
            out,
            "  {}  {:<7}  {:<16}  {}",
            m.peer_id, m.state, heard, addrs
        )?;
    }
    Ok(())
}
