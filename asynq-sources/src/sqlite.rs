//! SQLite: sources over a pool of [`rusqlite`] connections (feature `sqlite`).
//!
//! A rusqlite `Connection` is `Send` but not `Sync`: one connection cannot serve two threads at
//! once. A [`Db`] is therefore a pool ([`r2d2`]) of connections to one database file: each
//! call of a source takes a connection for the length of its query, on a thread of its own
//! (tokio's blocking pool inside a tokio runtime), so the calls of one round to different
//! sources run at once and an async executor is never blocked.
//!
//! A query carries at most SQLite's bound-parameter limit of keys (32766 in the bundled SQLite,
//! read from the connection); a round with more is split into several calls. The placeholder
//! list is padded with `NULL`s to the next power of two, so that each table needs at most 16
//! distinct prepared statements per connection (`key IN (..., NULL)` matches nothing more).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::limits::Limit;
use rusqlite::types::{FromSql, Null, ToSql, ToSqlOutput};

use crate::blocking::offload;
use crate::error::{ErrorKind, SqlError};
use crate::key::{KeyKind, KeyValue, SqlKey};
use crate::shared::{Shared, db_settings};
use crate::source::{Database, Reads};
use crate::table::{Dialect, KeyedRows, Table, TableSql};

pub use r2d2;
pub use rusqlite;

/// Statements a connection keeps prepared: the 16 padded sizes of each of up to 16 tables.
const STATEMENT_CACHE: usize = 256;
/// Connections a pool of a database file keeps at most.
const FILE_CONNECTIONS: u32 = 4;
/// How long a call waits for a free connection of the pool.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// A [`Rows`](crate::Rows) source over SQLite: one row per key, `None` when absent.
pub type Rows<T> = crate::Rows<T, Db>;
/// A [`Groups`](crate::Groups) source over SQLite: every row per key.
pub type Groups<T> = crate::Groups<T, Db>;
/// A [`Required`](crate::Required) source over SQLite: one row per key, an error when absent.
pub type Required<T> = crate::Required<T, Db>;

/// How a result row becomes a [`Table::Row`]: the [`Table::COLUMNS`] of the row, by position
/// (index 0 is the first of them) or by name.
///
/// Implemented for single columns (`String`, the integer types up to `i64` and `u32`, `f64`,
/// `f32`, `bool`, `Vec<u8>`, and `Option`s of them for nullable columns), for tuples of up to
/// 12 columns of any [`FromSql`] types, and for `()` (no columns: the row's presence is the
/// answer). For a struct, implement it by hand:
///
/// ```
/// use asynq_sources::sqlite::{rusqlite, FromSqliteRow};
///
/// #[derive(Clone)]
/// struct User {
///     name: String,
///     karma: i64,
/// }
///
/// impl FromSqliteRow for User {
///     fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
///         Ok(User { name: row.get("name")?, karma: row.get("karma")? })
///     }
/// }
/// ```
pub trait FromSqliteRow: Sized {
    /// Read the row.
    fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

crate::mapping::row_mapping!(
    FromSqliteRow::from_sqlite_row(rusqlite::Row<'_>) -> rusqlite::Error, via get,
    tuples of FromSql,
    scalars bool, i8, i16, i32, i64, isize, u8, u16, u32, f32, f64, String, Vec<u8>
);

/// Opens the connections of a [`Db`]'s pool: an [`r2d2::ManageConnection`] for rusqlite.
///
/// Use it to build a pool with settings of your own, then [`Db::from_pool`]. (The
/// `r2d2_sqlite` crate does the same, but it follows rusqlite's releases at its own pace, and
/// two rusqlite versions cannot link into one program: this one uses the crate's own.)
///
/// # Examples
///
/// ```
/// use asynq_sources::sqlite::{r2d2, ConnectionManager, Db};
///
/// let dir = std::env::temp_dir().join(format!("asynq-sources-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let pool = r2d2::Pool::builder()
///     .max_size(2)
///     .build(ConnectionManager::file(dir.join("app.db")))?;
/// let db = Db::from_pool(pool)?;
/// db.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionManager {
    path: Option<PathBuf>,
}

impl ConnectionManager {
    /// Connections to the database file at `path` (created when missing).
    pub fn file(path: impl AsRef<Path>) -> Self {
        ConnectionManager {
            path: Some(path.as_ref().to_path_buf()),
        }
    }

