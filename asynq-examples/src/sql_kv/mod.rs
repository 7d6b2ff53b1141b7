//! FEED-1's key-value store over a SQL database: [`SqlKv`], one source over the ready sources
//! of `asynq-sources` for SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! The page reads string keys (`q:0:title`) and string values, and a key the store does not
//! hold is left out of the answer, as memcached leaves it out (the task asking for it fails
//! with [`asynq_core::Error::MissingKey`]). Each round sends one query with every key bound:
//! `= ANY($1)` on PostgreSQL, `IN (?, ...)` on MySQL and SQLite, split past the server's
//! bound-parameter limit.
//!
//! Where the data lives:
//! - SQLite: the `kv` table of a data set file of its own (see
//!   [`open_feed`](crate::sqlite::open_feed)), one data set per file.
//! - PostgreSQL and MySQL: the table `asynq_feed1_kv` of the database the URL names, every
//!   data set in it under a key prefix of its own (`q1000a10/`), and the table
//!   `asynq_feed1_datasets` telling which data sets are loaded ([`servers`]). Both tables are
//!   marked as this program's in their table comment; tables it did not make are never
//!   written to.

pub mod servers;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use asynq_core::DataSource;
use asynq_sources::{Required, SqlError, Table, mysql, postgres, sqlite};

use crate::kv::KvStore;
use crate::offload::offload;

/// The `kv` table of a FEED-1 data set file (SQLite): the whole file is the data set.
#[derive(Debug)]
pub struct FileKv;

impl Table for FileKv {
    type Key = String;
    type Row = String;
    const NAME: &'static str = "sqlite";
    const TABLE: &'static str = "kv";
    const KEY: &'static str = "key";
    const COLUMNS: &'static [&'static str] = &["value"];
}

/// The FEED-1 table of a database server, every data set under a key prefix of its own
/// ([`servers::KV_TABLE`]).
#[derive(Debug)]
pub struct ServerKv;

impl Table for ServerKv {
    type Key = String;
    type Row = String;
    const NAME: &'static str = "feed1";
    const TABLE: &'static str = servers::KV_TABLE;
    const KEY: &'static str = "key";
    const COLUMNS: &'static [&'static str] = &["value"];
}

/// The source of one backend.
#[derive(Clone, Debug)]
enum Store {
    Sqlite(Required<FileKv, sqlite::Db>),
    Postgres(Required<ServerKv, postgres::Db>),
    Mysql(Required<ServerKv, mysql::Db>),
}

/// Calls `$body` with `$s` bound to the backend's source (of whichever type it is).
macro_rules! each_store {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
            Store::Mysql($s) => $body,
        }
    };
}

/// FEED-1's store over a SQL database: `Key = String`, `Value = String`, absent keys left out
/// of the answer; the `sqlite`, `postgres` and `mysql` backends of the `feed` program.
///
/// Open one with [`open_feed`](crate::sqlite::open_feed) (an SQLite file) or
/// [`servers::open_postgres`] / [`servers::open_mysql`] (a data set in a server, loaded when
/// missing), or over a database you set up with [`SqlKv::sqlite`], [`SqlKv::postgres`],
/// [`SqlKv::mysql`]. [`round_trips`](KvStore::round_trips) counts the queries sent.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sql_kv::SqlKv;
/// use asynq_sources::sqlite;
///
/// let p = Params { questions: 10, answers: 5 };
/// let db = sqlite::Db::open_in_memory()?;
/// db.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")?;
/// db.with_conn(|c| {
///     let mut insert = c.prepare("INSERT INTO kv VALUES (?1, ?2)")?;
///     for (key, value) in feed::dataset(p) {
///         insert.execute((key, value))?;
///     }
///     Ok(())
/// })?;
/// let rt = Runtime::new().with_source(SqlKv::sqlite(db)?);
/// let page = rt.run(feed::feed::<SqlKv>(p))?;
/// assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
/// assert_eq!(rt.source::<SqlKv>().unwrap().queries(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqlKv {
    store: Store,
    /// Prepended to every key: the data set's part of a server's table.
    prefix: String,
    /// The delay before each query, in microseconds; shared by the clones of this store.
    latency_us: Arc<AtomicU64>,
}

impl fmt::Debug for SqlKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlKv")
            .field("backend", &self.backend())
            .field("prefix", &self.prefix)
            .field("queries", &self.queries())
            .finish_non_exhaustive()
    }
}

