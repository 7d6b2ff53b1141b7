//! Measures fetch requests: answered from the run's cache, coalesced into one call with their
//! siblings, and deduplicated when many tasks ask for the same key, for integer and string keys.

use std::convert::Infallible;

use asynq_core::{DataSource, Runtime, asynq};
use criterion::{Criterion, criterion_group, criterion_main};

/// Answers instantly: `k -> 2k`.
struct Numbers;

impl DataSource for Numbers {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Infallible> {
        Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
    }
}

/// Answers instantly with the key's length, for string keys like FEED-1's.
struct Strings;

impl DataSource for Strings {
    type Key = String;
    type Value = u64;
    type Error = Infallible;
    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, u64)>, Infallible> {
        Ok(keys.iter().map(|k| (k.clone(), k.len() as u64)).collect())
    }
}

#[asynq]
fn coalesced(n: u64) -> u64 {
    Numbers::load_many(0..n)
        .await
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .sum()
}

#[asynq]
fn coalesced_strings(n: u64) -> u64 {
    Strings::load_many((0..n).map(|i| format!("u:{i}:name")))
        .await
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .sum()
}

/// `n` keys fetched once, then asked for again one by one, `repeat` times.
#[asynq]
fn cache_hits(n: u64, repeat: u64) -> u64 {
    let _ = Numbers::load_many(0..n).await;
    let mut sum = 0;
    for _ in 0..repeat {
        for k in 0..n {
            sum += Numbers::load(k).await.unwrap_or(0);
        }
    }
    sum
}

/// `n` requests for only 10 distinct keys in the same round.
#[asynq]
fn duplicates(n: u64) -> u64 {
    Numbers::load_many((0..n).map(|i| i % 10))
        .await
        .into_iter()
        .map(|v| v.unwrap_or(0))
        .sum()
}

fn source(c: &mut Criterion) {
    let rt = Runtime::new().with_source(Numbers).with_source(Strings);
    // 1000 distinct keys in one round: one call.
    c.bench_function("source::coalesced_1000", |b| {
        b.iter(|| rt.run(coalesced(1000)).unwrap());
    });
    c.bench_function("source::coalesced_1000_string_keys", |b| {
        b.iter(|| rt.run(coalesced_strings(1000)).unwrap());
    });
    // 1000 requests for 10 keys in one round: one call with 10 keys.
    c.bench_function("source::duplicates_1000_of_10", |b| {
        b.iter(|| rt.run(duplicates(1000)).unwrap());
    });
    // 1000 keys fetched, then 10,000 requests answered from the run's cache.
    c.bench_function("source::cache_hits_10000", |b| {
        b.iter(|| rt.run(cache_hits(1000, 10)).unwrap());
    });
}

criterion_group!(benches, source);
criterion_main!(benches);
