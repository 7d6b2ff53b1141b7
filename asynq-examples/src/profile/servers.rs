//! The profile site in a PostgreSQL or MySQL/MariaDB database: the same tables, views and
//! rows as the SQLite file, so a page renders to the same bytes in the same queries.
//!
//! [`open_postgres`] and [`open_mysql`] take a lock (`pg_advisory_xact_lock`, `GET_LOCK`) so
//! that programs opening the site at once take turns, create the tables and views that are
//! missing, and load the site when the database holds another one (or none, or rows went
//! missing): the old rows are deleted and the new ones written with the tag row in one
//! transaction. Tables are named `asynq_profile_*` ([`PREFIX`](super::PREFIX)) and carry
//! [`MARK`] as their comment (views too on PostgreSQL; MySQL's views have no comment, so a
//! view of ours is accepted only beside our marked tables): a relation of one of these names
//! that this program did not make is refused with [`DataSetError::NotOurs`], and nothing is
//! changed. Nothing is ever dropped.

use asynq_sources::mysql::{self, mysql_async};
use asynq_sources::postgres::{self, tokio_postgres};
use mysql_async::Value;
use mysql_async::prelude::Queryable as _;
use tokio_postgres::types::ToSql;

use super::site::Site;
use crate::sql_kv::servers::mysql::{self as my, My};
use crate::sql_kv::servers::postgres::{self as pg, Pg};
use crate::sql_kv::servers::{DataSetError, Found, Kind, MARK, failed, missing};

const USERS: &str = "asynq_profile_users";
const FOLLOWS: &str = "asynq_profile_follows";
const QUESTIONS: &str = "asynq_profile_questions";
const ANSWERS: &str = "asynq_profile_answers";
const META: &str = "asynq_profile_meta";
const FOLLOWER_COUNTS: &str = "asynq_profile_follower_counts";
const RECENT_ANSWERS: &str = "asynq_profile_recent_answers";

/// Every relation of the site, in the order they are made (views after their tables).
const RELATIONS: [(&str, Kind); 7] = [
    (USERS, Kind::Table),
    (FOLLOWS, Kind::Table),
    (QUESTIONS, Kind::Table),
    (ANSWERS, Kind::Table),
    (META, Kind::Table),
    (FOLLOWER_COUNTS, Kind::View),
    (RECENT_ANSWERS, Kind::View),
];

/// The views, the same on both servers (and on SQLite).
fn view(name: &str) -> String {
    let body = if name == FOLLOWER_COUNTS {
        format!("SELECT followee, COUNT(*) AS followers FROM {FOLLOWS} GROUP BY followee")
    } else {
        format!(
            "SELECT author, id, recency FROM (SELECT author, id, ROW_NUMBER() OVER \
             (PARTITION BY author ORDER BY created DESC) AS recency FROM {ANSWERS}) AS ranked \
             WHERE recency <= 3"
        )
    };
    format!("CREATE VIEW {name} AS {body}")
}

/// Rows inserted per statement.
const CHUNK: i64 = 1000;

/// A value of a row to insert.
enum Cell {
    Int(i64),
    Text(String),
}

/// Rows of one table, inserted by one statement.
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Batch {
    /// `INSERT INTO table (columns) VALUES (...), ...` with the placeholders `placeholder(i)`
    /// gives for the i-th value (from 1).
    fn sql(&self, quote: char, placeholder: impl Fn(usize) -> String) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{quote}{c}{quote}"))
            .collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            columns.join(", ")
        );
        let mut n = 0;
        for (i, row) in self.rows.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..row.len() {
                n += 1;
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&placeholder(n));
            }
            sql.push(')');
        }
        sql
    }
}

