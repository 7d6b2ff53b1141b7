//! A circuit breaker per memcached server: after a failure the server is not asked for a
//! while (doubling with each failed retry, up to a cap), so that a dead or stuck server costs
//! one timeout per back-off period instead of one per call; its outage is written to the log
//! (a line on stderr) once when it starts and once when it ends, and counted in
//! [`ServerHealth`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::McError;

/// How long a failed server is left alone: `first` after its first failure, doubled after
/// each failed retry, at most `max`.
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
    /// Whether it is being left alone now (its keys fail at once with
    /// [`McError::BackedOff`]).
    pub backed_off: bool,
    /// Failed exchanges since the client was made.
    pub failures: u64,
    /// Calls not sent to it because it was backed off.
    pub skipped: u64,
    /// Its latest failure, if any.
    pub last_error: Option<String>,
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
    pub(crate) fn new(server: &str, backoff: Backoff) -> Breaker {
        Breaker {
            server: server.to_string(),
            backoff,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leave to ask the server now, or the error its keys get while it is backed off.
    pub(crate) fn admit(&self) -> Result<Ticket<'_>, McError> {
        let mut state = self.lock();
        let now = Instant::now();
        match state.until {
            Some(until) if until > now || state.probing => {
                state.skipped += 1;
                Err(McError::BackedOff {
                    server: self.server.clone(),
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
    /// Report the exchange: `Err` with what failed, which backs the server off.
    pub(crate) fn done(mut self, outcome: Result<(), &McError>) {
        self.reported = true;
        let breaker = self.breaker;
        let mut state = breaker.lock();
        state.probing = false;
        match outcome {
            Ok(()) => {
                if state.until.take().is_some() {
                    eprintln!(
                        "memcached server {}: answering again after {} failed attempt(s)",
                        breaker.server, state.in_a_row
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
                    eprintln!(
                        "{error}; not asked again for {wait:?} (longer while it keeps failing)"
                    );
                }
                state.in_a_row = state.in_a_row.saturating_add(1);
                state.failures += 1;
                state.until = Some(Instant::now() + wait);
                state.last_error = Some(error.to_string());
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
