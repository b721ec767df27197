#![no_main]
//! Fuzzes `shoal::fuzzing::invite`.

include!("common.rs");
shoal_target!(invite);
