//! SQLite data sources: one `SELECT ... WHERE key IN (?, ?, ...)` per round.
//!
//! A [`Db`] is one SQLite connection (a file or memory), shared by every source over it and
//! usable from any thread: it sits behind a mutex, so fetch futures are `Send` and one
//! `Runtime` can serve runs on many threads. A source is a [`Table`] (a query with the key
//! list left open, and how to read a row) wrapped in [`Sqlite`] (one row per key, `None` for
//! an absent row) or [`SqliteGroups`] (every row per key, an empty `Vec` when there is none).
//! [`SqliteKv`] is the key-value table of the FEED-1 page.
//!
//! Each round sends one query per source with every key of the round as a bound parameter.
//! A round with more keys than SQLite's bound-parameter limit (32766 in the bundled SQLite)
//! is split in chunks of at most that many, one query each: the source's
//! [`max_batch_size`](DataSource::max_batch_size) is the limit, so the runtime's statistics
//! count queries. Statements are prepared once and cached per connection
//! ([`Connection::prepare_cached`]): the list of placeholders is padded with `NULL`s to the
//! next power of two, so a source needs at most 16 distinct statements whatever its batch
//! sizes, and `key IN (..., NULL)` matches nothing more.
//!
//! Queries block, so each call of a source runs off the run's thread: on tokio's blocking pool
//! inside a tokio runtime (the `server` program's `/profile`), else on a thread of its own.
//! The calls of a round to different sources are in flight together, and an async executor
//! is never blocked.
//!
//! Files: [`open_owned`] opens a data set file this crate made, building it atomically when
//! missing and refusing (untouched) any file it did not make; [`SqliteKv::open_feed`] and
//! `profile::open` go through it. A [`Db`] remembers when one of its queries found the file
//! damaged ([`Db::is_broken`]), so that a server can rebuild it.

mod kv;
mod owned;

pub use kv::{FEED_FILE_VERSION, Kv, SqliteKv, feed_mark};
pub use owned::{APPLICATION_ID, Mark, OpenError, is_owned, open_owned, remove_owned};

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use asynq_core::DataSource;
use rusqlite::limits::Limit;
use rusqlite::types::{FromSql, Null, ToSql};
use rusqlite::{Connection, ErrorCode};

use crate::offload::offload;

/// The SQLite bindings these sources are built on, for implementing [`Table::read`].
pub use rusqlite;

/// Distinct statements a connection keeps prepared: the 16 padded sizes of each of up to 8
/// sources (the profile page has 5).
const STATEMENT_CACHE: usize = 128;

/// A query over an SQLite table, looked up by one key column: what a source of [`Sqlite`] or
/// [`SqliteGroups`] sends.
///
/// Implement it once per kind of lookup (users by id, answers by author, ...). `QUERY` is a
/// `SELECT` whose first column is the key and whose `WHERE` clause holds `IN ({keys})`;
/// [`read`](Table::read) turns the other columns of a result row into a `Row`.
///
/// # Examples
///
/// ```
/// use asynq_examples::sqlite::Table;
///
/// /// Users by id.
/// struct Users;
/// impl Table for Users {
///     type Key = i64;
///     type Row = String;
///     const NAME: &'static str = "users";
///     const QUERY: &'static str = "SELECT id, name FROM users WHERE id IN ({keys})";
///     fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
///         row.get(1)
///     }
/// }
/// ```
pub trait Table: Send + Sync + 'static {
    /// The key column's type.
    type Key: ToSql + FromSql + Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static;
    /// What one result row becomes.
    type Row: Clone + Send + 'static;
    /// The source's name in statistics and errors.
    const NAME: &'static str;
    /// The query, with `{keys}` where the list of placeholders goes; column 0 is the key.
    const QUERY: &'static str;
    /// Read a result row (its key is column 0, already read).
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self::Row>;
}

