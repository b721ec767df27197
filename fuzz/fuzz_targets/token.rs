#![no_main]
//! Fuzzes `shoal::fuzzing::token`.

include!("common.rs");
shoal_target!(token);
