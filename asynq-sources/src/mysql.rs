//! MySQL and MariaDB: sources over a [`mysql_async`] pool (feature `mysql`).
//!
//! Each call sends `WHERE key IN (?, ?, ...)` with one bound parameter per key, split into
//! several queries past the server's limit of 65535 parameters per statement (or a lower
//! limit set with [`Db::set_max_keys`]). The placeholder list is padded with `NULL`s to the
//! next power of two, so that each table needs at most 17 distinct prepared statements per
//! connection (a pool opened by [`Db::connect`] keeps 256 per connection). Integer keys are
//! read back through `CAST(key AS SIGNED)` (or `UNSIGNED` for the unsigned key types), text
//! keys as they are. Rows are read with mysql_async's own row mapping, [`FromRow`]: a single
//! column's type, a tuple of up to 12 column types, or a struct with `#[derive(FromRow)]`
//! (mysql_async's `derive` feature).
//!
//! MySQL's usual collations compare text without case and trailing spaces: declare such a key
//! column with [`KeyMatch::IgnoreCase`](crate::KeyMatch) in its [`Table`], so that a row is
//! given to every asked key the server matched it with. A row whose key matches no asked key
//! as the table says (an accent-insensitive collation) fails the call with
//! [`ErrorKind::UnexpectedKey`] instead of being dropped.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::{FromRow, Queryable as _};
use mysql_async::{Column, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Value};

use crate::error::{ErrorKind, SqlError};
use crate::key::{KeyKind, KeyValue, SqlKey};
use crate::runner::{AsyncDb, db_error};
use crate::shared::{Shared, db_settings};
use crate::source::{Database, Reads};
use crate::table::{Dialect, KeyedRows, Table, TableSql};

pub use mysql_async;

/// The most bound parameters one MySQL statement may have (the protocol counts them in 16
/// bits).
pub const MAX_PARAMS: usize = 65535;
/// Connections a pool opened by [`Db::connect`] keeps at most.
const CONNECTIONS: usize = 16;
/// How long a call waits for a connection (a free one, or a new one to open).
const CONNECTION_WAIT: Duration = Duration::from_secs(10);
/// How long an idle connection stays in a pool opened by [`Db::connect`]. mysql_async closes a
/// connection given back to a pool whose idle time-to-live is zero (its default) as soon as
/// the pool holds its minimum of idle ones: with a minimum of 0, every query would open a
/// connection of its own.
const IDLE_CONNECTION_TTL: Duration = Duration::from_secs(60);
/// Prepared statements a connection keeps: the 17 padded sizes of each of up to 15 tables.
const STATEMENT_CACHE: usize = 256;

/// A [`Rows`](crate::Rows) source over MySQL: one row per key, `None` when absent.
pub type Rows<T> = crate::Rows<T, Db>;
/// A [`Groups`](crate::Groups) source over MySQL: every row per key.
pub type Groups<T> = crate::Groups<T, Db>;
/// A [`Required`](crate::Required) source over MySQL: one row per key, an error when absent.
pub type Required<T> = crate::Required<T, Db>;

/// A pool of MySQL (or MariaDB) connections shared by the sources over it, with the tokio
/// runtime its queries run on, counting their queries. Cheap to clone.
///
/// Opened as [`postgres::Db`](crate::postgres::Db) is: [`connect`](Db::connect) inside a
/// tokio runtime, [`connect_blocking`](Db::connect_blocking) in a program without one.
///
/// # Examples
///
/// ```no_run
/// use asynq_sources::mysql::Db;
///
/// let db = Db::connect_blocking("mysql://app@127.0.0.1:3306/app")?;
/// futures::executor::block_on(db.execute_batch("CREATE TABLE IF NOT EXISTS t (id BIGINT)"))?;
/// assert_eq!(db.max_keys(), Some(65535)); // bound parameters per statement
/// # Ok::<(), asynq_sources::SqlError>(())
/// ```
#[derive(Clone)]
pub struct Db {
    inner: Arc<AsyncDb<Pool>>,
}

db_settings!(Db);

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mysql::Db")
            .field("pool", &self.inner.pool)
            .field("runner", &self.inner.runner)
            .field("max_keys", &self.inner.shared.max_keys())
            .field("queries", &self.queries())
            .finish_non_exhaustive()
    }
}

