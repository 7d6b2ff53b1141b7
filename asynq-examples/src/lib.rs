//! Data sources and page renderers for the asynq examples.
//!
//! - [`memory`]: an in-memory key-value store with `get_multi` semantics.
//! - [`feed`]: the FEED-1 page (`shared/bench/FEED.md`) as nested asynq functions, with the
//!   hand-primed and naive baselines.
//!
//! The `feed` program renders the page and prints its figures:
//! `cargo run --release -p asynq-examples --bin feed -- --questions 1000 --answers 10`.

pub mod feed;
pub mod memory;
