//! Crash points in the store's operations: put (a small file kept inside
//! its manifest, and a chunked file), overwrite, delete, collection of
//! chunks past their grace, hole punching and dead segment deletion, the
//! recovery at open that finishes them, and a store's first start. Each
//! scenario is crashed at every one of its persistence steps under both
//! crash models (see `crash_runs` for how, `crash_checks` for what every
//! reopened store must pass); each says here what its operation may and
//! may not leave.
//!
//! Chunk sizes are whole file-system blocks, so that the space audit can
//! demand every freed block back (a block shared by two freed chunks is
//! only given back with its segment, by design).

use std::path::Path;
use std::sync::Arc;

use super::crash_checks::Audit;
use super::crash_points::CrashSwitch;
use super::crash_runs::{
    Call, EVERYTHING, Running, Scenario, TestChunk, crash_everywhere, held_by, holds, is_file,
    open_switched, put_file,
};
use super::tests::{chunk, close, manifest, put_for, reference, tombstone};
use super::{FileName, FileRecord, GcPolicy, Reference, Store, Version};
use crate::chunk::{ChunkRef, Extensions, Hlc, Manifest, tags};

/// A small file kept inside its manifest: one record write, no chunks.
fn inline_record(name: &str, hlc: u64, content: &[u8]) -> FileRecord {
    let chunk = ChunkRef::compute(content);
    let mut extensions = Extensions::default();
    extensions.set(tags::INLINE, content.to_vec());
    FileRecord::Live(Manifest {
        name: FileName::new(name).unwrap(),
        size: content.len() as u64,
        blake3: chunk.hash,
        chunk_size: 1 << 20,
        chunks: vec![chunk],
        created_ms: 0,
        version: Version {
            hlc: Hlc(hlc),
            writer: "test".into(),
        },
        extensions,
    })
}

/// Putting a small file, kept inside its manifest.
struct PutSmall {
    keep: [TestChunk; 2],
}

impl Scenario for PutSmall {
    const NAME: &'static str = "put of a small file";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        let store = &running.0;
        put_file(store, "keep", 1, &[&self.keep[0], &self.keep[1]]).await;
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::Record(inline_record("note", 1, &[7; 3000]))]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        assert!(
            is_file(found, "keep", 1, &[&self.keep[0], &self.keep[1]]),
            "{context}: keep"
        );
        match found.record("note") {
            None => assert_eq!(acked, 0, "{context}: the acknowledged note is lost"),
            Some((1, true)) => {}
            other => panic!("{context}: note is {other:?}"),
        }
    }
}

/// A store's first start in an empty directory, and a first small file.
struct FirstStart;

impl Scenario for FirstStart {
    const NAME: &'static str = "first start";
    async fn prepare(&self, _dir: &Path, _switch: &Arc<CrashSwitch>) -> Option<Running> {
        None
    }
    fn calls(&self) -> Vec<Call> {
        vec![
            Call::Open,
            Call::Record(inline_record("note", 1, &[9; 2000])),
        ]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        match found.record("note") {
            None => assert!(acked < 2, "{context}: the acknowledged note is lost"),
            Some((1, true)) => {}
            other => panic!("{context}: note is {other:?}"),
        }
    }
}

/// Putting a chunked file whose chunks fill one segment and start the next.
struct PutChunked {
    keep: Vec<TestChunk>,
    big: [TestChunk; 3],
}

impl Scenario for PutChunked {
    const NAME: &'static str = "put of a chunked file";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        let store = &running.0;
        put_file(store, "keep", 1, &self.keep.iter().collect::<Vec<_>>()).await;
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        let r = reference("big", 1);
        let mut calls: Vec<Call> = self
            .big
            .iter()
            .map(|c| Call::Chunk(c.clone(), r.clone()))
            .collect();
        calls.push(Call::Record(manifest(
            "big",
            1,
            &self.big.iter().collect::<Vec<_>>(),
        )));
        calls
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        assert!(
            is_file(found, "keep", 1, &self.keep.iter().collect::<Vec<_>>()),
            "{context}: keep"
        );
        for (i, c) in self.big.iter().enumerate() {
            if acked > i {
                assert!(
                    held_by(found, c, "big", 1),
                    "{context}: acknowledged chunk {i} lost"
                );
            }
        }
        match found.record("big") {
            None => assert!(acked < 4, "{context}: the acknowledged record is lost"),
            Some((1, true)) => {}
            other => panic!("{context}: big is {other:?}"),
        }
    }
}

