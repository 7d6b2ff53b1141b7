//! A circuit breaker per cache server: after a failure the server is not asked for a while
//! (doubling with each failed retry, up to a cap), so that a dead or stuck server costs one
//! timeout per back-off period instead of one per call. Its outage is logged (a warning
//! through the `log` facade) once when it starts and once when it ends, and counted in
//! [`ServerHealth`].

// The breaker itself serves the cache clients; without one only the public types are used.
#![cfg_attr(not(any(feature = "memcached", feature = "redis")), allow(dead_code))]

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failed server is left alone: `first` after its first failure, doubled after
/// each failed retry, at most `max`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use asynq_sources::cache::Backoff;
///
/// let quick = Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2) };
/// assert_eq!(Backoff::default().first, Duration::from_secs(1));
/// # let _ = quick;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// After the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, doubling up to 30 s.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// What a client knows of one server's health, for statistics pages.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerHealth {
    /// The server, as configured.
    pub server: String,
    /// Whether it is being left alone now (its keys fail at once, or go to the origin).
    pub backed_off: bool,
    /// Failed exchanges since the client was made.
    pub failures: u64,
    /// Calls not sent to it because it was backed off.
    pub skipped: u64,
    /// Its latest failure, if any.
    pub last_error: Option<String>,
}

/// Why a backed-off server was not asked.
#[derive(Clone, Debug)]
pub(crate) struct BackedOff {
    /// How long until it is tried again.
    pub(crate) retry_in: Duration,
    /// Its latest failure.
    pub(crate) cause: String,
}

#[derive(Debug, Default)]
struct State {
    /// Failures since it last answered.
    in_a_row: u32,
    /// Left alone until then.
    until: Option<Instant>,
    /// A retry is in flight: other calls keep away until it is done.
    probing: bool,
    failures: u64,
    skipped: u64,
    last_error: Option<String>,
}

/// One server's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// What the log calls the server: `memcached server 127.0.0.1:11211`.
    label: String,
    server: String,
    backoff: Backoff,
    state: Mutex<State>,
}

/// Leave to ask a server: report how the exchange went with [`Ticket::done`]. Dropped
/// without a report (the call was cancelled), it lets the next call retry.
#[must_use]
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    reported: bool,
}

impl Breaker {
    /// The breaker of `server`, named `label` in the log.
    pub(crate) fn new(label: String, server: &str, backoff: Backoff) -> Breaker {
        Breaker {
            label,
            server: server.to_string(),
            backoff,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leave to ask the server now, or why not while it is backed off.
    pub(crate) fn admit(&self) -> Result<Ticket<'_>, BackedOff> {
        let mut state = self.lock();
        let now = Instant::now();
        match state.until {
            Some(until) if until > now || state.probing => {
                state.skipped += 1;
                Err(BackedOff {
                    retry_in: until.saturating_duration_since(now),
                    cause: state.last_error.clone().unwrap_or_default(),
                })
            }
            Some(_) => {
                state.probing = true;
                Ok(Ticket {
                    breaker: self,
                    reported: false,
                })
            }
            None => Ok(Ticket {
                breaker: self,
                reported: false,
            }),
        }
    }

    /// The server's health now.
    pub(crate) fn health(&self) -> ServerHealth {
        let state = self.lock();
        ServerHealth {
            server: self.server.clone(),
            backed_off: state.until.is_some_and(|u| u > Instant::now()) || state.probing,
            failures: state.failures,
            skipped: state.skipped,
            last_error: state.last_error.clone(),
        }
    }
}

impl Ticket<'_> {
    /// Report the exchange: `Err` with what failed (its full message), which backs the server
    /// off.
    pub(crate) fn done(mut self, outcome: Result<(), String>) {
        self.reported = true;
        let breaker = self.breaker;
        let mut state = breaker.lock();
        state.probing = false;
        match outcome {
            Ok(()) => {
                if state.until.take().is_some() {
                    log::warn!(
                        "{}: answering again after {} failed attempt(s)",
                        breaker.label,
                        state.in_a_row
                    );
                }
                state.in_a_row = 0;
            }
            Err(error) => {
                let doublings = state.in_a_row.min(16);
                let wait = breaker
                    .backoff
                    .first
                    .saturating_mul(1 << doublings)
                    .min(breaker.backoff.max);
                if state.in_a_row == 0 {
                    log::warn!(
                        "{error}; not asked again for {wait:?} (longer while it keeps failing)"
                    );
                }
                state.in_a_row = state.in_a_row.saturating_add(1);
                state.failures += 1;
                state.until = Some(Instant::now() + wait);
                state.last_error = Some(error);
            }
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.lock().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_backs_off_and_a_success_after_it_clears() {
        let backoff = Backoff {
            first: Duration::from_millis(30),
            max: Duration::from_millis(100),
        };
        let b = Breaker::new("test server s".into(), "s", backoff);
        b.admit().unwrap().done(Err("boom".into()));
        let why = b.admit().unwrap_err();
        assert_eq!(why.cause, "boom");
        assert!(why.retry_in <= backoff.first);
        let health = b.health();
        assert!(health.backed_off);
        assert_eq!((health.failures, health.skipped), (1, 1));
        std::thread::sleep(backoff.first + Duration::from_millis(10));
        let probe = b.admit().unwrap();
        assert!(b.admit().is_err(), "one probe at a time");
        probe.done(Ok(()));
        assert!(!b.health().backed_off);
        assert!(b.admit().is_ok());
    }
}
