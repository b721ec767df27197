#![no_main]
//! Fuzzes `shoal::fuzzing::data_response`.

include!("common.rs");
shoal_target!(data_response);
