//! Start Redis servers and Redis Cluster nodes on free local ports, for tests and demos: the
//! Redis [`ServerKind`] of [`local_server`], and [`LocalRedisCluster`].
//!
//! Tests that need Redis call [`start_or_skip`] or [`start_cluster_or_skip`]; where
//! `redis-server` is missing they skip with a notice, unless [`REQUIRE_ENV`] is set (CI sets
//! it): then they fail.
//!
//! Servers keep nothing on disk (no snapshots, no append-only file; a cluster node's
//! `nodes.conf` stays in its temporary directory).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::local_server::{self, LocalServer, ServerKind};

/// Set (to anything) to make tests fail instead of skipping when Redis cannot be started.
pub const REQUIRE_ENV: &str = "ASYNQ_REQUIRE_REDIS";

/// redis-server: 64 MB, nothing saved, its pid read from `INFO server`.
pub static KIND: ServerKind = ServerKind {
    name: "redis-server",
    binary: "redis-server",
    package: "redis-server",
    require_env: REQUIRE_ENV,
    args,
    pid: server_pid,
};

/// A Redis server started by this process on 127.0.0.1; killed when dropped.
pub type LocalRedis = LocalServer;

/// The `redis-server` binary: `/usr/bin/redis-server`, or the first one on `PATH`.
pub fn binary() -> Option<PathBuf> {
    KIND.find_binary()
}

/// Start a server on a free port of 127.0.0.1 and wait until it answers.
pub fn start() -> io::Result<LocalRedis> {
    LocalServer::start(&KIND)
}

fn args(port: u16, dir: &Path) -> Vec<OsString> {
    let port = port.to_string();
    let mut args: Vec<OsString> = [
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory",
        "64mb",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--dir",
    ]
    .map(OsString::from)
    .into();
    args.push(dir.into());
    args
}

/// Send `cmd` to the Redis server at `addr` over a connection of its own (2 s deadlines).
fn query<T: redis::FromRedisValue>(addr: &str, cmd: &redis::Cmd) -> io::Result<T> {
    let limit = Duration::from_secs(2);
    let client = redis::Client::open(format!("redis://{addr}/")).map_err(io::Error::other)?;
    let mut conn = client
        .get_connection_with_timeout(limit)
        .map_err(io::Error::other)?;
    conn.set_read_timeout(Some(limit))
        .and_then(|()| conn.set_write_timeout(Some(limit)))
        .map_err(io::Error::other)?;
    cmd.query(&mut conn)
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))
}

/// The pid that the Redis server at `addr` reports in `INFO server`.
fn server_pid(addr: &str) -> io::Result<u32> {
    let info: String = query(addr, redis::cmd("INFO").arg("server"))?;
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .ok_or_else(|| io::Error::other(format!("{addr} did not report a pid")))?;
    line.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("bad pid line {line:?}")))
}

/// A fresh server for the test `test`, or `None` after a notice when Redis cannot be
/// started and [`REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When the server cannot be started and [`REQUIRE_ENV`] is set.
#[track_caller]
pub fn start_or_skip(test: &str) -> Option<LocalRedis> {
    local_server::start_or_skip(&KIND, 1, test).and_then(|mut servers| servers.pop())
}

/// A Redis Cluster of master nodes started by this process on 127.0.0.1, the 16384 hash slots
/// split evenly over them in order (node 0 holds the lowest); no replicas. Killed when
/// dropped.
///
/// The nodes run with `cluster-require-full-coverage no`: when one is down, the others keep
/// answering for their slots.
#[derive(Debug)]
pub struct LocalRedisCluster {
    nodes: Vec<LocalRedis>,
}

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

impl LocalRedisCluster {
    /// Start `n` nodes (1 to 16), give each its share of the slots (`CLUSTER ADDSLOTSRANGE`),
    /// introduce them (`CLUSTER MEET`), and wait until every node reports `cluster_state:ok`
    /// and knows all `n`.
    pub fn start(n: usize) -> io::Result<LocalRedisCluster> {
        if !(1..=16).contains(&n) {
            return Err(io::Error::other(format!("a cluster of {n} nodes: 1 to 16")));
        }
        let extra: Vec<OsString> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no",
        ]
        .map(OsString::from)
        .into();
        let nodes = (0..n)
            .map(|_| LocalServer::start_with(&KIND, extra.clone()))
            .collect::<io::Result<Vec<_>>>()?;
        for (i, node) in nodes.iter().enumerate() {
            let (first, last) = LocalRedisCluster::slots_of(n, i);
            query::<()>(
                node.addr(),
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first)
                    .arg(last),
            )?;
        }
        for node in &nodes[1..] {
            query::<()>(
                nodes[0].addr(),
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(node.port()),
            )?;
        }
        let cluster = LocalRedisCluster { nodes };
        cluster.wait_ok(Duration::from_secs(20))?;
        Ok(cluster)
    }

    /// The first and last slot of node `i` of `n`.
    pub fn slots_of(n: usize, i: usize) -> (u16, u16) {
        let share = |i: usize| (i * usize::from(SLOTS) / n) as u16;
        (share(i), share(i + 1) - 1)
    }

    /// Wait until every node reports `cluster_state:ok` and knows every node.
    fn wait_ok(&self, within: Duration) -> io::Result<()> {
        let start = Instant::now();
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let mut last = Ok(String::new());
            let ready = self.nodes.iter().all(|node| {
                last = query::<String>(node.addr(), &redis::cmd("CLUSTER").arg("INFO").clone());
                matches!(&last, Ok(info) if info.contains("cluster_state:ok") && info.contains(&known))
            });
            if ready {
                return Ok(());
            }
            if start.elapsed() > within {
                return Err(io::Error::other(format!(
                    "the cluster of {} nodes was not ready within {within:?}: {last:?}",
                    self.nodes.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its nodes, in the order of their slots.
    pub fn nodes(&self) -> &[LocalRedis] {
        &self.nodes
    }

    /// Its nodes, to stop or restart one.
    pub fn nodes_mut(&mut self) -> &mut [LocalRedis] {
        &mut self.nodes
    }

    /// Give the hash slot `slot`, which must hold no key, to node `to`: `CLUSTER SETSLOT
    /// <slot> NODE <id>` on the new owner, then on every other node, as the last step of a
    /// resharding does. A client with the old slot map then meets `MOVED`.
    pub fn move_slot(&self, slot: u16, to: usize) -> io::Result<()> {
        let target = self
            .nodes
            .get(to)
            .ok_or_else(|| io::Error::other(format!("no node {to}")))?;
        let id: String = query(target.addr(), redis::cmd("CLUSTER").arg("MYID"))?;
        let others = self.nodes.iter().filter(|n| n.addr() != target.addr());
        for node in std::iter::once(target).chain(others) {
            query::<()>(
                node.addr(),
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&id),
            )?;
        }
        Ok(())
    }

    /// Its nodes' addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr().to_string()).collect()
    }
}

/// A fresh cluster of `n` nodes for the test `test`, or `None` after a notice when it cannot
/// be started and [`REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When the cluster cannot be started and [`REQUIRE_ENV`] is set.
#[track_caller]
pub fn start_cluster_or_skip(n: usize, test: &str) -> Option<LocalRedisCluster> {
    match LocalRedisCluster::start(n) {
        Ok(cluster) => Some(cluster),
        Err(e) => local_server::skip(&KIND, test, &format!("a cluster of {n}: {e}")),
    }
}
