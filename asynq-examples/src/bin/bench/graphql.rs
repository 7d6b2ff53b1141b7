//! FEED-1 as one GraphQL query (Q = 1000, A = 10): async-graphql executing inside an asynq run
//! (`asynq_graphql::execute`), against async-graphql with its own DataLoader (its defaults:
//! 1 ms delay, batches of at most 1000 keys, no cache; and with delay 0), against the asynq
//! page without GraphQL, and against the hand-primed page. The same schema and resolvers
//! serve every GraphQL row (`asynq_examples::graphql`); only the fetch differs. Two more rows
//! are floors, so that the executor's own cost can be told from the fetching's:
//! - async-graphql's executor alone, its resolvers reading the in-memory store directly (ready
//!   values, no fetch, no batching, no latency): the floor of every GraphQL row;
//! - the same, but each resolver first waits once until every resolver running waits, then all
//!   are woken together ([`WaitOnce`]): what the executor costs when every field is suspended
//!   once, as under any batching that sends one call per level. No fetch, no key bookkeeping,
//!   no latency: the floor of every batching row, asynq's and the DataLoader's.
//!
//! Each row: the store's calls and keys for one page, the process's CPU time (every thread:
//! the DataLoader's loads and timers run on tokio's workers and async-io's thread), and the
//! wall time, medians of interleaved runs; then the same with every call waiting 1 ms on
//! tokio's timer, as a store across a network would (not blocking a thread).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::mem;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Request};
use asynq_core::{DataSource, Runtime};
use asynq_examples::feed::{self, Params};
use asynq_examples::graphql::{self, FEED_QUERY, Fetch, SourceLoader, ViaAsynq, ViaDataLoader};
use asynq_examples::memory::MemoryStore;

use crate::measure::median;

const P: Params = Params {
    questions: 1000,
    answers: 10,
};

/// docs/feed1.md's figures at Q = 1000, A = 10.
const REFERENCE: (usize, u64) = (420_354, 0xf4d5_a1d7_6cc5_dc31);

/// The FEED-1 data in memory, each call first waiting `latency` on tokio's timer.
struct Remote {
    store: MemoryStore,
    latency: Duration,
}

impl DataSource for Remote {
    type Key = String;
    type Value = String;
    type Error = Infallible;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, Infallible> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(self.store.get_multi(keys))
    }

    fn name(&self) -> &str {
        "remote"
    }
}

/// Resolvers that read the in-memory store of the request's data directly: each value ready
/// at once, so that a query costs what async-graphql's executor costs (and the page's JSON).
struct ReadyValues;

impl Fetch for ReadyValues {
    async fn get(ctx: &Context<'_>, key: String) -> async_graphql::Result<String> {
        let store = ctx.data::<Arc<MemoryStore>>()?;
        match store.peek(&key) {
            Some(value) => Ok(value.to_owned()),
            None => Err(format!("the store has no key {key:?}").into()),
        }
    }
}

/// Resolvers that wait once for all the others, then read the store directly: every field is
/// pending once and woken with every other field pending at that moment, as under any batching
/// that sends one call per level of the query, but with no fetch and no bookkeeping of keys.
/// What async-graphql's executor costs when each field waits once: the floor of any batching
/// inside it, asynq's or a DataLoader's (the [`Barrier`] plays the part of the rounds).
struct WaitOnce;

/// The wakers of the fields waiting in one request ([`WaitOnce`]). [`Barrier::run`] wakes them
/// all whenever the request's future is pending, as an asynq run dispatches a round when every
/// task of it waits.
#[derive(Default)]
struct Barrier {
    waiting: Mutex<Vec<Waker>>,
}

impl Barrier {
    /// Drive `fut` on the caller's executor: each time it is pending with fields waiting, wake
    /// them all and poll it again; pending only once nothing waits on the barrier.
    async fn run<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            loop {
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    return Poll::Ready(out);
                }
                let woken = mem::take(&mut *self.waiting.lock().expect("never poisoned"));
                if woken.is_empty() {
                    return Poll::Pending;
                }
                woken.into_iter().for_each(Waker::wake);
            }
        })
        .await
    }
}

