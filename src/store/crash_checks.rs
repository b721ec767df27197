//! What a store reopened after a crash point must look like, whatever the
//! operation in flight: every table consistent with every other, every
//! counter equal to a full scan, every chunk reading back intact, and no
//! segment space leaked.
//!
//! Kept apart from the scenarios (`crash_tests`) because these invariants
//! hold for any store, not only after the operations tested there; the
//! scenarios add what their operation must have done or not done.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;

use bytes::Bytes;
use redb::{ReadableDatabase, ReadableTable};

use super::Store;
use super::records;
use super::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, ChunkEntry, FILE_CHUNKS, FILES, HINTS, HOLES, LIVE_FILES,
    NAME_REFERENCES, RECORD_POSITIONS, REF_CHUNKS, REFERENCES, SEGMENTS, SegmentEntry, TOMBSTONES,
    UNREFERENCED, UNREFERENCED_BYTES,
};
use crate::chunk::{Blake3Hash, Digest, FileRecord, RecordKind, Reference, name_position};
use crate::codec;

/// What a full scan of a store found, once every check passed.
pub(super) struct Audit {
    /// Every chunk, read back through the store (so re-hashed).
    pub chunks: HashMap<Blake3Hash, Bytes>,
    /// Every record by name.
    pub records: BTreeMap<String, FileRecord>,
    /// For every chunk held by a reference, the (name, clock) of each.
    pub holders: HashMap<Blake3Hash, BTreeSet<(String, u64)>>,
    /// The (name, clock) of every reference held.
    pub references: BTreeSet<(String, u64)>,
}

impl Audit {
    /// The clock of the record stored for `name` and whether it is live.
    pub fn record(&self, name: &str) -> Option<(u64, bool)> {
        self.records
            .get(name)
            .map(|r| (r.version().hlc.0, r.live().is_some()))
    }

    /// Whether `hash` is stored with exactly `data`.
    pub fn holds(&self, hash: &Blake3Hash, data: &[u8]) -> bool {
        self.chunks.get(hash).is_some_and(|d| d == data)
    }

    /// The references holding `hash`.
    pub fn holders_of(&self, hash: &Blake3Hash) -> BTreeSet<(String, u64)> {
        self.holders.get(hash).cloned().unwrap_or_default()
    }
}

/// The index as a read transaction sees it, decoded.
struct Tables {
    chunks: HashMap<Blake3Hash, ChunkEntry>,
    chunk_refs: BTreeSet<([u8; 32], [u8; 32])>,
    ref_chunks: BTreeSet<([u8; 32], [u8; 32])>,
    references: HashMap<[u8; 32], Reference>,
    name_references: BTreeMap<(String, u64, String), [u8; 32]>,
    unreferenced: BTreeSet<(u64, [u8; 32])>,
    segments: BTreeMap<u32, SegmentEntry>,
    holes: Vec<(u32, u64, u64)>,
    records: BTreeMap<String, FileRecord>,
    file_chunks: BTreeSet<String>,
    positions: BTreeSet<(u64, String)>,
    tombstones: BTreeSet<(u64, String)>,
    counters: HashMap<String, u64>,
    hints: Vec<[u8; 32]>,
}

fn split(key: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let (a, b) = key.split_at(32);
    (
        a.try_into().expect("32 bytes"),
        b.try_into().expect("32 bytes"),
    )
}

fn read_tables(store: &Store) -> Tables {
    let txn = store.db.get().unwrap().begin_read().unwrap();
    let mut t = Tables {
        chunks: HashMap::new(),
        chunk_refs: BTreeSet::new(),
        ref_chunks: BTreeSet::new(),
        references: HashMap::new(),
        name_references: BTreeMap::new(),
        unreferenced: BTreeSet::new(),
        segments: BTreeMap::new(),
        holes: Vec::new(),
        records: BTreeMap::new(),
        file_chunks: BTreeSet::new(),
        positions: BTreeSet::new(),
        tombstones: BTreeSet::new(),
        counters: HashMap::new(),
        hints: Vec::new(),
    };
    for row in txn.open_table(CHUNKS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        t.chunks
            .insert(Digest(*k.value()), codec::decode(v.value()).unwrap());
    }
    for row in txn.open_table(CHUNK_REFS).unwrap().iter().unwrap() {
        t.chunk_refs.insert(split(row.unwrap().0.value()));
    }
    for row in txn.open_table(REF_CHUNKS).unwrap().iter().unwrap() {
        t.ref_chunks.insert(split(row.unwrap().0.value()));
    }
    for row in txn.open_table(REFERENCES).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        t.references
            .insert(*k.value(), codec::decode(v.value()).unwrap());
    }
    for row in txn.open_table(NAME_REFERENCES).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        let (name, hlc, writer) = k.value();
        t.name_references
            .insert((name.to_owned(), hlc, writer.to_owned()), *v.value());
    }
    for row in txn.open_table(UNREFERENCED).unwrap().iter().unwrap() {
        let (key, _) = row.unwrap();
        let (since, hash) = key.value();
        t.unreferenced.insert((since, *hash));
    }
    for row in txn.open_table(SEGMENTS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        t.segments
            .insert(k.value(), codec::decode(v.value()).unwrap());
    }
    for row in txn.open_table(HOLES).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        t.holes.push((k.value().0, k.value().1, v.value()));
    }
    let files = txn.open_table(FILES).unwrap();
    let chunk_lists = txn.open_table(FILE_CHUNKS).unwrap();
    for row in files.iter().unwrap() {
        let name = row.unwrap().0.value().to_owned();
        let record = records::read_record(&files, &chunk_lists, &name).unwrap();
        t.records.insert(name, record.expect("a listed record"));
    }
    for row in chunk_lists.iter().unwrap() {
        t.file_chunks.insert(row.unwrap().0.value().to_owned());
    }
    for row in txn.open_table(RECORD_POSITIONS).unwrap().iter().unwrap() {
        let (key, _) = row.unwrap();
        let (position, name) = key.value();
        t.positions.insert((position, name.to_owned()));
    }
    for row in txn.open_table(TOMBSTONES).unwrap().iter().unwrap() {
        let (key, _) = row.unwrap();
        let (at, name) = key.value();
        t.tombstones.insert((at, name.to_owned()));
    }
    for row in txn.open_table(COUNTERS).unwrap().iter().unwrap() {
        let (k, v) = row.unwrap();
        t.counters.insert(k.value().to_owned(), v.value());
    }
    for row in txn.open_table(HINTS).unwrap().iter().unwrap() {
        t.hints.push(*row.unwrap().0.value());
    }
    t
}

