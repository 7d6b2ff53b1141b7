//! The profile site's rows, its tables (the same names on every backend), and its sources
//! over whichever database holds it: [`SiteDb`].

use std::time::Duration;

use asynq_core::{DataSource, Runtime};
use asynq_sources::mysql::mysql_async::{self, FromRowError, prelude::FromRow};
use asynq_sources::postgres::{FromPgRow, tokio_postgres};
use asynq_sources::sqlite::{self, FromSqliteRow};
use asynq_sources::{Groups, Rows, SqlError, Table, mysql, postgres};

use crate::delayed::Delayed;
use crate::sqlite::rusqlite;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Display name.
    pub name: String,
    /// Photo URL.
    pub photo: String,
    /// Free text about the user.
    pub bio: String,
}

/// A row of `answers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The question answered.
    pub question: i64,
    /// The answer's text.
    pub body: String,
}

/// The row mappings of the three backends for a struct read column by column: by name on
/// SQLite and PostgreSQL, in order (the order of the table's `COLUMNS`) on MySQL.
macro_rules! row_mappings {
    ($row:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        impl FromSqliteRow for $row {
            fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<$row> {
                Ok($row { $($field: row.get(stringify!($field))?),* })
            }
        }

        impl FromPgRow for $row {
            fn from_pg_row(row: &tokio_postgres::Row) -> Result<$row, tokio_postgres::Error> {
                Ok($row { $($field: row.try_get(stringify!($field))?),* })
            }
        }

        impl FromRow for $row {
            fn from_row_opt(row: mysql_async::Row) -> Result<$row, FromRowError> {
                let ($($field,)*): ($($ty,)*) = mysql_async::from_row_opt(row)?;
                Ok($row { $($field),* })
            }
        }
    };
}

row_mappings!(User {
    name: String,
    photo: String,
    bio: String
});
row_mappings!(Answer {
    question: i64,
    body: String
});

/// The prefix of the site's tables and views: the same names on every backend, and names a
/// database server's own tables are unlikely to have.
pub const PREFIX: &str = "asynq_profile_";

/// Users by id.
#[derive(Debug)]
pub struct UserTable;

impl Table for UserTable {
    type Key = i64;
    type Row = User;
    const NAME: &'static str = "users";
    const TABLE: &'static str = "asynq_profile_users";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name", "photo", "bio"];
}

/// Follower counts by user id (no row for a user nobody follows): the view
/// `asynq_profile_follower_counts`, a `GROUP BY` of the follows (the databases push the key
/// list into it).
#[derive(Debug)]
pub struct FollowerCountTable;

impl Table for FollowerCountTable {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "follower_counts";
    const TABLE: &'static str = "asynq_profile_follower_counts";
    const KEY: &'static str = "followee";
    const COLUMNS: &'static [&'static str] = &["followers"];
}

/// The ids of a user's 3 latest answers, newest first: the view
/// `asynq_profile_recent_answers`, a window over the answers partitioned by author (the
/// databases push the key list into it).
#[derive(Debug)]
pub struct RecentAnswerTable;

impl Table for RecentAnswerTable {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "recent_answers";
    const TABLE: &'static str = "asynq_profile_recent_answers";
    const KEY: &'static str = "author";
    const COLUMNS: &'static [&'static str] = &["id"];
    const ORDER_BY: &'static [&'static str] = &["recency"];
}

/// Answers by id.
#[derive(Debug)]
pub struct AnswerTable;

impl Table for AnswerTable {
    type Key = i64;
    type Row = Answer;
    const NAME: &'static str = "answers";
    const TABLE: &'static str = "asynq_profile_answers";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["question", "body"];
}

/// Question titles by id.
#[derive(Debug)]
pub struct QuestionTable;

impl Table for QuestionTable {
    type Key = i64;
    type Row = String;
    const NAME: &'static str = "questions";
    const TABLE: &'static str = "asynq_profile_questions";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["title"];
}

/// The database holding a profile site: an SQLite file, or a PostgreSQL or MySQL/MariaDB
/// database (see [`open`](super::open) and [`servers`](super::servers)).
#[derive(Clone, Debug)]
pub enum SiteDb {
    /// An SQLite database.
    Sqlite(sqlite::Db),
    /// A PostgreSQL database.
    Postgres(postgres::Db),
    /// A MySQL or MariaDB database.
    Mysql(mysql::Db),
}

impl From<&sqlite::Db> for SiteDb {
    fn from(db: &sqlite::Db) -> SiteDb {
        SiteDb::Sqlite(db.clone())
    }
}

impl From<&postgres::Db> for SiteDb {
    fn from(db: &postgres::Db) -> SiteDb {
        SiteDb::Postgres(db.clone())
    }
}

impl From<&mysql::Db> for SiteDb {
    fn from(db: &mysql::Db) -> SiteDb {
        SiteDb::Mysql(db.clone())
    }
}

impl From<&SiteDb> for SiteDb {
    fn from(db: &SiteDb) -> SiteDb {
        db.clone()
    }
}

impl SiteDb {
    /// The SQLite database, on that backend.
    pub fn sqlite(&self) -> Option<&sqlite::Db> {
        match self {
            SiteDb::Sqlite(db) => Some(db),
            _ => None,
        }
    }

