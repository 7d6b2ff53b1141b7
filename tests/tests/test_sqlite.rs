//! SQLite sources against a real database file: one query per round, chunking at the
//! bound-parameter limit, `None` for absent rows, errors, threads.

use std::collections::HashSet;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_examples::feed::{self, Params};
use asynq_examples::sqlite::{Db, Sqlite, SqliteGroups, SqliteKv, Table, rusqlite};
use asynq_tests::TempDb;

/// Users by id: a name and the ids of two friends.
struct Users;
impl Table for Users {
    type Key = i64;
    type Row = (String, i64, i64);
    const NAME: &'static str = "users";
    const QUERY: &'static str = "SELECT id, name, friend1, friend2 FROM users WHERE id IN ({keys})";
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self::Row> {
        Ok((row.get(1)?, row.get(2)?, row.get(3)?))
    }
}

/// Posts by author: every post's title.
struct PostsByAuthor;
impl Table for PostsByAuthor {
    type Key = i64;
    type Row = String;
    const NAME: &'static str = "posts";
    const QUERY: &'static str =
        "SELECT author, title FROM posts WHERE author IN ({keys}) ORDER BY author, id";
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
        row.get(1)
    }
}

/// A query on a table that does not exist.
struct Broken;
impl Table for Broken {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "broken";
    const QUERY: &'static str = "SELECT id, x FROM no_such_table WHERE id IN ({keys})";
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<i64> {
        row.get(1)
    }
}

/// A file database with users 0..n (user u's friends: u+1 and u+2, modulo n) and 3 posts by
/// each even user.
fn users_db(file: &TempDb, n: i64) -> Db {
    let db = Db::open(file.path()).unwrap();
    db.with_conn(|c| {
        c.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, friend1 INTEGER, friend2 INTEGER);
             CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER, title TEXT);",
        )?;
        let tx = c.transaction()?;
        for u in 0..n {
            tx.execute(
                "INSERT INTO users VALUES (?1, ?2, ?3, ?4)",
                (u, format!("user {u}"), (u + 1) % n, (u + 2) % n),
            )?;
            if u % 2 == 0 {
                for j in 0..3 {
                    tx.execute(
                        "INSERT INTO posts (author, title) VALUES (?1, ?2)",
                        (u, format!("post {j} by {u}")),
                    )?;
                }
            }
        }
        tx.commit()
    })
    .unwrap();
    db
}

#[asynq]
fn name(uid: i64) -> Result<Option<String>, Error> {
    Ok(Sqlite::<Users>::load(uid).await?.map(|(name, _, _)| name))
}

/// The user's name and its friends' names: two rounds.
#[asynq]
fn with_friends(uid: i64) -> Result<Option<String>, Error> {
    let Some((me, f1, f2)) = Sqlite::<Users>::load(uid).await? else {
        return Ok(None);
    };
    let (a, b) = (name(f1), name(f2)).await;
    Ok(Some(format!(
        "{me} knows {} and {}",
        a?.unwrap(),
        b?.unwrap()
    )))
}

#[test]
fn one_query_per_round_and_none_for_absent_rows() {
    let file = TempDb::new("rounds");
    let db = users_db(&file, 100);
    let rt = Runtime::new().with_source(Sqlite::<Users>::new(db.clone()));
    let ids = vec![3, 10, 500, 98, 3];
    let pages = rt
        .run(ids.into_iter().map(with_friends).collect::<Vec<_>>())
        .unwrap();
    let pages: Vec<Option<String>> = pages.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        pages,
        [
            Some("user 3 knows user 4 and user 5".to_string()),
            Some("user 10 knows user 11 and user 12".to_string()),
            None, // no user 500: an absent row, not an error
            Some("user 98 knows user 99 and user 0".to_string()),
            Some("user 3 knows user 4 and user 5".to_string()),
        ]
    );
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 2);
    assert_eq!(db.calls(), 2, "one SELECT per round");
    assert_eq!(stats.calls(), 2);
    // Round 1: {3, 10, 500, 98}; round 2: the friends not fetched yet.
    assert_eq!(db.keys(), 4 + 6);
}

