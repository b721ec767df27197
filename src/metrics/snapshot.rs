//! The figures read afresh at each scrape, and the collector that turns
//! them into samples.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// How many members this peer sees in each state, itself included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Answering, or heard from recently.
    pub alive: u64,
    /// Being given time to refute a failed probe.
    pub suspect: u64,
    /// Declared failed.
    pub dead: u64,
}

/// What the peer's parts report at the moment of a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Members by state.
    pub members: MemberCounts,
    /// Items held here that an up owner lacked, in the last repair pass.
    pub under_replicated_items: u64,
    /// Copies held here for an owner that was down, and records held here
    /// without owning them.
    pub hinted_items: u64,
    /// Bytes repair has copied to other peers since the peer started.
    pub repair_bytes: u64,
    /// Bytes of copies repair has found to send and not sent yet.
    pub repair_queue_bytes: u64,
    /// Damaged chunk copies scrubbing has found since the peer started.
    pub scrub_damaged: u64,
    /// Bytes of chunk data stored here.
    pub store_bytes: u64,
    /// Chunks stored here.
    pub store_chunks: u64,
    /// Bytes free for the store on its file system, if it could be read.
    pub disk_free_bytes: Option<u64>,
}

/// The registered collector: the last snapshot handed to
/// [`super::Metrics::render`].
#[derive(Debug)]
pub(super) struct Collected(pub(super) Arc<Mutex<Snapshot>>);

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let members = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "shoal_members",
            "Members of the swarm this peer sees, itself included, by state.",
            None,
            members.metric_type(),
        )?;
        for (state, count) in [
            ("alive", s.members.alive),
            ("suspect", s.members.suspect),
            ("dead", s.members.dead),
        ] {
            let labels = [("state", state)];
            let sample = family.encode_family(&labels)?;
            ConstGauge::new(as_i64(count)).encode(sample)?;
        }
        let gauges = [
            (
                "shoal_under_replicated_items",
                "Items held here that an up owner lacked in the last repair pass.",
                Some(s.under_replicated_items),
            ),
            (
                "shoal_hinted_items",
                "Copies held here for an owner that was down, and records held without owning them.",
                Some(s.hinted_items),
            ),
            (
                "shoal_repair_queue_bytes",
                "Bytes of copies repair has found to send and not sent yet.",
                Some(s.repair_queue_bytes),
            ),
            (
                "shoal_store_bytes",
                "Bytes of chunk data stored here.",
                Some(s.store_bytes),
            ),
            (
                "shoal_store_chunks",
                "Chunks stored here.",
                Some(s.store_chunks),
            ),
            (
                "shoal_disk_free_bytes",
                "Bytes free for the store on its file system.",
                s.disk_free_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(as_i64(value));
            let sample = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(sample)?;
        }
        let counters = [
            (
                "shoal_repair_bytes",
                "Bytes repair has copied to other peers since the peer started.",
                s.repair_bytes,
            ),
            (
                "shoal_scrub_damaged",
                "Damaged chunk copies scrubbing has found since the peer started.",
                s.scrub_damaged,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let sample = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(sample)?;
        }
        Ok(())
    }
}

/// Gauges hold signed values; no figure here comes near the limit.
fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
