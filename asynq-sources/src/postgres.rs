//! PostgreSQL: sources over a [`deadpool_postgres`] pool of [`tokio_postgres`] connections
//! (feature `postgres`).
//!
//! Each call sends one query, whatever its number of keys: the keys are bound as one array
//! parameter, `WHERE key = ANY($1::int8[])` (or `text[]`), so there is no placeholder limit to
//! chunk at and a single prepared statement per table and connection. Integer keys are bound
//! and read back as `int8`, text keys as `text`; the key column may be any integer or text
//! type. The row columns are read with tokio-postgres's strict types (an `int4` column is an
//! `i32`, an `int8` an `i64`), through [`FromPgRow`].
//!
//! The queries run on the tokio runtime the pool lives in, whatever executor polls the run
//! (see [`Db`]). Connections are plain TCP (or Unix sockets): for TLS, build a pool with a TLS
//! connector and hand it to [`Db::from_pool`].

use std::fmt;
use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::FromSqlOwned;

use crate::error::{ErrorKind, SqlError};
use crate::key::{KeyKind, KeyValue, SqlKey};
use crate::runner::{AsyncDb, db_error};
use crate::shared::{Shared, db_settings};
use crate::source::{Database, Reads};
use crate::table::{Dialect, KeyedRows, Table, TableSql};

pub use deadpool_postgres;
pub use tokio_postgres;

/// Connections a pool opened by [`Db::connect`] keeps at most.
const CONNECTIONS: usize = 16;
/// How long a call waits for a connection (a free one, or a new one to open).
const CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// A [`Rows`](crate::Rows) source over PostgreSQL: one row per key, `None` when absent.
pub type Rows<T> = crate::Rows<T, Db>;
/// A [`Groups`](crate::Groups) source over PostgreSQL: every row per key.
pub type Groups<T> = crate::Groups<T, Db>;
/// A [`Required`](crate::Required) source over PostgreSQL: one row per key, an error when
/// absent.
pub type Required<T> = crate::Required<T, Db>;

/// How a result row becomes a [`Table::Row`]: the [`Table::COLUMNS`] of the row, by position
/// (index 0 is the first of them) or by name.
///
/// tokio-postgres has no row mapping of its own; this is the smallest one. It is implemented
/// for single columns (`String`, `i16`, `i32`, `i64`, `f32`, `f64`, `bool`, `Vec<u8>`, and
/// `Option`s of them for nullable columns), for tuples of up to 12 columns of any
/// [`FromSqlOwned`] types, and for `()` (the row's presence is the answer). For a struct,
/// implement it by hand:
///
/// ```
/// use asynq_sources::postgres::{tokio_postgres, FromPgRow};
///
/// #[derive(Clone)]
/// struct User {
///     name: String,
///     karma: i64,
/// }
///
/// impl FromPgRow for User {
///     fn from_pg_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
///         Ok(User { name: row.try_get("name")?, karma: row.try_get("karma")? })
///     }
/// }
/// ```
pub trait FromPgRow: Sized {
    /// Read the row.
    fn from_pg_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error>;
}

crate::mapping::row_mapping!(
    FromPgRow::from_pg_row(tokio_postgres::Row) -> tokio_postgres::Error, via try_get,
    tuples of FromSqlOwned, scalars bool, i16, i32, i64, f32, f64, String, Vec<u8>
);

/// A pool of PostgreSQL connections shared by the sources over it, with the tokio runtime its
/// queries run on, counting their queries. Cheap to clone.
///
/// Open it inside a tokio runtime with [`connect`](Db::connect) (or [`from_pool`](Db::from_pool)):
/// the queries run on that runtime, which must go on running (a multi-thread runtime, or the
/// current-thread runtime the runs are awaited in with `Runtime::run_async`). A program
/// without tokio opens it with [`connect_blocking`](Db::connect_blocking), which starts a
/// small runtime of the `Db`'s own; `Runtime::run` then works from any thread.
///
/// # Examples
///
/// ```no_run
/// use asynq_sources::postgres::Db;
///
/// let db = Db::connect_blocking("postgres://app@127.0.0.1:5432/app")?;
/// futures::executor::block_on(db.execute_batch("CREATE TABLE IF NOT EXISTS t (id int8)"))?;
/// assert_eq!(db.max_keys(), None); // one array parameter: no limit
/// # Ok::<(), asynq_sources::SqlError>(())
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<AsyncDb<Pool>>,
}

