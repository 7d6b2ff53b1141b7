//! The sources, generic over the database: [`Rows`] (one row per key, `None` when absent),
//! [`Groups`] (every row per key, empty when none) and [`Required`] (a row per key, an error
//! when absent). Each backend names them for its `Db`: `postgres::Rows<T>` is
//! `Rows<T, postgres::Db>`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use asynq_core::{DataSource, answers};

use crate::answer::assign;
use crate::error::{ErrorKind, SqlError};
use crate::key::KeyKind;
use crate::shared::Shared;
use crate::table::{Dialect, KeyedRows, RowsOfKeys, Table, TableSql};

pub(crate) mod sealed {
    #![allow(
        unreachable_pub,
        reason = "the sealed-trait pattern: public, but unnameable"
    )]
    /// Only this crate's databases are [`Database`](super::Database)s.
    pub trait Sealed {}
}

/// A database that sources read from: the `Db` of a backend ([`postgres::Db`](crate::postgres::Db),
/// [`mysql::Db`](crate::mysql::Db), [`sqlite::Db`](crate::sqlite::Db)). A handle to a pool, cheap
/// to clone; every source over it shares the pool, its settings and its counters.
///
/// Each `Db` has these methods as inherent methods too; the trait is for code generic over
/// the backend. Sealed: the sources need what only this crate's databases do.
pub trait Database: sealed::Sealed + Clone + fmt::Debug + Send + Sync + 'static {
    /// The counters and settings.
    #[doc(hidden)]
    fn shared(&self) -> &Shared;

    #[doc(hidden)]
    fn dialect(&self) -> Dialect;

    /// What the key column is selected as (PostgreSQL casts it to the bound type).
    #[doc(hidden)]
    fn key_cast(&self, key: KeyKind) -> Option<&'static str>;

    /// Queries sent so far by the sources over this database (one per chunk of keys).
    fn queries(&self) -> usize {
        self.shared().queries()
    }

    /// Keys sent so far, over all queries.
    fn keys(&self) -> usize {
        self.shared().keys()
    }

    /// Start counting queries and keys from zero again.
    fn reset_counters(&self) {
        self.shared().reset()
    }

    /// The most keys one query carries, when limited: the server's bound-parameter limit,
    /// or a lower limit set by [`set_max_keys`](Database::set_max_keys). Rounds with more
    /// keys are split into several calls.
    fn max_keys(&self) -> Option<usize> {
        self.shared().max_keys()
    }

    /// Carry at most `max` keys per query from now on (at least 1; `None`: only the server's
    /// limit), for every source over this database.
    fn set_max_keys(&self, max: Option<usize>) {
        self.shared().set_max_keys(max)
    }

    /// How long one call may take before its keys fail (see [`DataSource::fetch_timeout`]):
    /// 30 seconds unless set.
    fn fetch_timeout(&self) -> Option<Duration> {
        self.shared().fetch_timeout()
    }

    /// Fail a call's keys when it takes longer than `timeout` (`None`: wait as long as it
    /// takes).
    fn set_fetch_timeout(&self, timeout: Option<Duration>) {
        self.shared().set_fetch_timeout(timeout)
    }
}

/// A [`Database`] that can read the rows of table `T`: every backend, for the row types its
/// row mapping reads (`T::Row` implements [`FromPgRow`](crate::postgres::FromPgRow) on
/// PostgreSQL, `mysql_async`'s `FromRow` on MySQL, [`FromSqliteRow`](crate::sqlite::FromSqliteRow)
/// on SQLite).
pub trait Reads<T: Table>: Database {
    /// The rows of `keys`, each with the value of its key column: one query per chunk of
    /// [`max_keys`](Database::max_keys) keys.
    #[doc(hidden)]
    fn read(
        &self,
        sql: &TableSql,
        keys: &[T::Key],
    ) -> impl Future<Output = Result<KeyedRows<T>, SqlError>> + Send;
}

