//! Data sources and page renderers for the asynq examples.
//!
//! - [`memory`]: an in-memory key-value store with `get_multi` semantics.
//! - [`sqlite`]: the SQLite data set files (FEED-1, the profile site), marked as this crate's
//!   and built atomically; the sources over them are `asynq-sources`'.
//! - [`memcached`]: a memcached client and sources over one or more servers, sharded by key.
//! - [`sql_kv`]: FEED-1's key-value store over SQLite, PostgreSQL and MySQL (the sources of
//!   `asynq-sources`), and its data sets in database servers.
//! - [`kv`]: the shape every FEED-1 backend has (`get_multi` over string keys).
//! - [`feed`]: the FEED-1 page (`docs/feed1.md`) as nested asynq functions, with the
//!   hand-primed and naive baselines.
//! - [`graphql`]: FEED-1 as a GraphQL schema (async-graphql), run inside asynq runs or with
//!   async-graphql's DataLoader.
//! - [`profile`]: `render_profile(uid)` of Quora's asynq talk over SQLite, PostgreSQL or MySQL.
//! - [`local_server`]: start a server on a free local port (for tests), of a kind given by
//!   [`local_memcached`] (memcached) or [`local_redis`] (Redis, and Redis Cluster nodes).
//! - [`logging`]: the libraries' warnings on stderr, for the programs.
//! - [`async_kv`]: sources doing their I/O under tokio (memcached in front of a SQL store),
//!   and [`serve`]: the `server` program's axum service.
//! - [`delayed`]: any source with a fixed delay per call (the programs' `--latency-ms`).
//!
//! The `feed` program renders the page and prints its figures:
//! `cargo run --release -p asynq-examples --bin feed -- --questions 1000 --answers 10`.

#![warn(missing_docs)]

pub mod async_kv;
pub mod delayed;
pub mod feed;
pub mod feed_naive;
pub mod graphql;
pub mod kv;
pub mod local_memcached;
pub mod local_redis;
pub mod local_server;
pub mod logging;
pub mod memcached;
pub mod memory;
mod offload;
pub mod profile;
pub mod serve;
pub mod sql_kv;
pub mod sqlite;
pub mod trace;
