//! Running a scenario with a crash at each of its steps, under both crash
//! models, and checking what a reopened store holds.
//!
//! A scenario brings a fresh store to an acknowledged starting state, then
//! runs one operation as the layers above would (a put is its chunk writes,
//! then its record). The starting state is prepared once, closed, and
//! copied into a fresh directory for every run (preparing it each time
//! would cost most of the runs' time); the store is reopened on the copy,
//! under a fresh switch, before the operation starts. A first run only
//! counts the operation's steps, N, through to the store's shutdown; then
//! for every k in 1..=N+1 and each model the operation runs again on a
//! fresh copy with the switch armed at step k (at N+1 nothing fails: the crash comes after a clean shutdown,
//! which for power loss still undoes whatever was never synced). The store
//! is dropped, the power-loss undo applied if that is the model, and the
//! store reopened normally, with no switch. The reopened store must pass the
//! general audit (`crash_checks`), before and after a collection pass, and
//! the scenario's own check: everything acknowledged is there, and the call
//! in flight is wholly applied or wholly absent.
//!
//! The scenarios themselves are in `crash_tests`.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use tempfile::TempDir;

use super::crash_checks::{Audit, audit};
use super::crash_points::CrashSwitch;
use super::tests::{close, manifest, put_for, reference};
use super::{ChunkWrite, FileRecord, GcPolicy, Reference, Store};
use crate::chunk::ChunkRef;
use crate::config::StoreConfig;

/// A chunk's description and bytes.
pub(super) type TestChunk = (ChunkRef, Bytes);

/// A store and its writer thread.
pub(super) type Running = (Store, JoinHandle<()>);

/// Collects everything collectable, at once.
pub(super) const EVERYTHING: GcPolicy = GcPolicy {
    grace_ms: 0,
    tombstone_ttl_ms: 0,
};

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 64 * 1024,
        ..StoreConfig::default()
    }
}

/// One store call of an operation.
pub(super) enum Call {
    /// Opening the store (recovery).
    Open,
    /// A chunk stored with one reference.
    Chunk(TestChunk, Reference),
    Record(FileRecord),
    Collect(GcPolicy),
}

/// Makes one call; says whether it was acknowledged.
async fn apply(
    running: &mut Option<Running>,
    dir: &Path,
    switch: &Arc<CrashSwitch>,
    call: &Call,
) -> bool {
    let store = match (call, &*running) {
        (Call::Open, _) => {
            let Ok((store, writer)) = Store::open_crashable(dir, &config(), switch) else {
                return false;
            };
            *running = Some((store, writer.spawn().unwrap()));
            return true;
        }
        (_, Some((store, _))) => store,
        (_, None) => return false,
    };
    let done = match call {
        Call::Open => unreachable!("handled above"),
        Call::Chunk(c, r) => store
            .put_chunk(ChunkWrite {
                hash: c.0.hash,
                md5: c.0.md5,
                data: c.1.clone(),
                references: vec![r.clone()],
                hint_for: None,
            })
            .await
            .map(drop),
        Call::Record(record) => store.put_record(record.clone()).await.map(drop),
        Call::Collect(policy) => store.collect_garbage(*policy).await.map(drop),
    };
    done.is_ok()
}

/// The crash models (see `crash_points`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    ProcessDeath,
    PowerLoss,
}

/// An operation to crash, with the state it starts from and what it may
/// leave behind.
pub(super) trait Scenario {
    const NAME: &'static str;
    /// Brings the fresh directory `dir` to the starting state, all of it
    /// acknowledged, with `switch` (not armed) under every store it opens;
    /// returns the store if the operation runs on an open one. The state is
    /// copied for each run, which does not keep holes: nothing may have
    /// been punched yet.
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running>;
    /// The operation's store calls, in order; a failed call ends it.
    fn calls(&self) -> Vec<Call>;
    /// What the reopened store must hold, given how many calls were
    /// acknowledged before the crash.
    fn check(&self, found: &Audit, acked: usize, context: &str);
}

/// Opens the store in `dir` with `switch` under it.
pub(super) fn open_switched(dir: &Path, switch: &Arc<CrashSwitch>) -> Running {
    let (store, writer) = Store::open_crashable(dir, &config(), switch).unwrap();
    (store, writer.spawn().unwrap())
}

/// Stores a file as a put does: its chunks, then its record. One call at a
/// time, so that every run batches alike and takes the same steps.
pub(super) async fn put_file(store: &Store, name: &str, hlc: u64, chunks: &[&TestChunk]) {
    let r = reference(name, hlc);
    for c in chunks {
        put_for(store, c, std::slice::from_ref(&r)).await;
    }
    store.put_record(manifest(name, hlc, chunks)).await.unwrap();
}