/// A pool of connections to `url`, one of them opened to check it. Call it inside the
/// runtime the pool is to live in.
async fn open_pool(url: &str) -> Result<Pool, SqlError> {
    let opts = Opts::from_url(url).map_err(|e| {
        db_error("mysql", ErrorKind::Config)
            .with_detail("not a MySQL URL")
            .with_cause(e)
    })?;
    let constraints = PoolConstraints::new(0, CONNECTIONS).expect("0 <= CONNECTIONS");
    let opts = OptsBuilder::from_opts(opts)
        .stmt_cache_size(STATEMENT_CACHE)
        // Resetting a connection returned to the pool costs a round trip each query; the
        // sources leave no session state behind.
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_inactive_connection_ttl(IDLE_CONNECTION_TTL)
                .with_reset_connection(false),
        );
    let pool = Pool::new(opts);
    let conn = get_conn(&pool)
        .await
        .map_err(|e| db_error("mysql", ErrorKind::Connect).with_cause(e))?;
    drop(conn);
    Ok(pool)
}

/// A connection of `pool`, or why there is none within [`CONNECTION_WAIT`].
async fn get_conn(
    pool: &Pool,
) -> Result<mysql_async::Conn, Box<dyn std::error::Error + Send + Sync>> {
    match tokio::time::timeout(CONNECTION_WAIT, pool.get_conn()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(format!("no connection within {CONNECTION_WAIT:?}").into()),
    }
}