/// Overwriting a file: the new version shares one chunk with the old.
struct Overwrite {
    keep: TestChunk,
    old: [TestChunk; 2],
    new: TestChunk,
}

impl Scenario for Overwrite {
    const NAME: &'static str = "overwrite";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        let store = &running.0;
        put_file(store, "keep", 1, &[&self.keep]).await;
        put_file(store, "big", 1, &[&self.old[0], &self.old[1]]).await;
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        let r = reference("big", 2);
        vec![
            Call::Chunk(self.old[1].clone(), r.clone()),
            Call::Chunk(self.new.clone(), r),
            Call::Record(manifest("big", 2, &[&self.old[1], &self.new])),
        ]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        assert!(is_file(found, "keep", 1, &[&self.keep]), "{context}: keep");
        let [a, b] = &self.old;
        assert!(holds(found, a) && holds(found, b), "{context}: old chunks");
        if acked >= 1 {
            assert!(
                held_by(found, b, "big", 2),
                "{context}: acknowledged claim lost"
            );
        }
        if acked >= 2 {
            assert!(
                held_by(found, &self.new, "big", 2),
                "{context}: acknowledged chunk lost"
            );
        }
        match found.record("big") {
            Some((1, true)) => {
                assert!(acked < 3, "{context}: the acknowledged version is lost");
                assert!(
                    held_by(found, a, "big", 1) && held_by(found, b, "big", 1),
                    "{context}: v1 refs"
                );
            }
            Some((2, true)) => {
                assert!(is_file(found, "big", 2, &[b, &self.new]), "{context}: v2");
                assert!(
                    !found.references.contains(&("big".into(), 1))
                        && found.holders_of(&a.0.hash).is_empty(),
                    "{context}: v2 is visible but v1's references were not released with it"
                );
            }
            other => panic!("{context}: big is {other:?}"),
        }
    }
}

/// Deleting a file: a tombstone that releases its chunks.
struct Delete {
    keep: TestChunk,
    old: [TestChunk; 2],
}

impl Scenario for Delete {
    const NAME: &'static str = "delete";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        let store = &running.0;
        put_file(store, "keep", 1, &[&self.keep]).await;
        put_file(store, "big", 1, &[&self.old[0], &self.old[1]]).await;
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::Record(tombstone("big", 2))]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        assert!(is_file(found, "keep", 1, &[&self.keep]), "{context}: keep");
        let [a, b] = &self.old;
        match found.record("big") {
            Some((1, true)) => {
                assert_eq!(acked, 0, "{context}: the acknowledged delete is lost");
                assert!(is_file(found, "big", 1, &[a, b]), "{context}: big");
                assert!(
                    held_by(found, a, "big", 1) && held_by(found, b, "big", 1),
                    "{context}: refs"
                );
            }
            Some((2, false)) => assert!(
                holds(found, a)
                    && holds(found, b)
                    && !found.references.contains(&("big".into(), 1)),
                "{context}: deleted, but its chunks are gone early or still referenced"
            ),
            other => panic!("{context}: big is {other:?}"),
        }
    }
}

/// Collecting the chunks of a deleted file past their grace, and its
/// tombstone: holes punched between live chunks of the active segment.
struct Collect {
    keep: [TestChunk; 2],
    gone: [TestChunk; 2],
}