#[test]
fn a_round_is_chunked_at_the_bound_parameter_limit() {
    let file = TempDb::new("chunks");
    let db = users_db(&file, 300);
    assert_eq!(db.max_params(), 32766, "the bundled SQLite's limit");
    db.set_max_params(100).unwrap();
    assert_eq!(db.max_params(), 100);
    let rt = Runtime::new().with_source(Sqlite::<Users>::new(db.clone()));
    let ids: Vec<i64> = (0..250).collect();
    let names = rt
        .run(ids.iter().map(|&u| name(u)).collect::<Vec<_>>())
        .unwrap();
    for (u, got) in ids.iter().zip(names) {
        assert_eq!(got.unwrap(), Some(format!("user {u}")));
    }
    assert_eq!(rt.last_stats().rounds, 1);
    assert_eq!(db.calls(), 3, "250 keys at 100 per query");
    assert_eq!(rt.last_stats().calls(), 3);

    // Direct queries of every size up to past the limit answer exactly the rows asked for
    // (the placeholder list is padded with NULLs to a power of two).
    for n in [1, 2, 3, 5, 31, 64, 65, 99, 100, 101, 257] {
        let keys: Vec<i64> = (0..n).map(|i| i * 7 % 400).collect();
        let want: HashSet<i64> = keys.iter().copied().filter(|&k| k < 300).collect();
        let rows = db.query::<Users>(&keys).unwrap();
        let got: HashSet<i64> = rows.iter().map(|(k, _)| *k).collect();
        assert_eq!(got, want, "{n} keys");
        assert_eq!(rows.len(), want.len(), "{n} keys");
    }
}

#[test]
fn groups_answer_every_row_or_an_empty_list() {
    let file = TempDb::new("groups");
    let db = users_db(&file, 10);
    let rt = Runtime::new().with_source(SqliteGroups::<PostsByAuthor>::new(db.clone()));

    #[asynq]
    fn posts(uids: Vec<i64>) -> Result<Vec<Vec<String>>, Error> {
        SqliteGroups::<PostsByAuthor>::load_many(uids)
            .await
            .into_iter()
            .collect()
    }

    let got = rt.run(posts(vec![4, 5, 42])).unwrap();
    assert_eq!(got[0], ["post 0 by 4", "post 1 by 4", "post 2 by 4"]);
    assert!(got[1].is_empty(), "user 5 wrote nothing");
    assert!(got[2].is_empty(), "no user 42");
    assert_eq!(db.calls(), 1);
}

#[test]
fn a_failing_query_fails_its_keys_with_the_sql_error() {
    let file = TempDb::new("broken");
    let db = users_db(&file, 10);
    let rt = Runtime::new()
        .with_source(Sqlite::<Broken>::new(db.clone()))
        .with_source(Sqlite::<Users>::new(db));

    /// The broken source's answer, and the user's name.
    type Both = (Result<Option<i64>, Error>, Option<String>);

    #[asynq]
    fn both(id: i64) -> Result<Both, Error> {
        let (broken, name) = (Sqlite::<Broken>::load(id), name(id)).await;
        Ok((broken, name?))
    }

    let (broken, name) = rt.run(both(1)).unwrap();
    let err = broken.unwrap_err();
    assert!(matches!(&err, Error::Source { source, .. } if &**source == "broken"));
    assert!(err.to_string().contains("no such table"), "{err}");
    assert_eq!(
        name,
        Some("user 1".to_string()),
        "the other source is unaffected"
    );
}

