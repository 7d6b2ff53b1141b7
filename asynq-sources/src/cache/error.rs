//! [`CacheError`]: why a cache could not answer a key, for every cache of the crate.

use std::fmt;
use std::time::Duration;

/// Why a cache (memcached, Redis, a Redis Cluster node) could not answer a key: what went
/// wrong, and where (the store, and the server or the key).
///
/// Each variant names its `store` as messages show it (`memcached`, `Redis`), so that one
/// type serves every cache of the crate; `memcached::McError` and `redis::RedisError` are
/// this type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheError {
    /// The key (or its value) cannot be sent; nothing was sent.
    InvalidKey {
        /// The store: `memcached`, `Redis`.
        store: &'static str,
        /// The key (its first 60 characters when longer).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server holding the key failed: unreachable, timed out, answered an error or
    /// nonsense.
    Server {
        /// The store: `memcached`, `Redis`.
        store: &'static str,
        /// The server, as configured (a cluster node: its address).
        server: String,
        /// What failed.
        message: String,
    },
    /// The server failed recently and is left alone for a while: it was not asked.
    BackedOff {
        /// The store: `memcached`, `Redis`.
        store: &'static str,
        /// The server, as configured.
        server: String,
        /// How long until it is tried again.
        retry_in: Duration,
        /// Its latest failure.
        cause: String,
    },
    /// The key's value is there, but the source's codec cannot read it (or it is longer than
    /// the client accepts).
    Decode {
        /// The store: `memcached`, `Redis`.
        store: &'static str,
        /// The key (its first 60 characters when longer).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tokio runtime that runs the client's I/O is gone, or its task panicked.
    Runtime {
        /// The store: `memcached`, `Redis`.
        store: &'static str,
        /// What happened.
        message: String,
    },
}

impl CacheError {
    /// The store that failed: `memcached`, `Redis`.
    pub fn store(&self) -> &'static str {
        match self {
            CacheError::InvalidKey { store, .. }
            | CacheError::Server { store, .. }
            | CacheError::BackedOff { store, .. }
            | CacheError::Decode { store, .. }
            | CacheError::Runtime { store, .. } => store,
        }
    }

    /// The server that failed, where one did.
    pub fn server(&self) -> Option<&str> {
        match self {
            CacheError::Server { server, .. } | CacheError::BackedOff { server, .. } => {
                Some(server)
            }
            _ => None,
        }
    }

    /// An [`InvalidKey`](CacheError::InvalidKey) error of `key` (its first 60 characters).
    pub(crate) fn invalid_key(store: &'static str, key: &str, reason: String) -> CacheError {
        CacheError::InvalidKey {
            store,
            key: short(key),
            reason,
        }
    }

    /// A [`Decode`](CacheError::Decode) error of `key` (its first 60 characters).
    pub(crate) fn decode(store: &'static str, key: &str, message: String) -> CacheError {
        CacheError::Decode {
            store,
            key: short(key),
            message,
        }
    }
}

impl CacheError {
    /// The runtime a client of `store` made now runs its I/O on: the calling one, or, outside
    /// any, a small one of its own.
    #[cfg(any(feature = "memcached", feature = "redis"))]
    pub(crate) fn runner(store: &'static str) -> Result<crate::runner::Runner, CacheError> {
        use crate::runner::Runner;
        match Runner::current() {
            Some(runner) => Ok(runner),
            None => Runner::own().map_err(|e| CacheError::Runtime {
                store,
                message: format!("cannot start a tokio runtime for its I/O: {e}"),
            }),
        }
    }

    /// The error of a call whose task on the client's runtime gave no answer.
    #[cfg(any(feature = "memcached", feature = "redis"))]
    pub(crate) fn runtime_gone(store: &'static str, e: &tokio::task::JoinError) -> CacheError {
        CacheError::Runtime {
            store,
            message: if e.is_panic() {
                "its I/O task panicked".to_string()
            } else {
                "the tokio runtime running its I/O shut down".to_string()
            },
        }
    }
}

/// The first 60 characters of `key`, for errors.
fn short(key: &str) -> String {
    key.chars().take(60).collect()
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::InvalidKey { store, key, reason } => {
                write!(f, "invalid {store} key {key:?}: {reason}")
            }
            CacheError::Server {
                store,
                server,
                message,
            } => write!(f, "{store} server {server}: {message}"),
            CacheError::BackedOff {
                store,
                server,
                retry_in,
                cause,
            } => write!(
                f,
                "{store} server {server}: not asked, backed off for {retry_in:.1?} more after a \
                 failure ({cause})"
            ),
            CacheError::Decode {
                store,
                key,
                message,
            } => write!(f, "{store} value of {key:?}: {message}"),
            CacheError::Runtime { store, message } => write!(f, "{store} client: {message}"),
        }
    }
}

impl std::error::Error for CacheError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_and_where() {
        let long = "k".repeat(100);
        let e = CacheError::invalid_key("memcached", &long, "is too long".into());
        assert_eq!(
            e.to_string(),
            format!("invalid memcached key {:?}: is too long", "k".repeat(60))
        );
        let e = CacheError::Server {
            store: "Redis",
            server: "127.0.0.1:7000".into(),
            message: "no answer within 2s".into(),
        };
        assert_eq!(
            e.to_string(),
            "Redis server 127.0.0.1:7000: no answer within 2s"
        );
        assert_eq!((e.store(), e.server()), ("Redis", Some("127.0.0.1:7000")));
        let e = CacheError::BackedOff {
            store: "memcached",
            server: "a:1".into(),
            retry_in: Duration::from_millis(1500),
            cause: "refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "memcached server a:1: not asked, backed off for 1.5s more after a failure (refused)"
        );
        let e = CacheError::decode("Redis", "u:1", "not UTF-8".into());
        assert_eq!(e.to_string(), "Redis value of \"u:1\": not UTF-8");
        let e = CacheError::Runtime {
            store: "memcached",
            message: "gone".into(),
        };
        assert_eq!(e.to_string(), "memcached client: gone");
    }
}
