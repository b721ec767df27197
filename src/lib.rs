//! shoal: a masterless, peer-to-peer distributed file store.
//!
//! Every peer runs the same binary. Files are split into chunks addressed by
//! their BLAKE3 hash; chunks and file manifests are kept by the peers that a
//! consistent-hash ring assigns. This crate is the whole program as a library
//! so that tests can drive it in-process; `src/main.rs` only parses the
//! command line and dispatches here.
//!
//! Dependencies between modules point one way (see `docs/architecture.md`):
//! `chunk` and `codec` are pure; `store` persists; `replica` answers and
//! asks replicas; `files` is the data path and `heal` keeps its copies
//! where they belong; `api` serves both over HTTP and `s3` speaks S3 over the data path; `node` composes a running peer; `client` and
//! `cli` are the command-line side.

pub mod activity;
pub mod api;
pub mod chunk;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod dht;
pub mod files;
pub mod fuzzing;
pub mod gossip;
pub mod heal;
pub mod identity;
pub mod invite;
pub mod metrics;
pub mod net;
pub mod node;
pub mod protocol;
pub mod replica;
pub mod s3;
pub mod secret;
pub mod serving;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod web;
