//! FEED-1 data sets in PostgreSQL and MySQL/MariaDB databases: loaded when missing, reused
//! after, and never written into a table this program did not make.
//!
//! Two tables of the database the URL names hold them:
//! - [`KV_TABLE`] (`key`, `value`): every data set's keys, each under the data set's prefix
//!   ([`prefix`]: `q1000a10/q:0:title`), so that several page sizes live side by side;
//! - [`SETS_TABLE`] (`dataset`, `prefix`, `key_count`): the tag table, one row per data set
//!   loaded completely (`FEED-1 Q=1000 A=10`, the tag of the SQLite data set files).
//!
//! Both carry [`MARK`] as their table comment, written by the statement that creates them:
//! the mark of a table this program made, as an SQLite file of its own carries its
//! `application_id`. A table of either name without the mark (another program's, or a view)
//! is refused with [`DataSetError::NotOurs`] and left as it is: nothing is created, deleted
//! or written.
//!
//! [`open_postgres`] and [`open_mysql`] take a lock (`pg_advisory_xact_lock`, `GET_LOCK`) so
//! that programs opening data sets at once take turns, create the tables when missing, and
//! load the data set when its tag row is missing or its rows are not all there (someone
//! deleted some): its old rows are deleted, the new ones inserted and the tag row written in
//! one transaction, so a reader sees the old data set or the new one, and a program killed
//! while loading leaves no tag row (the next run loads again). [`remove_postgres`] and
//! [`remove_mysql`] delete one data set (the `server` program's eviction of a page size).

pub(crate) mod mysql;
pub(crate) mod postgres;

use std::fmt;

pub use mysql::{open_mysql, remove_mysql};
pub use postgres::{open_postgres, remove_postgres};

use crate::feed::Params;

/// The table of every data set's keys and values.
pub const KV_TABLE: &str = "asynq_feed1_kv";
/// The tag table: which data sets are loaded.
pub const SETS_TABLE: &str = "asynq_feed1_datasets";
/// The comment of both tables: the mark of tables this program made.
pub const MARK: &str = "made by asynq-examples for FEED-1 data sets (layout 1)";

/// The error of a data set that could not be opened, loaded or removed.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The prefix of data set `p`'s keys in [`KV_TABLE`]: `q<Q>a<A>/`.
///
/// # Examples
///
/// ```
/// use asynq_examples::feed::Params;
/// use asynq_examples::sql_kv::servers::prefix;
///
/// assert_eq!(prefix(Params { questions: 1000, answers: 10 }), "q1000a10/");
/// ```
pub fn prefix(p: Params) -> String {
    format!("q{}a{}/", p.questions, p.answers)
}

/// The first key after every key under `prefix` (which ends with `/`): its keys are the
/// range `prefix <= key < end`, in byte order (the key columns compare bytes).
fn prefix_end(prefix: &str) -> String {
    let stem = prefix
        .strip_suffix('/')
        .expect("a data set prefix ends with '/'");
    format!("{stem}0") // '0' follows '/' in ASCII
}

/// The tag of data set `p`: its row in [`SETS_TABLE`].
pub fn tag(p: Params) -> String {
    format!("FEED-1 Q={} A={}", p.questions, p.answers)
}

/// Why a data set could not be opened, loaded or removed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataSetError {
    /// A table of this program's name was not made by it: nothing was changed.
    NotOurs {
        /// The table.
        table: &'static str,
        /// What it is instead.
        found: String,
    },
    /// A statement (or getting a connection) failed.
    Sql {
        /// What was being done.
        doing: &'static str,
        /// The driver's error.
        source: BoxError,
    },
}

impl fmt::Display for DataSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSetError::NotOurs { table, found } => write!(
                f,
                "table `{table}` was not made by this program ({found}), so it is left as it \
                 is; use another database, or drop the table yourself if it is no longer needed"
            ),
            DataSetError::Sql { doing, .. } => write!(f, "cannot {doing}"),
        }
    }
}

impl std::error::Error for DataSetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataSetError::NotOurs { .. } => None,
            DataSetError::Sql { source, .. } => Some(&**source),
        }
    }
}

/// An error of `doing`, for `map_err`.
pub(crate) fn failed<E: Into<BoxError>>(doing: &'static str) -> impl FnOnce(E) -> DataSetError {
    move |e| DataSetError::Sql {
        doing,
        source: e.into(),
    }
}

/// What a database relation of one of our names is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A plain table.
    Table,
    /// A view.
    View,
    /// Anything else (a partitioned or foreign table, a sequence, ...).
    Other,
}

/// A relation of one of our names as the database lists it.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Its comment (`None` also for a view where views carry no comment: MySQL).
    pub(crate) comment: Option<String>,
}

/// The tables of ours that are missing, or the first table that is not ours.
fn missing_tables(found: &[Found]) -> Result<Vec<&'static str>, DataSetError> {
    missing(
        found,
        &[(KV_TABLE, Kind::Table), (SETS_TABLE, Kind::Table)],
        true,
    )
}

