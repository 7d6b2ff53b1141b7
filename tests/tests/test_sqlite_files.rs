//! The data set files the example programs make: marked as theirs, built atomically, and a
//! file they did not make refused and left byte for byte as it was; a file damaged while open
//! is noticed (`Db::is_broken`).

use std::path::Path;

use asynq_core::{DataSource as _, Runtime};
use asynq_examples::feed::{self, Params};
use asynq_examples::profile;
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sqlite::{
    APPLICATION_ID, Db, FEED_FILE_VERSION, OpenError, is_owned, open_feed, remove_owned, rusqlite,
};
use asynq_tests::TempDb;

const SMALL: Params = Params {
    questions: 10,
    answers: 5,
};

/// Another program's database: a `kv` table and the profile site's table names, with rows.
fn foreign_db(path: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO kv VALUES ('q:0:title', 'my own title'), ('settings', 'precious');
         CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('dataset', 'FEED-1 Q=10 A=5');
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, photo TEXT, bio TEXT);
         INSERT INTO users VALUES (1, 'Ada', 'ada.png', 'mathematician');
         CREATE TABLE follows (follower INTEGER, followee INTEGER);
         CREATE TABLE questions (id INTEGER PRIMARY KEY, title TEXT);
         CREATE TABLE answers (id INTEGER PRIMARY KEY, question INTEGER, author INTEGER,
                               body TEXT, created INTEGER);",
    )
    .unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

fn assert_not_ours(err: &OpenError, path: &Path) {
    assert!(
        matches!(err, OpenError::NotOurs { path: p, .. } if p == path),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("was not made by this program") && text.contains("left as it is"),
        "{text}"
    );
}

#[test]
fn a_foreign_database_is_refused_and_left_byte_identical() {
    let file = TempDb::new("foreign");
    let before = foreign_db(file.path());

    let err = open_feed(file.path(), SMALL).unwrap_err();
    assert_not_ours(&err, file.path());
    assert!(err.to_string().contains("application_id 0x0"), "{err}");
    let err = profile::open(file.path(), 50).unwrap_err();
    assert_not_ours(&err, file.path());
    assert!(!remove_owned(file.path()).unwrap(), "not ours: not removed");
    assert!(!is_owned(file.path()));

    assert!(
        std::fs::read(file.path()).unwrap() == before,
        "the foreign file changed"
    );
    let conn = rusqlite::Connection::open(file.path()).unwrap();
    let kept: String = conn
        .query_row("SELECT value FROM kv WHERE key = 'settings'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kept, "precious");
}

#[test]
fn files_that_are_not_databases_are_refused_too() {
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("text", b"my notes, not a database"),
        ("short", b"SQLite format 3\0"),
    ] {
        let file = TempDb::new(name);
        std::fs::write(file.path(), bytes).unwrap();
        let err = open_feed(file.path(), SMALL).unwrap_err();
        assert_not_ours(&err, file.path());
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        assert_eq!(std::fs::read(file.path()).unwrap(), bytes, "{name}");
    }
}

#[test]
fn own_files_are_marked_and_one_kind_never_replaces_another() {
    let file = TempDb::new("marked");
    let (store, built) = open_feed(file.path(), SMALL).unwrap();
    assert!(built);
    let (app, version): (i32, i32) = store
        .sqlite_db()
        .unwrap()
        .with_conn(|c| {
            let app = c.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let version = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok((app, version))
        })
        .unwrap();
    assert_eq!((app, version), (APPLICATION_ID, FEED_FILE_VERSION));
    assert!(is_owned(file.path()));
    drop(store);

    // A profile site is another kind of data set of ours: refused, not overwritten.
    let before = std::fs::read(file.path()).unwrap();
    let err = profile::open(file.path(), 50).unwrap_err();
    assert_not_ours(&err, file.path());
    assert!(err.to_string().contains("another kind"), "{err}");
    assert!(std::fs::read(file.path()).unwrap() == before);

    // Another FEED-1 size replaces our own file, and the page is right.
    let bigger = Params {
        questions: 100,
        answers: 10,
    };
    let (store, built) = open_feed(file.path(), bigger).unwrap();
    assert!(built);
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqlKv>(bigger)).unwrap();
    assert_eq!(feed::fnv1a64(page.as_bytes()), 0x56dc3f446f2c5f61);

    // No temporary file is left beside it.
    let dir = file.path().parent().unwrap();
    let name = file
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with(&format!(".{name}")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(remove_owned(file.path()).unwrap());
    assert!(!file.path().exists());
}

#[test]
fn a_file_damaged_while_open_marks_its_connection_broken() {
    let file = TempDb::new("damaged");
    let (store, _) = open_feed(file.path(), SMALL).unwrap();
    let db: Db = store.sqlite_db().unwrap().clone();
    let keys = vec!["q:1:title".to_string()];
    let fetch = |store: &SqlKv| futures::executor::block_on(store.fetch(&keys));
    assert_eq!(fetch(&store).unwrap().len(), 1);
    assert!(!db.is_broken());

    // A bad query (a table that is not there) is not damage.
    let elsewhere = SqlKv::sqlite(Db::open_in_memory().unwrap()).unwrap();
    let err = fetch(&elsewhere).unwrap_err();
    assert!(format!("{:?}", err).contains("no such table"), "{err:?}");
    assert!(!elsewhere.sqlite_db().unwrap().is_broken());
    // Overwrite every page after the first with garbage, in place.
    let len = std::fs::metadata(file.path()).unwrap().len() as usize;
    let mut bytes = std::fs::read(file.path()).unwrap();
    for b in &mut bytes[4096.min(len)..] {
        *b = 0xa5;
    }
    bytes[24] ^= 0xff; // the change counter: the connection drops its page cache
    std::fs::write(file.path(), &bytes).unwrap();
    let err = fetch(&store).unwrap_err();
    assert!(db.is_broken(), "{err}");
}