impl Db {
    /// Connect to the server at `url` (`mysql://user:password@host:port/database`): a pool of
    /// up to 16 connections, one of them opened now to check the address and the
    /// credentials. Call it inside a tokio runtime.
    pub async fn connect(url: &str) -> Result<Db, SqlError> {
        let db = AsyncDb::connect("mysql", open_pool(url), Shared::new(Some(MAX_PARAMS))).await?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// [`connect`](Db::connect) for a program without tokio: the `Db` starts a tokio runtime
    /// of its own (two worker threads) for its queries. It blocks until connected, and fails
    /// when called inside a tokio runtime (use `connect` there).
    pub fn connect_blocking(url: &str) -> Result<Db, SqlError> {
        let db =
            AsyncDb::connect_blocking("mysql", || open_pool(url), Shared::new(Some(MAX_PARAMS)))?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// The sources' database over a pool of your own (TLS, other sizes or timeouts). Call it
    /// inside the tokio runtime the pool's connections are to live in.
    pub fn from_pool(pool: Pool) -> Result<Db, SqlError> {
        let db = AsyncDb::from_pool("mysql", pool, Shared::new(Some(MAX_PARAMS)))?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// The sources' database over a pool of your own, its queries run on the runtime of
    /// `handle` (which must go on running while the `Db` is used).
    pub fn from_pool_on(pool: Pool, handle: tokio::runtime::Handle) -> Db {
        Db {
            inner: Arc::new(AsyncDb::from_pool_on(
                pool,
                handle,
                Shared::new(Some(MAX_PARAMS)),
            )),
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
            let mut conn = get_conn(&pool)
                .await
                .map_err(|e| db_error("mysql", ErrorKind::Connect).with_cause(e))?;
            conn.query_drop(sql)
                .await
                .map_err(|e| db_error("mysql", ErrorKind::Query).with_cause(e))
        };
        self.inner
            .call(work, || db_error("mysql", ErrorKind::Runtime))
            .await
    }

    /// The rows of `keys` in `T`, on one connection: one query per chunk.
    async fn read_here<T: Table>(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromRow,
    {
        let error = |kind, keys: &[T::Key]| SqlError::new(kind, T::NAME, T::TABLE).with_keys(keys);
        let conn = get_conn(&self.inner.pool)
            .await
            .map_err(|e| error(ErrorKind::Connect, keys).with_cause(e))?;
        let mut lent = Lent {
            conn: Some(conn),
            pool: self.inner.pool.clone(),
        };
        let read = self.read_on::<T>(lent.conn(), sql, keys).await;
        lent.give_back();
        read
    }

    /// [`read_here`](Db::read_here) on `conn`.
    async fn read_on<T: Table>(
        &self,
        conn: &mut mysql_async::Conn,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> Result<KeyedRows<T>, SqlError>
    where
        T::Row: FromRow,
    {
        let error = |kind, keys: &[T::Key]| SqlError::new(kind, T::NAME, T::TABLE).with_keys(keys);
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(self.inner.shared.chunk(keys.len())) {
            self.inner.shared.count(chunk.len());
            let padded = chunk
                .len()
                .next_power_of_two()
                .min(self.inner.shared.server_limit());
            let mut params: Vec<Value> = Vec::with_capacity(padded);
            params.extend(chunk.iter().map(|key| match key.to_value() {
                KeyValue::Int(v) => Value::Int(v),
                KeyValue::UInt(v) => Value::UInt(v),
                KeyValue::Text(v) => Value::Bytes(v.into_bytes()),
            }));
            params.resize(padded, Value::NULL);
            let rows: Vec<mysql_async::Row> = conn
                .exec(sql.with_list(padded), params)
                .await
                .map_err(|e| error(ErrorKind::Query, chunk).with_cause(e))?;
            let mut columns: Option<Arc<[Column]>> = None;
            for row in rows {
                let columns = columns.get_or_insert_with(|| {
                    // Every column but the key (the last), for the row type to read.
                    let all = row.columns_ref();
                    Arc::from(&all[..all.len().saturating_sub(1)])
                });
                out.push(split_row::<T>(row, columns)?);
            }
        }
        Ok(out)
    }
}

/// A pooled connection lent to one call.
///
/// Dropped before it is given back (the call's future dropped by a fetch timeout or a
/// cancelled run), its query may still run on the server, and the connection may hold half
/// an answer: the query is killed from another connection, and this one is closed rather
/// than handed to the next call.
struct Lent {
    conn: Option<mysql_async::Conn>,
    pool: Pool,
}

impl Lent {
    fn conn(&mut self) -> &mut mysql_async::Conn {
        self.conn
            .as_mut()
            .expect("a lent connection until given back")
    }

    /// Back to the pool: the call is over.
    fn give_back(mut self) {
        drop(self.conn.take());
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let pool = self.pool.clone();
        // Dropped on the runtime's thread (an aborted task), where the kill can be sent.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Nothing to do when either fails: the connection closes either way.
                if let Ok(mut killer) = get_conn(&pool).await {
                    // The id is the server's number for the connection, not data.
                    let _ = killer.query_drop(format!("KILL QUERY {}", conn.id())).await;
                }
                let _ = conn.disconnect().await;
            });
        }
    }
}

/// A result row as its key (the last column, as `T`'s key kind) and its row (the other
/// columns, read by the row type).
fn split_row<T: Table>(
    row: mysql_async::Row,
    columns: &Arc<[Column]>,
) -> Result<(KeyValue, T::Row), SqlError>
where
    T::Row: FromRow,
{
    let decode = |detail: &str| {
        SqlError::new(ErrorKind::Decode, T::NAME, T::TABLE).with_detail(detail.to_owned())
    };
    if row.len() != columns.len() + 1 {
        return Err(decode("a row has another number of columns than the first"));
    }
    let mut values = row.unwrap();
    let value = values.pop().expect("a row has its key column");
    let key = match <T::Key as SqlKey>::KIND {
        KeyKind::Text => mysql_async::from_value_opt::<String>(value).map(KeyValue::Text),
        KeyKind::UInt => mysql_async::from_value_opt::<u64>(value).map(KeyValue::UInt),
        _ => mysql_async::from_value_opt::<i64>(value).map(KeyValue::Int),
    }
    .map_err(|e| decode("the key column").with_cause(e))?;
    let row = mysql_common::row::new_row(values, Arc::clone(columns));
    let value = T::Row::from_row_opt(row)
        .map_err(|e| crate::answer::decode_error::<T>(&key).with_cause(e))?;
    Ok((key, value))
}

impl Database for Db {
    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    fn key_cast(&self, key: KeyKind) -> Option<&'static str> {
        match key {
            KeyKind::Text => None,
            KeyKind::UInt => Some("UNSIGNED"),
            _ => Some("SIGNED"),
        }
    }
}

impl<T: Table> Reads<T> for Db
where
    T::Row: FromRow,
{
    fn read(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> impl Future<Output = Result<KeyedRows<T>, SqlError>> + Send {
        let (db, sql) = (self.clone(), sql.clone());
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
