//! What every backend's `Db` keeps besides its pool: counters and settings, shared by the
//! sources over it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The fetch timeout a `Db` starts with: a query that hangs (a stalled server, a lock held
/// elsewhere) fails its keys after this long instead of holding its page forever.
pub(crate) const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters and settings of one `Db`.
#[derive(Debug)]
pub struct Shared {
    queries: AtomicUsize,
    keys: AtomicUsize,
    /// The server's limit of keys per query (bound parameters), or `usize::MAX`.
    limit: usize,
    /// The limit set by the program (`usize::MAX`: none); the smaller of the two applies.
    max_keys: AtomicUsize,
    /// In milliseconds; `u64::MAX`: none.
    timeout_ms: AtomicU64,
}

impl Shared {
    /// With the server's limit of keys per query (`None`: no limit).
    pub(crate) fn new(limit: Option<usize>) -> Shared {
        Shared {
            queries: AtomicUsize::new(0),
            keys: AtomicUsize::new(0),
            limit: limit.unwrap_or(usize::MAX).max(1),
            max_keys: AtomicUsize::new(usize::MAX),
            timeout_ms: AtomicU64::new(DEFAULT_FETCH_TIMEOUT.as_millis() as u64),
        }
    }

    /// Count one query of `keys` keys.
    pub(crate) fn count(&self, keys: usize) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.keys.fetch_add(keys, Ordering::Relaxed);
    }

    pub(crate) fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    pub(crate) fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        self.queries.store(0, Ordering::Relaxed);
        self.keys.store(0, Ordering::Relaxed);
    }

    /// The most keys per query, when limited.
    pub(crate) fn max_keys(&self) -> Option<usize> {
        let max = self.max_keys.load(Ordering::Relaxed).min(self.limit);
        (max != usize::MAX).then_some(max)
    }

    /// The server's limit of keys per query (`usize::MAX`: none).
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn server_limit(&self) -> usize {
        self.limit
    }

    /// The chunk size of a call: [`max_keys`](Shared::max_keys), or all of `n`.
    pub(crate) fn chunk(&self, n: usize) -> usize {
        self.max_keys().unwrap_or(n).max(1)
    }

    pub(crate) fn set_max_keys(&self, max: Option<usize>) {
        let max = max.map_or(usize::MAX, |m| m.max(1));
        self.max_keys.store(max, Ordering::Relaxed);
    }

    pub(crate) fn fetch_timeout(&self) -> Option<Duration> {
        match self.timeout_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    pub(crate) fn set_fetch_timeout(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(u64::MAX, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX - 1).max(1)
        });
        self.timeout_ms.store(ms, Ordering::Relaxed);
    }
}

/// The counter and setting methods of a backend's `Db` (over its `inner.shared`), inherent
/// so that they need no import; [`Database`](crate::Database) has them too, for generic code.
macro_rules! db_settings {
    ($db:ty) => {
        impl $db {
            /// Queries sent so far by the sources over this database (one per chunk of keys).
            pub fn queries(&self) -> usize {
                self.inner.shared.queries()
            }

            /// Keys sent so far, over all queries.
            pub fn keys(&self) -> usize {
                self.inner.shared.keys()
            }

            /// Start counting queries and keys from zero again.
            pub fn reset_counters(&self) {
                self.inner.shared.reset()
            }

            /// The most keys one query carries, when limited: the server's bound-parameter
            /// limit (none on PostgreSQL, which takes the keys as one array), or the lower
            /// limit set by [`set_max_keys`](Self::set_max_keys).
            pub fn max_keys(&self) -> Option<usize> {
                self.inner.shared.max_keys()
            }

            /// Carry at most `max` keys per query from now on (at least 1; `None`: only the
            /// server's limit), for every source over this database. A round with more keys
            /// is split into several calls.
            pub fn set_max_keys(&self, max: Option<usize>) {
                self.inner.shared.set_max_keys(max)
            }

            /// How long one call of a source may take before its keys fail: 30 seconds
            /// unless set.
            pub fn fetch_timeout(&self) -> Option<std::time::Duration> {
                self.inner.shared.fetch_timeout()
            }

            /// Fail a call's keys when it takes longer than `timeout` (`None`: wait as long
            /// as it takes).
            pub fn set_fetch_timeout(&self, timeout: Option<std::time::Duration>) {
                self.inner.shared.set_fetch_timeout(timeout)
            }
        }

        impl crate::source::sealed::Sealed for $db {}
    };
}

pub(crate) use db_settings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_limit_applies() {
        let s = Shared::new(Some(100));
        assert_eq!(s.max_keys(), Some(100));
        s.set_max_keys(Some(7));
        assert_eq!((s.max_keys(), s.chunk(50)), (Some(7), 7));
        s.set_max_keys(Some(0));
        assert_eq!(s.max_keys(), Some(1));
        s.set_max_keys(None);
        assert_eq!(s.max_keys(), Some(100));
        let unlimited = Shared::new(None);
        assert_eq!((unlimited.max_keys(), unlimited.chunk(50)), (None, 50));
        unlimited.set_fetch_timeout(None);
        assert_eq!(unlimited.fetch_timeout(), None);
        unlimited.set_fetch_timeout(Some(Duration::from_micros(1)));
        assert_eq!(unlimited.fetch_timeout(), Some(Duration::from_millis(1)));
    }
}