/// A source of at most one row per key: `Some(row)`, or `None` when the table has no row for
/// the key (an absent row is not an error).
///
/// One query per round (per chunk of [`Database::max_keys`] keys): `WHERE key = ANY($1)` on
/// PostgreSQL, `WHERE key IN (?, ...)` on MySQL and SQLite. When a key has several rows (a
/// key column that is not unique), the first row wins.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_sources::{sqlite, Table};
///
/// struct Users;
/// impl Table for Users {
///     type Key = i64;
///     type Row = String;
///     const NAME: &'static str = "users";
///     const TABLE: &'static str = "users";
///     const KEY: &'static str = "id";
///     const COLUMNS: &'static [&'static str] = &["name"];
/// }
///
/// #[asynq]
/// fn names(ids: Vec<i64>) -> Result<Vec<Option<String>>, Error> {
///     sqlite::Rows::<Users>::load_many(ids).await.into_iter().collect()
/// }
///
/// let db = sqlite::Db::open_in_memory()?;
/// db.execute_batch(
///     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
///      INSERT INTO users VALUES (1, 'ann'), (2, 'bob');",
/// )?;
/// let rt = Runtime::new().with_source(sqlite::Rows::<Users>::new(db.clone())?);
/// let got = rt.run(names(vec![2, 9, 1]))?;
/// assert_eq!(got, [Some("bob".into()), None, Some("ann".into())]);
/// assert_eq!(db.queries(), 1); // one SELECT for the three ids
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub struct Rows<T: Table, D: Database> {
    db: D,
    sql: Arc<TableSql>,
    _table: PhantomData<fn() -> T>,
}

/// A source of every row per key, in [`Table::ORDER_BY`] order: a has-many lookup (the
/// comments of each post). A key without rows is answered with an empty `Vec`.
///
/// One query per round (per chunk of [`Database::max_keys`] keys), as for [`Rows`].
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_sources::{sqlite, Table};
///
/// struct CommentsByPost;
/// impl Table for CommentsByPost {
///     type Key = i64;
///     type Row = String;
///     const NAME: &'static str = "comments_by_post";
///     const TABLE: &'static str = "comments";
///     const KEY: &'static str = "post_id";
///     const COLUMNS: &'static [&'static str] = &["body"];
///     const ORDER_BY: &'static [&'static str] = &["id"];
/// }
///
/// #[asynq]
/// fn counts(posts: Vec<i64>) -> Result<Vec<usize>, Error> {
///     let comments = sqlite::Groups::<CommentsByPost>::load_many(posts).await;
///     comments.into_iter().map(|c| Ok(c?.len())).collect()
/// }
///
/// let db = sqlite::Db::open_in_memory()?;
/// db.execute_batch(
///     "CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, body TEXT);
///      INSERT INTO comments VALUES (1, 10, 'first'), (2, 30, 'nice'), (3, 10, '+1');",
/// )?;
/// let rt = Runtime::new().with_source(sqlite::Groups::<CommentsByPost>::new(db.clone())?);
/// assert_eq!(rt.run(counts(vec![10, 20, 30]))?, [2, 0, 1]);
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub struct Groups<T: Table, D: Database> {
    db: D,
    sql: Arc<TableSql>,
    _table: PhantomData<fn() -> T>,
}

macro_rules! source_common {
    ($source:ident) => {
        impl<T: Table, D: Database> $source<T, D> {
            /// The source of `T` over `db`; fails when `T`'s table or column names are not
            /// valid names ([`ErrorKind::Config`]).
            pub fn new(db: D) -> Result<Self, SqlError> {
                let sql =
                    TableSql::new::<T>(db.dialect(), db.key_cast(crate::table::key_kind::<T>()))?;
                Ok($source {
                    db,
                    sql: Arc::new(sql),
                    _table: PhantomData,
                })
            }

            /// The database it reads, with its counters.
            pub fn db(&self) -> &D {
                &self.db
            }
        }

        impl<T: Table, D: Database> fmt::Debug for $source<T, D> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($source))
                    .field("name", &T::NAME)
                    .field("table", &T::TABLE)
                    .field("db", &self.db)
                    .finish()
            }
        }

        impl<T: Table, D: Database> Clone for $source<T, D> {
            fn clone(&self) -> Self {
                $source {
                    db: self.db.clone(),
                    sql: Arc::clone(&self.sql),
                    _table: PhantomData,
                }
            }
        }
    };
}

source_common!(Rows);
source_common!(Groups);