/// Checks everything a consistent store promises, reads every chunk and
/// record back, and returns what it found. Panics, naming `context`, at the
/// first broken promise.
pub(super) async fn audit(store: &Store, context: &str) -> Audit {
    let t = read_tables(store);
    let fail = |what: String| -> ! { panic!("{context}: {what}") };

    // References: the two directions mirror each other, every claim names
    // a stored chunk and a recorded reference, and the by-name index has
    // exactly one row per reference.
    let mirrored: BTreeSet<_> = t.ref_chunks.iter().map(|(r, c)| (*c, *r)).collect();
    if mirrored != t.chunk_refs {
        fail("chunk-refs and ref-chunks differ".into());
    }
    let mut holders: HashMap<Blake3Hash, BTreeSet<(String, u64)>> = HashMap::new();
    for (chunk, id) in &t.chunk_refs {
        let Some(reference) = t.references.get(id) else {
            fail(format!(
                "a claim names an unknown reference {}",
                Digest(*id)
            ));
        };
        if !t.chunks.contains_key(&Digest(*chunk)) {
            fail(format!("a claim names a missing chunk {}", Digest(*chunk)));
        }
        holders
            .entry(Digest(*chunk))
            .or_default()
            .insert((reference.name.to_string(), reference.version.hlc.0));
    }
    let by_name: BTreeMap<_, _> = t
        .references
        .iter()
        .map(|(id, r)| {
            let key = (
                r.name.to_string(),
                r.version.hlc.0,
                r.version.writer.clone(),
            );
            (key, *id)
        })
        .collect();
    if by_name != t.name_references {
        fail("name-references does not index references".into());
    }

    // Chunks: referenced exactly when claimed, indexed by age exactly when
    // unreferenced, and the unreferenced bytes counted.
    let mut unreferenced = BTreeSet::new();
    let mut unreferenced_bytes = 0;
    for (hash, entry) in &t.chunks {
        let claimed = holders.contains_key(hash);
        if claimed == entry.unreferenced_since.is_some() {
            fail(format!("chunk {hash} claimed: {claimed}, entry {entry:?}"));
        }
        if let Some(since) = entry.unreferenced_since {
            unreferenced.insert((since, hash.0));
            unreferenced_bytes += u64::from(entry.len);
        }
    }
    if unreferenced != t.unreferenced {
        fail("unreferenced-0 does not index the unreferenced chunks".into());
    }
    let counter = |name: &str| t.counters.get(name).copied().unwrap_or(0);
    if counter(UNREFERENCED_BYTES) != unreferenced_bytes {
        fail(format!(
            "unreferenced bytes counted {}, scanned {unreferenced_bytes}",
            counter(UNREFERENCED_BYTES)
        ));
    }
    for hash in &t.hints {
        if !t.chunks.contains_key(&Digest(*hash)) {
            fail("a hint names a missing chunk".into());
        }
    }

    check_segments(store, &t, context);

    // Records: every index and counter agrees with the heads.
    let mut live_files = 0;
    let mut positions = BTreeSet::new();
    let mut tombstones = BTreeSet::new();
    let mut lists = BTreeSet::new();
    for (name, record) in &t.records {
        positions.insert((name_position(name), name.clone()));
        match record {
            FileRecord::Live(_) => {
                live_files += u64::from(record.name().is_file());
                lists.insert(name.clone());
            }
            FileRecord::Deleted { deleted_ms, .. } => {
                if !matches!(
                    record.name().kind(),
                    RecordKind::AccessKey | RecordKind::Token
                ) {
                    tombstones.insert((*deleted_ms, name.clone()));
                }
            }
        }
    }
    if positions != t.positions || tombstones != t.tombstones || lists != t.file_chunks {
        fail("record-positions, tombstones or file-chunks disagree with the records".into());
    }
    if counter(LIVE_FILES) != live_files {
        fail(format!(
            "live files counted {}, scanned {live_files}",
            counter(LIVE_FILES)
        ));
    }

    // The figures the store reports are the scan's.
    let stats = store.stats().await.unwrap();
    let bytes: u64 = t.chunks.values().map(|e| u64::from(e.len)).sum();
    let scanned = (
        t.chunks.len() as u64,
        bytes,
        live_files,
        t.segments.len() as u64,
        t.hints.len() as u64,
        unreferenced_bytes,
        t.references.len() as u64,
    );
    let reported = (
        stats.chunks,
        stats.bytes,
        stats.files,
        stats.segments,
        stats.hinted_chunks,
        stats.unreferenced_bytes,
        stats.references,
    );
    if reported != scanned {
        fail(format!(
            "stats {reported:?} but a full scan gives {scanned:?}"
        ));
    }

    // Every chunk reads back intact, and so does every live file: in these
    // tests each manifest's chunks are stored here, so a record whose
    // chunks are missing is a half-visible write.
    let mut chunks = HashMap::new();
    for hash in t.chunks.keys() {
        match store.read_chunk(*hash).await {
            Ok(data) => chunks.insert(*hash, data),
            Err(e) => fail(format!("chunk {hash} does not read back: {e}")),
        };
    }
    for (name, record) in &t.records {
        let Some(manifest) = record.live() else {
            continue;
        };
        if let Some(inline) = manifest.inline() {
            if manifest.chunks.len() != 1 || !manifest.chunks[0].matches(inline) {
                fail(format!("{name}: inline bytes do not match the manifest"));
            }
            continue;
        }
        for chunk in &manifest.chunks {
            if !chunks.contains_key(&chunk.hash) {
                fail(format!(
                    "{name} is visible but its chunk {} is not",
                    chunk.hash
                ));
            }
        }
    }
    Audit {
        chunks,
        records: t.records,
        holders,
        references: t
            .references
            .values()
            .map(|r| (r.name.to_string(), r.version.hlc.0))
            .collect(),
    }
}

