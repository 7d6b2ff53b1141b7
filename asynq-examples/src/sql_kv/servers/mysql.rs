//! The data sets in MySQL and MariaDB: one connection holding a named lock (`GET_LOCK`) for
//! the whole open (or removal), the rows replaced in one transaction. MySQL commits before
//! each `CREATE TABLE`, so the tables are made one by one, each marked by its own statement.

use asynq_sources::mysql::{self, mysql_async};
use mysql_async::Value;
use mysql_async::prelude::Queryable as _;

use super::{DataSetError, Found, KV_TABLE, Kind, MARK, SETS_TABLE, Session, Set, failed};
use crate::feed::Params;
use crate::sql_kv::SqlKv;

/// The named lock of the data set tables.
const LOCK: &str = "asynq_feed1_datasets";
/// The named lock of the profile site's tables.
pub(crate) const PROFILE_LOCK: &str = "asynq_profile";
/// How long to wait for another program's open, in seconds.
const LOCK_WAIT_S: u32 = 120;
/// Rows inserted per statement (two bound parameters each).
const CHUNK: usize = 1000;

/// Data set `p` in the MySQL (or MariaDB) database of `db`, loaded now when it is not there
/// whole. Returns the store and whether it loaded the data set. Call it inside the tokio
/// runtime `db` was connected in.
///
/// A table named [`KV_TABLE`] or [`SETS_TABLE`] that this program did not make is refused
/// with [`DataSetError::NotOurs`], and nothing is changed.
pub async fn open_mysql(db: &mysql::Db, p: Params) -> Result<(SqlKv, bool), DataSetError> {
    let mut session = lock(db, LOCK).await?;
    let loaded = super::ensure(&mut session, p).await?;
    session.close().await;
    let store = SqlKv::mysql(db.clone(), &super::prefix(p)).map_err(failed("open the store"))?;
    Ok((store, loaded))
}

/// Delete data set `p` from the MySQL database of `db` (its rows and its tag row), if the
/// tables are this program's; returns whether they were there.
pub async fn remove_mysql(db: &mysql::Db, p: Params) -> Result<bool, DataSetError> {
    let mut session = lock(db, LOCK).await?;
    let removed = super::remove(&mut session, p).await?;
    session.close().await;
    Ok(removed)
}

/// A connection of `db` holding the named lock `name`.
pub(crate) async fn lock(db: &mysql::Db, name: &str) -> Result<My, DataSetError> {
    let conn = db
        .pool()
        .get_conn()
        .await
        .map_err(failed("connect to MySQL"))?;
    let mut session = My(Some(conn));
    let got: Option<Option<i64>> = session
        .conn()
        .exec_first("SELECT GET_LOCK(?, ?)", (name, LOCK_WAIT_S))
        .await
        .map_err(failed("lock the data set tables"))?;
    if got != Some(Some(1)) {
        return Err(failed("lock the data set tables")(format!(
            "another connection held the lock `{name}` for {LOCK_WAIT_S} s"
        )));
    }
    Ok(session)
}

/// A connection holding the lock. Its session ends when it is closed or dropped (which
/// releases the lock and rolls back a transaction left open): it never goes back to the pool
/// still holding them.
pub(crate) struct My(Option<mysql_async::Conn>);

impl My {
    pub(crate) fn conn(&mut self) -> &mut mysql_async::Conn {
        self.0.as_mut().expect("a session until closed")
    }

    /// The relations named `names` in the current database, with their kind and comment
    /// (views carry none in MySQL: `None`).
    pub(crate) async fn relations(&mut self, names: &[&str]) -> Result<Vec<Found>, DataSetError> {
        let list = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "SELECT table_name, table_type, table_comment FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name IN ({list})"
        );
        let params: Vec<Value> = names.iter().map(|&n| Value::from(n)).collect();
        let rows: Vec<(String, String, Option<String>)> = self
            .conn()
            .exec(sql, params)
            .await
            .map_err(failed("list the tables"))?;
        Ok(rows
            .into_iter()
            .map(|(name, kind, comment)| {
                let kind = match kind.as_str() {
                    "BASE TABLE" => Kind::Table,
                    "VIEW" => Kind::View,
                    _ => Kind::Other,
                };
                let comment = if kind == Kind::View { None } else { comment };
                Found {
                    name,
                    kind,
                    comment,
                }
            })
            .collect())
    }

    pub(crate) async fn close(mut self) {
        if let Some(conn) = self.0.take() {
            // Nothing to do when it fails: the server ends the session either way.
            let _ = conn.disconnect().await;
        }
    }
}

