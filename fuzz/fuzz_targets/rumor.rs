#![no_main]
//! Fuzzes `shoal::fuzzing::rumor`.

include!("common.rs");
shoal_target!(rumor);
