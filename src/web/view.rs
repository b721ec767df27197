//! What the templates show, already in words and units: the handlers fill
//! these, the templates only lay them out.

use askama::Template;
use indicatif::HumanBytes;

use crate::chunk::Mtime;

/// The navigation and refresh settings every page shares.
pub struct Nav {
    /// Which page this is (`overview`, `peers`, `files`, `activity`).
    pub page: &'static str,
    /// This peer's short id.
    pub peer: String,
    /// The page's own address, for refreshing it in place; empty for a page
    /// that does not refresh.
    pub refresh: String,
    /// Whether the page is behind a sign-in (it then offers to sign out).
    pub gated: bool,
}

/// One member as the pages show it.
pub struct PeerView {
    /// The last characters of its id.
    pub short: String,
    /// Its whole id.
    pub id: String,
    /// `alive`, `suspect`, `dead` or `leaving`.
    pub state: &'static str,
    /// Whether it is the peer serving the page.
    pub this_peer: bool,
    /// Where it listens (its API, else its first swarm address).
    pub address: String,
    /// How long ago it was last heard from directly.
    pub last_heard: String,
    /// Its share of the ring, as a percentage.
    pub share: String,
    /// Bytes of chunks it stores.
    pub stored: String,
    /// Its disk use: used, capacity, and the used percentage for the bar.
    pub used: String,
    /// What it can hold.
    pub capacity: String,
    /// `used` as a whole percentage of `capacity`.
    pub used_percent: u64,
    /// Chunk bytes it sent and received for transfers it coordinated.
    pub sent: String,
    /// See `sent`.
    pub received: String,
    /// The shoal release it runs.
    pub version: String,
}

/// The answer to "is my data safe?".
pub struct Verdict {
    /// `ok`, `warn` or `bad`, for the colour.
    pub level: &'static str,
    /// One sentence.
    pub headline: String,
    /// What else to know, one line each.
    pub details: Vec<String>,
}

/// `/`.
#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub verdict: Verdict,
    /// Bytes the swarm can still take at its copy count.
    pub usable_free: String,
    /// Bytes stored, counted once (not per copy).
    pub stored_once: String,
    /// The copy count.
    pub copies: usize,
    pub peers: Vec<PeerView>,
}

/// `/peers`.
#[derive(Template)]
#[template(path = "peers.html")]
pub struct PeersPage {
    pub nav: Nav,
    pub peers: Vec<PeerView>,
}

/// A folder in a listing.
pub struct FolderView {
    /// Its name, ending in `/`.
    pub label: String,
    /// Its whole prefix, for the link.
    pub prefix: String,
}

/// A file in a listing.
pub struct FileView {
    /// The part of its name after the listed prefix.
    pub label: String,
    /// Its whole name.
    pub name: String,
    pub size: String,
    /// Its modification time if it was put with one, or else when its
    /// current version was written.
    pub written: String,
    /// The fewest copies any of its parts has, as confirmed now.
    pub copies: String,
    /// Whether that is fewer than the swarm keeps.
    pub short_of_copies: bool,
}

/// `/files`.
#[derive(Template)]
#[template(path = "files.html")]
pub struct FilesPage {
    pub nav: Nav,
    /// The token uploads from the page carry.
    pub csrf: String,
    pub prefix: String,
    /// Each parent prefix, for the path bar: (label, prefix).
    pub crumbs: Vec<(String, String)>,
    pub folders: Vec<FolderView>,
    pub files: Vec<FileView>,
    /// Where the next page starts, if there is one.
    pub more_after: Option<String>,
}

/// One chunk on a file's page.
pub struct ChunkView {
    pub index: usize,
    pub size: String,
    pub blake3: String,
    /// Short ids of the peers that confirm holding it.
    pub holders: Vec<String>,
}

/// `/file`.
#[derive(Template)]
#[template(path = "file.html")]
pub struct FilePage {
    pub nav: Nav,
    pub name: String,
    /// The folder it is in, for the link back.
    pub folder: String,
    pub size: String,
    pub blake3: String,
    pub version: String,
    pub written: String,
    /// The modification time it was put with, if any.
    pub modified: Option<String>,
    /// The permission bits it was put with, if any.
    pub mode: Option<String>,
    /// Kept in its manifest rather than as a chunk.
    pub inline: bool,
    pub manifest_holders: Vec<String>,
    pub chunks: Vec<ChunkView>,
    pub csrf: String,
}

/// One event on the activity page.
pub struct EventView {
    pub when: String,
    pub level: &'static str,
    pub text: String,
}

/// `/activity`.
#[derive(Template)]
#[template(path = "activity.html")]
pub struct ActivityPage {
    pub nav: Nav,
    pub events: Vec<EventView>,
}

/// A page for an error: what went wrong and where to go.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub nav: Nav,
    pub message: String,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub nav: Nav,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

/// Bytes for people.
pub fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

/// A time as UTC, to the second.
pub fn time(ms: u64) -> String {
    /// 9999-12-31 23:59:59 UTC: the last time RFC 3339 can write, and far
    /// past any clock that works. (A record from a broken clock may say
    /// anything.)
    const LAST_WRITABLE: u64 = 253_402_300_799;
    let secs = ms / 1000;
    if secs > LAST_WRITABLE {
        return "after the year 9999".into();
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// A file's modification time as UTC, to the second.
pub fn modified(mtime: Mtime) -> String {
    match u64::try_from(mtime.secs) {
        Ok(secs) => time(secs.saturating_mul(1000)),
        Err(_) => "before 1970".into(),
    }
}

/// A duration for people, to the second (or "now" under one).
pub fn ago(ms: u64) -> String {
    if ms < 1000 {
        return "now".into();
    }
    let rounded = std::time::Duration::from_secs(ms / 1000);
    format!("{} ago", humantime::format_duration(rounded))
}
