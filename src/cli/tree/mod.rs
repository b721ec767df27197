//! `shoal put -r DIR` and `shoal get -r PREFIX`: whole directory trees.
//!
//! `put -r` stores every regular file under DIR as `PREFIX/relative/path`
//! (PREFIX defaults to DIR's base name; `--name ''` means no prefix, so
//! the names are the relative paths themselves). `get -r` writes every
//! file whose name starts with `PREFIX/` to DIR, at its name less that
//! prefix. Both run up to `--jobs` transfers at once over one client.
//!
//! **Conventions** (`walk`): symbolic links are skipped unless `-L` (then
//! followed, loops skipped); FIFOs, sockets and devices are always skipped;
//! every directory is stored as an empty file named `PREFIX/rel/dir/` (the
//! S3 folder marker), which keeps empty directories and every directory's
//! mode and time, and which `get -r` turns back into a directory; a local
//! name that is not UTF-8 fails.
//!
//! **Mode and time.** Every file and directory is stored with its
//! permission bits and modification time; `get -r` restores them (unless
//! `--no-preserve`): a file's before it is renamed into place, the
//! directories' once everything is written, deepest first.
//!
//! **Names are keys, not paths** (`paths`): `get -r` never writes outside
//! DIR. A name with a `.`, `..` or empty piece (`/x`, `a//b`), or a piece
//! over 255 bytes, fails without being written; of `a` and `a/b` the first
//! in name order is written and the other fails; a folder marker with
//! content fails. No symbolic link already inside DIR is followed
//! (`download`).
//!
//! **Resume.** Both commands skip, as "unchanged", a file whose size and
//! BLAKE3 already match on the other side (`compare`), so an interrupted
//! run is simply run again. `put -r` also sends again a file whose mode or
//! time differ from those stored; `get -r` only sets them again. `put -r` reads the listing of PREFIX in step
//! with its walk, which comes in the same order (`listing`), instead of
//! holding it all.
//!
//! **Durability of `get -r`.** Files are renamed into place as each
//! verifies but, except for multi-chunk files (which take `shoal get`'s own
//! path), not synced one by one, which would make thousands of small files
//! slow; instead the file system holding DIR is synced once (`syncfs`) at
//! the end. After `get -r` exits 0 everything it wrote is durable. After a
//! crash mid-run, some files renamed into place may be empty or short; a
//! re-run finds them (their size or BLAKE3 differs) and fetches them again.
//! A file system mounted inside DIR is not covered by the sync.
//!
//! **Memory** stays bounded whatever the tree's size: the walk holds one
//! directory's entries per level, the listing a page or two ahead, and each
//! transfer at most a small file (`upload::WHOLE_FILE_LIMIT`) or a stream.
//!
//! SIGINT or SIGTERM stops every transfer; temporary files are removed
//! before the command exits.

mod compare;
mod download;
mod listing;
mod paths;
mod pool;
mod report;
mod upload;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chunk::{FileAttributes, FileName, MAX_NAME_LEN};
use crate::cli::attrs;
use crate::client::Client;
use listing::{Cursor, Listing};
use pool::Pool;
use report::{Direction, Outcome, Report, Subject};
use walk::{Entry, Walk};

/// Walk entries found but not yet handed to an upload.
const WALK_AHEAD: usize = 256;

/// Transfers at once unless `--jobs` says otherwise.
pub const DEFAULT_JOBS: usize = 16;

/// `shoal put -r DIR [--name PREFIX]`: stores every regular file under
/// `dir`; see the module documentation.
///
/// # Errors
/// `dir` is not a readable directory, the prefix is not a valid name, the
/// peer cannot be reached, some file failed (each has its own `error:`
/// line), or the user interrupted.
pub async fn put_tree(
    client: &Client,
    dir: &Path,
    name: Option<&str>,
    jobs: usize,
    follow_links: bool,
    json: bool,
) -> Result<()> {
    let prefix = put_prefix(dir, name)?;
    let walk =
        Walk::new(dir, follow_links).with_context(|| format!("cannot walk {}", dir.display()))?;
    let cancel = CancellationToken::new();
    let (tx, mut entries) = mpsc::channel(WALK_AHEAD);
    tokio::task::spawn_blocking({
        let cancel = cancel.clone();
        move || {
            for entry in walk {
                if cancel.is_cancelled() || tx.blocking_send(entry).is_err() {
                    return;
                }
            }
        }
    });
    let mut cursor = Cursor::new(Listing::spawn(client.clone(), prefix.clone()));
    let mut report = Report::new(Direction::Put);
    let mut pool = Pool::new(jobs);

    let run = async {
        let mut walking = true;
        while walking || !pool.is_empty() {
            tokio::select! {
                biased;
                Some(done) = pool.next() => {
                    let (subject, outcome) = done?;
                    report.record(subject, outcome);
                }
                entry = entries.recv(), if walking && !pool.is_full() => match entry {
                    None => {
                        walking = false;
                        report.found_all();
                    }
                    Some(entry) => {
                        plan_upload(
                            client, &prefix, entry, &mut cursor, &mut report, &mut pool, &cancel,
                        )
                        .await?;
                    }
                },
            }
        }
        Ok(())
    };
    let result = tokio::select! {
        result = run => Some(result),
        () = super::interrupted() => None,
    };
    conclude(result, pool, report, &cancel, json, "put -r").await
}