/// Whether `name` is live at clock `hlc` with exactly `chunks`, each intact.
pub(super) fn is_file(found: &Audit, name: &str, hlc: u64, chunks: &[&TestChunk]) -> bool {
    let listed: Vec<ChunkRef> = chunks.iter().map(|c| c.0).collect();
    let record = matches!(
        found.records.get(name),
        Some(FileRecord::Live(m)) if m.version.hlc.0 == hlc && m.chunks == listed
    );
    record && chunks.iter().all(|c| holds(found, c))
}

/// Whether `c` is stored, intact.
pub(super) fn holds(found: &Audit, c: &TestChunk) -> bool {
    found.holds(&c.0.hash, &c.1)
}

/// Whether the reference (`name`, `hlc`) holds `c`.
pub(super) fn held_by(found: &Audit, c: &TestChunk, name: &str, hlc: u64) -> bool {
    found
        .holders_of(&c.0.hash)
        .contains(&(name.to_owned(), hlc))
}

/// A scenario's starting state, prepared once and copied for every run.
struct Template {
    dir: TempDir,
    /// Whether the operation runs on an open store (opened on the copy
    /// before the switch is armed) rather than opening one itself.
    open: bool,
}

impl Template {
    async fn prepare<S: Scenario>(scenario: &S) -> Template {
        let dir = tempfile::tempdir().unwrap();
        let switch = Arc::new(CrashSwitch::default());
        let running = scenario.prepare(dir.path(), &switch).await;
        let open = running.is_some();
        if let Some((store, thread)) = running {
            close(store, thread).await;
        }
        Template { dir, open }
    }

    /// A fresh copy of the starting state, and the store on it if the
    /// operation runs on an open one, with `switch` under it.
    fn start(&self, switch: &Arc<CrashSwitch>) -> (TempDir, Option<Running>) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), dir.path());
        let running = self.open.then(|| open_switched(dir.path(), switch));
        (dir, running)
    }
}

/// Copies the files under `from` into `to`. Holes are not kept, so a
/// starting state must not have punched any.
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the operation to its end and says how many steps it took, by kind.
async fn count_steps(template: &Template, calls: &[Call]) -> (u64, String) {
    let switch = Arc::new(CrashSwitch::default());
    let (dir, mut running) = template.start(&switch);
    let start = switch.steps();
    switch.arm(u64::MAX - start);
    for call in calls {
        assert!(
            apply(&mut running, dir.path(), &switch, call).await,
            "a call failed with no crash"
        );
    }
    if let Some((store, thread)) = running {
        close(store, thread).await;
    }
    (switch.steps() - start, format!("{:?}", switch.tally()))
}

/// Runs the scenario with the crash at step `k` of `n`, then reopens and
/// checks. Says whether the crash happened.
async fn crash_once<S: Scenario>(
    scenario: &S,
    template: &Template,
    calls: &[Call],
    model: Model,
    k: u64,
    n: u64,
) -> bool {
    let switch = Arc::new(CrashSwitch::default());
    let (dir, mut running) = template.start(&switch);
    switch.arm(k);
    let mut acked = 0;
    for call in calls {
        if !apply(&mut running, dir.path(), &switch, call).await {
            break;
        }
        acked += 1;
    }
    if let Some((store, thread)) = running {
        close(store, thread).await;
    }
    let crashed = switch.crashed();
    if model == Model::PowerLoss {
        switch.power_loss();
    }
    let context = format!(
        "{}, {model:?} at step {k} of {n} ({}), {acked} of {} calls acknowledged",
        S::NAME,
        crashed.as_deref().unwrap_or("after the last step"),
        calls.len()
    );
    assert!(
        crashed.is_some() || acked == calls.len(),
        "{context}: a call failed with no crash"
    );

    let (store, writer) = Store::open(dir.path(), &config())
        .unwrap_or_else(|e| panic!("{context}: the store does not open again: {e}"));
    let thread = writer.spawn().unwrap();
    let found = audit(&store, &context).await;
    scenario.check(&found, acked, &context);
    store.collect_garbage(EVERYTHING).await.unwrap();
    audit(&store, &format!("{context}, after a collection pass")).await;
    close(store, thread).await;
    crashed.is_some()
}

/// Crashes the scenario at each of its steps under each model, and says
/// how many steps that was.
pub(super) async fn crash_everywhere<S: Scenario>(scenario: S) -> u64 {
    let started = Instant::now();
    let template = Template::prepare(&scenario).await;
    let calls = scenario.calls();
    let (n, tally) = count_steps(&template, &calls).await;
    let mut crashes = 0;
    for model in [Model::ProcessDeath, Model::PowerLoss] {
        for k in 1..=n + 1 {
            let crashed = crash_once(&scenario, &template, &calls, model, k, n).await;
            crashes += u64::from(crashed);
        }
    }
    eprintln!(
        "{}: {n} crash points per model, {tally}; {crashes} crashes in {:.1?}",
        S::NAME,
        started.elapsed()
    );
    assert_eq!(crashes, 2 * n, "{}: every step must be crashed at", S::NAME);
    n
}
