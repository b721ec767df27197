//! Recent events worth showing a person: members joining, suspected, dead
//! and back; repair starting and finishing; damage found; uploads failing.
//! A bounded log kept in memory: it starts empty at each start of the peer,
//! and the oldest events fall off.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::chunk::wall_millis;

/// How many events are kept.
pub const KEPT_EVENTS: usize = 200;

/// How bad an event is, for the page to mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Things going as they should.
    Info,
    /// Something that needs repair, or a request that failed.
    Warning,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// How bad.
    pub level: Level,
    /// What happened, in one line.
    pub text: String,
}

/// The log. Cheap to clone; every clone adds to the same log.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    events: Arc<Mutex<VecDeque<Event>>>,
}

impl Activity {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event that happened now.
    pub fn record(&self, level: Level, text: impl Into<String>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == KEPT_EVENTS {
            events.pop_front();
        }
        events.push_back(Event {
            at_ms: wall_millis(),
            level,
            text: text.into(),
        });
    }

    /// The events kept, newest first.
    pub fn recent(&self) -> Vec<Event> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Activity, KEPT_EVENTS, Level};

    #[test]
    fn the_newest_events_are_kept_newest_first() {
        let log = Activity::new();
        for i in 0..KEPT_EVENTS + 5 {
            log.record(Level::Info, format!("event {i}"));
        }
        let recent = log.recent();
        assert_eq!(recent.len(), KEPT_EVENTS);
        assert_eq!(recent[0].text, format!("event {}", KEPT_EVENTS + 4));
        assert_eq!(recent[KEPT_EVENTS - 1].text, "event 5");
    }
}