impl Fetch for WaitOnce {
    async fn get(ctx: &Context<'_>, key: String) -> async_graphql::Result<String> {
        let barrier = ctx.data::<Arc<Barrier>>()?;
        let mut waited = false;
        poll_fn(|cx| {
            if mem::replace(&mut waited, true) {
                return Poll::Ready(());
            }
            let mut waiting = barrier.waiting.lock().expect("never poisoned");
            waiting.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        ReadyValues::get(ctx, key).await
    }
}

/// The ways of rendering the page, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    GraphqlAsynq,
    GraphqlLoader,
    GraphqlLoaderNoDelay,
    GraphqlReady,
    GraphqlWaitOnce,
    AsynqPage,
    HandPrimed,
}

const WAYS: [Way; 7] = [
    Way::GraphqlAsynq,
    Way::GraphqlLoader,
    Way::GraphqlLoaderNoDelay,
    Way::GraphqlReady,
    Way::GraphqlWaitOnce,
    Way::AsynqPage,
    Way::HandPrimed,
];

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::GraphqlAsynq => "async-graphql + asynq",
            Way::GraphqlLoader => "async-graphql + DataLoader (defaults: 1 ms delay)",
            Way::GraphqlLoaderNoDelay => "async-graphql + DataLoader (delay 0)",
            Way::GraphqlReady => "async-graphql alone: ready values, no fetch (its floor)",
            Way::GraphqlWaitOnce => {
                "async-graphql alone: each field waits once for all, no fetch (batching's floor)"
            }
            Way::AsynqPage => "asynq page, no GraphQL",
            Way::HandPrimed => "hand-primed page, no GraphQL",
        }
    }
}

/// Everything one table's runs share.
struct Setup {
    tokio: tokio::runtime::Runtime,
    rt: Runtime,
    remote: Arc<Remote>,
    /// The hand-primed page's store (blocking: it sleeps its latency on the thread).
    hand: MemoryStore,
    /// The store the ready-values resolvers read (never fetched from: no calls, no latency).
    ready: Arc<MemoryStore>,
    asynq_schema: graphql::FeedSchema<ViaAsynq<Remote>>,
    loader_schema: graphql::FeedSchema<ViaDataLoader<Remote>>,
    ready_schema: graphql::FeedSchema<ReadyValues>,
    barrier_schema: graphql::FeedSchema<WaitOnce>,
}

impl Setup {
    fn new(latency: Duration) -> Result<Setup, String> {
        // A server's runtime: worker threads for the DataLoader's spawned loads; each page is
        // rendered by `block_on` on this thread, one at a time.
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("graphql: no tokio runtime: {e}"))?;
        let remote = Remote {
            store: feed::memory_store(P),
            latency,
        };
        Ok(Setup {
            tokio,
            // The runtime's own instance of the store; `remote` is the loaders' (same data).
            rt: Runtime::new().with_source(Remote {
                store: feed::memory_store(P),
                latency,
            }),
            remote: Arc::new(remote),
            hand: feed::memory_store(P).with_latency(latency),
            ready: Arc::new(feed::memory_store(P)),
            asynq_schema: graphql::schema(),
            loader_schema: graphql::schema(),
            ready_schema: graphql::schema(),
            barrier_schema: graphql::schema(),
        })
    }

    /// The store `way` fetches from, its counters reset.
    fn store(&self, way: Way) -> &MemoryStore {
        match way {
            Way::GraphqlAsynq | Way::AsynqPage => {
                &self.rt.source::<Remote>().expect("registered").store
            }
            Way::GraphqlLoader | Way::GraphqlLoaderNoDelay => &self.remote.store,
            Way::HandPrimed => &self.hand,
            Way::GraphqlReady | Way::GraphqlWaitOnce => &self.ready,
        }
    }

    /// Render the page once.
    fn render(&self, way: Way) -> Result<String, String> {
        let fail = |e: &dyn std::fmt::Display| format!("graphql: {} failed: {e}", way.name());
        match way {
            Way::GraphqlAsynq => self
                .tokio
                .block_on(graphql::feed_page(&self.rt, &self.asynq_schema, P))
                .map(|(page, _)| page)
                .map_err(|e| fail(&e)),
            Way::GraphqlLoader | Way::GraphqlLoaderNoDelay => {
                let mut loader =
                    DataLoader::new(SourceLoader(Arc::clone(&self.remote)), tokio::spawn);
                if way == Way::GraphqlLoaderNoDelay {
                    loader = loader.delay(Duration::ZERO);
                }
                let request = graphql::loader_request(FEED_QUERY, P, loader);
                let response = self.tokio.block_on(self.loader_schema.execute(request));
                graphql::render(response).map_err(|e| fail(&e))
            }
            Way::GraphqlReady => {
                let request = Request::new(FEED_QUERY)
                    .data(P)
                    .data(Arc::clone(&self.ready));
                let response = self.tokio.block_on(self.ready_schema.execute(request));
                graphql::render(response).map_err(|e| fail(&e))
            }
            Way::GraphqlWaitOnce => {
                let barrier = Arc::new(Barrier::default());
                let request = Request::new(FEED_QUERY)
                    .data(P)
                    .data(Arc::clone(&self.ready))
                    .data(Arc::clone(&barrier));
                let execute = barrier.run(self.barrier_schema.execute(request));
                let response = self.tokio.block_on(execute);
                graphql::render(response).map_err(|e| fail(&e))
            }
            Way::AsynqPage => self
                .tokio
                .block_on(self.rt.run_async(feed::feed::<Remote>(P)))
                .map_err(|e| fail(&e)),
            Way::HandPrimed => Ok(feed::hand_primed(&self.hand, P)),
        }
    }
}

