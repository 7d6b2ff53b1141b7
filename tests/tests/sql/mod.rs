//! The cases every SQL backend of `asynq-sources` passes, written once over a [`Backend`]:
//! the test files of PostgreSQL, MariaDB and SQLite run them against their database.
//!
//! Each case gets a fresh database holding [`FIXTURE`]'s rows in the tables of the backend's
//! schema, and asserts results, rounds, calls and queries.
#![allow(dead_code, reason = "each backend's file runs the cases it has")]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asynq_core::{DataSource, Error, FetchTimeout, Runtime, asynq};
use asynq_examples::feed::{self, Params};
use asynq_sources::{Database, ErrorKind, Groups, Reads, Required, Rows, SqlError, Table};

pub(crate) mod servers;

/// Users by id.
pub(crate) struct Users;
impl Table for Users {
    type Key = i64;
    type Row = (String, i64);
    const NAME: &'static str = "users";
    const TABLE: &'static str = "users";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name", "karma"];
}

/// Comments by post, a has-many lookup with an `i32` key, in id order.
pub(crate) struct CommentsByPost;
impl Table for CommentsByPost {
    type Key = i32;
    type Row = (i64, String);
    const NAME: &'static str = "comments_by_post";
    const TABLE: &'static str = "comments";
    const KEY: &'static str = "post_id";
    const COLUMNS: &'static [&'static str] = &["id", "body"];
    const ORDER_BY: &'static [&'static str] = &["id DESC"];
}

/// Tags by name: text keys, a single-column row.
pub(crate) struct Tags;
impl Table for Tags {
    type Key = String;
    type Row = i64;
    const NAME: &'static str = "tags";
    const TABLE: &'static str = "tags";
    const KEY: &'static str = "name";
    const COLUMNS: &'static [&'static str] = &["uses"];
}

/// Counters by an unsigned id.
pub(crate) struct Counters;
impl Table for Counters {
    type Key = u64;
    type Row = i64;
    const NAME: &'static str = "counters";
    const TABLE: &'static str = "counters";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["n"];
}

/// A table that does not exist.
pub(crate) struct Missing;
impl Table for Missing {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "missing";
    const TABLE: &'static str = "no_such_table";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["n"];
}

/// The users table read with the wrong row type: `name` is text, not a number.
pub(crate) struct NamesAsNumbers;
impl Table for NamesAsNumbers {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "names_as_numbers";
    const TABLE: &'static str = "users";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name"];
}

/// The FEED-1 key-value table.
pub(crate) struct Kv;
impl Table for Kv {
    type Key = String;
    type Row = String;
    const NAME: &'static str = "kv";
    const TABLE: &'static str = "kv";
    const KEY: &'static str = "key";
    const COLUMNS: &'static [&'static str] = &["value"];
}

/// Users read through a view that sleeps (the backend's own): a query that takes too long.
pub(crate) struct SlowUsers;
impl Table for SlowUsers {
    type Key = i64;
    type Row = String;
    const NAME: &'static str = "slow_users";
    const TABLE: &'static str = "slow_users";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name"];
}

/// The `#[test]` functions of the cases named, for a backend whose `$fresh(name)` gives a
/// fresh [`Backend`], or `None` when its server cannot be started (the test is skipped).
macro_rules! cases {
    ($fresh:path: $($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            let Some(backend) = $fresh(stringify!($case)) else {
                return;
            };
            sql::$case(&backend);
        }
    )*};
}

/// The `#[test]` functions of every case all backends pass, for `$fresh` as in [`cases`].
macro_rules! every_case {
    ($fresh:path) => {
        sql::cases!($fresh:
            rows_by_primary_key,
            groups_by_foreign_key,
            string_keys,
            unsigned_keys,
            chunked_at_the_limit,
            errors_name_the_table_and_keys,
            required_rows,
            feed1_over_the_kv_table,
            concurrent_runs_share_one_pool,
        );
    };
}

pub(crate) use {cases, every_case};

