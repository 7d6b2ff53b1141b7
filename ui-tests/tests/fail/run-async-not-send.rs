//! A task that keeps an `Rc` across an `.await` is not `Send`, and neither is its run: it
//! cannot be spawned on a multi-threaded executor or awaited in an axum handler. The error
//! names the `Rc` and the await it is held across.

use std::convert::Infallible;
use std::rc::Rc;

use asynq_core::{DataSource, Runtime, asynq};

struct Numbers;

impl DataSource for Numbers {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Infallible> {
        Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
    }
}

#[asynq]
fn holds_rc(k: u64) -> u64 {
    let shared = Rc::new(k);
    let value = Numbers::load(k).await.unwrap_or(0);
    value + *shared
}

/// Stands for `tokio::spawn` or an axum handler: both require `Send`.
fn require_send<T: Send>(_: T) {}

fn main() {
    let rt = Runtime::new().with_source(Numbers);
    require_send(rt.run_async(holds_rc(1)));
}
