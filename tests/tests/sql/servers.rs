//! The cases of the database servers only (PostgreSQL, MariaDB), written once: a fresh
//! database per test, calls served by the pool's idle connection, and URLs that fail to
//! connect with the reason.

use std::collections::BTreeSet;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_sources::{ErrorKind, Reads, Rows, SqlError, Table};

use super::{Backend, FIXTURE};

/// `work` run to its end on a tokio runtime of its own (the test's thread is outside any).
pub(crate) fn on_own_runtime<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// A backend over a database server that the tests start, connected from a URL without
/// tokio.
pub(crate) trait Server: Backend + Sized {
    /// The schema of the cases' tables, in the server's dialect.
    const SCHEMA: &'static str;
    /// The database every server has, from which the others are created.
    const ADMIN_DB: &'static str;

    /// The test's server (shared by the tests of the binary), or `None` when it cannot be
    /// started (the test is skipped).
    fn server(test: &str) -> Option<&'static asynq_tests::servers::Server>;

    /// The URL of `database` on `server`.
    fn url(server: &asynq_tests::servers::Server, database: &str) -> String;

    /// The backend over the database of `url`.
    fn connect(url: &str) -> Result<Self, SqlError>;
}

/// A new database `name` on the server, with [`Server::SCHEMA`] and the fixture, opened
/// without tokio; `None` when the server cannot be started (the test is skipped).
pub(crate) fn fresh<S: Server>(name: &str) -> Option<S> {
    let server = S::server(name)?;
    S::connect(&S::url(server, S::ADMIN_DB))
        .unwrap()
        .execute(&format!("CREATE DATABASE {name}"));
    let backend = S::connect(&S::url(server, name)).unwrap();
    backend.execute(S::SCHEMA);
    backend.execute(FIXTURE);
    Some(backend)
}

/// The server connection that served a query, by user id: a view of the server's own
/// connection id (`pg_backend_pid()`, `CONNECTION_ID()`) as a `BIGINT`.
pub(crate) struct ServedBy;
impl Table for ServedBy {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "served_by";
    const TABLE: &'static str = "served_by";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["conn"];
}

#[asynq]
fn served_by<D: Reads<ServedBy>>(id: i64) -> Result<Option<i64>, Error> {
    Rows::<ServedBy, D>::load(id).await
}

/// Calls one after another reuse the pool's idle connection rather than each opening one
/// (`view` makes the backend's [`ServedBy`] view).
pub(crate) fn calls_reuse_the_pools_connections<B>(b: &B, view: &str)
where
    B: Backend<Db: Reads<ServedBy>>,
{
    b.execute(view);
    let rt = Runtime::new().with_source(Rows::<ServedBy, B::Db>::new(b.db().clone()).unwrap());
    let mut connections = BTreeSet::new();
    for _ in 0..20 {
        connections.insert(rt.run(served_by::<B::Db>(1)).unwrap().unwrap());
    }
    assert!(
        connections.len() <= 2,
        "20 calls in turn used {} connections",
        connections.len()
    );
}

/// A URL that is not one fails with a `Config` error whose message starts with `says`; a
/// server that is not there fails with a `Connect` error whose cause is the driver's.
pub(crate) fn bad_urls_fail_to_connect<S: Server>(scheme: &str, says: &str) {
    let Err(err) = S::connect(&format!("{scheme}://u@127.0.0.1:notaport/db")) else {
        panic!("connected to a URL without a port number");
    };
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().starts_with(says), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Err(err) = S::connect(&format!("{scheme}://u@127.0.0.1:{port}/db")) else {
        panic!("connected to a port nobody listens on");
    };
    assert_eq!(err.kind(), ErrorKind::Connect);
    let cause = std::error::Error::source(&err).expect("the driver's error");
    assert!(!cause.to_string().is_empty());
}