/// The rows every case starts with (the schema is the backend's own).
pub(crate) const FIXTURE: &str = "
    INSERT INTO users (id, name, karma) VALUES (1, 'ann', 10), (2, 'bob', 3), (3, 'cy', -1);
    INSERT INTO comments (id, post_id, body) VALUES
        (1, 10, 'first'), (2, 30, 'nice'), (3, 10, '+1'), (4, 10, 'late');
    INSERT INTO tags (name, uses) VALUES
        ('rust', 7), ('it''s', 2), ('日本語', 5), ('a b', 1);
    INSERT INTO counters (id, n) VALUES (1, 100), (7, 700);
";

/// A database of one backend, fresh for one case, with the schema and [`FIXTURE`] loaded.
pub(crate) trait Backend {
    /// The backend's database.
    type Db: Database
        + Reads<Users>
        + Reads<CommentsByPost>
        + Reads<Tags>
        + Reads<Counters>
        + Reads<Missing>
        + Reads<NamesAsNumbers>
        + Reads<Kv>
        + Reads<SlowUsers>;

    /// The database.
    fn db(&self) -> &Self::Db;

    /// Run SQL statements (schema, loading), here.
    fn execute(&self, sql: &str);

    /// How many queries on `slow_users` the server is running now.
    fn slow_queries_running(&self) -> u64;

    /// Insert `pairs` into the `kv` table, every value a bound parameter.
    fn load_kv(&self, pairs: &[(String, String)]);
}

/// What one load of a [`Rows`] source gives.
type Answer<R> = Result<Option<R>, Error>;
/// What many loads of a [`Rows`] source give.
type Answers<R> = Vec<Answer<R>>;

/// The error of a failed load, as the source's [`SqlError`].
fn sql_error(err: &Error) -> &SqlError {
    let Error::Source { error, .. } = err else {
        panic!("not a source error: {err}")
    };
    error
        .downcast_ref::<SqlError>()
        .unwrap_or_else(|| panic!("not a SqlError: {error}"))
}

#[asynq]
fn users<D: Reads<Users>>(ids: Vec<i64>) -> Result<Vec<Option<(String, i64)>>, Error> {
    Rows::<Users, D>::load_many(ids).await.into_iter().collect()
}

/// Rows by primary key: present and absent keys answered in one query, in the order asked.
pub(crate) fn rows_by_primary_key<B: Backend>(b: &B) {
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Rows::<Users, B::Db>::new(db.clone()).unwrap());
    let got = rt.run(users::<B::Db>(vec![2, 9, 1, 3, -4])).unwrap();
    let row = |name: &str, karma| Some((name.to_owned(), karma));
    assert_eq!(
        got,
        [row("bob", 3), None, row("ann", 10), row("cy", -1), None]
    );
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 1);
    assert_eq!(stats.source("users").unwrap().calls, 1);
    assert_eq!((db.queries(), db.keys()), (1, 5));
}

#[asynq]
fn comments<D: Reads<CommentsByPost>>(posts: Vec<i32>) -> Result<Vec<Vec<(i64, String)>>, Error> {
    Groups::<CommentsByPost, D>::load_many(posts)
        .await
        .into_iter()
        .collect()
}

/// Has-many: every row of each key in the table's order, an empty group for a key without
/// rows, in one query.
pub(crate) fn groups_by_foreign_key<B: Backend>(b: &B) {
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Groups::<CommentsByPost, B::Db>::new(db.clone()).unwrap());
    let got = rt.run(comments::<B::Db>(vec![10, 20, 30])).unwrap();
    let c = |id, body: &str| (id, body.to_owned());
    assert_eq!(
        got,
        [
            vec![c(4, "late"), c(3, "+1"), c(1, "first")],
            vec![],
            vec![c(2, "nice")]
        ]
    );
    assert_eq!(rt.last_stats().source("comments_by_post").unwrap().calls, 1);
    assert_eq!(db.queries(), 1);
}