db_settings!(Db);

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("postgres::Db")
            .field("pool", &self.inner.pool.status())
            .field("runner", &self.inner.runner)
            .field("max_keys", &self.inner.shared.max_keys())
            .field("queries", &self.queries())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connect to the server at `url` (`postgres://user:password@host:port/database`, or the
    /// `key=value` form): a pool of up to 16 connections, one of them opened now to check the
    /// address and the credentials. Call it inside a tokio runtime.
    pub async fn connect(url: &str) -> Result<Db, SqlError> {
        let db = AsyncDb::connect("postgres", open_pool(url), Shared::new(None)).await?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// [`connect`](Db::connect) for a program without tokio: the `Db` starts a tokio runtime
    /// of its own (two worker threads) for its queries. It blocks until connected, and fails
    /// when called inside a tokio runtime (use `connect` there).
    pub fn connect_blocking(url: &str) -> Result<Db, SqlError> {
        let db = AsyncDb::connect_blocking("postgres", || open_pool(url), Shared::new(None))?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// The sources' database over a pool of your own (TLS, other sizes or timeouts). Call it
    /// inside the tokio runtime the pool's connections are to live in.
    pub fn from_pool(pool: Pool) -> Result<Db, SqlError> {
        let db = AsyncDb::from_pool("postgres", pool, Shared::new(None))?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// The sources' database over a pool of your own, its queries run on the runtime of
    /// `handle` (which must go on running while the `Db` is used).
    pub fn from_pool_on(pool: Pool, handle: tokio::runtime::Handle) -> Db {
        Db {
            inner: Arc::new(AsyncDb::from_pool_on(pool, handle, Shared::new(None))),
        }
    }

    /// The pool, for queries of your own (schema, loading).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Run SQL statements separated by semicolons on one connection (no parameters): schema,
    /// loading. Not counted as a query. It runs on the `Db`'s runtime, so any executor may
    /// await it.
    pub async fn execute_batch(&self, sql: &str) -> Result<(), SqlError> {
        let (pool, sql) = (self.inner.pool.clone(), sql.to_owned());
        let work = async move {
            let client = pool
                .get()
                .await
                .map_err(|e| db_error("postgres", ErrorKind::Connect).with_cause(e))?;
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| db_error("postgres", ErrorKind::Query).with_cause(e))
        };
        self.inner
            .call(work, || db_error("postgres", ErrorKind::Runtime))
            .await
    }

    /// The rows of `keys` in `T`, on one connection: one query per chunk.
    async fn read_here<T: Table>(
        &self,
        sql: &str,
        keys: &[T::Key],
    ) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromPgRow,
    {
        let error = |kind, keys: &[T::Key]| SqlError::new(kind, T::NAME, T::TABLE).with_keys(keys);
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| error(ErrorKind::Connect, keys).with_cause(e))?;
        let lent = Lent(Some(client));
        let read = self.read_on::<T>(lent.client(), sql, keys).await;
        lent.give_back();
        read
    }

    /// [`read_here`](Db::read_here) on `client`.
    async fn read_on<T: Table>(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        sql: &str,
        keys: &[T::Key],
    ) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromPgRow,
    {
        let error = |kind, keys: &[T::Key]| SqlError::new(kind, T::NAME, T::TABLE).with_keys(keys);
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| error(ErrorKind::Query, keys).with_cause(e))?;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(self.inner.shared.chunk(keys.len())) {
            self.inner.shared.count(chunk.len());
            let values: Vec<KeyValue> = chunk.iter().map(SqlKey::to_value).collect();
            let rows = match <T::Key as SqlKey>::KIND {
                KeyKind::Text => {
                    let texts: Vec<&str> = values.iter().filter_map(KeyValue::as_str).collect();
                    client.query(&statement, &[&texts]).await
                }
                // An unsigned key above i64::MAX cannot be in an int8 column: it is absent.
                _ => {
                    let ints: Vec<i64> = values.iter().filter_map(KeyValue::as_i64).collect();
                    client.query(&statement, &[&ints]).await
                }
            }
            .map_err(|e| error(ErrorKind::Query, chunk).with_cause(e))?;
            for row in &rows {
                let key = read_key::<T>(row)?;
                let value = T::Row::from_pg_row(row)
                    .map_err(|e| crate::answer::decode_error::<T>(&key).with_cause(e))?;
                out.push((key, value));
            }
        }
        Ok(out)
    }
}

