#![no_main]
//! Fuzzes `shoal::fuzzing::http_inputs`.

include!("common.rs");
shoal_target!(http_inputs);