#[asynq]
fn tags<D: Reads<Tags>>(names: Vec<String>) -> Result<Vec<Option<i64>>, Error> {
    Rows::<Tags, D>::load_many(names)
        .await
        .into_iter()
        .collect()
}

/// Text keys, quotes and SQL in them included, are bound parameters: matched exactly or not
/// at all, and the table is still there afterwards.
pub(crate) fn string_keys<B: Backend>(b: &B) {
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Rows::<Tags, B::Db>::new(db.clone()).unwrap());
    let asked: Vec<String> = [
        "rust",
        "it's",
        "日本語",
        "'; DROP TABLE tags; --",
        "a b",
        "",
        "ru%",
    ]
    .map(String::from)
    .into();
    let got = rt.run(tags::<B::Db>(asked.clone())).unwrap();
    assert_eq!(got, [Some(7), Some(2), Some(5), None, Some(1), None, None]);
    let again = rt.run(tags::<B::Db>(vec!["rust".into()])).unwrap();
    assert_eq!(again, [Some(7)]);
    assert_eq!(db.queries(), 2);
}

#[asynq]
fn counters<D: Reads<Counters>>(ids: Vec<u64>) -> Result<Vec<Option<i64>>, Error> {
    Rows::<Counters, D>::load_many(ids)
        .await
        .into_iter()
        .collect()
}

/// Unsigned keys; one above `i64::MAX` is absent where no column can hold it.
pub(crate) fn unsigned_keys<B: Backend>(b: &B) {
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Rows::<Counters, B::Db>::new(db.clone()).unwrap());
    let got = rt.run(counters::<B::Db>(vec![7, u64::MAX, 1, 2])).unwrap();
    assert_eq!(got, [Some(700), None, Some(100), None]);
    assert_eq!(db.queries(), 1);
}

#[asynq]
fn users_and_comments<D: Reads<Users> + Reads<CommentsByPost>>(
    ids: Vec<i64>,
    posts: Vec<i32>,
) -> Result<(usize, usize), Error> {
    let (users, comments) = (
        Rows::<Users, D>::load_many(ids),
        Groups::<CommentsByPost, D>::load_many(posts),
    )
        .await;
    let present = users
        .into_iter()
        .filter(|u| matches!(u, Ok(Some(_))))
        .count();
    let comments = comments
        .into_iter()
        .map(|c| Ok(c?.len()))
        .sum::<Result<usize, Error>>()?;
    Ok((present, comments))
}

/// A round with more keys than a query may carry is split at the limit: the runtime counts
/// one call per chunk, the database one query per chunk, and the answers are whole.
pub(crate) fn chunked_at_the_limit<B: Backend>(b: &B) {
    let db = b.db().clone();
    db.set_max_keys(Some(3));
    assert_eq!(db.max_keys(), Some(3));
    let rt = Runtime::new()
        .with_source(Rows::<Users, B::Db>::new(db.clone()).unwrap())
        .with_source(Groups::<CommentsByPost, B::Db>::new(db.clone()).unwrap());
    let ids: Vec<i64> = (1..=10).collect(); // 3 present
    let posts: Vec<i32> = (0..7).map(|p| p * 10).collect(); // 10 and 30 have comments
    let got = rt.run(users_and_comments::<B::Db>(ids, posts)).unwrap();
    assert_eq!(got, (3, 4));
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 1);
    assert_eq!(stats.source("users").unwrap().calls, 4); // 10 keys: 3 + 3 + 3 + 1
    assert_eq!(stats.source("comments_by_post").unwrap().calls, 3); // 7 keys: 3 + 3 + 1
    assert_eq!((db.queries(), db.keys()), (7, 17));
}

#[asynq]
fn missing_and_users<D: Reads<Missing> + Reads<Users>>() -> (Answers<i64>, Answer<(String, i64)>) {
    (
        Rows::<Missing, D>::load_many([1, 2]),
        Rows::<Users, D>::load(1),
    )
        .await
}

