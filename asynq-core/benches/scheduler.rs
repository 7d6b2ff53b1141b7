//! Measures the scheduler's hot paths, each as the time of one whole run: starting and finishing
//! tasks, joins that re-poll only woken children, and rounds of dependent fetches.

use std::convert::Infallible;

use asynq_core::{DataSource, Runtime, asynq};
use criterion::{Criterion, criterion_group, criterion_main};

/// Answers instantly: `k -> k + 1`.
struct Next;

impl DataSource for Next {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Infallible> {
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

#[asynq]
fn trivial(i: u64) -> u64 {
    i
}

#[asynq]
fn trivial_tasks(n: u64) -> u64 {
    (0..n).map(trivial).collect::<Vec<_>>().await.iter().sum()
}

/// Follows `hops` dependent fetches from `k`: one round per hop.
#[asynq]
fn chain(k: u64, hops: u64) -> u64 {
    let mut k = k;
    for _ in 0..hops {
        k = Next::load(k).await.unwrap_or(0);
    }
    k
}

#[asynq]
fn chains(n: u64, hops: u64) -> u64 {
    (0..n)
        .map(|i| chain(i * 1000, hops))
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum()
}

/// One long chain next to `idle` tasks that wait on a single fetch: after the first round
/// only the chain is woken, so its rounds must not cost anything per idle task.
#[asynq]
fn one_busy_among_idle(idle: u64, hops: u64) -> u64 {
    let (busy, rest) = (
        chain(u64::MAX / 2, hops),
        (0..idle).map(|i| chain(i, 1)).collect::<Vec<_>>(),
    )
        .await;
    busy + rest.iter().sum::<u64>()
}

fn scheduler(c: &mut Criterion) {
    let rt = Runtime::new().with_source(Next);
    // 100 and 10,000 tasks that fetch nothing, awaited in one Vec.
    c.bench_function("scheduler::trivial_100", |b| {
        b.iter(|| rt.run(trivial_tasks(100)).unwrap());
    });
    c.bench_function("scheduler::trivial_10000", |b| {
        b.iter(|| rt.run(trivial_tasks(10_000)).unwrap());
    });
    // 100 tasks, each one fetch: one round, one call with 100 keys.
    c.bench_function("scheduler::batch_100", |b| {
        b.iter(|| rt.run(chains(100, 1)).unwrap());
    });
    // 100 tasks, each 10 dependent fetches: 10 rounds of 100 keys.
    c.bench_function("scheduler::rounds_10_x_100", |b| {
        b.iter(|| rt.run(chains(100, 10)).unwrap());
    });
    // 20 rounds in which only one of 1001 tasks is woken.
    c.bench_function("scheduler::wake_1_of_1000", |b| {
        b.iter(|| rt.run(one_busy_among_idle(1000, 20)).unwrap());
    });
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
