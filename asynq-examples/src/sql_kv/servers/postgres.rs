//! The data sets in PostgreSQL: the whole open (or removal) is one transaction, under a
//! transaction-level advisory lock.

use asynq_sources::postgres::{self, deadpool_postgres, tokio_postgres};

use super::{DataSetError, Found, KV_TABLE, Kind, MARK, SETS_TABLE, Session, Set, failed};
use crate::feed::Params;
use crate::sql_kv::SqlKv;

/// The advisory lock of the data set tables: `asyq` and 1.
const LOCK: i64 = 0x6173_7971_0000_0001;
/// The advisory lock of the profile site's tables: `asyq` and 2.
pub(crate) const PROFILE_LOCK: i64 = 0x6173_7971_0000_0002;
/// Rows inserted per statement (as two array parameters).
const CHUNK: usize = 20_000;

/// Data set `p` in the PostgreSQL database of `db`, loaded now when it is not there whole.
/// Returns the store and whether it loaded the data set. Call it inside the tokio runtime
/// `db` was connected in.
///
/// A table named [`KV_TABLE`] or [`SETS_TABLE`] that this program did not make is refused
/// with [`DataSetError::NotOurs`], and nothing is changed.
pub async fn open_postgres(db: &postgres::Db, p: Params) -> Result<(SqlKv, bool), DataSetError> {
    let mut client = connect(db).await?;
    let mut session = begin(&mut client, LOCK).await?;
    let loaded = super::ensure(&mut session, p).await?;
    session.0.commit().await.map_err(failed("commit"))?;
    let store = SqlKv::postgres(db.clone(), &super::prefix(p)).map_err(failed("open the store"))?;
    Ok((store, loaded))
}

/// Delete data set `p` from the PostgreSQL database of `db` (its rows and its tag row), if
/// the tables are this program's; returns whether they were there.
pub async fn remove_postgres(db: &postgres::Db, p: Params) -> Result<bool, DataSetError> {
    let mut client = connect(db).await?;
    let mut session = begin(&mut client, LOCK).await?;
    let removed = super::remove(&mut session, p).await?;
    session.0.commit().await.map_err(failed("commit"))?;
    Ok(removed)
}

/// A connection of `db`'s pool.
pub(crate) async fn connect(db: &postgres::Db) -> Result<deadpool_postgres::Object, DataSetError> {
    db.pool()
        .get()
        .await
        .map_err(failed("connect to PostgreSQL"))
}

/// A transaction holding the advisory lock `lock` (until it ends).
pub(crate) async fn begin(
    client: &mut deadpool_postgres::Object,
    lock: i64,
) -> Result<Pg<'_>, DataSetError> {
    let tx = client
        .transaction()
        .await
        .map_err(failed("start a transaction"))?;
    tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .await
        .map_err(failed("lock the data set tables"))?;
    Ok(Pg(tx))
}

/// A transaction holding a lock.
pub(crate) struct Pg<'c>(pub(crate) deadpool_postgres::Transaction<'c>);

impl Pg<'_> {
    /// The relations named `names` in the current schema, with their kind and comment.
    pub(crate) async fn relations(&self, names: &[&str]) -> Result<Vec<Found>, DataSetError> {
        let rows = self
            .0
            .query(
                "SELECT c.relname::text, c.relkind::text, obj_description(c.oid, 'pg_class') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])",
                &[&names],
            )
            .await
            .map_err(failed("list the tables"))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1)?;
                Ok(Found {
                    name: r.try_get(0)?,
                    kind: match kind.as_str() {
                        "r" => Kind::Table,
                        "v" => Kind::View,
                        _ => Kind::Other,
                    },
                    comment: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(failed("list the tables"))
    }
}

impl Session for Pg<'_> {
    async fn tables(&mut self) -> Result<Vec<Found>, DataSetError> {
        self.relations(&[KV_TABLE, SETS_TABLE]).await
    }

    async fn create(&mut self, tables: &[&'static str]) -> Result<(), DataSetError> {
        for &table in tables {
            let columns = if table == KV_TABLE {
                "key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL"
            } else {
                "dataset TEXT PRIMARY KEY, prefix TEXT NOT NULL, key_count BIGINT NOT NULL"
            };
            // Names and the mark are the program's constants, not data.
            let sql =
                format!("CREATE TABLE {table} ({columns}); COMMENT ON TABLE {table} IS '{MARK}';");
            self.0
                .batch_execute(&sql)
                .await
                .map_err(failed("create the data set tables"))?;
        }
        Ok(())
    }

    async fn held(&mut self, tag: &str) -> Result<Option<i64>, DataSetError> {
        let sql = format!("SELECT key_count FROM {SETS_TABLE} WHERE dataset = $1");
        let row = self
            .0
            .query_opt(&sql, &[&tag])
            .await
            .map_err(failed("read the tag table"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(failed("read the tag table"))
    }

    async fn count(&mut self, from: &str, to: &str) -> Result<i64, DataSetError> {
        let sql = format!("SELECT count(*) FROM {KV_TABLE} WHERE key >= $1 AND key < $2");
        let row = self
            .0
            .query_one(&sql, &[&from, &to])
            .await
            .map_err(failed("count the data set's keys"))?;
        row.try_get(0).map_err(failed("count the data set's keys"))
    }

    async fn replace(
        &mut self,
        set: &Set,
        rows: Option<&[(String, String)]>,
    ) -> Result<(), DataSetError> {
        let tx = &self.0;
        let delete = format!("DELETE FROM {KV_TABLE} WHERE key >= $1 AND key < $2");
        tx.execute(&delete, &[&set.prefix, &set.end])
            .await
            .map_err(failed("delete the data set's old rows"))?;
        let untag = format!("DELETE FROM {SETS_TABLE} WHERE dataset = $1");
        tx.execute(&untag, &[&set.tag])
            .await
            .map_err(failed("delete the data set's tag"))?;
        let Some(rows) = rows else {
            return Ok(());
        };
        let insert = format!(
            "INSERT INTO {KV_TABLE} (key, value) SELECT * FROM UNNEST($1::text[], $2::text[])"
        );
        for chunk in rows.chunks(CHUNK) {
            let (keys, values): (Vec<&str>, Vec<&str>) =
                chunk.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip();
            tx.execute(&insert, &[&keys, &values])
                .await
                .map_err(failed("insert the data set"))?;
        }
        let tag =
            format!("INSERT INTO {SETS_TABLE} (dataset, prefix, key_count) VALUES ($1, $2, $3)");
        let count = i64::try_from(rows.len()).expect("a data set's size fits i64");
        tx.execute(&tag, &[&set.tag, &set.prefix, &count])
            .await
            .map_err(failed("write the data set's tag"))?;
        Ok(())
    }
}