#[asynq]
fn names_as_numbers<D: Reads<NamesAsNumbers>>(ids: Vec<i64>) -> Vec<Result<Option<i64>, Error>> {
    Rows::<NamesAsNumbers, D>::load_many(ids).await
}

/// A failed query fails the keys of its call, with an error naming the source, the table and
/// the keys; other sources of the round are answered. A row the row type cannot read names
/// its key.
pub(crate) fn errors_name_the_table_and_keys<B: Backend>(b: &B) {
    let db = b.db().clone();
    let rt = Runtime::new()
        .with_source(Rows::<Missing, B::Db>::new(db.clone()).unwrap())
        .with_source(Rows::<Users, B::Db>::new(db.clone()).unwrap())
        .with_source(Rows::<NamesAsNumbers, B::Db>::new(db.clone()).unwrap());
    let (missing, user) = rt.run(missing_and_users::<B::Db>()).unwrap();
    assert_eq!(user.unwrap(), Some(("ann".to_owned(), 10)));
    for failed in &missing {
        let err = failed.as_ref().unwrap_err();
        let sql = sql_error(err);
        assert_eq!(sql.kind(), ErrorKind::Query);
        assert_eq!(
            (sql.source_name(), sql.table()),
            ("missing", "no_such_table")
        );
        assert_eq!(sql.keys(), ["1", "2"]);
        assert!(
            sql.to_string().starts_with(
                "source `missing` (table `no_such_table`): query failed for 2 keys [1, 2]"
            ),
            "{sql}"
        );
        let cause = std::error::Error::source(sql).expect("the driver's error");
        assert!(!cause.to_string().is_empty());
    }

    let got = rt.run(names_as_numbers::<B::Db>(vec![2, 5])).unwrap();
    for failed in &got {
        let sql = sql_error(failed.as_ref().unwrap_err());
        assert_eq!(sql.kind(), ErrorKind::Decode);
        assert_eq!(
            sql.to_string(),
            "source `names_as_numbers` (table `users`): cannot read a result row for key 2"
        );
    }
}

#[asynq]
fn kv_pair<D: Reads<Kv>>(a: String, b: String) -> (Result<String, Error>, Result<String, Error>) {
    (Required::<Kv, D>::load(a), Required::<Kv, D>::load(b)).await
}

/// [`Required`]: a present key answers its row; an absent one fails alone, naming the table
/// and the key.
pub(crate) fn required_rows<B: Backend>(b: &B) {
    b.load_kv(&[("present".into(), "yes".into())]);
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Required::<Kv, B::Db>::new(db.clone()).unwrap());
    let (a, b) = rt
        .run(kv_pair::<B::Db>("present".into(), "absent".into()))
        .unwrap();
    assert_eq!(a.unwrap(), "yes");
    let err = b.unwrap_err();
    let sql = sql_error(&err);
    assert_eq!(sql.kind(), ErrorKind::NotFound);
    assert_eq!(
        sql.to_string(),
        r#"source `kv` (table `kv`): no row for key "absent""#
    );
    assert_eq!(db.queries(), 1);
}

/// FEED-1 (Q=10, A=5) rendered over the key-value table: the reference page in 3 calls.
pub(crate) fn feed1_over_the_kv_table<B: Backend>(b: &B) {
    let p = Params {
        questions: 10,
        answers: 5,
    };
    b.load_kv(&feed::dataset(p));
    let db = b.db().clone();
    let rt = Runtime::new().with_source(Required::<Kv, B::Db>::new(db.clone()).unwrap());
    let page = rt.run(feed::feed::<Required<Kv, B::Db>>(p)).unwrap();
    assert_eq!(page.len(), 2152);
    assert_eq!(
        format!("{:016x}", feed::fnv1a64(page.as_bytes())),
        "ac26a36b50baee7b"
    );
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (3, 3, 195));
    assert_eq!((db.queries(), db.keys()), (3, 195));
}