/// One SQLite connection, shared by the sources over it, counting its queries.
///
/// Open it once at start-up, set its schema up with [`with_conn`](Db::with_conn), and hand a
/// clone (cheap: it is reference-counted) to each source. Every query of a source goes
/// through it, so [`calls`](Db::calls) counts the database's round trips. An optional fixed
/// latency per query (a blocking sleep) imitates a database across the network.
///
/// # Examples
///
/// ```
/// use asynq_examples::sqlite::Db;
///
/// let db = Db::open_in_memory()?;
/// db.with_conn(|c| c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)"))?;
/// assert_eq!(db.calls(), 0);
/// assert_eq!(db.max_params(), 32766);
/// # Ok::<(), rusqlite::Error>(())
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    max_params: AtomicUsize,
    latency_us: AtomicU64,
    calls: AtomicUsize,
    keys: AtomicUsize,
    broken: AtomicBool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("max_params", &self.max_params())
            .field("calls", &self.calls())
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Open (or create) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<Db> {
        Db::from_connection(Connection::open(path)?)
    }

    /// A fresh database in memory.
    pub fn open_in_memory() -> rusqlite::Result<Db> {
        Db::from_connection(Connection::open_in_memory()?)
    }

    /// Share an open connection.
    pub fn from_connection(conn: Connection) -> rusqlite::Result<Db> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let max_params = usize::try_from(conn.limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER)?)
            .unwrap_or(1)
            .max(1);
        Ok(Db {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                max_params: AtomicUsize::new(max_params),
                latency_us: AtomicU64::new(0),
                calls: AtomicUsize::new(0),
                keys: AtomicUsize::new(0),
                broken: AtomicBool::new(false),
            }),
        })
    }

    /// Sleep `latency` in every query from now on, as a remote database would take.
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner.latency_us.store(us, Ordering::Relaxed);
    }

    /// Lower the bound-parameter limit of the connection (at least 1), so that smaller rounds
    /// are split in several queries: for tests of chunking.
    pub fn set_max_params(&self, max: usize) -> rusqlite::Result<()> {
        let max = max.clamp(1, i32::MAX as usize);
        let conn = self.lock();
        conn.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, max as i32)?;
        let now = conn.limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER)?;
        self.inner
            .max_params
            .store(usize::try_from(now).unwrap_or(1).max(1), Ordering::Relaxed);
        Ok(())
    }

    /// The most keys one query carries: SQLite's bound-parameter limit.
    pub fn max_params(&self) -> usize {
        self.inner.max_params.load(Ordering::Relaxed)
    }

    /// Run `f` on the connection, not counted as a query: schema, loading, checks.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        f(&mut self.lock())
    }

    /// Queries sent so far by the sources over this connection.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Keys sent so far, over all queries.
    pub fn keys(&self) -> usize {
        self.inner.keys.load(Ordering::Relaxed)
    }

    /// Start counting from zero again.
    pub fn reset_counters(&self) {
        self.inner.calls.store(0, Ordering::Relaxed);
        self.inner.keys.store(0, Ordering::Relaxed);
    }

    /// Whether a query found the database damaged (SQLite said the file is corrupt, not a
    /// database, unreadable or gone): the connection will not recover, the file needs
    /// rebuilding. Other failures (a bad query, a value of the wrong type) leave it `false`.
    pub fn is_broken(&self) -> bool {
        self.inner.broken.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite's own state
        // is consistent between calls.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every result row of `T`'s query for `keys`: one query per chunk of at most
    /// [`max_params`](Db::max_params) keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_examples::sqlite::{Db, Table};
    ///
    /// struct Squares;
    /// impl Table for Squares {
    ///     type Key = i64;
    ///     type Row = i64;
    ///     const NAME: &'static str = "squares";
    ///     const QUERY: &'static str = "SELECT n, sq FROM squares WHERE n IN ({keys})";
    ///     fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<i64> {
    ///         row.get(1)
    ///     }
    /// }
    ///
    /// let db = Db::open_in_memory()?;
    /// db.with_conn(|c| c.execute_batch(
    ///     "CREATE TABLE squares (n INTEGER PRIMARY KEY, sq INTEGER);
    ///      INSERT INTO squares VALUES (2, 4), (3, 9);",
    /// ))?;
    /// let mut rows = db.query::<Squares>(&[3, 2, 7])?;
    /// rows.sort();
    /// assert_eq!(rows, [(2, 4), (3, 9)]);
    /// assert_eq!(db.calls(), 1);
    /// # Ok::<(), rusqlite::Error>(())
    /// ```
    pub fn query<T: Table>(&self, keys: &[T::Key]) -> rusqlite::Result<Vec<(T::Key, T::Row)>> {
        let result = self.query_chunks::<T>(keys);
        if let Err(e) = &result
            && is_damage(e)
        {
            self.inner.broken.store(true, Ordering::Relaxed);
        }
        result
    }

    fn query_chunks<T: Table>(&self, keys: &[T::Key]) -> rusqlite::Result<Vec<(T::Key, T::Row)>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(self.max_params()) {
            self.inner.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.keys.fetch_add(chunk.len(), Ordering::Relaxed);
            let latency = self.inner.latency_us.load(Ordering::Relaxed);
            if latency > 0 {
                std::thread::sleep(Duration::from_micros(latency));
            }
            let conn = self.lock();
            let padded = chunk.len().next_power_of_two().min(self.max_params());
            let mut stmt = conn.prepare_cached(&sql_for(T::QUERY, padded))?;
            for (i, key) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, key)?;
            }
            for i in chunk.len()..padded {
                stmt.raw_bind_parameter(i + 1, Null)?;
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next()? {
                out.push((row.get(0)?, T::read(row)?));
            }
        }
        Ok(out)
    }
}

/// Whether `e` says the database file is damaged or gone, rather than the query wrong.
fn is_damage(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(e, _) => matches!(
            e.code,
            ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
        ),
        _ => false,
    }
}

