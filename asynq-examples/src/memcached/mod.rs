//! memcached for the FEED-1 page: [`MemcachedKv`], the `memcached` backend of the `feed`
//! program, over the sharded client of `asynq-sources` ([`MemcachedClient`]).
//!
//! The client, its protocol code, its bounds on what a server sends, its back-off of a failing
//! server and its consistent hashing live in `asynq_sources::memcached`; the items re-exported
//! here are the ones the examples and their tests use.

mod kv;

pub use asynq_sources::memcached::{
    Backoff, DEFAULT_MAX_VALUE, Lookup, MAX_KEY_LEN, McError, Memcached, MemcachedClient,
    ServerHealth, validate_key,
};
pub use kv::{KvError, MemcachedKv};