/// The prefix names get, with its `/` (empty for no prefix).
fn put_prefix(dir: &Path, name: Option<&str>) -> Result<String> {
    let prefix = match name {
        Some(name) => name.strip_suffix('/').unwrap_or(name).to_owned(),
        None => {
            let base = match dir.file_name() {
                Some(base) => Some(base.to_owned()),
                // `.` or `..`: the directory's own name.
                None => std::fs::canonicalize(dir)
                    .ok()
                    .and_then(|p| p.file_name().map(ToOwned::to_owned)),
            };
            base.and_then(|b| b.to_str().map(str::to_owned))
                .ok_or_else(|| {
                    anyhow!(
                        "cannot derive a prefix from {}; pass --name PREFIX",
                        dir.display()
                    )
                })?
        }
    };
    if prefix.is_empty() {
        return Ok(prefix);
    }
    FileName::new(prefix.as_str()).context("invalid prefix")?;
    Ok(format!("{prefix}/"))
}

/// Counts a walk entry and starts its upload, unless it is skipped or
/// failed already.
async fn plan_upload(
    client: &Client,
    prefix: &str,
    entry: Entry,
    cursor: &mut Cursor,
    report: &mut Report,
    pool: &mut Pool,
    cancel: &CancellationToken,
) -> Result<()> {
    let (path, rel, kind, attributes) = match entry {
        Entry::Skipped { path, reason } => {
            report.found(0);
            report.record(Subject::path(&path), Outcome::Skipped(reason));
            return Ok(());
        }
        Entry::Failed { path, reason } => {
            report.found(0);
            report.record(Subject::path(&path), Outcome::Failed(reason));
            return Ok(());
        }
        // The root stored without a prefix has nothing to be called.
        Entry::Dir { rel, .. } if prefix.is_empty() && rel.is_empty() => return Ok(()),
        Entry::Dir {
            path,
            rel,
            attributes,
        } => (path, rel, upload::JobKind::Marker, attributes),
        Entry::File {
            path,
            rel,
            size,
            attributes,
        } => (path, rel, upload::JobKind::File(size), attributes),
    };
    let size = match kind {
        upload::JobKind::File(size) => size,
        upload::JobKind::Marker => 0,
    };
    report.found(size);
    let subject = Subject::path(&path);
    let name = match FileName::new(format!("{prefix}{rel}")) {
        Ok(name) => name,
        Err(e) => {
            report.record(subject, Outcome::Failed(e.to_string()));
            return Ok(());
        }
    };
    let stored = cursor
        .find(name.as_str())
        .await
        .context("cannot list what is stored already")?;
    let job = upload::Job {
        path,
        name,
        kind,
        attributes,
        stored,
    };
    pool.spawn(
        subject,
        upload::upload(client.clone(), job, report.bar(), cancel.clone()),
    );
    Ok(())
}