impl Drop for My {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = conn.disconnect().await;
            });
        }
    }
}

impl Session for My {
    async fn tables(&mut self) -> Result<Vec<Found>, DataSetError> {
        self.relations(&[KV_TABLE, SETS_TABLE]).await
    }

    async fn create(&mut self, tables: &[&'static str]) -> Result<(), DataSetError> {
        const TEXT: &str = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
        for &table in tables {
            let columns = if table == KV_TABLE {
                format!(
                    "`key` VARCHAR(255) {TEXT} NOT NULL PRIMARY KEY, `value` MEDIUMTEXT {TEXT} NOT NULL"
                )
            } else {
                format!(
                    "`dataset` VARCHAR(64) {TEXT} NOT NULL PRIMARY KEY, \
                     `prefix` VARCHAR(64) {TEXT} NOT NULL, `key_count` BIGINT NOT NULL"
                )
            };
            // Names and the mark are the program's constants, not data. IF NOT EXISTS: a table
            // made meanwhile by another program is found by the check that follows.
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS `{table}` ({columns}) ENGINE=InnoDB COMMENT='{MARK}'"
            );
            self.conn()
                .query_drop(sql)
                .await
                .map_err(failed("create the data set tables"))?;
        }
        Ok(())
    }

    async fn held(&mut self, tag: &str) -> Result<Option<i64>, DataSetError> {
        let sql = format!("SELECT `key_count` FROM `{SETS_TABLE}` WHERE `dataset` = ?");
        self.conn()
            .exec_first(sql, (tag,))
            .await
            .map_err(failed("read the tag table"))
    }

    async fn count(&mut self, from: &str, to: &str) -> Result<i64, DataSetError> {
        let sql = format!("SELECT COUNT(*) FROM `{KV_TABLE}` WHERE `key` >= ? AND `key` < ?");
        let n: Option<i64> = self
            .conn()
            .exec_first(sql, (from, to))
            .await
            .map_err(failed("count the data set's keys"))?;
        Ok(n.unwrap_or(0))
    }

    async fn replace(
        &mut self,
        set: &Set,
        rows: Option<&[(String, String)]>,
    ) -> Result<(), DataSetError> {
        let conn = self.conn();
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(failed("start a transaction"))?;
        let delete = format!("DELETE FROM `{KV_TABLE}` WHERE `key` >= ? AND `key` < ?");
        conn.exec_drop(delete, (&set.prefix, &set.end))
            .await
            .map_err(failed("delete the data set's old rows"))?;
        let untag = format!("DELETE FROM `{SETS_TABLE}` WHERE `dataset` = ?");
        conn.exec_drop(untag, (&set.tag,))
            .await
            .map_err(failed("delete the data set's tag"))?;
        if let Some(rows) = rows {
            for chunk in rows.chunks(CHUNK) {
                let mut insert = format!("INSERT INTO `{KV_TABLE}` (`key`, `value`) VALUES ");
                let mut params = Vec::with_capacity(2 * chunk.len());
                for (i, (key, value)) in chunk.iter().enumerate() {
                    insert.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
                    params.push(Value::from(key.as_str()));
                    params.push(Value::from(value.as_str()));
                }
                conn.exec_drop(insert, params)
                    .await
                    .map_err(failed("insert the data set"))?;
            }
            let tag = format!(
                "INSERT INTO `{SETS_TABLE}` (`dataset`, `prefix`, `key_count`) VALUES (?, ?, ?)"
            );
            let count = i64::try_from(rows.len()).expect("a data set's size fits i64");
            conn.exec_drop(tag, (&set.tag, &set.prefix, count))
                .await
                .map_err(failed("write the data set's tag"))?;
        }
        // On an error above, the open transaction is rolled back when the session ends.
        conn.query_drop("COMMIT").await.map_err(failed("commit"))
    }
}