/// The `DataSource` of a source of `T` whose answer of a key is `$value`, built from the
/// query's rows by `$answer` (one of [`asynq_core::answers`]).
macro_rules! source_of_rows {
    ($source:ident, $value:ty, $answer:path) => {
        impl<T: Table, D: Reads<T>> DataSource for $source<T, D> {
            type Key = T::Key;
            type Value = $value;
            type Error = SqlError;

            async fn fetch(&self, keys: &[T::Key]) -> Result<Vec<(T::Key, $value)>, SqlError> {
                let rows = self.db.read(&self.sql, keys).await?;
                Ok($answer(keys, assign::<T>(keys, rows)?))
            }

            fn name(&self) -> &str {
                T::NAME
            }

            fn max_batch_size(&self) -> Option<usize> {
                Database::max_keys(&self.db)
            }

            fn fetch_timeout(&self) -> Option<Duration> {
                Database::fetch_timeout(&self.db)
            }
        }
    };
}

source_of_rows!(Rows, Option<T::Row>, answers::optional);
source_of_rows!(Groups, Vec<T::Row>, answers::grouped);

/// [`Rows`] where every key must have a row: `Value = T::Row`, and a key without a row fails
/// (only its own tasks) with [`ErrorKind::NotFound`] naming the table and the key.
///
/// The shape of a key-value store (memcached's `get`), where a missing key is a broken
/// reference rather than an answer.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_sources::{sqlite, ErrorKind, Required, SqlError, Table};
///
/// struct Kv;
/// impl Table for Kv {
///     type Key = String;
///     type Row = String;
///     const NAME: &'static str = "kv";
///     const TABLE: &'static str = "kv";
///     const KEY: &'static str = "key";
///     const COLUMNS: &'static [&'static str] = &["value"];
/// }
/// type KvSource = Required<Kv, sqlite::Db>;
///
/// #[asynq]
/// fn two(a: String, b: String) -> (Result<String, Error>, Result<String, Error>) {
///     (KvSource::load(a), KvSource::load(b)).await
/// }
///
/// let db = sqlite::Db::open_in_memory()?;
/// db.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT); INSERT INTO kv VALUES ('a', '1');")?;
/// let rt = Runtime::new().with_source(KvSource::new(db)?);
/// let (a, b) = rt.run(two("a".into(), "b".into()))?;
/// assert_eq!(a?, "1");
/// let err = b.unwrap_err();
/// let Error::Source { error, .. } = &err else { panic!("{err}") };
/// assert_eq!(error.downcast_ref::<SqlError>().unwrap().kind(), ErrorKind::NotFound);
/// assert!(err.to_string().ends_with(r#"source `kv` (table `kv`): no row for key "b""#), "{err}");
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub struct Required<T: Table, D: Database> {
    rows: Rows<T, D>,
}

impl<T: Table, D: Database> Required<T, D> {
    /// The source of `T` over `db`; fails as [`Rows::new`] does.
    pub fn new(db: D) -> Result<Self, SqlError> {
        Ok(Required {
            rows: Rows::new(db)?,
        })
    }

    /// The database it reads, with its counters.
    pub fn db(&self) -> &D {
        &self.rows.db
    }
}

impl<T: Table, D: Database> fmt::Debug for Required<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Required")
            .field("name", &T::NAME)
            .field("table", &T::TABLE)
            .field("db", &self.rows.db)
            .finish()
    }
}

impl<T: Table, D: Database> Clone for Required<T, D> {
    fn clone(&self) -> Self {
        Required {
            rows: self.rows.clone(),
        }
    }
}

impl<T: Table, D: Reads<T>> DataSource for Required<T, D> {
    type Key = T::Key;
    type Value = T::Row;
    type Error = SqlError;

    /// The rows present; a key without a row is left out of the answer.
    async fn fetch(&self, keys: &[T::Key]) -> Result<RowsOfKeys<T>, SqlError> {
        let rows = self.rows.fetch(keys).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, row)| Some((key, row?)))
            .collect())
    }

    /// Every key with its row, or [`ErrorKind::NotFound`] naming it.
    #[allow(
        clippy::type_complexity,
        reason = "the signature of DataSource::fetch_each, spelled out"
    )]
    async fn fetch_each(
        &self,
        keys: &[T::Key],
    ) -> Result<Vec<(T::Key, Result<T::Row, SqlError>)>, SqlError> {
        let rows = self.rows.fetch(keys).await?;
        Ok(rows
            .into_iter()
            .map(|(key, row)| {
                let row = row.ok_or_else(|| {
                    SqlError::new(ErrorKind::NotFound, T::NAME, T::TABLE).with_keys(&[&key])
                });
                (key, row)
            })
            .collect())
    }

    fn name(&self) -> &str {
        T::NAME
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.rows.max_batch_size()
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        self.rows.fetch_timeout()
    }
}
