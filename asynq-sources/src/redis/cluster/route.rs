//! How a [`RedisCluster`] routes commands: each to the node serving its slot, one pipeline per
//! node, the nodes at once; a moved slot re-read from the cluster and its commands sent again,
//! once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ::redis::{ErrorKind, Pipeline, ServerErrorKind};
use futures::future::join_all;

use super::{Outcome, RedisCluster};
use crate::redis::slots::SlotMap;
use crate::redis::{RedisClient, RedisError, STORE};

impl RedisCluster {
    /// The client of the first seed.
    pub(super) fn seed_client(&self) -> Result<RedisClient, RedisError> {
        self.node(&self.shared.seeds[0])
    }

    /// Send each command (its slot, the command, the keys it reads when it is a multi-get:
    /// `reads`) to the node serving its slot: one pipeline per node, the nodes at once. The
    /// commands that met a moved slot are sent again, once, after the slot map is read again.
    pub(super) async fn run(
        &self,
        commands: Vec<(u16, ::redis::Cmd, usize)>,
        reads: bool,
    ) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = (0..commands.len()).map(|_| None).collect();
        let mut todo: Vec<usize> = (0..commands.len()).collect();
        for attempt in 0..2 {
            let map = match self.slot_map().await {
                Ok(map) => map,
                Err(e) => {
                    for i in todo {
                        out[i] = Some((e.server().unwrap_or_default().to_string(), Err(e.clone())));
                    }
                    break;
                }
            };
            // The commands of each node, in order.
            let mut by_node: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for &i in &todo {
                match map.node_of(commands[i].0) {
                    Some(node) => by_node.entry(node).or_default().push(i),
                    None => {
                        let e = RedisError::Server {
                            store: STORE,
                            server: self.shared.seeds.join(","),
                            message: format!("no node serves the slot {}", commands[i].0),
                        };
                        out[i] = Some((String::new(), Err(e)));
                    }
                }
            }
            let commands = &commands;
            let sent = by_node.into_iter().map(|(node, indices)| async move {
                let client = self.node(node);
                let mut pipe = Pipeline::with_capacity(indices.len());
                pipe.ignore_errors();
                let mut keys = 0;
                for &i in &indices {
                    pipe.add_command(commands[i].1.clone());
                    keys += commands[i].2;
                }
                let replies = match client {
                    Ok(c) => c.send_pipeline(&pipe, reads.then_some(keys)).await,
                    Err(e) => Err(e),
                };
                (node.to_string(), indices, replies)
            });
            let mut moved = Vec::new();
            for (node, indices, replies) in join_all(sent).await {
                let replies = replies.and_then(|r| {
                    if r.len() == indices.len() {
                        Ok(r)
                    } else {
                        Err(node_error(
                            &node,
                            format!("{} commands answered {}", indices.len(), r.len()),
                        ))
                    }
                });
                match replies {
                    Ok(replies) => {
                        for (i, reply) in indices.into_iter().zip(replies) {
                            match reply {
                                Err(e) if attempt == 0 && is_moved(&e) => moved.push(i),
                                reply => {
                                    let reply = reply.map_err(|e| node_error(&node, e.to_string()));
                                    out[i] = Some((node.clone(), reply));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        if matches!(e, RedisError::Server { .. }) {
                            // A replica may take over: read the map again next time.
                            self.shared.stale.store(true, Ordering::Relaxed);
                        }
                        for i in indices {
                            out[i] = Some((node.clone(), Err(e.clone())));
                        }
                    }
                }
            }
            if moved.is_empty() {
                break;
            }
            self.shared.stale.store(true, Ordering::Relaxed);
            todo = moved;
        }
        out.into_iter()
            .map(|o| o.expect("every command has an outcome"))
            .collect()
    }

    /// The slot map, read again (`CLUSTER SLOTS`) when it is stale: asked of the nodes of the
    /// current map, then of the seeds, until one answers.
    pub(super) async fn slot_map(&self) -> Result<Arc<SlotMap>, RedisError> {
        let current = self
            .shared
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(map) = &current
            && !self.shared.stale.load(Ordering::Relaxed)
        {
            return Ok(Arc::clone(map));
        }
        self.shared.stale.store(false, Ordering::Relaxed);
        let mut candidates: Vec<String> = current.map(|m| m.nodes().to_vec()).unwrap_or_default();
        candidates.extend(self.shared.seeds.iter().cloned());
        let mut last = None;
        for addr in candidates.iter().take(32) {
            let client = self.node(addr)?;
            let mut pipe = ::redis::pipe();
            pipe.cmd("CLUSTER").arg("SLOTS");
            let reply = client.send_pipeline(&pipe, None).await.and_then(|mut r| {
                let one = r.pop().filter(|_| r.is_empty());
                let value = one
                    .ok_or_else(|| node_error(addr, "CLUSTER SLOTS: no answer".to_string()))?
                    .map_err(|e| node_error(addr, format!("CLUSTER SLOTS: {e}")))?;
                SlotMap::parse(value, addr).map_err(|e| node_error(addr, e))
            });
            match reply {
                Ok(map) => {
                    for node in map.nodes() {
                        self.node(node)?;
                    }
                    let map = Arc::new(map);
                    *self.shared.map.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Arc::clone(&map));
                    return Ok(map);
                }
                Err(e) => last = Some(e),
            }
        }
        self.shared.stale.store(true, Ordering::Relaxed);
        Err(last.unwrap_or_else(|| node_error(&self.shared.seeds[0], "no node".to_string())))
    }
}

/// Whether `e` says the slot is served by another node now.
pub(super) fn is_moved(e: &::redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
    )
}

pub(super) fn node_error(node: &str, message: String) -> RedisError {
    RedisError::Server {
        store: STORE,
        server: node.to_string(),
        message,
    }
}
