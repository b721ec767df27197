#![no_main]
//! Fuzzes `shoal::fuzzing::file_record`.

include!("common.rs");
shoal_target!(file_record);
