//! The one error type of the SQL sources: what failed, in which source and table, for which
//! keys, with the driver's error as its cause.

use std::error::Error as StdError;
use std::fmt::{self, Debug};

/// How many keys an error lists before it says "and N more".
const KEYS_SHOWN: usize = 5;
/// The longest `Debug` form of a key an error shows (in bytes); longer ones are cut.
const KEY_CHARS: usize = 80;

/// What kind of failure a [`SqlError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The source is set up wrong: an invalid table or column name, a bad setting.
    Config,
    /// No connection could be had: the pool is closed, or connecting failed or timed out.
    Connect,
    /// The server refused or failed the query.
    Query,
    /// A result row could not be read into the row type (a column's type or count differs).
    Decode,
    /// A row came back whose key equals none of the keys asked for.
    UnexpectedKey,
    /// A key has no row, from a source that requires one ([`Required`](crate::Required)).
    NotFound,
    /// The async runtime that runs the queries is gone, or the task running the query
    /// panicked.
    Runtime,
}

impl ErrorKind {
    fn what(self) -> &'static str {
        match self {
            ErrorKind::Config => "bad setup",
            ErrorKind::Connect => "no connection",
            ErrorKind::Query => "query failed",
            ErrorKind::Decode => "cannot read a result row",
            ErrorKind::UnexpectedKey => "unexpected row",
            ErrorKind::NotFound => "no row",
            ErrorKind::Runtime => "cannot run the query",
        }
    }
}

/// An error of a SQL source: it names the source, its table and the keys of the failed call,
/// says what failed, and holds the driver's error as its [`source`](StdError::source).
///
/// The runtime hands it to every task that waited on the call's keys, inside
/// [`asynq_core::Error::Source`]; find it there with `downcast_ref::<SqlError>()`.
///
/// # Examples
///
/// ```
/// use asynq_sources::{ErrorKind, SqlError};
///
/// let err = SqlError::new(ErrorKind::NotFound, "kv", "kv").with_keys(&["q:0:title"]);
/// assert_eq!(err.to_string(), r#"source `kv` (table `kv`): no row for key "q:0:title""#);
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert_eq!(err.keys(), [r#""q:0:title""#]);
/// ```
pub struct SqlError {
    kind: ErrorKind,
    source_name: &'static str,
    table: &'static str,
    /// The `Debug` forms of the first keys of the call, each cut to [`KEY_CHARS`].
    keys: Vec<String>,
    /// How many keys the call had.
    key_count: usize,
    detail: Option<String>,
    cause: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SqlError {
    /// An error of `kind` in the source named `source_name`, over `table`.
    pub fn new(kind: ErrorKind, source_name: &'static str, table: &'static str) -> SqlError {
        SqlError {
            kind,
            source_name,
            table,
            keys: Vec::new(),
            key_count: 0,
            detail: None,
            cause: None,
        }
    }

    /// The keys of the failed call (the error shows the first few).
    pub fn with_keys<K: Debug>(mut self, keys: &[K]) -> SqlError {
        self.key_count = keys.len();
        self.keys = keys.iter().take(KEYS_SHOWN).map(key_text).collect();
        self
    }

    /// What exactly failed, in a few words (shown after the kind).
    pub fn with_detail(mut self, detail: impl Into<String>) -> SqlError {
        self.detail = Some(detail.into());
        self
    }

    /// The underlying error (the driver's), returned by [`source`](StdError::source).
    pub fn with_cause(mut self, cause: impl Into<Box<dyn StdError + Send + Sync>>) -> SqlError {
        self.cause = Some(cause.into());
        self
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The source's name (its [`Table::NAME`](crate::Table::NAME)).
    pub fn source_name(&self) -> &'static str {
        self.source_name
    }

    /// The table the source reads.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The `Debug` forms of the first keys of the failed call (at most five, each cut to 80
    /// bytes).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// How many keys the failed call had.
    pub fn key_count(&self) -> usize {
        self.key_count
    }
}

/// A key's `Debug` form, cut to [`KEY_CHARS`] bytes at a character boundary.
fn key_text<K: Debug>(key: &K) -> String {
    let mut text = format!("{key:?}");
    if text.len() > KEY_CHARS {
        let mut end = KEY_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.table.is_empty() {
            // An error of a database as a whole: `source_name` names the database.
            write!(f, "{}: {}", self.source_name, self.kind.what())?;
        } else {
            write!(
                f,
                "source `{}` (table `{}`): {}",
                self.source_name,
                self.table,
                self.kind.what()
            )?;
        }
        match self.key_count {
            0 => {}
            1 => write!(f, " for key {}", self.keys[0])?,
            n => {
                write!(f, " for {n} keys [{}", self.keys.join(", "))?;
                if n > self.keys.len() {
                    write!(f, " and {} more", n - self.keys.len())?;
                }
                f.write_str("]")?;
            }
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl Debug for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlError")
            .field("kind", &self.kind)
            .field("source", &self.source_name)
            .field("table", &self.table)
            .field("keys", &self.keys)
            .field("key_count", &self.key_count)
            .field("detail", &self.detail)
            .field("cause", &self.cause)
            .finish()
    }
}

impl StdError for SqlError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_source_table_and_keys() {
        let cause = std::io::Error::other("connection refused");
        let err = SqlError::new(ErrorKind::Query, "users", "app.users")
            .with_keys(&[1, 2, 3, 4, 5, 6, 7])
            .with_cause(cause);
        assert_eq!(
            err.to_string(),
            "source `users` (table `app.users`): query failed for 7 keys [1, 2, 3, 4, 5 and 2 more]"
        );
        assert_eq!(err.source().unwrap().to_string(), "connection refused");
        assert_eq!(err.key_count(), 7);
    }

    #[test]
    fn long_keys_are_cut() {
        let key = "é".repeat(100);
        let err = SqlError::new(ErrorKind::Decode, "t", "t")
            .with_keys(&[key])
            .with_detail("column 1");
        let text = err.to_string();
        assert!(text.len() < 150, "{text}");
        assert!(text.ends_with("...: column 1"), "{text}");
        assert!(err.source().is_none());
    }
}
