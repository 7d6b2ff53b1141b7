//! One exchange of a [`RedisClient`] with its server: a command or a pipeline, sent unless the
//! server is backed off, within one deadline, its outcome reported to the server's breaker.

use std::future::Future;

use ::redis::aio::ConnectionManager;

use super::{RedisClient, RedisError, STORE};
use crate::cache::BackedOff;

impl RedisClient {
    pub(super) fn error(&self, message: String) -> RedisError {
        RedisError::Server {
            store: STORE,
            server: self.shared.server.clone(),
            message,
        }
    }

    /// Send `request` (a command or a pipeline) unless the server is backed off, within one
    /// deadline; `count` runs once it is admitted. The outcome goes to the breaker.
    pub(super) async fn exchange<T: ::redis::FromRedisValue>(
        &self,
        count: impl FnOnce() -> usize,
        request: &(impl Request + ?Sized),
    ) -> Result<T, RedisError> {
        let shared = &self.shared;
        let ticket = shared
            .breaker
            .admit()
            .map_err(|why: BackedOff| RedisError::BackedOff {
                store: STORE,
                server: shared.server.clone(),
                retry_in: why.retry_in,
                cause: why.cause,
            })?;
        count();
        if let Some(latency) = self.latency {
            tokio::time::sleep(latency).await;
        }
        let mut conn = shared.conn.clone();
        let limit = self.io_timeout;
        let result = match tokio::time::timeout(limit, request.send::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(e.to_string())),
            Err(_) => Err(self.error(format!("no answer within {limit:?}"))),
        };
        ticket.done(result.as_ref().map(drop).map_err(ToString::to_string));
        result
    }
}

/// What [`RedisClient::exchange`] sends: a command or a pipeline.
pub(super) trait Request: Sync {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send;
}

impl Request for ::redis::Cmd {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Request for ::redis::Pipeline {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}
