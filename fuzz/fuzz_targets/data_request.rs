#![no_main]
//! Fuzzes `shoal::fuzzing::data_request`.

include!("common.rs");
shoal_target!(data_request);