impl SqlKv {
    /// The `kv` table (`key TEXT PRIMARY KEY, value TEXT`) of an SQLite database.
    pub fn sqlite(db: sqlite::Db) -> Result<SqlKv, SqlError> {
        Ok(SqlKv::with_store(Store::Sqlite(Required::new(db)?), ""))
    }

    /// The data set whose keys are stored under `prefix` in [`servers::KV_TABLE`] of a
    /// PostgreSQL database (see [`servers::open_postgres`], which loads it).
    pub fn postgres(db: postgres::Db, prefix: &str) -> Result<SqlKv, SqlError> {
        Ok(SqlKv::with_store(
            Store::Postgres(Required::new(db)?),
            prefix,
        ))
    }

    /// The data set whose keys are stored under `prefix` in [`servers::KV_TABLE`] of a MySQL
    /// or MariaDB database (see [`servers::open_mysql`], which loads it).
    pub fn mysql(db: mysql::Db, prefix: &str) -> Result<SqlKv, SqlError> {
        Ok(SqlKv::with_store(Store::Mysql(Required::new(db)?), prefix))
    }

    fn with_store(store: Store, prefix: &str) -> SqlKv {
        SqlKv {
            store,
            prefix: prefix.to_owned(),
            latency_us: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same store, sleeping `latency` (on another thread) before every query, as a
    /// database farther away would take.
    pub fn with_latency(self, latency: Duration) -> Self {
        self.set_latency(latency);
        self
    }

    /// Sleep `latency` before every query from now on, in this store and its clones (those
    /// registered with a runtime included).
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Relaxed);
    }

    /// The delay before every query.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    /// `sqlite`, `postgres` or `mysql`: the source's name in statistics.
    pub fn backend(&self) -> &'static str {
        match self.store {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
            Store::Mysql(_) => "mysql",
        }
    }

    /// The SQLite database, for the `sqlite` backend.
    pub fn sqlite_db(&self) -> Option<&sqlite::Db> {
        match &self.store {
            Store::Sqlite(s) => Some(s.db()),
            _ => None,
        }
    }

    /// Queries sent so far by the sources over this store's database.
    pub fn queries(&self) -> usize {
        each_store!(&self.store, s => s.db().queries())
    }

    /// Keys sent so far, over all queries.
    pub fn keys(&self) -> usize {
        each_store!(&self.store, s => s.db().keys())
    }

    /// Start counting queries and keys from zero again.
    pub fn reset_counters(&self) {
        each_store!(&self.store, s => s.db().reset_counters())
    }

    /// The values of the stored keys `keys` (prefix included) that are present.
    async fn fetch_stored(&self, keys: &[String]) -> Result<Vec<(String, String)>, SqlError> {
        each_store!(&self.store, s => s.fetch(keys).await)
    }
}

impl DataSource for SqlKv {
    type Key = String;
    type Value = String;
    type Error = SqlError;

    /// The values of the keys present, in one query (per chunk of the server's limit).
    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, SqlError> {
        let latency = self.latency();
        if !latency.is_zero() {
            offload(move || std::thread::sleep(latency)).await;
        }
        if self.prefix.is_empty() {
            return self.fetch_stored(keys).await;
        }
        let stored: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        let rows = self.fetch_stored(&stored).await?;
        // Each answered key is one of the asked ones: it starts with the prefix.
        Ok(rows
            .into_iter()
            .map(|(mut key, value)| {
                key.drain(..self.prefix.len());
                (key, value)
            })
            .collect())
    }

    fn name(&self) -> &str {
        self.backend()
    }

    fn max_batch_size(&self) -> Option<usize> {
        each_store!(&self.store, s => s.max_batch_size())
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        each_store!(&self.store, s => s.fetch_timeout())
    }
}

impl KvStore for SqlKv {
    type Error = SqlError;

    /// One call of the source, blocking the calling thread until it is answered: for code
    /// without asynq (the naive page). Not from inside async code: PostgreSQL's and MySQL's
    /// queries run on the tokio runtime their `Db` was opened in, which must be running.
    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, SqlError> {
        futures::executor::block_on(self.fetch(keys))
    }

    fn round_trips(&self) -> usize {
        self.queries()
    }

    fn keys_sent(&self) -> usize {
        self.keys()
    }
}