    /// Connections to a new database in memory: each connection has its own, so a pool of
    /// them should hold one connection ([`Db::open_in_memory`] does).
    pub fn memory() -> Self {
        ConnectionManager { path: None }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = match &self.path {
            Some(path) => rusqlite::Connection::open(path)?,
            None => rusqlite::Connection::open_in_memory()?,
        };
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _conn: &mut rusqlite::Connection) -> bool {
        false
    }
}

/// A pool of connections to one SQLite database, shared by the sources over it, counting
/// their queries. Cheap to clone.
///
/// # Examples
///
/// ```
/// use asynq_sources::sqlite::Db;
///
/// let db = Db::open_in_memory()?;
/// db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")?;
/// assert_eq!(db.max_keys(), Some(32766)); // SQLite's bound-parameter limit
/// db.set_max_keys(Some(100));
/// assert_eq!(db.max_keys(), Some(100));
/// assert_eq!(db.queries(), 0);
/// # Ok::<(), asynq_sources::SqlError>(())
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: r2d2::Pool<ConnectionManager>,
    shared: Shared,
    /// A query found the database file damaged or gone ([`Db::is_broken`]).
    broken: AtomicBool,
}

db_settings!(Db);

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("sqlite::Db")
            .field("connections", &self.inner.pool.state().connections)
            .field("max_keys", &self.inner.shared.max_keys())
            .field("queries", &self.queries())
            .finish_non_exhaustive()
    }
}

/// An error of the database as a whole (opening it, setting it up), not of one source.
fn db_error(
    kind: ErrorKind,
    cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> SqlError {
    SqlError::new(kind, "sqlite", "").with_cause(cause)
}

impl Db {
    /// A pool of up to 4 connections to the database file at `path` (created when missing).
    pub fn open(path: impl AsRef<Path>) -> Result<Db, SqlError> {
        let pool = r2d2::Pool::builder()
            .max_size(FILE_CONNECTIONS)
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_WAIT)
            .build(ConnectionManager::file(path))
            .map_err(|e| db_error(ErrorKind::Connect, e))?;
        Db::from_pool(pool)
    }

    /// A new database in memory, behind a pool of one connection (each connection to memory
    /// has a database of its own).
    pub fn open_in_memory() -> Result<Db, SqlError> {
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(CONNECTION_WAIT)
            .build(ConnectionManager::memory())
            .map_err(|e| db_error(ErrorKind::Connect, e))?;
        Db::from_pool(pool)
    }

    /// The sources' database over a pool built with your own settings.
    pub fn from_pool(pool: r2d2::Pool<ConnectionManager>) -> Result<Db, SqlError> {
        let conn = pool.get().map_err(|e| db_error(ErrorKind::Connect, e))?;
        let limit = conn
            .limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER)
            .map_err(|e| db_error(ErrorKind::Connect, e))?;
        drop(conn);
        Ok(Db {
            inner: Arc::new(Inner {
                pool,
                shared: Shared::new(Some(usize::try_from(limit).unwrap_or(1))),
                broken: AtomicBool::new(false),
            }),
        })
    }

    /// Run `f` on a connection of the pool, here (it blocks): schema, loading, checks. Not
    /// counted as a query.
    pub fn with_conn<R>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R>,
    ) -> Result<R, SqlError> {
        let mut conn = self
            .inner
            .pool
            .get()
            .map_err(|e| db_error(ErrorKind::Connect, e))?;
        f(&mut conn).map_err(|e| db_error(ErrorKind::Query, e))
    }

    /// Run SQL statements separated by semicolons, here (it blocks), on one connection.
    pub fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        self.with_conn(|c| c.execute_batch(sql))
    }

    /// Whether a query of a source found the database damaged: SQLite said the file is
    /// corrupt, not a database, unreadable or gone. Its connections will not recover; the file
    /// needs rebuilding (or restoring) and a new `Db`. Other failures (a bad query, a value of
    /// the wrong type, a busy database) leave it `false`.
    pub fn is_broken(&self) -> bool {
        self.inner.broken.load(Ordering::Relaxed)
    }

    /// The rows of `keys` in `T`: one query per chunk, on one connection, here (it blocks).
    /// Notes a damaged database ([`Db::is_broken`]).
    fn read_here<T: Table>(&self, sql: &TableSql, keys: &[T::Key]) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromSqliteRow,
    {
        let mut damaged = false;
        let rows = self.read_chunks::<T>(sql, keys, &mut damaged);
        if damaged {
            self.inner.broken.store(true, Ordering::Relaxed);
        }
        rows
    }

    /// [`read_here`](Db::read_here), setting `damaged` when a query failed for [`is_damage`].
    fn read_chunks<T: Table>(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
        damaged: &mut bool,
    ) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromSqliteRow,
    {
        let error = |kind, keys: &[T::Key]| SqlError::new(kind, T::NAME, T::TABLE).with_keys(keys);
        let conn = self
            .inner
            .pool
            .get()
            .map_err(|e| error(ErrorKind::Connect, keys).with_cause(e))?;
        let limit = self.inner.shared.chunk(keys.len());
        let server_limit = self.inner.shared.server_limit();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(limit) {
            self.inner.shared.count(chunk.len());
            let mut query_error = |e: rusqlite::Error| {
                *damaged |= is_damage(&e);
                error(ErrorKind::Query, chunk).with_cause(e)
            };
            let padded = chunk.len().next_power_of_two().min(server_limit);
            let mut stmt = conn
                .prepare_cached(&sql.with_list(padded))
                .map_err(&mut query_error)?;
            for (i, key) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, Param(key.to_value()))
                    .map_err(&mut query_error)?;
            }
            for i in chunk.len()..padded {
                stmt.raw_bind_parameter(i + 1, Null)
                    .map_err(&mut query_error)?;
            }
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(&mut query_error)? {
                let key = read_key::<T>(row).map_err(|e| {
                    SqlError::new(ErrorKind::Decode, T::NAME, T::TABLE)
                        .with_detail("the key column")
                        .with_cause(e)
                })?;
                let value = T::Row::from_sqlite_row(row)
                    .map_err(|e| crate::answer::decode_error::<T>(&key).with_cause(e))?;
                out.push((key, value));
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
            rusqlite::ErrorCode::DatabaseCorrupt
                | rusqlite::ErrorCode::NotADatabase
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::CannotOpen
        ),
        _ => false,
    }
}

