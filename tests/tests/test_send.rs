//! A compile test: `Runtime` is `Send + Sync`, and the future of `run_async` is `Send` when
//! its tasks are, so that an axum handler awaits it directly and tokio can spawn it.
//!
//! Each item below compiles only if that holds; the tests then run them once.

use std::sync::Arc;

use asynq_core::{RunFuture, Runtime, Stats, WithStats};
use asynq_examples::async_kv::ReadThrough;
use asynq_examples::feed::{self, Params};
use asynq_examples::profile;
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sqlite::{Db, fill_kv};
use axum::extract::State;
use axum::routing::get;

const fn assert_send_sync<T: Send + Sync>() {}
const fn assert_send<T: Send>() {}

// A runtime is shared by every request of a server: `Send + Sync`, whatever its sources.
const _: () = assert_send_sync::<Runtime>();
const _: () = assert_send_sync::<Arc<Runtime>>();

/// The future of a run of `task`, and of the same run with its statistics, are `Send`.
fn require_send_run<F>(run: RunFuture<'_, F>) -> WithStats<'_, F>
where
    F: Future + Send,
{
    fn is_send<T: Send>(value: T) -> T {
        value
    }
    is_send(run).with_stats()
}

/// An axum handler that awaits a run directly: axum accepts it only if its future is `Send`.
async fn feed_handler(State(rt): State<Arc<Runtime>>) -> String {
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let (page, stats): (Result<String, feed::FeedError>, Stats) =
        rt.run_async(feed::feed::<SqlKv>(p)).with_stats().await;
    format!("{} {}", page.map_or(0, |p| p.len()), stats.calls())
}

/// The same for the profile page, whose blocking sources run their queries on tokio's blocking pool.
async fn profile_handler(State(rt): State<Arc<Runtime>>) -> String {
    rt.run_async(profile::render_profile(4))
        .await
        .unwrap_or_else(|e| e.to_string())
}

fn feed_runtime() -> Arc<Runtime> {
    let p = Params {
        questions: 10,
        answers: 5,
    };
    let db = Db::open_in_memory().unwrap();
    db.with_conn(|c| fill_kv(c, feed::dataset(p))).unwrap();
    let store = SqlKv::sqlite(db).unwrap();
    Arc::new(
        Runtime::new()
            .with_source(store.clone())
            .with_source(ReadThrough::new(store)),
    )
}

#[test]
fn handlers_awaiting_runs_make_an_axum_router() {
    assert_send::<axum::Router>();
    let profile_db = Db::open_in_memory().unwrap();
    profile::populate(&profile_db, 20).unwrap();
    let feed: axum::Router = axum::Router::new()
        .route("/feed", get(feed_handler))
        .with_state(feed_runtime());
    let profile: axum::Router = axum::Router::new()
        .route("/profile", get(profile_handler))
        .with_state(Arc::new(profile::runtime(&profile_db)));
    let _app = feed.merge(profile);
}

#[test]
fn a_run_is_spawned_on_tokio_and_awaited_on_another_thread() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = feed_runtime();
    let p = Params {
        questions: 10,
        answers: 5,
    };
    // `tokio::spawn` needs a `Send + 'static` future: the run moves between worker threads.
    let spawned = tokio.spawn({
        let rt = Arc::clone(&rt);
        async move { require_send_run(rt.run_async(feed::feed::<ReadThrough>(p))).await }
    });
    let (page, stats) = tokio.block_on(spawned).unwrap();
    assert_eq!(feed::fnv1a64(page.unwrap().as_bytes()), 0xac26a36b50baee7b);
    assert_eq!((stats.rounds, stats.calls()), (3, 3));
    // And the handler's own future, spawned as axum would run it.
    let body = tokio
        .block_on(tokio.spawn(feed_handler(State(rt))))
        .unwrap();
    assert_eq!(body, "2152 3");
}