/// Many runs at once on one pool, from many threads: every run gets its own answers.
pub(crate) fn concurrent_runs_share_one_pool<B: Backend>(b: &B) {
    const THREADS: usize = 8;
    const RUNS: usize = 12;
    let db = b.db().clone();
    let rt = Arc::new(
        Runtime::new()
            .with_source(Rows::<Users, B::Db>::new(db.clone()).unwrap())
            .with_source(Groups::<CommentsByPost, B::Db>::new(db.clone()).unwrap()),
    );
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let rt = Arc::clone(&rt);
            std::thread::spawn(move || {
                for r in 0..RUNS {
                    // Each run asks a different mix: 1..=n users, posts 10 and 30 or not.
                    let n = (t + r) % 4 + 1;
                    let ids: Vec<i64> = (1..=n as i64).collect();
                    let posts = if r % 2 == 0 { vec![10, 30] } else { vec![20] };
                    let want = (n.min(3), if r % 2 == 0 { 4 } else { 0 });
                    let got = rt.run(users_and_comments::<B::Db>(ids, posts)).unwrap();
                    assert_eq!(got, want, "thread {t} run {r}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(db.queries(), 2 * THREADS * RUNS);
}

#[asynq]
fn karma_of<D: Reads<Users>>(ids: Vec<i64>) -> Result<i64, Error> {
    let rows = Rows::<Users, D>::load_many(ids).await;
    let mut sum = 0;
    for row in rows {
        sum += row?.map_or(0, |(_, karma)| karma);
    }
    Ok(sum)
}

/// Inside an async server: the database opened by `connect` inside tokio, many runs awaited
/// at once with `run_async` on the runtime's workers; `then` checks more inside the runtime.
pub(crate) fn runs_awaited_inside_tokio<D, F>(connect: impl FnOnce() -> F, then: impl FnOnce(&D))
where
    D: Reads<Users>,
    F: Future<Output = D>,
{
    const RUNS: i64 = 40;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async move {
        let db = connect().await;
        let rt = Arc::new(Runtime::new().with_source(Rows::<Users, D>::new(db.clone()).unwrap()));
        let runs: Vec<_> = (0..RUNS)
            .map(|i| {
                let rt = Arc::clone(&rt);
                tokio::spawn(async move { rt.run_async(karma_of::<D>(vec![1, 2, 3, i])).await })
            })
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let extra = [0, 10, 3, -1].get(i).copied().unwrap_or(0);
            assert_eq!(run.await.unwrap().unwrap(), 12 + extra, "run {i}");
        }
        assert_eq!(db.queries(), RUNS as usize);
        then(&db);
    });
}

#[asynq]
fn slow_name<D: Reads<SlowUsers>>(id: i64) -> Result<Option<String>, Error> {
    Rows::<SlowUsers, D>::load(id).await
}

/// A call past the fetch timeout fails its keys with `FetchTimeout`, the database serves the
/// next call at once, and the server stops the slow query (of the view `slow_view`, which
/// sleeps 5 seconds) rather than running it to its end.
pub(crate) fn a_query_past_the_fetch_timeout_fails_its_keys<B: Backend>(b: &B, slow_view: &str) {
    b.execute(slow_view);
    let db = b.db().clone();
    db.set_fetch_timeout(Some(Duration::from_millis(200)));
    let rt = Runtime::new()
        .with_source(Rows::<SlowUsers, B::Db>::new(db.clone()).unwrap())
        .with_source(Rows::<Users, B::Db>::new(db.clone()).unwrap());
    let started = Instant::now();
    let err = rt.run(slow_name::<B::Db>(1)).unwrap_err();
    let Error::Source { error, .. } = &err else {
        panic!("{err}")
    };
    assert!(error.downcast_ref::<FetchTimeout>().is_some(), "{err}");
    assert_eq!(rt.run(karma_of::<B::Db>(vec![1, 2])).unwrap(), 13);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a call waited for the slow query"
    );
    let waited = Instant::now();
    while b.slow_queries_running() > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(3),
            "the slow query still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