    /// Queries sent so far by the sources over this database.
    pub fn queries(&self) -> usize {
        match self {
            SiteDb::Sqlite(db) => db.queries(),
            SiteDb::Postgres(db) => db.queries(),
            SiteDb::Mysql(db) => db.queries(),
        }
    }

    /// `sqlite`, `postgres` or `mysql`.
    pub fn backend(&self) -> &'static str {
        match self {
            SiteDb::Sqlite(_) => "sqlite",
            SiteDb::Postgres(_) => "postgres",
            SiteDb::Mysql(_) => "mysql",
        }
    }
}

/// One of a profile source's backends: the source of the database the site is in. The
/// profile's functions load from one source type whatever the database.
#[derive(Debug)]
pub enum OnAny<S, P, M> {
    /// Over SQLite.
    Sqlite(S),
    /// Over PostgreSQL.
    Postgres(P),
    /// Over MySQL or MariaDB.
    Mysql(M),
}

/// Evaluates `$body` with `$s` bound to the backend's source (of whichever type it is).
macro_rules! each {
    ($on:expr, $s:ident => $body:expr) => {
        match $on {
            OnAny::Sqlite($s) => $body,
            OnAny::Postgres($s) => $body,
            OnAny::Mysql($s) => $body,
        }
    };
}

impl<S, P, M> DataSource for OnAny<S, P, M>
where
    S: DataSource,
    P: DataSource<Key = S::Key, Value = S::Value, Error = S::Error>,
    M: DataSource<Key = S::Key, Value = S::Value, Error = S::Error>,
{
    type Key = S::Key;
    type Value = S::Value;
    type Error = S::Error;

    async fn fetch(&self, keys: &[S::Key]) -> Result<Vec<(S::Key, S::Value)>, S::Error> {
        each!(self, s => s.fetch(keys).await)
    }

    #[allow(
        clippy::type_complexity,
        reason = "the signature of DataSource::fetch_each, spelled out"
    )]
    async fn fetch_each(
        &self,
        keys: &[S::Key],
    ) -> Result<Vec<(S::Key, Result<S::Value, S::Error>)>, S::Error> {
        each!(self, s => s.fetch_each(keys).await)
    }

    fn name(&self) -> &str {
        each!(self, s => s.name())
    }

    fn max_batch_size(&self) -> Option<usize> {
        each!(self, s => s.max_batch_size())
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        each!(self, s => s.fetch_timeout())
    }
}

/// Rows by key over any backend.
pub type AnyRows<T> = OnAny<Rows<T, sqlite::Db>, Rows<T, postgres::Db>, Rows<T, mysql::Db>>;
/// Groups of rows by key over any backend.
pub type AnyGroups<T> = OnAny<Groups<T, sqlite::Db>, Groups<T, postgres::Db>, Groups<T, mysql::Db>>;

/// The source of users' rows.
pub type Users = Delayed<AnyRows<UserTable>>;
/// The source of follower counts.
pub type FollowerCounts = Delayed<AnyRows<FollowerCountTable>>;
/// The source of users' latest answer ids.
pub type RecentAnswers = Delayed<AnyGroups<RecentAnswerTable>>;
/// The source of answers' rows.
pub type Answers = Delayed<AnyRows<AnswerTable>>;
/// The source of question titles.
pub type Questions = Delayed<AnyRows<QuestionTable>>;

/// The source of table `T` over `db`, rows by key.
fn rows<T: Table>(db: &SiteDb) -> Result<AnyRows<T>, SqlError>
where
    sqlite::Db: asynq_sources::Reads<T>,
    postgres::Db: asynq_sources::Reads<T>,
    mysql::Db: asynq_sources::Reads<T>,
{
    Ok(match db {
        SiteDb::Sqlite(db) => OnAny::Sqlite(Rows::new(db.clone())?),
        SiteDb::Postgres(db) => OnAny::Postgres(Rows::new(db.clone())?),
        SiteDb::Mysql(db) => OnAny::Mysql(Rows::new(db.clone())?),
    })
}

/// A runtime with the five sources of the profile page over `db`, each query delayed by
/// `latency` (as a database farther away would take).
pub(super) fn runtime_on(db: &SiteDb, latency: Duration) -> Runtime {
    /// The table names are this module's constants, checked by the tests.
    const VALID: &str = "the profile tables' names are valid";
    let recent: AnyGroups<RecentAnswerTable> = match db {
        SiteDb::Sqlite(db) => OnAny::Sqlite(Groups::new(db.clone()).expect(VALID)),
        SiteDb::Postgres(db) => OnAny::Postgres(Groups::new(db.clone()).expect(VALID)),
        SiteDb::Mysql(db) => OnAny::Mysql(Groups::new(db.clone()).expect(VALID)),
    };
    Runtime::new()
        .with_source(Delayed::new(rows::<UserTable>(db).expect(VALID), latency))
        .with_source(Delayed::new(
            rows::<FollowerCountTable>(db).expect(VALID),
            latency,
        ))
        .with_source(Delayed::new(recent, latency))
        .with_source(Delayed::new(rows::<AnswerTable>(db).expect(VALID), latency))
        .with_source(Delayed::new(
            rows::<QuestionTable>(db).expect(VALID),
            latency,
        ))
}
