//! The server's data set files: another program's database is refused at start and left
//! byte for byte as it was (the profile site's path, and a FEED-1 data set's); a file of its
//! own truncated, corrupted or removed while serving is rebuilt instead of failing every
//! request until a restart.

use std::path::PathBuf;

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;
use asynq_examples::serve::{self, Config, Running};
use asynq_examples::sqlite::rusqlite;
use axum::body::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A directory of its own for a test's databases, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-files-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn config(&self) -> Config {
        Config {
            users: 100,
            ..Config::new(self.0.join("profile.sqlite"))
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn get(client: &HttpClient, server: &Running, path: &str) -> (u16, String) {
    let uri = format!("http://{}{path}", server.addr()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Another program's database at `path`, with the profile site's table names.
fn foreign_db(path: &std::path::Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, photo TEXT, bio TEXT);
         INSERT INTO users VALUES (1, 'Ada', 'ada.png', 'a real user');
         CREATE TABLE follows (follower INTEGER, followee INTEGER);
         CREATE TABLE questions (id INTEGER PRIMARY KEY, title TEXT);
         CREATE TABLE answers (id INTEGER PRIMARY KEY, question INTEGER, author INTEGER,
                               body TEXT, created INTEGER);
         CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO kv VALUES ('q:0:title', 'mine');",
    )
    .unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

#[test]
fn another_programs_database_is_refused_and_left_byte_identical() {
    let dir = TempDir::new("foreign");
    let tokio = tokio();
    let config = dir.config();
    let before = foreign_db(&config.db);
    let err = tokio.block_on(serve::start(config.clone(), 0)).unwrap_err();
    assert!(
        err.to_string()
            .contains("profile.sqlite was not made by this program"),
        "{err}"
    );
    assert!(
        std::fs::read(&config.db).unwrap() == before,
        "the database changed"
    );

    // The same for a FEED-1 data set's file beside a good profile site.
    std::fs::remove_file(&config.db).unwrap();
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let feed_file = config.feed_db(p);
    let before = foreign_db(&feed_file);
    let server = tokio.block_on(serve::start(config, 0)).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let (status, body) = tokio.block_on(get(&client, &server, "/feed?questions=10&answers=5"));
    assert_eq!(status, 500);
    assert!(body.contains("was not made by this program"), "{body}");
    assert!(
        std::fs::read(&feed_file).unwrap() == before,
        "the data set file changed"
    );
    tokio.block_on(server.shutdown()).unwrap();
}

fn feed_page(p: Params) -> String {
    let rt = Runtime::new().with_source(feed::memory_store(p));
    rt.run(feed::feed::<MemoryStore>(p)).unwrap()
}

/// Overwrite everything past the file's first page with garbage, keeping its size.
fn corrupt_in_place(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[4096..] {
        *b = 0x5a;
    }
    bytes[24] ^= 0xff; // the change counter: readers drop their page cache
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_data_set_file_damaged_while_serving_is_rebuilt() {
    let dir = TempDir::new("damaged");
    let tokio = tokio();
    let server = tokio.block_on(serve::start(dir.config(), 0)).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let p = Params {
        questions: 100,
        answers: 10,
    };
    let page = feed_page(p);
    let path = "/feed?questions=100&answers=10";
    let file = server.app().config().feed_db(p);
    let serve_ok = |what: &str| {
        let (status, body) = tokio.block_on(get(&client, &server, path));
        assert_eq!(status, 200, "{what}: {body}");
        assert!(body == page, "{what}: not the page");
    };
    serve_ok("first");

    // Truncated to nothing, then to half: noticed before the run, rebuilt, served.
    std::fs::File::create(&file).unwrap();
    serve_ok("after truncation to 0 bytes");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    serve_ok("after truncation to half");
    // Removed.
    std::fs::remove_file(&file).unwrap();
    serve_ok("after removal");
    assert_eq!(server.app().rebuilt(), 3);

    // Corrupt in place, same size: the run that meets it fails, saying so; the next is
    // served from a rebuilt file.
    corrupt_in_place(&file);
    let (status, body) = tokio.block_on(get(&client, &server, path));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("the data set's file is damaged"), "{body}");
    serve_ok("after corruption");
    assert_eq!(server.app().rebuilt(), 4);

    // The profile site too.
    let profile = server.app().config().db.clone();
    let want = tokio.block_on(get(&client, &server, "/profile/4"));
    assert_eq!(want.0, 200);
    std::fs::File::create(&profile).unwrap();
    assert_eq!(tokio.block_on(get(&client, &server, "/profile/4")), want);
    corrupt_in_place(&profile);
    let (status, body) = tokio.block_on(get(&client, &server, "/profile/4"));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("damaged"), "{body}");
    assert_eq!(tokio.block_on(get(&client, &server, "/profile/4")), want);
    tokio.block_on(server.shutdown()).unwrap();
}