impl Scenario for Collect {
    const NAME: &'static str = "collection";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        let store = &running.0;
        let (keep, gone) = (reference("keep", 1), reference("gone", 1));
        for (c, r) in [
            (&self.keep[0], &keep),
            (&self.gone[0], &gone),
            (&self.keep[1], &keep),
            (&self.gone[1], &gone),
        ] {
            put_for(store, c, std::slice::from_ref(r)).await;
        }
        store
            .put_record(manifest("keep", 1, &[&self.keep[0], &self.keep[1]]))
            .await
            .unwrap();
        store
            .put_record(manifest("gone", 1, &[&self.gone[0], &self.gone[1]]))
            .await
            .unwrap();
        store.put_record(tombstone("gone", 2)).await.unwrap();
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::Collect(EVERYTHING)]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        assert!(
            is_file(found, "keep", 1, &[&self.keep[0], &self.keep[1]]),
            "{context}: keep"
        );
        let kept = [
            holds(found, &self.gone[0]),
            holds(found, &self.gone[1]),
            found.record("gone").is_some(),
        ];
        assert!(
            kept == [true; 3] && acked == 0 || kept == [false; 3],
            "{context}: collection half applied or lost: chunks and tombstone kept {kept:?}"
        );
    }
}

/// Collecting a deleted file whose chunks fill a whole sealed segment
/// (deleted) and share two others with live chunks (punched).
struct Reclaim {
    keep: [TestChunk; 2],
    dead: Vec<TestChunk>,
}

/// Keeps a sealed segment's worth of chunks alive and one more.
const KEEP_DEAD_SEGMENTS: GcPolicy = GcPolicy {
    grace_ms: 0,
    tombstone_ttl_ms: u64::MAX,
};

impl Reclaim {
    /// Lays out 16 KiB chunks, four to a segment, as [L1 D1 D2 D3]
    /// [D4 D5 D6 D7] [L2 D8], where L are the live file's and D the deleted
    /// file's.
    async fn lay_out(&self, store: &Store) {
        let (keep, dead) = (reference("keep", 1), reference("dead", 1));
        let mut order: Vec<(&TestChunk, &Reference)> = vec![(&self.keep[0], &keep)];
        order.extend(self.dead[..7].iter().map(|c| (c, &dead)));
        order.push((&self.keep[1], &keep));
        order.push((&self.dead[7], &dead));
        for (c, r) in order {
            put_for(store, c, std::slice::from_ref(r)).await;
        }
        let keep = manifest("keep", 1, &[&self.keep[0], &self.keep[1]]);
        store.put_record(keep).await.unwrap();
        let dead = manifest("dead", 1, &self.dead.iter().collect::<Vec<_>>());
        store.put_record(dead).await.unwrap();
        store.put_record(tombstone("dead", 2)).await.unwrap();
        let segments = store.stats().await.unwrap().segments;
        assert_eq!(segments, 3, "the layout needs three segments");
    }

    fn check_keep(&self, found: &Audit, context: &str) {
        let keep = [&self.keep[0], &self.keep[1]];
        assert!(is_file(found, "keep", 1, &keep), "{context}: keep");
    }

    /// Whether each dead chunk is still stored.
    fn dead_kept(&self, found: &Audit) -> Vec<bool> {
        self.dead.iter().map(|c| holds(found, c)).collect()
    }
}

impl Scenario for Reclaim {
    const NAME: &'static str = "hole punching and dead segments";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let running = open_switched(dir, switch);
        self.lay_out(&running.0).await;
        Some(running)
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::Collect(KEEP_DEAD_SEGMENTS)]
    }
    fn check(&self, found: &Audit, acked: usize, context: &str) {
        self.check_keep(found, context);
        let kept = self.dead_kept(found);
        assert!(
            kept.iter().all(|k| *k) && acked == 0 || kept.iter().all(|k| !*k),
            "{context}: collection half applied or lost: dead chunks kept {kept:?}"
        );
    }
}

/// Opening a store that a crash left with everything recovery repairs: a
/// committed collection whose dead segment was not deleted and whose holes
/// were not punched, bytes past the active segment's committed length, and
/// a segment file the index never knew.
struct Recover(Reclaim);

