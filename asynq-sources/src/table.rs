//! What a source reads: the [`Table`] trait, and the SQL each dialect sends for it.
//!
//! Table and column names come from the program ([`Table`]'s constants), never from data: they
//! are checked and quoted once, when a source is made, and every key is a bound parameter.

use crate::error::{ErrorKind, SqlError};
use crate::key::{KeyKind, KeyMatch, SqlKey};

/// A table (or view) read by key: what a source of rows or of groups queries.
///
/// Implement it once per lookup: users by id, comments by post id. The source sends
/// `SELECT <COLUMNS>, <KEY> FROM <TABLE> WHERE <KEY> IN (<keys>)` (`= ANY($1)` on PostgreSQL),
/// with every name quoted and every key a bound parameter, and reads each result row's
/// [`COLUMNS`](Table::COLUMNS), in order, into a [`Row`](Table::Row) with the backend's row
/// mapping (a tuple of column types, a single column, or a type of your own). For joins or
/// filters, define a view and name it as the table.
///
/// # Examples
///
/// ```
/// use asynq_sources::Table;
///
/// /// Users by id: `Row` is read from the columns `name` and `karma`.
/// struct Users;
/// impl Table for Users {
///     type Key = i64;
///     type Row = (String, i64);
///     const NAME: &'static str = "users";
///     const TABLE: &'static str = "users";
///     const KEY: &'static str = "id";
///     const COLUMNS: &'static [&'static str] = &["name", "karma"];
/// }
///
/// /// Comments by post (a has-many lookup), oldest first.
/// struct CommentsByPost;
/// impl Table for CommentsByPost {
///     type Key = u32;
///     type Row = String;
///     const NAME: &'static str = "comments_by_post";
///     const TABLE: &'static str = "comments";
///     const KEY: &'static str = "post_id";
///     const COLUMNS: &'static [&'static str] = &["body"];
///     const ORDER_BY: &'static [&'static str] = &["created_at", "id DESC"];
/// }
/// ```
pub trait Table: Send + Sync + 'static {
    /// The key column's Rust type: any integer type, `String`, or a [`SqlKey`] of your own.
    type Key: SqlKey;
    /// What the [`COLUMNS`](Table::COLUMNS) of one result row become.
    type Row: Clone + Send + 'static;
    /// The source's name in statistics and errors.
    const NAME: &'static str;
    /// The table or view, optionally with its schema (`"app.users"`: each part is quoted on
    /// its own, so a name cannot hold a dot).
    const TABLE: &'static str;
    /// The key column: the primary key for a source of rows, the foreign key for a source of
    /// groups.
    const KEY: &'static str;
    /// The columns read into a [`Row`](Table::Row), in order.
    const COLUMNS: &'static [&'static str];
    /// The order of the rows of one key (for a source of groups): column names, each
    /// optionally followed by ` ASC` or ` DESC`. Empty (the default): the server's order.
    const ORDER_BY: &'static [&'static str] = &[];
    /// How the key column compares text keys: [`KeyMatch::Exact`] unless set. A column whose
    /// collation ignores case (MySQL's usual ones) needs [`KeyMatch::IgnoreCase`]; with
    /// `Exact`, a row whose key differs from every asked key fails its call with
    /// [`ErrorKind::UnexpectedKey`](crate::ErrorKind::UnexpectedKey) rather than being lost.
    const KEY_MATCH: KeyMatch = KeyMatch::Exact;
}

/// The rows of `T` as a query returns them: each with the value of its key column.
pub(crate) type KeyedRows<T> = Vec<(crate::key::KeyValue, <T as Table>::Row)>;

/// The rows of `T` given to the asked keys they belong to.
pub(crate) type RowsOfKeys<T> = Vec<(<T as Table>::Key, <T as Table>::Row)>;

/// The SQL dialects, for quoting and placeholders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    MySql,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

/// The alias of the key column in the select list: read by position, named so that it never
/// clashes with a column a row type reads by name.
pub(crate) const KEY_ALIAS: &str = "asynq_key";

impl Dialect {
    /// The quote of identifiers, and the longest identifier the server keeps whole (PostgreSQL
    /// cuts longer ones silently, which could name another table).
    fn quote_and_limit(self) -> (char, usize) {
        match self {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => ('"', 63),
            #[cfg(feature = "mysql")]
            Dialect::MySql => ('`', 64),
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => ('"', 1000),
        }
    }

    /// `name` quoted (each dot-separated part on its own), or why it is not a name.
    pub(crate) fn quote(self, name: &str) -> Result<String, String> {
        let (quote, limit) = self.quote_and_limit();
        let mut out = String::with_capacity(name.len() + 4);
        for (i, part) in name.split('.').enumerate() {
            if part.is_empty() {
                return Err(format!("{name:?} has an empty name part"));
            }
            if part.len() > limit {
                return Err(format!("{name:?} is longer than {limit} bytes"));
            }
            if part.chars().any(char::is_control) {
                return Err(format!("{name:?} holds a control character"));
            }
            if part.trim() != part {
                return Err(format!("{name:?} starts or ends with white space"));
            }
            if i > 0 {
                out.push('.');
            }
            out.push(quote);
            for c in part.chars() {
                if c == quote {
                    out.push(quote); // a quote inside a quoted name is doubled
                }
                out.push(c);
            }
            out.push(quote);
        }
        Ok(out)
    }
}

