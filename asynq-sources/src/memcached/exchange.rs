//! The exchanges of a [`MemcachedClient`] with its servers: requests sharded by server, sent
//! on pooled connections within one deadline, outcomes reported to each server's breaker.

use std::sync::atomic::Ordering;

use super::conn::{Conn, Reply};
use super::protocol::{Found, get_request, is_stale, shard, spread};
use super::{Lookup, McError, MemcachedClient, POOL, Server};
use crate::cache::Ticket;

impl MemcachedClient {
    /// [`get_multi`](MemcachedClient::get_multi), on the client's runtime.
    pub(super) async fn get_here(&self, keys: &[String]) -> Vec<Lookup> {
        let servers = self.shared.servers.len();
        let (mut out, work) = shard(keys, |k| self.server_index(k), servers);
        let results =
            futures::future::join_all(work.iter().map(|(server, idx)| {
                self.server_get(*server, idx.iter().map(|&i| keys[i].as_str()))
            }))
            .await;
        spread(&mut out, keys, &work, results);
        out
    }

    /// One multi-get on one server.
    pub(super) async fn server_get(
        &self,
        server: usize,
        keys: impl Iterator<Item = &str>,
    ) -> Result<Found, McError> {
        let keys: Vec<&str> = keys.collect();
        let request = get_request(keys.iter().copied());
        // A backed-off server is not asked, and its skipped call is not counted.
        let s = &self.shared.servers[server];
        let ticket = s.breaker.admit().map_err(|why| s.backed_off(why))?;
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.keys.fetch_add(keys.len(), Ordering::Relaxed);
        let reply = Reply::Values {
            asked: keys.len(),
            max_value: self.settings.max_value,
        };
        self.exchange(server, ticket, &request, reply).await
    }

    /// Send each server its request (those with `n > 0`), servers at once; the first failure.
    pub(super) async fn on_each_server(
        &self,
        requests: Vec<(Vec<u8>, usize)>,
        reply: impl Fn(usize) -> Reply,
    ) -> Result<(), McError> {
        let exchanges = requests
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(server, (request, n))| {
                let reply = reply(*n);
                async move {
                    let s = &self.shared.servers[server];
                    let ticket = s.breaker.admit().map_err(|why| s.backed_off(why))?;
                    self.exchange(server, ticket, request, reply).await
                }
            });
        let results = futures::future::join_all(exchanges).await;
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// Send `request` on a pooled connection to `server` (a new one if none is idle, or if the
    /// idle one turns out closed) and read its answer, all within one deadline. The
    /// connection goes back to the pool only after a complete exchange; the outcome goes to
    /// the server's breaker.
    pub(super) async fn exchange(
        &self,
        server: usize,
        ticket: Ticket<'_>,
        request: &[u8],
        reply: Reply,
    ) -> Result<Found, McError> {
        let server = &self.shared.servers[server];
        if let Some(latency) = self.settings.latency {
            tokio::time::sleep(latency).await;
        }
        let limit = self.settings.io_timeout;
        let result = tokio::time::timeout(limit, self.exchange_on(server, request, reply))
            .await
            .unwrap_or_else(
                |_| Err(server.error("request", format!("no answer within {limit:?}"))),
            );
        ticket.done(result.as_ref().map(drop).map_err(ToString::to_string));
        result
    }

    pub(super) async fn exchange_on(
        &self,
        server: &Server,
        request: &[u8],
        reply: Reply,
    ) -> Result<Found, McError> {
        let pooled = server.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = pooled {
            match conn.talk(request, reply).await {
                Ok(found) => {
                    self.put_back(server, conn);
                    return Ok(found);
                }
                // The server closed an idle connection (a restart): once more on a new one.
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(server.error("request", e)),
            }
        }
        let mut conn = Conn::open(server.addr, self.settings.connect_timeout)
            .await
            .map_err(|e| server.error("connect", e))?;
        let found = conn
            .talk(request, reply)
            .await
            .map_err(|e| server.error("request", e))?;
        self.put_back(server, conn);
        Ok(found)
    }

    pub(super) fn put_back(&self, server: &Server, conn: Conn) {
        let mut idle = server.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(conn);
        }
    }
}
