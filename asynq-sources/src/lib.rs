//! Ready data sources for [asynq](asynq_core) over SQL databases: PostgreSQL, MySQL/MariaDB
//! and SQLite, one Cargo feature each.
//!
//! Describe a lookup once as a [`Table`] (the table, its key column, the columns of a row),
//! open a backend's `Db` (a connection pool), and register a source with the runtime:
//!
//! - [`Rows`]: one row per key (by primary key), `None` when the table has no row for it;
//! - [`Groups`]: every row per key (has-many, by a foreign key), an empty `Vec` when none;
//! - [`Required`]: one row per key, an error naming the table and the key when absent (the
//!   shape of a key-value store).
//!
//! Each round of a run sends one query per source with every key of the round bound as a
//! parameter: `WHERE key = ANY($1)` on PostgreSQL, `WHERE key IN (?, ...)` on MySQL and
//! SQLite, split into several queries only past the server's bound-parameter limit. Table
//! and column names come from the program and are quoted; keys are never written into SQL.
//! Errors ([`SqlError`]) name the source, the table and the keys of the failed call.
//!
//! | feature    | `Db`                 | driver and pool                                 |
//! |------------|----------------------|-------------------------------------------------|
//! | `postgres` | [`postgres::Db`]     | tokio-postgres, deadpool-postgres               |
//! | `mysql`    | [`mysql::Db`]        | mysql_async (its own pool)                      |
//! | `sqlite`   | [`sqlite::Db`]       | rusqlite, r2d2 (queries on a blocking thread)   |
//!
//! Why these drivers, how to write a source of your own over a database, and what the
//! sources do with parameter limits, absent rows and errors: the guide `docs/sources.md` in
//! the repository.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use asynq_core::{asynq, DataSource, Error, Runtime};
//! use asynq_sources::{sqlite, Table};
//!
//! /// Users by id.
//! struct Users;
//! impl Table for Users {
//!     type Key = i64;
//!     type Row = (String, i64); // name, karma
//!     const NAME: &'static str = "users";
//!     const TABLE: &'static str = "users";
//!     const KEY: &'static str = "id";
//!     const COLUMNS: &'static [&'static str] = &["name", "karma"];
//! }
//!
//! /// Posts by author: a has-many lookup, newest first.
//! struct PostsByAuthor;
//! impl Table for PostsByAuthor {
//!     type Key = i64;
//!     type Row = String;
//!     const NAME: &'static str = "posts_by_author";
//!     const TABLE: &'static str = "posts";
//!     const KEY: &'static str = "author";
//!     const COLUMNS: &'static [&'static str] = &["title"];
//!     const ORDER_BY: &'static [&'static str] = &["id DESC"];
//! }
//!
//! #[asynq]
//! fn byline(user: i64) -> Result<String, Error> {
//!     // Both lookups are in flight in the same round.
//!     let (who, posts) = (
//!         sqlite::Rows::<Users>::load(user),
//!         sqlite::Groups::<PostsByAuthor>::load(user),
//!     )
//!         .await;
//!     Ok(match who? {
//!         Some((name, karma)) => format!("{name} ({karma}): {}", posts?.join(", ")),
//!         None => format!("user {user} is gone"),
//!     })
//! }
//!
//! #[asynq]
//! fn page(users: Vec<i64>) -> Result<Vec<String>, Error> {
//!     users.into_iter().map(byline).collect::<Vec<_>>().await.into_iter().collect()
//! }
//!
//! let db = sqlite::Db::open_in_memory()?;
//! db.execute_batch(
//!     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, karma INTEGER);
//!      CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER, title TEXT);
//!      INSERT INTO users VALUES (1, 'ann', 10), (2, 'bob', 3);
//!      INSERT INTO posts VALUES (1, 1, 'hello'), (2, 1, 'again'), (3, 2, 'hi');",
//! )?;
//! let rt = Runtime::new()
//!     .with_source(sqlite::Rows::<Users>::new(db.clone())?)
//!     .with_source(sqlite::Groups::<PostsByAuthor>::new(db.clone())?);
//! let lines = rt.run(page(vec![1, 2, 3]))?;
//! assert_eq!(lines, ["ann (10): again, hello", "bob (3): hi", "user 3 is gone"]);
//! assert_eq!(db.queries(), 2); // one query per table for the three users
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// Without a backend feature there is nothing to read from: the shared parts go unused.
#![cfg_attr(
    not(any(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(
        dead_code,
        unused_imports,
        unused_macros,
        unused_variables,
        unreachable_code
    )
)]

mod answer;
#[cfg(feature = "sqlite")]
mod blocking;
pub mod cache;
mod cached;
mod error;
mod key;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod mapping;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "memcached",
    feature = "redis"
))]
mod runner;
mod shared;
mod source;
mod table;

#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub mod memcached;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use crate::cached::{CacheStats, Cached, CachedError, DEFAULT_TTL};
pub use crate::error::{ErrorKind, SqlError};
pub use crate::key::{KeyKind, KeyMatch, KeyValue, SqlKey};
pub use crate::source::{Database, Groups, Reads, Required, Rows};
pub use crate::table::Table;

// The guide's examples compile (and, over SQLite, run) as doctests of this crate.
#[cfg(all(doctest, feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc = include_str!("../../docs/sources.md")]
pub struct GuideDoctests;
