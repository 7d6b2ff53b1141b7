//! Write-backs in the background, and why they never bring back a value invalidated while it
//! was being read.
//!
//! A round's misses are read from the origin and written back to the cache by a background
//! task, so the round is not held up. A plain write-back races with invalidation: a round
//! reads the old row, the application updates the row and deletes its cache entry, and then
//! the round's write-back stores the old row again, to be served until its time to live ends.
//! Here every invalidation moves an epoch forward before it deletes, a write-back stores only
//! if the epoch has not moved since its origin read began, and write-backs and deletes take
//! turns through one gate, so a delete is sent only after the store before it is complete.
//! (Within one process; other processes writing the same cache are bounded by the time to
//! live.)
//!
//! The pending write-backs are bounded: past [`MAX_PENDING`], a round's write-back is dropped
//! (its entries are read from the origin again next time), so a cache slower than the rounds
//! cannot grow a queue without end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::channel::oneshot;

/// The most write-backs waiting or in flight at once.
pub(super) const MAX_PENDING: usize = 64;

/// What orders write-backs and invalidations.
#[derive(Debug, Default)]
pub(super) struct WriteBacks {
    /// Moved forward by every invalidation.
    epoch: AtomicU64,
    /// Write-backs and deletes hold it while they talk to the cache.
    pub(super) gate: futures::lock::Mutex<()>,
    /// Write-backs admitted and not yet done.
    pending: AtomicUsize,
    /// Who waits for the pending ones to be done.
    waiters: Mutex<Vec<oneshot::Sender<()>>>,
}

impl WriteBacks {
    /// The epoch now: read before a round's origin call.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether an invalidation happened since `epoch`.
    pub(super) fn moved_since(&self, epoch: u64) -> bool {
        self.epoch() != epoch
    }

    /// Move the epoch forward: write-backs of reads begun before now are not stored.
    pub(super) fn advance(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Admit one more write-back, unless [`MAX_PENDING`] are pending already. An admitted one
    /// must end with [`finish`](WriteBacks::finish).
    pub(super) fn admit(&self) -> bool {
        self.pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_PENDING).then_some(n + 1)
            })
            .is_ok()
    }

    /// One admitted write-back is done; wakes the waiters when it was the last.
    pub(super) fn finish(&self) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            for waiter in waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Done when no write-back is pending (at once if none is).
    pub(super) fn settled(&self) -> impl Future<Output = ()> + Send + 'static {
        let waiter = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            (self.pending.load(Ordering::SeqCst) > 0).then(|| {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                rx
            })
        };
        async move {
            if let Some(rx) = waiter {
                // A dropped sender (the source is gone) also ends the wait.
                let _ = rx.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn pending_write_backs_are_bounded_and_waited_for() {
        let wb = WriteBacks::default();
        block_on(wb.settled());
        assert!((0..MAX_PENDING).all(|_| wb.admit()));
        assert!(!wb.admit(), "one past the bound is refused");
        let settled = wb.settled();
        for _ in 0..MAX_PENDING {
            wb.finish();
        }
        block_on(settled);
        assert!(wb.admit());
    }

    #[test]
    fn the_epoch_moves_on_invalidation() {
        let wb = WriteBacks::default();
        let e = wb.epoch();
        assert!(!wb.moved_since(e));
        wb.advance();
        assert!(wb.moved_since(e));
    }
}