/// The SQL of one [`Table`] in one dialect, checked and quoted once.
#[derive(Clone, Debug)]
pub struct TableSql {
    /// `SELECT <columns>, <key> AS asynq_key FROM <table> WHERE <key>`.
    select: String,
    /// ` ORDER BY ...`, or empty.
    order: String,
}

impl TableSql {
    /// The SQL of `T` in `dialect`; with `key_cast`, the key column is selected as
    /// `CAST(<key> AS <key_cast>)` (PostgreSQL reads every integer key as `int8`).
    pub(crate) fn new<T: Table>(
        dialect: Dialect,
        key_cast: Option<&str>,
    ) -> Result<Self, SqlError> {
        let bad = |what: &str, why: String| {
            SqlError::new(ErrorKind::Config, T::NAME, T::TABLE).with_detail(format!("{what} {why}"))
        };
        let table = dialect.quote(T::TABLE).map_err(|e| bad("table name", e))?;
        let key = dialect.quote(T::KEY).map_err(|e| bad("key column", e))?;
        let mut select = String::from("SELECT ");
        for column in T::COLUMNS {
            select.push_str(&dialect.quote(column).map_err(|e| bad("column", e))?);
            select.push_str(", ");
        }
        match key_cast {
            Some(ty) => select.push_str(&format!("CAST({key} AS {ty})")),
            None => select.push_str(&key),
        }
        select.push_str(&format!(" AS {KEY_ALIAS} FROM {table} WHERE {key}"));
        let mut order = String::new();
        for (i, spec) in T::ORDER_BY.iter().enumerate() {
            let (column, direction) = split_direction(spec);
            let column = dialect
                .quote(column)
                .map_err(|e| bad("ORDER BY column", e))?;
            order.push_str(if i == 0 { " ORDER BY " } else { ", " });
            order.push_str(&column);
            order.push_str(direction);
        }
        Ok(TableSql { select, order })
    }

    /// The query with `condition` after the key column (`= ANY($1)`, `IN (?, ?)`).
    pub(crate) fn with(&self, condition: &str) -> String {
        format!("{} {condition}{}", self.select, self.order)
    }

    /// The query with a list of `n` placeholders `?` (at least one).
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn with_list(&self, n: usize) -> String {
        let mut list = String::with_capacity(4 + 2 * n);
        list.push_str("IN (");
        for i in 0..n.max(1) {
            list.push_str(if i == 0 { "?" } else { ", ?" });
        }
        list.push(')');
        self.with(&list)
    }
}

/// `"created_at DESC"` as `("created_at", " DESC")`; no suffix, no direction.
fn split_direction(spec: &str) -> (&str, &'static str) {
    for (suffix, direction) in [(" DESC", " DESC"), (" ASC", " ASC")] {
        if spec.len() > suffix.len()
            && spec[spec.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        {
            return (&spec[..spec.len() - suffix.len()], direction);
        }
    }
    (spec, "")
}

/// The key kind of `T`, for the code that binds and reads keys.
pub(crate) fn key_kind<T: Table>() -> KeyKind {
    <T::Key as SqlKey>::KIND
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Comments;
    impl Table for Comments {
        type Key = i64;
        type Row = (i64, String);
        const NAME: &'static str = "comments";
        const TABLE: &'static str = "app.comments";
        const KEY: &'static str = "post_id";
        const COLUMNS: &'static [&'static str] = &["id", "bo\"dy"];
        const ORDER_BY: &'static [&'static str] = &["id desc", "x"];
    }

    struct Bad;
    impl Table for Bad {
        type Key = String;
        type Row = ();
        const NAME: &'static str = "bad";
        const TABLE: &'static str = "t";
        const KEY: &'static str = "k\0";
        const COLUMNS: &'static [&'static str] = &[];
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn names_are_quoted_and_placeholders_listed() {
        let sql = TableSql::new::<Comments>(Dialect::Sqlite, None).unwrap();
        assert_eq!(
            sql.with_list(3),
            "SELECT \"id\", \"bo\"\"dy\", \"post_id\" AS asynq_key FROM \"app\".\"comments\" \
             WHERE \"post_id\" IN (?, ?, ?) ORDER BY \"id\" DESC, \"x\""
        );
        let err = TableSql::new::<Bad>(Dialect::Sqlite, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.to_string(),
            "source `bad` (table `t`): bad setup: key column \"k\\0\" holds a control character"
        );
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_quotes_with_backticks() {
        assert_eq!(Dialect::MySql.quote("a`b.c").unwrap(), "`a``b`.`c`");
        assert!(Dialect::MySql.quote("a..b").is_err());
        assert!(Dialect::MySql.quote(" a").is_err());
        assert!(Dialect::MySql.quote(&"x".repeat(65)).is_err());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_casts_the_key() {
        let sql = TableSql::new::<Comments>(Dialect::Postgres, Some("int8")).unwrap();
        assert_eq!(
            sql.with("= ANY($1::int8[])"),
            "SELECT \"id\", \"bo\"\"dy\", CAST(\"post_id\" AS int8) AS asynq_key FROM \
             \"app\".\"comments\" WHERE \"post_id\" = ANY($1::int8[]) ORDER BY \"id\" DESC, \"x\""
        );
        assert!(Dialect::Postgres.quote(&"x".repeat(64)).is_err());
    }

    #[test]
    fn directions() {
        assert_eq!(split_direction("a DESC"), ("a", " DESC"));
        assert_eq!(split_direction("a asc"), ("a", " ASC"));
        assert_eq!(split_direction("DESC"), ("DESC", ""));
        assert_eq!(split_direction("b"), ("b", ""));
    }
}
