//! Redis Cluster: [`RedisCluster`], a client of a cluster's master nodes that answers a round
//! with one exchange per node, the nodes at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::Value;

use super::slots::{SlotMap, slot};
use super::{
    CONNECT_TIMEOUT, DEFAULT_MAX_VALUE, IO_TIMEOUT, RedisClient, RedisError, STORE, validate_key,
};
use crate::cache::Backoff;
use crate::cache::{Entry, StoreMode};
use crate::runner::Runner;

mod route;

use route::node_error;

/// What every clone of a cluster client shares.
#[derive(Debug)]
struct Shared {
    seeds: Vec<String>,
    settings: Settings,
    runner: Arc<Runner>,
    /// The nodes met so far, by address.
    nodes: Mutex<BTreeMap<String, RedisClient>>,
    map: Mutex<Option<Arc<SlotMap>>>,
    /// The map must be read again before the next call.
    stale: AtomicBool,
}

/// How each node's client is made.
#[derive(Clone, Copy, Debug)]
struct Settings {
    backoff: Backoff,
    io: Duration,
    max_value: usize,
    latency: Option<Duration>,
}

/// A client of a Redis Cluster's master nodes that answers a round with one exchange per
/// node, the nodes at once.
///
/// # Why not the redis crate's cluster client
///
/// The crate's async cluster client (`cluster_async`, 1.8) splits an `MGET` whose keys lie in
/// several hash slots into one `MGET` per *slot* (`MultipleNodeRoutingInfo::MultiSlot`), and
/// joins them with `try_join_all`: a round of a few thousand keys becomes thousands of
/// commands, and one failing node fails every key of the round. Redis itself refuses a
/// multi-key command across slots (`CROSSSLOT`), even on one node. So the client here groups a
/// round's keys by node and, within a node, by slot, and sends each node one pipeline of one
/// `MGET` per slot: one round trip per node, the nodes at once. Each node is a [`RedisClient`]
/// (the crate's `ConnectionManager`, a deadline per exchange, a breaker): a node that fails
/// fails only its keys, with an error naming it.
///
/// The slot map comes from `CLUSTER SLOTS`, asked of a seed node (or any node known) when the
/// client first needs it, and again after a node answered `MOVED` (the slot moved) or failed
/// (a replica may have taken over): the commands that met `MOVED` are sent again, once, to
/// the new node in the same call. `ASK` (a slot in the middle of a migration) is not
/// followed (no `ASKING`): after one more try those keys fail for the call. Stores (`SET`, pipelined per node) and deletes (one `DEL`
/// per slot, pipelined per node) are grouped the same way.
///
/// Build one at start-up and share it (clones share the connections, the slot map and the
/// counters).
///
/// # Examples
///
/// Nothing listens on port 1 of this machine: the slot map cannot be read, and every key
/// fails naming the seed node.
///
/// ```
/// use asynq_sources::redis::{RedisCluster, RedisError};
/// use futures::executor::block_on;
///
/// let cluster = RedisCluster::new(["127.0.0.1:1"])?;
/// let got = block_on(cluster.mget(vec!["a".to_string()]));
/// assert!(matches!(&got[0], Err(RedisError::Server { server, .. }) if server == "127.0.0.1:1"));
/// # Ok::<(), RedisError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RedisCluster {
    shared: Arc<Shared>,
}

/// The outcome of one command, and the node it went to.
type Outcome = (String, Result<Value, RedisError>);