/// One row: calls and keys of one page, medians of CPU and wall time.
struct Row {
    way: Way,
    calls: usize,
    keys: usize,
    cpu_ms: f64,
    wall_ms: f64,
}

/// Measure every way, `runs` interleaved runs after a checked one.
fn measure(latency: Duration, runs: usize) -> Result<Vec<Row>, String> {
    let setup = Setup::new(latency)?;
    let mut rows = Vec::new();
    for way in WAYS {
        let store = setup.store(way);
        store.reset_counters();
        let page = setup.render(way)?;
        let got = (page.len(), feed::fnv1a64(page.as_bytes()));
        if got != REFERENCE {
            return Err(format!(
                "graphql: {} rendered out_len={} fnv={:016x}, docs/feed1.md says out_len={} fnv={:016x}",
                way.name(),
                got.0,
                got.1,
                REFERENCE.0,
                REFERENCE.1
            ));
        }
        rows.push(Row {
            way,
            calls: store.calls(),
            keys: store.keys(),
            cpu_ms: 0.0,
            wall_ms: 0.0,
        });
    }
    let (mut cpu, mut wall) = (vec![Vec::new(); WAYS.len()], vec![Vec::new(); WAYS.len()]);
    for run in 0..=runs {
        for i in 0..WAYS.len() {
            let which = (run + i) % WAYS.len();
            let (cpu0, wall0) = (process_cpu(), Instant::now());
            let page = setup.render(WAYS[which])?;
            let (cpu1, wall1) = (process_cpu(), wall0.elapsed());
            drop(page);
            if run > 0 {
                cpu[which].push((cpu1 - cpu0).as_secs_f64() * 1e3);
                wall[which].push(wall1.as_secs_f64() * 1e3);
            }
        }
    }
    for ((row, cpu), wall) in rows.iter_mut().zip(cpu).zip(wall) {
        row.cpu_ms = median(cpu);
        row.wall_ms = median(wall);
    }
    Ok(rows)
}

/// The machine's load averages (1, 5 and 15 minutes, as `uptime` prints them), or `unknown`
/// where `/proc/loadavg` cannot be read: wall times on a shared machine depend on it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// The CPU time of this process so far, every thread.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a pointer to a live, writable
    // local; CLOCK_PROCESS_CPUTIME_ID is a clock every Linux and macOS kernel has.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(status, 0, "the process CPU clock is readable");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn print_rows(rows: &[Row], baseline: Way) {
    let base = rows.iter().find(|r| r.way == baseline).expect("measured");
    println!("| way | calls | keys | CPU ms | CPU / DataLoader | wall ms | wall / DataLoader |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.1} | {:.2} |",
            r.way.name(),
            r.calls,
            r.keys,
            r.cpu_ms,
            r.cpu_ms / base.cpu_ms,
            r.wall_ms,
            r.wall_ms / base.wall_ms
        );
    }
}

/// Measure and print the GraphQL tables (CPU-bound, then 1 ms per call).
pub(crate) fn tables(quick: bool) -> Result<(), String> {
    let runs = if quick { 5 } else { 15 };
    let load_before = load_average();
    let cpu = measure(Duration::ZERO, runs)?;
    let latency = measure(Duration::from_millis(1), runs)?;
    println!(
        "FEED-1 as one GraphQL query (Q = {}, A = {}), in-memory store; medians of {runs} \
         interleaved runs; ratios to async-graphql's DataLoader with its defaults; load \
         average {load_before} before, {} after",
        P.questions,
        P.answers,
        load_average()
    );
    println!();
    print_rows(&cpu, Way::GraphqlLoader);
    println!();
    println!(
        "The same, every call waiting 1 ms on tokio's timer (the hand-primed page sleeps it):"
    );
    println!();
    print_rows(&latency, Way::GraphqlLoader);
    println!();
    Ok(())
}

/// `--only graphql-asynq` / `graphql-loader` / `graphql-loader-0` / `graphql-ready` /
/// `graphql-wait-once`: one way, repeated, for a profiler; `None` for other workloads.
pub(crate) fn only(workload: &str, repeat: usize) -> Option<Result<(), String>> {
    let way = match workload {
        "graphql-asynq" => Way::GraphqlAsynq,
        "graphql-loader" => Way::GraphqlLoader,
        "graphql-loader-0" => Way::GraphqlLoaderNoDelay,
        "graphql-ready" => Way::GraphqlReady,
        "graphql-wait-once" => Way::GraphqlWaitOnce,
        _ => return None,
    };
    Some(Setup::new(Duration::ZERO).and_then(|setup| {
        (0..repeat).try_for_each(|_| {
            setup
                .render(way)
                .map(|page| drop(std::hint::black_box(page)))
        })
    }))
}