/// A database holding the site's lock, with the statements of its dialect.
trait Loader {
    /// Whether views carry a comment (the mark).
    const MARKED_VIEWS: bool;
    /// The relations of the site's names in the database.
    async fn relations(&mut self) -> Result<Vec<Found>, DataSetError>;
    /// Make relation `name` of [`RELATIONS`], marked.
    async fn create(&mut self, name: &'static str) -> Result<(), DataSetError>;
    /// The tag of the site the database holds.
    async fn tag(&mut self) -> Result<Option<String>, DataSetError>;
    /// Rows of `table`.
    async fn count(&mut self, table: &'static str) -> Result<i64, DataSetError>;
    /// Start the transaction the site is written in (PostgreSQL is in one already).
    async fn begin(&mut self) -> Result<(), DataSetError>;
    /// Delete every row of `table`.
    async fn clear(&mut self, table: &'static str) -> Result<(), DataSetError>;
    /// Insert `batch`.
    async fn insert(&mut self, batch: &Batch) -> Result<(), DataSetError>;
}

/// The relations to make, or the first one that is not ours.
fn to_make(found: &[Found], marked_views: bool) -> Result<Vec<&'static str>, DataSetError> {
    let missing = missing(found, &RELATIONS, marked_views)?;
    // Where views carry no mark, a view of ours stands only beside all of our marked tables.
    let tables_missing = RELATIONS
        .iter()
        .any(|(name, kind)| *kind == Kind::Table && missing.contains(name));
    if !marked_views && tables_missing {
        let view = RELATIONS
            .iter()
            .find(|(name, kind)| *kind == Kind::View && !missing.contains(name));
        if let Some(&(table, _)) = view {
            return Err(DataSetError::NotOurs {
                table,
                found: "a view in a database without all of this program's tables".to_owned(),
            });
        }
    }
    Ok(missing)
}

/// Make sure the site of `users` users is in the database, loading it when it is not;
/// returns whether it loaded it now. The caller commits.
async fn ensure<L: Loader>(l: &mut L, users: i64) -> Result<bool, DataSetError> {
    let make = to_make(&l.relations().await?, L::MARKED_VIEWS)?;
    if !make.is_empty() {
        for &name in &make {
            l.create(name).await?;
        }
        // Another program's table of the same name may have appeared meanwhile: check again.
        if let Some(name) = to_make(&l.relations().await?, L::MARKED_VIEWS)?.first() {
            return Err(failed("create the profile tables")(format!(
                "`{name}` is still missing after it was created"
            )));
        }
    }
    let site = Site::new(users);
    let tag = super::tag(users);
    if l.tag().await?.as_deref() == Some(tag.as_str())
        && l.count(USERS).await? == site.users
        && l.count(ANSWERS).await? == site.answers()
    {
        return Ok(false);
    }
    l.begin().await?;
    for table in [META, USERS, FOLLOWS, QUESTIONS, ANSWERS] {
        l.clear(table).await?;
    }
    load(l, site).await?;
    let tag = Batch {
        table: META,
        columns: &["name", "value"],
        rows: vec![vec![Cell::Text("dataset".into()), Cell::Text(tag)]],
    };
    l.insert(&tag).await?;
    Ok(true)
}

/// Insert the site's rows, [`CHUNK`] users (questions, answers) per statement.
async fn load<L: Loader>(l: &mut L, site: Site) -> Result<(), DataSetError> {
    let chunks = |n: i64| {
        (0..n)
            .step_by(CHUNK as usize)
            .map(move |lo| lo..(lo + CHUNK).min(n))
    };
    for range in chunks(site.users) {
        let mut users = Vec::new();
        let mut follows = Vec::new();
        for u in range {
            let (id, name, photo, bio) = site.user(u);
            users.push(vec![
                Cell::Int(id),
                Cell::Text(name),
                Cell::Text(photo),
                Cell::Text(bio),
            ]);
            for follower in site.followers(u) {
                follows.push(vec![Cell::Int(follower), Cell::Int(u)]);
            }
        }
        let columns = &["id", "name", "photo", "bio"];
        l.insert(&Batch {
            table: USERS,
            columns,
            rows: users,
        })
        .await?;
        if !follows.is_empty() {
            let columns = &["follower", "followee"];
            l.insert(&Batch {
                table: FOLLOWS,
                columns,
                rows: follows,
            })
            .await?;
        }
    }
    for range in chunks(site.questions()) {
        let rows = range
            .map(|q| {
                let (id, title) = site.question(q);
                vec![Cell::Int(id), Cell::Text(title)]
            })
            .collect();
        let columns = &["id", "title"];
        l.insert(&Batch {
            table: QUESTIONS,
            columns,
            rows,
        })
        .await?;
    }
    for range in chunks(site.answers()) {
        let rows = range
            .map(|a| {
                let (id, question, author, body, created) = site.answer(a);
                let ints = [id, question, author].map(Cell::Int);
                let mut row: Vec<Cell> = ints.into_iter().collect();
                row.extend([Cell::Text(body), Cell::Int(created)]);
                row
            })
            .collect();
        let columns = &["id", "question", "author", "body", "created"];
        l.insert(&Batch {
            table: ANSWERS,
            columns,
            rows,
        })
        .await?;
    }
    Ok(())
}

/// The site of `users` users in the PostgreSQL database of `db`, loaded now when the database
/// holds another (or none). Returns whether it loaded it; render with
/// [`runtime`](super::runtime)`(&db)`. Call it inside the tokio runtime `db` was connected in.
///
/// A relation of the site's names that this program did not make is refused with
/// [`DataSetError::NotOurs`], and nothing is changed.
pub async fn open_postgres(db: &postgres::Db, users: i64) -> Result<bool, DataSetError> {
    let mut client = pg::connect(db).await?;
    let mut session = pg::begin(&mut client, pg::PROFILE_LOCK).await?;
    let loaded = ensure(&mut session, users).await?;
    session.0.commit().await.map_err(failed("commit"))?;
    Ok(loaded)
}

/// The site of `users` users in the MySQL (or MariaDB) database of `db`, loaded now when the
/// database holds another (or none). Returns whether it loaded it; render with
/// [`runtime`](super::runtime)`(&db)`. Call it inside the tokio runtime `db` was connected in.
///
/// A relation of the site's names that this program did not make is refused with
/// [`DataSetError::NotOurs`], and nothing is changed.
pub async fn open_mysql(db: &mysql::Db, users: i64) -> Result<bool, DataSetError> {
    let mut session = my::lock(db, my::PROFILE_LOCK).await?;
    let loaded = ensure(&mut session, users).await?;
    if loaded {
        // On an error above, the open transaction is rolled back when the session ends.
        session
            .conn()
            .query_drop("COMMIT")
            .await
            .map_err(failed("commit"))?;
    }
    session.close().await;
    Ok(loaded)
}

impl Loader for Pg<'_> {
    const MARKED_VIEWS: bool = true;

    async fn relations(&mut self) -> Result<Vec<Found>, DataSetError> {
        let names = RELATIONS.map(|(name, _)| name);
        Pg::relations(self, &names).await
    }

    async fn create(&mut self, name: &'static str) -> Result<(), DataSetError> {
        let (sql, kind) = match name {
            USERS => (
                format!(
                    "CREATE TABLE {USERS} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                     photo TEXT NOT NULL, bio TEXT NOT NULL)"
                ),
                "TABLE",
            ),
            FOLLOWS => (
                format!(
                    "CREATE TABLE {FOLLOWS} (follower BIGINT NOT NULL, followee BIGINT NOT \
                     NULL, PRIMARY KEY (follower, followee)); CREATE INDEX IF NOT EXISTS \
                     {FOLLOWS}_by_followee ON {FOLLOWS} (followee)"
                ),
                "TABLE",
            ),
            QUESTIONS => (
                format!("CREATE TABLE {QUESTIONS} (id BIGINT PRIMARY KEY, title TEXT NOT NULL)"),
                "TABLE",
            ),
            ANSWERS => (
                format!(
                    "CREATE TABLE {ANSWERS} (id BIGINT PRIMARY KEY, question BIGINT NOT NULL, \
                     author BIGINT NOT NULL, body TEXT NOT NULL, created BIGINT NOT NULL); \
                     CREATE INDEX IF NOT EXISTS {ANSWERS}_by_author ON {ANSWERS} (author, created)"
                ),
                "TABLE",
            ),
            META => (
                format!("CREATE TABLE {META} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"),
                "TABLE",
            ),
            _ => (view(name), "VIEW"),
        };
        // Names and the mark are the program's constants, not data.
        let sql = format!("{sql}; COMMENT ON {kind} {name} IS '{MARK}';");
        self.0
            .batch_execute(&sql)
            .await
            .map_err(failed("create the profile tables"))
    }

    async fn tag(&mut self) -> Result<Option<String>, DataSetError> {
        let sql = format!("SELECT value FROM {META} WHERE name = 'dataset'");
        let row = self.0.query_opt(&sql, &[]).await;
        let row = row.map_err(failed("read the site's tag"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(failed("read the site's tag"))
    }

    async fn count(&mut self, table: &'static str) -> Result<i64, DataSetError> {
        let row = self
            .0
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await;
        let row = row.map_err(failed("count the site's rows"))?;
        row.try_get(0).map_err(failed("count the site's rows"))
    }

    async fn begin(&mut self) -> Result<(), DataSetError> {
        Ok(()) // the whole open is one transaction
    }

    async fn clear(&mut self, table: &'static str) -> Result<(), DataSetError> {
        let sql = format!("DELETE FROM {table}");
        self.0
            .execute(&sql, &[])
            .await
            .map_err(failed("delete the old site"))?;
        Ok(())
    }

    async fn insert(&mut self, batch: &Batch) -> Result<(), DataSetError> {
        let sql = batch.sql('"', |n| format!("${n}"));
        let values: Vec<&(dyn ToSql + Sync)> = batch
            .rows
            .iter()
            .flatten()
            .map(|cell| match cell {
                Cell::Int(i) => i as &(dyn ToSql + Sync),
                Cell::Text(s) => s as &(dyn ToSql + Sync),
            })
            .collect();
        self.0
            .execute(&sql, &values)
            .await
            .map_err(failed("insert the site's rows"))?;
        Ok(())
    }
}

impl Loader for My {
    const MARKED_VIEWS: bool = false;

    async fn relations(&mut self) -> Result<Vec<Found>, DataSetError> {
        let names = RELATIONS.map(|(name, _)| name);
        My::relations(self, &names).await
    }

    async fn create(&mut self, name: &'static str) -> Result<(), DataSetError> {
        const TEXT: &str = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
        let columns = match name {
            USERS => format!(
                "id BIGINT PRIMARY KEY, `name` TEXT {TEXT} NOT NULL, photo TEXT {TEXT} NOT \
                 NULL, bio TEXT {TEXT} NOT NULL"
            ),
            FOLLOWS => format!(
                "follower BIGINT NOT NULL, followee BIGINT NOT NULL, PRIMARY KEY (follower, \
                 followee), INDEX {FOLLOWS}_by_followee (followee)"
            ),
            QUESTIONS => format!("id BIGINT PRIMARY KEY, title TEXT {TEXT} NOT NULL"),
            ANSWERS => format!(
                "id BIGINT PRIMARY KEY, question BIGINT NOT NULL, author BIGINT NOT NULL, \
                 body TEXT {TEXT} NOT NULL, created BIGINT NOT NULL, \
                 INDEX {ANSWERS}_by_author (author, created)"
            ),
            META => format!("`name` VARCHAR(64) {TEXT} PRIMARY KEY, `value` TEXT {TEXT} NOT NULL"),
            _ => String::new(),
        };
        // Names and the mark are the program's constants, not data. MySQL commits before each
        // CREATE: the relations are made one by one, each table marked by its own statement.
        let sql = if columns.is_empty() {
            view(name)
        } else {
            format!("CREATE TABLE IF NOT EXISTS {name} ({columns}) ENGINE=InnoDB COMMENT='{MARK}'")
        };
        self.conn()
            .query_drop(sql)
            .await
            .map_err(failed("create the profile tables"))
    }

    async fn tag(&mut self) -> Result<Option<String>, DataSetError> {
        let sql = format!("SELECT `value` FROM {META} WHERE `name` = 'dataset'");
        self.conn()
            .query_first(sql)
            .await
            .map_err(failed("read the site's tag"))
    }

    async fn count(&mut self, table: &'static str) -> Result<i64, DataSetError> {
        let n: Option<i64> = self
            .conn()
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .map_err(failed("count the site's rows"))?;
        Ok(n.unwrap_or(0))
    }

    async fn begin(&mut self) -> Result<(), DataSetError> {
        self.conn()
            .query_drop("START TRANSACTION")
            .await
            .map_err(failed("start a transaction"))
    }

    async fn clear(&mut self, table: &'static str) -> Result<(), DataSetError> {
        self.conn()
            .query_drop(format!("DELETE FROM {table}"))
            .await
            .map_err(failed("delete the old site"))
    }

    async fn insert(&mut self, batch: &Batch) -> Result<(), DataSetError> {
        let sql = batch.sql('`', |_| "?".to_owned());
        let values: Vec<Value> = batch
            .rows
            .iter()
            .flatten()
            .map(|cell| match cell {
                Cell::Int(i) => Value::from(*i),
                Cell::Text(s) => Value::from(s.as_str()),
            })
            .collect();
        self.conn()
            .exec_drop(sql, values)
            .await
            .map_err(failed("insert the site's rows"))
    }
}
