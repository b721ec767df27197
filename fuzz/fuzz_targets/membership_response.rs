#![no_main]
//! Fuzzes `shoal::fuzzing::membership_response`.

include!("common.rs");
shoal_target!(membership_response);