/// `query` with `{keys}` replaced by `n` placeholders.
fn sql_for(query: &str, n: usize) -> String {
    let mut list = String::with_capacity(2 * n);
    for i in 0..n {
        list.push_str(if i == 0 { "?" } else { ",?" });
    }
    query.replace("{keys}", &list)
}

/// A source over a [`Table`] with at most one row per key: answers `Some(row)`, or `None`
/// when the table has no row for the key (an absent row is not an error).
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_examples::sqlite::{Db, Sqlite, Table};
///
/// struct Names;
/// impl Table for Names {
///     type Key = i64;
///     type Row = String;
///     const NAME: &'static str = "names";
///     const QUERY: &'static str = "SELECT id, name FROM users WHERE id IN ({keys})";
///     fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
///         row.get(1)
///     }
/// }
///
/// #[asynq]
/// fn names(ids: Vec<i64>) -> Result<Vec<Option<String>>, Error> {
///     Sqlite::<Names>::load_many(ids).await.into_iter().collect()
/// }
///
/// let db = Db::open_in_memory()?;
/// db.with_conn(|c| c.execute_batch(
///     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
///      INSERT INTO users VALUES (1, 'ann'), (2, 'bob');",
/// ))?;
/// let rt = Runtime::new().with_source(Sqlite::<Names>::new(db.clone()));
/// let got = rt.run(names(vec![2, 9, 1]))?;
/// assert_eq!(got, [Some("bob".to_string()), None, Some("ann".to_string())]);
/// assert_eq!(db.calls(), 1); // one SELECT for the three ids
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sqlite<T: Table> {
    db: Db,
    _table: PhantomData<fn() -> T>,
}

impl<T: Table> Sqlite<T> {
    /// The source of `T` over `db`.
    pub fn new(db: Db) -> Self {
        Sqlite {
            db,
            _table: PhantomData,
        }
    }

    /// The connection it queries.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl<T: Table> fmt::Debug for Sqlite<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sqlite")
            .field("table", &T::NAME)
            .field("db", &self.db)
            .finish()
    }
}

impl<T: Table> DataSource for Sqlite<T> {
    type Key = T::Key;
    type Value = Option<T::Row>;
    type Error = rusqlite::Error;

    async fn fetch(&self, keys: &[T::Key]) -> Result<Vec<(T::Key, Option<T::Row>)>, Self::Error> {
        let (db, keys) = (self.db.clone(), keys.to_vec());
        // The first row of a key wins; a key without rows gets `None`.
        offload(move || {
            answer_in_key_order::<T, _>(&db, keys, |row: &mut Option<T::Row>, new| {
                row.get_or_insert(new);
            })
        })
        .await
    }

    fn name(&self) -> &str {
        T::NAME
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.db.max_params())
    }
}

/// Run `T`'s query for `keys` and answer every key, in the order asked, with its rows folded
/// by `add` into a value that starts as `V::default()` (also the answer of a key without rows).
fn answer_in_key_order<T: Table, V: Default>(
    db: &Db,
    keys: Vec<T::Key>,
    add: impl Fn(&mut V, T::Row),
) -> rusqlite::Result<Vec<(T::Key, V)>> {
    let mut found: HashMap<T::Key, V> = HashMap::with_capacity(keys.len());
    for (key, row) in db.query::<T>(&keys)? {
        add(found.entry(key).or_default(), row);
    }
    Ok(keys
        .into_iter()
        .map(|key| {
            let value = found.remove(&key).unwrap_or_default();
            (key, value)
        })
        .collect())
}

/// A source over a [`Table`] with any number of rows per key: answers every row of the key in
/// the query's order, an empty `Vec` when there is none.
///
/// Use it for one-to-many lookups: a user's answers, a question's tags.
pub struct SqliteGroups<T: Table> {
    db: Db,
    _table: PhantomData<fn() -> T>,
}

impl<T: Table> SqliteGroups<T> {
    /// The source of `T` over `db`.
    pub fn new(db: Db) -> Self {
        SqliteGroups {
            db,
            _table: PhantomData,
        }
    }
}

impl<T: Table> fmt::Debug for SqliteGroups<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteGroups")
            .field("table", &T::NAME)
            .field("db", &self.db)
            .finish()
    }
}

impl<T: Table> DataSource for SqliteGroups<T> {
    type Key = T::Key;
    type Value = Vec<T::Row>;
    type Error = rusqlite::Error;

    async fn fetch(&self, keys: &[T::Key]) -> Result<Vec<(T::Key, Vec<T::Row>)>, Self::Error> {
        let (db, keys) = (self.db.clone(), keys.to_vec());
        offload(move || {
            answer_in_key_order::<T, _>(&db, keys, |rows: &mut Vec<T::Row>, row| rows.push(row))
        })
        .await
    }

    fn name(&self) -> &str {
        T::NAME
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.db.max_params())
    }
}
