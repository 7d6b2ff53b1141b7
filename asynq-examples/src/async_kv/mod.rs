//! Sources whose `fetch` does its I/O under tokio: a SQL store with memcached (the client of
//! `asynq_sources::memcached`, over tokio TCP) in front.
//!
//! - [`ReadThrough`]: a [`SqlKv`](crate::sql_kv::SqlKv) (SQLite queries on tokio's blocking
//!   pool) with memcached in front: keys memcached holds come from it, the others from the
//!   database, written back to memcached. A failed memcached server costs its keys a trip to
//!   the database, never a failed page.
//!
//! Poll it under [`Runtime::run_async`](asynq_core::Runtime::run_async) inside tokio, or
//! under any executor: the memcached client and the SQL store run their I/O on tokio
//! runtimes of their own when called outside one.

mod sqlite;

pub use sqlite::{BoxError, ReadThrough};