/// Segment rows against the chunks and the files on disk, and the space
/// the files take against the chunks they hold.
fn check_segments(store: &Store, t: &Tables, context: &str) {
    let fail = |what: String| -> ! { panic!("{context}: {what}") };
    if !t.holes.is_empty() {
        fail(format!("ranges still to punch after open: {:?}", t.holes));
    }
    let mut ranges: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    for entry in t.chunks.values() {
        ranges
            .entry(entry.segment)
            .or_default()
            .push((entry.offset, entry.offset + u64::from(entry.len)));
    }
    let on_disk: BTreeSet<u32> = store.segments.list().unwrap().into_iter().collect();
    let indexed: BTreeSet<u32> = t.segments.keys().copied().collect();
    if on_disk != indexed {
        fail(format!("segment files {on_disk:?} but rows {indexed:?}"));
    }
    for (id, row) in &t.segments {
        let mut held = ranges.remove(id).unwrap_or_default();
        held.sort_unstable();
        let live_bytes: u64 = held.iter().map(|(a, b)| b - a).sum();
        if (row.live_bytes, row.live_chunks) != (live_bytes, held.len() as u64) {
            fail(format!("segment {id}: {row:?} but it holds {held:?}"));
        }
        if row.sealed && row.live_chunks == 0 {
            fail(format!("segment {id} is sealed and empty but not deleted"));
        }
        if held.windows(2).any(|w| w[0].1 > w[1].0) {
            fail(format!("segment {id}: chunks overlap: {held:?}"));
        }
        if held.last().is_some_and(|(_, end)| *end > row.committed_len) {
            fail(format!(
                "segment {id}: a chunk lies past the committed length"
            ));
        }
        let meta = std::fs::metadata(store.segments.path(*id)).unwrap();
        if meta.len() != row.committed_len {
            fail(format!(
                "segment {id} is {} bytes, committed {}",
                meta.len(),
                row.committed_len
            ));
        }
        // Blocks no chunk touches must have been given back; one block of
        // slack covers the file system's own extent blocks.
        let block = meta.blksize();
        let touched: HashSet<u64> = held
            .iter()
            .flat_map(|(a, b)| (a / block)..b.div_ceil(block))
            .collect();
        let allowed = (touched.len() as u64 + 1) * block;
        let allocated = meta.blocks() * 512;
        if allocated > allowed {
            fail(format!(
                "segment {id} leaks space: {allocated} bytes allocated for {live_bytes} live bytes \
                 in {} blocks",
                touched.len()
            ));
        }
    }
    if let Some(id) = ranges.keys().next() {
        fail(format!("chunks point into segment {id}, which has no row"));
    }
}