/// A pool of connections to `url`, one of them opened to check it.
async fn open_pool(url: &str) -> Result<Pool, SqlError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| {
        db_error("postgres", ErrorKind::Config)
            .with_detail("not a PostgreSQL connection string")
            .with_cause(e)
    })?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(CONNECTIONS)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECTION_WAIT))
        .create_timeout(Some(CONNECTION_WAIT))
        .build()
        .map_err(|e| db_error("postgres", ErrorKind::Config).with_cause(e))?;
    drop(
        pool.get()
            .await
            .map_err(|e| db_error("postgres", ErrorKind::Connect).with_cause(e))?,
    );
    Ok(pool)
}

/// A pooled connection lent to one call.
///
/// Dropped before it is given back (the call's future dropped by a fetch timeout or a
/// cancelled run), its query may still run on the server, and the pool would hand the busy
/// connection to the next call, which would wait behind it. So it leaves the pool instead,
/// and the server is asked to cancel the query before the connection closes.
struct Lent(Option<deadpool_postgres::Object>);

impl Lent {
    fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.0.as_ref().expect("a lent connection until given back")
    }

    /// Back to the pool: the call is over.
    fn give_back(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else {
            return;
        };
        let client = deadpool_postgres::Object::take(object);
        let cancel = client.cancel_token();
        // Dropped on the runtime's thread (an aborted task), where the request can be sent.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Nothing to do when it fails: the connection closes either way.
                let _ = cancel.cancel_query(tokio_postgres::NoTls).await;
                drop(client);
            });
        }
    }
}

/// The key column of a row (the last one), as `T`'s key kind.
fn read_key<T: Table>(row: &tokio_postgres::Row) -> Result<KeyValue, SqlError> {
    let index = T::COLUMNS.len();
    let key = match <T::Key as SqlKey>::KIND {
        KeyKind::Text => row.try_get(index).map(KeyValue::Text),
        _ => row.try_get(index).map(KeyValue::Int),
    };
    key.map_err(|e| {
        SqlError::new(ErrorKind::Decode, T::NAME, T::TABLE)
            .with_detail("the key column")
            .with_cause(e)
    })
}

impl Database for Db {
    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn key_cast(&self, key: KeyKind) -> Option<&'static str> {
        Some(match key {
            KeyKind::Text => "text",
            _ => "int8",
        })
    }
}

impl<T: Table> Reads<T> for Db
where
    T::Row: FromPgRow,
{
    fn read(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> impl Future<Output = Result<KeyedRows<T>, SqlError>> + Send {
        let condition = match <T::Key as SqlKey>::KIND {
            KeyKind::Text => "= ANY($1::text[])",
            _ => "= ANY($1::int8[])",
        };
        let sql = sql.with(condition);
        let db = self.clone();
        let keys: Arc<[T::Key]> = keys.into();
        async move {
            let (worker, asked) = (db.clone(), Arc::clone(&keys));
            let work = async move { worker.read_here::<T>(&sql, &asked).await };
            db.inner
                .call(work, || {
                    SqlError::new(ErrorKind::Runtime, T::NAME, T::TABLE).with_keys(&keys)
                })
                .await
        }
    }
}