#[test]
fn key_value_table_round_trips_any_text_and_misses_are_errors() {
    let file = TempDb::new("kv");
    let store = SqliteKv::create(Db::open(file.path()).unwrap()).unwrap();
    let values = [
        ("unicode", "héllo wörld ✓ 日本語 🦀"),
        ("spaces", "  with  spaces  "),
        ("empty", ""),
        ("newlines", "line 1\r\nline 2\n"),
    ];
    store.put_all(values).unwrap();
    let rt = Runtime::new().with_source(store);

    #[asynq]
    fn get(keys: Vec<String>) -> Vec<Result<String, Error>> {
        SqliteKv::load_many(keys).await
    }

    let keys: Vec<String> = values.iter().map(|(k, _)| k.to_string()).collect();
    let got = rt.run(get(keys)).unwrap();
    for ((_, want), got) in values.iter().zip(got) {
        assert_eq!(got.unwrap(), *want);
    }
    let missing = rt.run(get(vec!["absent".into()])).unwrap().pop().unwrap();
    let err = missing.unwrap_err();
    assert!(matches!(err, Error::MissingKey { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "source `sqlite` did not answer key \"absent\" (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`)"
    );
}

#[test]
fn fetch_futures_are_send_and_one_runtime_serves_many_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let file = TempDb::new("threads");
    let db = users_db(&file, 50);
    let source = Sqlite::<Users>::new(db.clone());
    let keys = [1_i64, 2];
    let fetch = source.fetch(&keys);
    assert_send(&fetch);
    drop(fetch);

    let rt = Runtime::new().with_source(source);
    std::thread::scope(|s| {
        for t in 0..4_i64 {
            let rt = &rt;
            s.spawn(move || {
                for i in 0..10 {
                    let uid = (t * 10 + i) % 50;
                    let got = rt.run(with_friends(uid)).unwrap();
                    assert_eq!(
                        got,
                        Some(format!(
                            "user {uid} knows user {} and user {}",
                            (uid + 1) % 50,
                            (uid + 2) % 50
                        ))
                    );
                }
            });
        }
    });
    assert_eq!(db.calls(), 4 * 10 * 2, "two queries per run");
}

#[test]
fn the_feed_file_is_created_once_and_reused() {
    let file = TempDb::new("feed");
    let small = Params {
        questions: 10,
        answers: 5,
    };
    let (store, created) = SqliteKv::open_feed(file.path(), small).unwrap();
    assert!(created);
    drop(store);
    let (store, created) = SqliteKv::open_feed(file.path(), small).unwrap();
    assert!(!created, "the second open reuses the file");
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqliteKv>(small)).unwrap();
    assert_eq!(
        (page.len(), feed::fnv1a64(page.as_bytes())),
        (2152, 0xac26a36b50baee7b)
    );
    assert_eq!(rt.source::<SqliteKv>().unwrap().db().calls(), 3);

    // Another size in the same file replaces the data set.
    let bigger = Params {
        questions: 100,
        answers: 10,
    };
    let (store, created) = SqliteKv::open_feed(file.path(), bigger).unwrap();
    assert!(created);
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqliteKv>(bigger)).unwrap();
    assert_eq!(
        (page.len(), feed::fnv1a64(page.as_bytes())),
        (39740, 0x56dc3f446f2c5f61)
    );
}

#[test]
fn profiles_take_three_rounds_and_five_queries_however_many_are_rendered() {
    use asynq_examples::profile;

    let file = TempDb::new("profile");
    let (db, created) = profile::open(file.path(), 200).unwrap();
    assert!(created);
    let followers = |uid: i64| -> i64 {
        db.with_conn(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM follows WHERE followee = ?1",
                [uid],
                |r| r.get(0),
            )
        })
        .unwrap()
    };
    let rt = profile::runtime(&db);
    db.reset_counters();
    let uids = vec![4, 7, 150];
    let pages = rt.run(profile::render_profiles(uids.clone())).unwrap();
    for (uid, page) in uids.iter().zip(&pages) {
        assert!(page.contains(&format!("<h1>User {uid}</h1>")), "{page}");
        assert!(
            page.contains(&format!("<img src=\"/img/{uid}.png\">")),
            "{page}"
        );
        assert!(
            page.contains(&format!("Follow · {} followers", followers(*uid))),
            "{page}"
        );
        assert_eq!(page.matches("<li>").count(), 3, "{page}");
    }
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 3);
    assert_eq!(
        db.calls(),
        5,
        "users, follower counts, answer ids; answers; questions"
    );
    // The user's row is asked for by name, photo and bio: one key, coalesced.
    let users = stats.sources.iter().find(|s| &*s.name == "users").unwrap();
    assert_eq!((users.requested, users.keys), (9, 3));

    let err = rt.run(profile::render_profile(100_000)).unwrap_err();
    assert!(
        matches!(err, profile::ProfileError::NoSuchUser(100_000)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no such user: 100000");
}
