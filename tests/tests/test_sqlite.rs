//! The examples' SQLite data set files read through `asynq-sources`: the FEED-1 `kv` table
//! ([`SqlKv`] over SQLite) and the profile site (its views `asynq_profile_follower_counts` and
//! `asynq_profile_recent_answers`). The sources themselves are tested in test_sources_sqlite.rs.

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_examples::feed::{self, Params};
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sqlite::{Db, fill_kv, open_feed};
use asynq_tests::TempDb;

#[test]
fn key_value_table_round_trips_any_text_and_misses_are_errors() {
    let file = TempDb::new("kv");
    let db = Db::open(file.path()).unwrap();
    let values = [
        ("unicode", "héllo wörld ✓ 日本語 🦀"),
        ("spaces", "  with  spaces  "),
        ("empty", ""),
        ("newlines", "line 1\r\nline 2\n"),
    ];
    db.with_conn(|c| fill_kv(c, values)).unwrap();
    let store = SqlKv::sqlite(db).unwrap();
    let fetch = store.fetch(&[]);
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&fetch);
    drop(fetch);
    let rt = Runtime::new().with_source(store);

    #[asynq]
    fn get(keys: Vec<String>) -> Vec<Result<String, Error>> {
        SqlKv::load_many(keys).await
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
fn the_feed_file_is_created_once_and_reused() {
    let file = TempDb::new("feed");
    let small = Params {
        questions: 10,
        answers: 5,
    };
    let (store, created) = open_feed(file.path(), small).unwrap();
    assert!(created);
    drop(store);
    let (store, created) = open_feed(file.path(), small).unwrap();
    assert!(!created, "the second open reuses the file");
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqlKv>(small)).unwrap();
    assert_eq!(
        (page.len(), feed::fnv1a64(page.as_bytes())),
        (2152, 0xac26a36b50baee7b)
    );
    assert_eq!(rt.source::<SqlKv>().unwrap().queries(), 3);

    // Another size in the same file replaces the data set.
    let bigger = Params {
        questions: 100,
        answers: 10,
    };
    let (store, created) = open_feed(file.path(), bigger).unwrap();
    assert!(created);
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqlKv>(bigger)).unwrap();
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
                "SELECT COUNT(*) FROM asynq_profile_follows WHERE followee = ?1",
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
        // The user's 3 latest answers (the view `recent_answers`), newest first.
        let latest: Vec<i64> = db
            .with_conn(|c| {
                let mut stmt = c.prepare(
                    "SELECT id FROM asynq_profile_answers WHERE author = ?1 ORDER BY created DESC LIMIT 3",
                )?;
                let ids = stmt.query_map([uid], |r| r.get(0))?;
                ids.collect()
            })
            .unwrap();
        assert_eq!(latest.len(), 3);
        let shown: Vec<String> = page
            .split("<li>")
            .skip(1)
            .map(|item| {
                item.split("Answer ")
                    .nth(1)
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let latest: Vec<String> = latest.iter().map(i64::to_string).collect();
        assert_eq!(shown, latest, "{page}");
    }
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 3);
    assert_eq!(
        db.queries(),
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