/// `shoal get -r PREFIX [-o DIR]`: writes every file under `PREFIX/` into
/// `output`, with the mode and time each was put with if `preserve`; see
/// the module documentation.
///
/// # Errors
/// The prefix or directory is unusable, the peer cannot be reached, some
/// file failed (each has its own `error:` line), the directory cannot be
/// synced, or the user interrupted.
pub async fn get_tree(
    client: &Client,
    prefix: &str,
    output: Option<&Path>,
    jobs: usize,
    json: bool,
    preserve: bool,
) -> Result<()> {
    if prefix.len() > MAX_NAME_LEN {
        bail!(
            "the prefix is {} bytes long; names, and so prefixes, are at most {MAX_NAME_LEN}",
            prefix.len()
        );
    }
    let root = get_root(prefix, output)?;
    // The prefix's own marker describes the directory only if this run
    // makes it: an existing directory (`-o ~`) keeps its mode and time.
    let root_is_new = std::fs::symlink_metadata(&root).is_err();
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    if !std::fs::metadata(&root).is_ok_and(|m| m.is_dir()) {
        bail!("{} is not a directory", root.display());
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    let root = Arc::new(root);
    let cancel = CancellationToken::new();
    let mut listing = Listing::spawn(client.clone(), prefix.clone());
    let mut claims = paths::Claims::default();
    let mut folders = Folders::default();
    let mut report = Report::new(Direction::Get);
    let mut pool = Pool::new(jobs);

    let run = async {
        let mut listing_open = true;
        while listing_open || !pool.is_empty() {
            tokio::select! {
                biased;
                Some(done) = pool.next() => {
                    let (subject, outcome) = done?;
                    report.record(subject, outcome);
                }
                entry = listing.next(), if listing_open && !pool.is_full() => match entry {
                    None => {
                        listing_open = false;
                        report.found_all();
                    }
                    Some(Err(e)) => {
                        return Err(anyhow!(e).context(format!("cannot list {prefix:?}")));
                    }
                    Some(Ok(entry)) => {
                        let subject = Subject::Name(entry.name.clone());
                        match plan_download(&root, &prefix, entry, &mut claims, preserve) {
                            Ok(job) => {
                                if let paths::Target::Dir(rel) = &job.target
                                    && (root_is_new || !rel.as_os_str().is_empty())
                                {
                                    folders.note(root.join(rel), &job);
                                }
                                report.found(job.entry.size);
                                let bar = report.bar();
                                let transfer =
                                    download::download(client.clone(), job, bar, cancel.clone());
                                pool.spawn(subject, transfer);
                            }
                            Err(reason) => {
                                report.found(0);
                                report.record(subject, Outcome::Failed(reason));
                            }
                        }
                    }
                },
            }
        }
        // Not after a failure: a directory made read-only could not take
        // the files a second run fetches.
        if !report.has_failures() {
            folders.restore().await;
        }
        sync(&root).await
    };
    let result = tokio::select! {
        result = run => Some(result),
        () = super::interrupted() => None,
    };
    conclude(result, pool, report, &cancel, json, "get -r").await
}

/// The directories `get -r` wrote, with the mode and time to give each
/// once everything inside it is written. One entry per directory of the
/// tree: far fewer than its files.
#[derive(Debug, Default)]
struct Folders {
    pending: Vec<(PathBuf, FileAttributes)>,
}

impl Folders {
    /// Remembers the directory a folder marker's job makes.
    fn note(&mut self, path: PathBuf, job: &download::Job) {
        let attributes = attrs::of_report(job.entry.mode.as_deref(), job.entry.mtime.as_deref());
        if job.preserve && !attributes.is_empty() {
            self.pending.push((path, attributes));
        }
    }

    /// Gives every directory its mode and time, deepest first (names came
    /// in order, so a directory's come after its parent's), so that
    /// setting a directory's time is the last change inside its parent.
    /// A refusal is a warning (see `attrs`).
    async fn restore(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let restored = tokio::task::spawn_blocking(move || {
            for (path, attributes) in pending.iter().rev() {
                let real_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
                if real_dir && let Err(error) = attrs::apply_at(path, attributes) {
                    attrs::warn(path, &error);
                }
            }
        })
        .await;
        if let Err(error) = restored {
            eprintln!("warning: directories kept their own mode and time: {error}");
        }
    }
}

/// Where `get -r` writes: `output`, or the prefix's last segment.
fn get_root(prefix: &str, output: Option<&Path>) -> Result<PathBuf> {
    match output {
        Some(p) if p == Path::new("-") => {
            bail!("get -r writes a directory; it cannot write to stdout")
        }
        Some(p) if p.as_os_str().is_empty() => bail!("the output directory is empty"),
        Some(p) => Ok(p.to_owned()),
        None => {
            let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
            match trimmed.rsplit('/').next().unwrap_or(trimmed) {
                "" | "." | ".." => {
                    bail!("cannot derive a directory name from the prefix {prefix:?}; pass -o DIR")
                }
                last => Ok(PathBuf::from(last)),
            }
        }
    }
}

/// Decides where a listed file goes, or why it cannot be written.
fn plan_download(
    root: &Arc<PathBuf>,
    prefix: &str,
    entry: crate::api::FileEntry,
    claims: &mut paths::Claims,
    preserve: bool,
) -> std::result::Result<download::Job, String> {
    let rel = paths::relative(&entry.name, prefix)
        .ok_or_else(|| format!("the peer listed it, but it does not start with {prefix:?}"))?;
    let target = paths::target(rel, entry.size).map_err(|e| e.to_string())?;
    claims.claim(rel, &target).map_err(|e| e.to_string())?;
    let name = FileName::new(entry.name.as_str()).map_err(|e| e.to_string())?;
    Ok(download::Job {
        root: Arc::clone(root),
        name,
        entry,
        target,
        preserve,
    })
}

/// Makes everything written under `root` durable at once.
async fn sync(root: &Path) -> Result<()> {
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = std::fs::File::open(&root)?;
        rustix::fs::syncfs(&dir)?;
        Ok::<_, std::io::Error>(())
    })
    .await?
    .context("cannot sync the files written to disk")
}

/// Reports how a run ended: `None` if the user interrupted it. On an
/// interruption or an error every transfer is stopped first, which removes
/// their temporary files.
async fn conclude(
    result: Option<Result<()>>,
    mut pool: Pool,
    report: Report,
    cancel: &CancellationToken,
    json: bool,
    command: &str,
) -> Result<()> {
    match result {
        Some(Ok(())) => report.finish(json),
        stopped => {
            cancel.cancel();
            pool.stop().await;
            report.abandon();
            match stopped {
                Some(Err(e)) => Err(e),
                _ => bail!("{command} interrupted; what finished is kept, run it again to resume"),
            }
        }
    }
}