/// The key column of a row (the last one), as `T`'s key kind.
fn read_key<T: Table>(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    let index = T::COLUMNS.len();
    Ok(match <T::Key as SqlKey>::KIND {
        KeyKind::Text => KeyValue::Text(row.get(index)?),
        KeyKind::Int | KeyKind::UInt => KeyValue::Int(row.get(index)?),
    })
}

/// A key bound as a parameter. SQLite's integers are `i64`: an unsigned key above `i64::MAX`
/// cannot be stored, so it is bound as `NULL`, which matches no row.
struct Param(KeyValue);

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match &self.0 {
            KeyValue::Int(v) => v.to_sql(),
            KeyValue::UInt(v) => match i64::try_from(*v) {
                Ok(v) => Ok(ToSqlOutput::from(v)),
                Err(_) => Null.to_sql(),
            },
            KeyValue::Text(v) => v.to_sql(),
        }
    }
}

impl Database for Db {
    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn key_cast(&self, _key: KeyKind) -> Option<&'static str> {
        None
    }
}

impl<T: Table> Reads<T> for Db
where
    T::Row: FromSqliteRow,
{
    fn read(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> impl Future<Output = Result<KeyedRows<T>, SqlError>> + Send {
        let (db, sql) = (self.clone(), sql.clone());
        let keys: Arc<[T::Key]> = keys.into();
        async move {
            let asked = Arc::clone(&keys);
            offload(move || db.read_here::<T>(&sql, &asked))
                .await
                .unwrap_or_else(|e| {
                    Err(SqlError::new(ErrorKind::Runtime, T::NAME, T::TABLE)
                        .with_keys(&keys)
                        .with_cause(e))
                })
        }
    }
}
