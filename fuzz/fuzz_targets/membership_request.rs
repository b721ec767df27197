#![no_main]
//! Fuzzes `shoal::fuzzing::membership_request`.

include!("common.rs");
shoal_target!(membership_request);
