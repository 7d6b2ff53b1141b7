//! Sources shared by the foundation tests.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::Mutex;

use asynq_core::DataSource;

/// How a [`Recorder`] answers one call.
pub(crate) type Answer = fn(&[u64]) -> Result<Vec<(u64, u64)>, String>;

/// A source of `u64 -> 10 * u64` that records every call's keys.
pub(crate) struct Recorder {
    pub(crate) name: &'static str,
    pub(crate) calls: Mutex<Vec<Vec<u64>>>,
    pub(crate) max_batch: Option<usize>,
    pub(crate) answer: Answer,
}

pub(crate) fn times_ten(keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    Ok(keys.iter().map(|&k| (k, k * 10)).collect())
}

impl Recorder {
    pub(crate) fn new(name: &'static str) -> Self {
        Recorder {
            name,
            calls: Mutex::new(Vec::new()),
            max_batch: None,
            answer: times_ten,
        }
    }

    pub(crate) fn answering(mut self, answer: Answer) -> Self {
        self.answer = answer;
        self
    }

    pub(crate) fn max_batch(mut self, max: usize) -> Self {
        self.max_batch = Some(max);
        self
    }

    /// The keys of every call so far, each call's keys sorted.
    pub(crate) fn calls(&self) -> Vec<Vec<u64>> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.iter_mut().for_each(|c| c.sort_unstable());
        calls
    }

    pub(crate) fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl DataSource for Recorder {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        self.calls.lock().unwrap().push(keys.to_vec());
        (self.answer)(keys)
    }

    fn name(&self) -> &str {
        self.name
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.max_batch
    }
}

/// A second source type, for tests with two sources.
pub(crate) struct Other(pub(crate) Recorder);

impl DataSource for Other {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        self.0.fetch(keys).await
    }

    fn name(&self) -> &str {
        self.0.name
    }
}

/// Every message of `error`'s chain, as `anyhow`'s `{:#}` and `eyre`'s reports walk it.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        messages.push(cause.to_string());
        next = cause.source();
    }
    messages
}