impl RedisCluster {
    /// A client of the cluster that the `seeds` (`host:port` of some of its nodes) belong to,
    /// with the defaults of [`RedisClient::new`] for each node. Nothing is connected yet.
    pub fn new<I, S>(seeds: I) -> Result<RedisCluster, RedisError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisCluster::with_backoff(seeds, Backoff::default())
    }

    /// A client of the cluster of `seeds` that leaves a failed node alone as `backoff` says.
    pub fn with_backoff<I, S>(seeds: I, backoff: Backoff) -> Result<RedisCluster, RedisError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let seeds: Vec<String> = seeds
            .into_iter()
            .map(|s| s.as_ref().trim().to_string())
            .collect();
        if seeds.is_empty() {
            return Err(RedisError::Server {
                store: STORE,
                server: String::new(),
                message: "no seed node given".to_string(),
            });
        }
        let runner = RedisError::runner(STORE)?;
        let cluster = RedisCluster {
            shared: Arc::new(Shared {
                seeds: seeds.clone(),
                settings: Settings {
                    backoff,
                    io: IO_TIMEOUT,
                    max_value: DEFAULT_MAX_VALUE,
                    latency: None,
                },
                runner: Arc::new(runner),
                nodes: Mutex::new(BTreeMap::new()),
                map: Mutex::new(None),
                stale: AtomicBool::new(true),
            }),
        };
        for seed in &seeds {
            cluster.node(seed)?;
        }
        Ok(cluster)
    }

    /// The same client with other settings for its nodes (to be called before any node is
    /// met beyond the seeds: the seeds' clients are made again).
    fn with_settings(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.shared.settings;
        change(&mut settings);
        let shared = Arc::new(Shared {
            seeds: self.shared.seeds.clone(),
            settings,
            runner: Arc::clone(&self.shared.runner),
            nodes: Mutex::new(BTreeMap::new()),
            map: Mutex::new(None),
            stale: AtomicBool::new(true),
        });
        let cluster = RedisCluster { shared };
        for seed in &cluster.shared.seeds {
            // The seeds were accepted already.
            let _ = cluster.node(seed);
        }
        cluster
    }

    /// The same client with a deadline of `io` for each exchange with a node.
    pub fn with_timeout(self, io: Duration) -> Self {
        self.with_settings(|s| s.io = io.max(Duration::from_millis(1)))
    }

    /// The same client accepting values of at most `bytes` (see
    /// [`RedisClient::with_max_value`]).
    pub fn with_max_value(self, bytes: usize) -> Self {
        self.with_settings(|s| s.max_value = bytes)
    }

    /// The same client, waiting `latency` before every exchange: for benchmarks.
    pub fn with_latency(self, latency: Duration) -> Self {
        self.with_settings(|s| s.latency = Some(latency).filter(|l| !l.is_zero()))
    }

    /// The seed nodes, as configured.
    pub fn seeds(&self) -> &[String] {
        &self.shared.seeds
    }

    /// The client of the node at `addr`, made when first met.
    fn node(&self, addr: &str) -> Result<RedisClient, RedisError> {
        let mut nodes = self.lock_nodes();
        if let Some(node) = nodes.get(addr) {
            return Ok(node.clone());
        }
        let s = &self.shared.settings;
        let mut node = RedisClient::build(
            addr,
            s.backoff,
            CONNECT_TIMEOUT.min(s.io),
            s.io,
            Arc::clone(&self.shared.runner),
        )?
        .with_timeout(s.io)
        .with_max_value(s.max_value);
        if let Some(latency) = s.latency {
            node = node.with_latency(latency);
        }
        nodes.insert(addr.to_string(), node.clone());
        Ok(node)
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RedisClient>> {
        self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes met so far (the seeds and those of the slot map), with their clients: their
    /// [`calls`](RedisClient::calls), [`keys`](RedisClient::keys) and
    /// [`health`](RedisClient::health).
    pub fn nodes(&self) -> Vec<RedisClient> {
        self.lock_nodes().values().cloned().collect()
    }

    /// Exchanges of multi-gets so far, over all nodes (one per node per call).
    pub fn calls(&self) -> usize {
        self.lock_nodes().values().map(RedisClient::calls).sum()
    }

    /// Keys asked so far, over all nodes.
    pub fn keys(&self) -> usize {
        self.lock_nodes().values().map(RedisClient::keys).sum()
    }

    /// Start counting from zero again, on every node.
    pub fn reset_counters(&self) {
        self.lock_nodes()
            .values()
            .for_each(RedisClient::reset_counters);
    }

    /// The node serving `key` by the current slot map (`None` before the map was read).
    pub fn node_of(&self, key: &str) -> Option<String> {
        let map = self.shared.map.lock().unwrap_or_else(|e| e.into_inner());
        map.as_ref()?
            .node_of(slot(key.as_bytes()))
            .map(str::to_string)
    }

    /// Each key's value, in the order of `keys` (`None` when the cluster holds none): one
    /// pipeline of `MGET`s (one per hash slot) per node holding some of the keys, the nodes
    /// at once. A key that cannot be sent fails alone, before any I/O; a node that fails fails
    /// its keys alone.
    pub fn mget(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Vec<Result<Option<Vec<u8>>, RedisError>>> + Send + use<> {
        let cluster = self.clone();
        let n = keys.len();
        let task = self.shared.runner.run(async move {
            let mut out: Vec<Result<Option<Vec<u8>>, RedisError>> = keys
                .iter()
                .map(|k| validate_key(k).map(|()| None))
                .collect();
            // One MGET per slot.
            let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
            for (i, key) in keys.iter().enumerate().filter(|(i, _)| out[*i].is_ok()) {
                by_slot.entry(slot(key.as_bytes())).or_default().push(i);
            }
            let groups: Vec<Vec<usize>> = by_slot.into_values().collect();
            let commands = groups
                .iter()
                .map(|group| {
                    let mut cmd = ::redis::cmd("MGET");
                    group.iter().for_each(|&i| {
                        cmd.arg(&keys[i]);
                    });
                    (slot(keys[group[0]].as_bytes()), cmd, group.len())
                })
                .collect();
            let outcomes = cluster.run(commands, true).await;
            for (group, (node, outcome)) in groups.iter().zip(outcomes) {
                let values = outcome.and_then(|value| {
                    let values: Vec<Option<Vec<u8>>> = ::redis::from_redis_value(value)
                        .map_err(|e| node_error(&node, format!("MGET answered: {e}")))?;
                    if values.len() == group.len() {
                        Ok(values)
                    } else {
                        Err(node_error(
                            &node,
                            format!("MGET of {} keys answered {}", group.len(), values.len()),
                        ))
                    }
                });
                match values {
                    Ok(values) => {
                        let checker = cluster.node(&node);
                        for (&i, value) in group.iter().zip(values) {
                            out[i] = match &checker {
                                Ok(c) => c.checked(&keys[i], value),
                                Err(e) => Err(e.clone()),
                            };
                        }
                    }
                    Err(e) => group.iter().for_each(|&i| out[i] = Err(e.clone())),
                }
            }
            out
        });
        async move {
            task.await
                .unwrap_or_else(|e| vec![Err(RedisError::runtime_gone(STORE, &e)); n])
        }
    }

    /// Store `entries` as `mode` says: one pipeline of `SET`s per node, the nodes at once.
    /// A key or value that cannot be stored fails before anything is sent; otherwise fails
    /// with the first node that failed.
    pub fn store(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
        let cluster = self.clone();
        let built: Result<Vec<(u16, ::redis::Cmd, usize)>, RedisError> = entries
            .iter()
            .map(|e| {
                // Any node's client checks the entry as every node's would.
                let cmd = self.seed_client()?.set_command(e, mode)?;
                Ok((slot(e.key.as_bytes()), cmd, 1))
            })
            .collect();
        let task = built.map(|commands| {
            self.shared
                .runner
                .run(async move { first_error(cluster.run(commands, false).await) })
        });
        async move {
            task?
                .await
                .unwrap_or_else(|e| Err(RedisError::runtime_gone(STORE, &e)))
        }
    }

    /// Remove the entries of `keys` (a key without one is not an error): one pipeline of
    /// `DEL`s (one per hash slot) per node, the nodes at once.
    pub fn delete(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
        let cluster = self.clone();
        let built = keys.iter().try_for_each(|k| validate_key(k));
        let task = built.map(|()| {
            self.shared.runner.run(async move {
                let mut by_slot: BTreeMap<u16, ::redis::Cmd> = BTreeMap::new();
                for key in &keys {
                    by_slot
                        .entry(slot(key.as_bytes()))
                        .or_insert_with(|| ::redis::cmd("DEL"))
                        .arg(key);
                }
                let commands = by_slot.into_iter().map(|(s, c)| (s, c, 0)).collect();
                first_error(cluster.run(commands, false).await)
            })
        });
        async move {
            task?
                .await
                .unwrap_or_else(|e| Err(RedisError::runtime_gone(STORE, &e)))
        }
    }

    /// The largest value it accepts.
    pub(super) fn max_value(&self) -> usize {
        self.shared.settings.max_value
    }

    /// The runtime its I/O runs on.
    pub(super) fn runner(&self) -> &Runner {
        &self.shared.runner
    }
}

/// `Ok` when every command succeeded, else the first failure.
fn first_error(outcomes: Vec<Outcome>) -> Result<(), RedisError> {
    outcomes
        .into_iter()
        .try_for_each(|(_, outcome)| outcome.map(drop))
}