/// The relations of `wanted` (name and kind) that are missing from `found`, or the first one
/// found that is not ours: of another kind, or without [`MARK`] as its comment (views too
/// when `marked_views`; where views carry no comment, MySQL, the caller judges them).
pub(crate) fn missing(
    found: &[Found],
    wanted: &[(&'static str, Kind)],
    marked_views: bool,
) -> Result<Vec<&'static str>, DataSetError> {
    let mut missing = Vec::new();
    for &(table, kind) in wanted {
        let Some(f) = found.iter().find(|f| f.name == table) else {
            missing.push(table);
            continue;
        };
        let found = if f.kind != kind {
            match kind {
                Kind::Table => "not a plain table".to_owned(),
                _ => "not a view".to_owned(),
            }
        } else if (kind == Kind::Table || marked_views) && f.comment.as_deref() != Some(MARK) {
            match f.comment.as_deref().filter(|c| !c.is_empty()) {
                Some(c) => format!(
                    "a {} whose comment is {:?}",
                    if kind == Kind::Table { "table" } else { "view" },
                    c.chars().take(60).collect::<String>()
                ),
                None => format!(
                    "a {} without a comment",
                    if kind == Kind::Table { "table" } else { "view" }
                ),
            }
        } else {
            continue;
        };
        return Err(DataSetError::NotOurs { table, found });
    }
    Ok(missing)
}

/// A connection to a database holding the data sets' lock, with the statements of its
/// dialect.
trait Session {
    /// The tables named [`KV_TABLE`] or [`SETS_TABLE`] in the database.
    async fn tables(&mut self) -> Result<Vec<Found>, DataSetError>;
    /// Create `tables` (some of [`KV_TABLE`], [`SETS_TABLE`]), marked.
    async fn create(&mut self, tables: &[&'static str]) -> Result<(), DataSetError>;
    /// The key count of data set `tag`, when its tag row is there.
    async fn held(&mut self, tag: &str) -> Result<Option<i64>, DataSetError>;
    /// Keys in the range `from <= key < to` of [`KV_TABLE`].
    async fn count(&mut self, from: &str, to: &str) -> Result<i64, DataSetError>;
    /// In one transaction: delete the range's keys and the tag row, then (with `rows`)
    /// insert `rows` (keys with their prefix) and the tag row.
    async fn replace(
        &mut self,
        set: &Set,
        rows: Option<&[(String, String)]>,
    ) -> Result<(), DataSetError>;
}

/// A data set as it is stored.
#[derive(Debug)]
struct Set {
    tag: String,
    prefix: String,
    end: String,
}

impl Set {
    fn of(p: Params) -> Set {
        let prefix = prefix(p);
        Set {
            tag: tag(p),
            end: prefix_end(&prefix),
            prefix,
        }
    }
}

/// Make sure data set `p` is in the database, loading it when it is not (whole); returns
/// whether it loaded it now.
async fn ensure<S: Session>(s: &mut S, p: Params) -> Result<bool, DataSetError> {
    let missing = missing_tables(&s.tables().await?)?;
    if !missing.is_empty() {
        s.create(&missing).await?;
        // Another program's table of the same name may have appeared meanwhile: check again.
        let missing = missing_tables(&s.tables().await?)?;
        if let Some(table) = missing.first() {
            return Err(failed("create the data set tables")(format!(
                "table `{table}` is still missing after it was created"
            )));
        }
    }
    let set = Set::of(p);
    if let Some(held) = s.held(&set.tag).await?
        && held == s.count(&set.prefix, &set.end).await?
    {
        return Ok(false);
    }
    let rows: Vec<(String, String)> = crate::feed::dataset(p)
        .into_iter()
        .map(|(key, value)| (format!("{}{key}", set.prefix), value))
        .collect();
    s.replace(&set, Some(&rows)).await?;
    Ok(true)
}

/// Delete data set `p` if the tables are ours; returns whether they were there.
async fn remove<S: Session>(s: &mut S, p: Params) -> Result<bool, DataSetError> {
    let missing = missing_tables(&s.tables().await?)?;
    if !missing.is_empty() {
        return Ok(false);
    }
    s.replace(&Set::of(p), None).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_before_every_other_data_set() {
        let p = |questions, answers| Params { questions, answers };
        let small = prefix(p(10, 5));
        let end = prefix_end(&small);
        let inside = format!("{small}u:99:photo");
        assert!(small.as_str() <= inside.as_str() && inside < end);
        for other in [p(10, 50), p(10, 5000), p(100, 5), p(1, 5)] {
            let key = format!("{}q:0:title", prefix(other));
            assert!(key < small || key >= end, "{key}");
        }
        assert!(!MARK.contains('\''), "the mark is written inside quotes");
    }

    #[test]
    fn only_marked_plain_tables_are_ours() {
        let table = |name: &str, plain, comment: Option<&str>| Found {
            name: name.into(),
            kind: if plain { Kind::Table } else { Kind::Other },
            comment: comment.map(String::from),
        };
        assert_eq!(missing_tables(&[]).unwrap(), [KV_TABLE, SETS_TABLE]);
        let ours = [
            table(KV_TABLE, true, Some(MARK)),
            table(SETS_TABLE, true, Some(MARK)),
        ];
        assert!(missing_tables(&ours).unwrap().is_empty());
        for (found, says) in [
            (table(KV_TABLE, true, None), "a table without a comment"),
            (
                table(KV_TABLE, true, Some("mine")),
                "a table whose comment is \"mine\"",
            ),
            (table(KV_TABLE, false, Some(MARK)), "not a plain table"),
        ] {
            let err = missing_tables(&[found]).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
            assert!(
                err.to_string()
                    .starts_with("table `asynq_feed1_kv` was not made by")
            );
        }
    }
}