impl Scenario for Recover {
    const NAME: &'static str = "recovery at open";
    async fn prepare(&self, dir: &Path, switch: &Arc<CrashSwitch>) -> Option<Running> {
        let (store, thread) = open_switched(dir, switch);
        self.0.lay_out(&store).await;
        // The process dies as the collection, just committed, starts giving
        // space back; the collection is acknowledged all the same.
        switch.arm_at_kind("remove");
        store.collect_garbage(KEEP_DEAD_SEGMENTS).await.unwrap();
        let segment_dir = store.segment_dir().to_owned();
        close(store, thread).await;
        switch.revive();
        let mut active = std::fs::read(segment_dir.join("00000002.seg")).unwrap();
        active.extend_from_slice(&[0xAA; 5000]);
        std::fs::write(segment_dir.join("00000002.seg"), active).unwrap();
        std::fs::write(segment_dir.join("00000099.seg"), [0xBB; 9000]).unwrap();
        None
    }
    fn calls(&self) -> Vec<Call> {
        vec![Call::Open]
    }
    fn check(&self, found: &Audit, _acked: usize, context: &str) {
        self.0.check_keep(found, context);
        let kept = self.0.dead_kept(found);
        assert!(
            kept.iter().all(|k| !*k),
            "{context}: an acknowledged collection came undone: dead chunks kept {kept:?}"
        );
    }
}

const BLOCK: usize = 4096;

#[tokio::test]
async fn first_start_survives_a_crash_at_any_step() {
    crash_everywhere(FirstStart).await;
}

#[tokio::test]
async fn put_of_a_small_file_survives_a_crash_at_any_step() {
    let keep = [chunk(1, 2 * BLOCK), chunk(2, 3 * BLOCK)];
    crash_everywhere(PutSmall { keep }).await;
}

#[tokio::test]
async fn put_of_a_chunked_file_survives_a_crash_at_any_step() {
    crash_everywhere(PutChunked {
        keep: (10..12).map(|i| chunk(i, 6 * BLOCK)).collect(),
        big: [
            chunk(20, 3 * BLOCK),
            chunk(21, 2 * BLOCK),
            chunk(22, 3 * BLOCK),
        ],
    })
    .await;
}

#[tokio::test]
async fn overwrite_survives_a_crash_at_any_step() {
    crash_everywhere(Overwrite {
        keep: chunk(30, 2 * BLOCK),
        old: [chunk(31, 2 * BLOCK), chunk(32, 3 * BLOCK)],
        new: chunk(33, 2 * BLOCK),
    })
    .await;
}

#[tokio::test]
async fn delete_survives_a_crash_at_any_step() {
    crash_everywhere(Delete {
        keep: chunk(40, 2 * BLOCK),
        old: [chunk(41, 2 * BLOCK), chunk(42, 3 * BLOCK)],
    })
    .await;
}

#[tokio::test]
async fn collection_survives_a_crash_at_any_step() {
    crash_everywhere(Collect {
        keep: [chunk(50, 2 * BLOCK), chunk(51, 2 * BLOCK)],
        gone: [chunk(52, 3 * BLOCK), chunk(53, 3 * BLOCK)],
    })
    .await;
}

#[tokio::test]
async fn hole_punching_and_segment_deletion_survive_a_crash_at_any_step() {
    crash_everywhere(Reclaim {
        keep: [chunk(60, 4 * BLOCK), chunk(61, 4 * BLOCK)],
        dead: (62..70).map(|i| chunk(i, 4 * BLOCK)).collect(),
    })
    .await;
}

#[tokio::test]
async fn recovery_at_open_survives_a_crash_at_any_step() {
    crash_everywhere(Recover(Reclaim {
        keep: [chunk(70, 4 * BLOCK), chunk(71, 4 * BLOCK)],
        dead: (72..80).map(|i| chunk(i, 4 * BLOCK)).collect(),
    }))
    .await;
}
