//! Random asynq programs, an interpreter that runs them as asynq tasks, and a sequential
//! reference that says what the runtime must do with them.
//!
//! Asynq functions are compiled code, so the property tests cannot generate them. They
//! generate a [`Program`] instead, a DAG of [`Node`]s (fetches, collections awaited together,
//! sequences, branches on fetched values, error handling; a node used by several parents is a
//! shared subcomputation), and run it with [`eval`], one recursive asynq function that does
//! what each node says. [`reference()`] evaluates the same program with plain recursion, and
//! computes the schedule a breadth-first runtime must follow: when each fetch is sent and
//! therefore how many rounds the run takes (its critical path) and which keys each round
//! sends to each source.
//!
//! The sources are three [`Store`]s, each wrapped in a [`Faulty`] so that the same programs
//! also run under injected faults.

use std::collections::BTreeSet;
use std::fmt;

use asynq_core::{DataSource, Error, FetchTimeout};

use crate::faults::{Faulty, Injected, LiveCounter, PANIC_MESSAGE};

mod interp;
mod reference;
mod strategy;

pub use interp::*;
pub use reference::*;
pub use strategy::*;

/// Keys of each store are `0..KEYS`.
pub const KEYS: u32 = 24;

/// Store `src`'s value for `key`, or `None` for the keys it does not hold (a key in 13 is a hole).
pub fn stored(src: u8, key: u32) -> Option<i64> {
    (key % 13 != 12).then(|| value(src, key))
}

/// The value of `key` in store `src`, holes included.
fn value(src: u8, key: u32) -> i64 {
    i64::from(key) * 7 + i64::from(src) * 100 + 1
}

/// The outcome of fetching a key from stores without holes ([`Store::complete`]).
pub fn complete(src: u8, key: u32) -> Result<i64, Fail> {
    Ok(value(src, key))
}

/// Source number `ID` of the generated programs (`A`, `B`, `C`): `key -> stored(ID, key)`.
#[derive(Debug)]
pub struct Store<const ID: u8> {
    max_batch: Option<usize>,
    /// Holds every key, holes included (see [`complete`]).
    complete: bool,
}

impl<const ID: u8> Store<ID> {
    /// A store whose calls carry at most `max_batch` keys.
    pub fn new(max_batch: Option<usize>) -> Self {
        Store {
            max_batch,
            complete: false,
        }
    }

    /// A store without holes: every key has its value.
    pub fn complete(max_batch: Option<usize>) -> Self {
        Store {
            max_batch,
            complete: true,
        }
    }
}

impl<const ID: u8> DataSource for Store<ID> {
    type Key = u32;
    type Value = i64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, i64)>, Self::Error> {
        Ok(keys
            .iter()
            .filter_map(|&k| match self.complete {
                true => Some((k, value(ID, k))),
                false => stored(ID, k).map(|v| (k, v)),
            })
            .collect())
    }

    fn name(&self) -> &str {
        SOURCE_NAMES[usize::from(ID)]
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.max_batch
    }
}

/// The names of the three stores, by number.
pub const SOURCE_NAMES: [&str; 3] = ["A", "B", "C"];

/// The source types the interpreter loads from.
pub type SrcA = Faulty<Store<0>>;
/// See [`SrcA`].
pub type SrcB = Faulty<Store<1>>;
/// See [`SrcA`].
pub type SrcC = Faulty<Store<2>>;

/// A runtime with the three stores, calls of each carrying at most `max_batch[i]` keys.
pub fn runtime(max_batch: [Option<usize>; 3]) -> asynq_core::Runtime {
    asynq_core::Runtime::new()
        .with_source(Faulty::new(Store::<0>::new(max_batch[0])))
        .with_source(Faulty::new(Store::<1>::new(max_batch[1])))
        .with_source(Faulty::new(Store::<2>::new(max_batch[2])))
}

/// [`runtime`] with stores that hold every key ([`Store::complete`]).
pub fn runtime_complete(max_batch: [Option<usize>; 3]) -> asynq_core::Runtime {
    asynq_core::Runtime::new()
        .with_source(Faulty::new(Store::<0>::complete(max_batch[0])))
        .with_source(Faulty::new(Store::<1>::complete(max_batch[1])))
        .with_source(Faulty::new(Store::<2>::complete(max_batch[2])))
}

/// The keys each store of `rt` was sent, call by call (source number, then calls in order).
pub fn sent(rt: &asynq_core::Runtime) -> [Vec<Vec<u32>>; 3] {
    let keys = |calls: Vec<crate::faults::Call<u32>>| calls.into_iter().map(|c| c.keys).collect();
    [
        keys(rt.source::<SrcA>().expect("A").calls()),
        keys(rt.source::<SrcB>().expect("B").calls()),
        keys(rt.source::<SrcC>().expect("C").calls()),
    ]
}

/// Every call of the three stores of `rt`, in the order made: (source number, keys).
pub fn calls_in_order(rt: &asynq_core::Runtime) -> Vec<(u8, Vec<u32>)> {
    let mut calls: Vec<(u64, u8, Vec<u32>)> = Vec::new();
    let mut add = |src: u8, list: Vec<crate::faults::Call<u32>>| {
        calls.extend(list.into_iter().map(|c| (c.seq, src, c.keys)));
    };
    add(0, rt.source::<SrcA>().expect("A").calls());
    add(1, rt.source::<SrcB>().expect("B").calls());
    add(2, rt.source::<SrcC>().expect("C").calls());
    calls.sort_by_key(|c| c.0);
    calls
        .into_iter()
        .map(|(_, src, keys)| (src, keys))
        .collect()
}

/// How a fetch failed, as the interpreter reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fail {
    /// `Error::MissingKey`.
    Missing(u8, u32),
    /// `Error::Source` with the wrapper's [`Injected`] error.
    Failed(u8, u32),
    /// `Error::Source` for a panic in `fetch`.
    Panicked(u8, u32),
    /// `Error::Source` with a [`FetchTimeout`].
    TimedOut(u8, u32),
    /// `Error::TaskPanicked`, with the asynq function it names.
    TaskPanicked(String),
    /// Anything else: a bug.
    Other(String),
}

impl Fail {
    /// The value a `Catch` node turns the failure into.
    pub fn code(&self) -> i64 {
        match self {
            Fail::Missing(s, k) => -1000 - i64::from(*s) * 100 - i64::from(*k),
            Fail::Failed(s, k) => -2000 - i64::from(*s) * 100 - i64::from(*k),
            Fail::Panicked(s, k) => -3000 - i64::from(*s) * 100 - i64::from(*k),
            Fail::TimedOut(s, k) => -4000 - i64::from(*s) * 100 - i64::from(*k),
            Fail::TaskPanicked(_) => -5000,
            Fail::Other(_) => -9999,
        }
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Fail {
        let parse = |source: &str, key: &str| {
            let src = SOURCE_NAMES.iter().position(|n| *n == source)?;
            Some((src as u8, key.parse::<u32>().ok()?))
        };
        match &error {
            Error::MissingKey { source, key } => match parse(source, key) {
                Some((s, k)) => Fail::Missing(s, k),
                None => Fail::Other(error.to_string()),
            },
            Error::Source {
                source,
                key,
                error: cause,
                ..
            } => match parse(source, key) {
                Some((s, k)) if cause.downcast_ref::<Injected>().is_some() => Fail::Failed(s, k),
                Some((s, k)) if cause.downcast_ref::<FetchTimeout>().is_some() => {
                    Fail::TimedOut(s, k)
                }
                Some((s, k)) if cause.to_string().contains(PANIC_MESSAGE) => Fail::Panicked(s, k),
                _ => Fail::Other(error.to_string()),
            },
            Error::TaskPanicked { task, .. } => Fail::TaskPanicked((*task).to_owned()),
            _ => Fail::Other(error.to_string()),
        }
    }
}

/// A node's position in its program.
pub type NodeId = usize;

/// One computation of a [`Program`]; each evaluates to `Result<i64, Fail>`.
#[derive(Clone, PartialEq, Eq)]
pub enum Node {
    /// A constant.
    Const(i64),
    /// Fetch a key from a source.
    Load(u8, u32),
    /// Evaluate the child, then fetch the key its value names (a data dependency).
    Chain(u8, NodeId),
    /// Await all children together as a `Vec`; every child runs, the first error wins.
    Join(Vec<NodeId>),
    /// Await two children together as a tuple.
    Pair(NodeId, NodeId),
    /// Await two children together as an array.
    Array(NodeId, NodeId),
    /// Await the children together as the values of a `BTreeMap` keyed by position.
    Map(Vec<NodeId>),
    /// Await `Some(child)` when the flag is set, else `None` (which gives 0 at once).
    Maybe(NodeId, bool),
    /// Await the children one after the other, stopping at the first error (`?`).
    Seq(Vec<NodeId>),
    /// Evaluate the condition, then the first branch if its value is even, else the second.
    Branch(NodeId, NodeId, NodeId),
    /// The child's value, or its error turned into a value ([`Fail::code`]).
    Catch(NodeId),
    /// The child through a memoized asynq function: calls of the same node share one
    /// execution. Only in [`deep_program`]s, run over stores without holes (a failed memo
    /// execution runs again, which the reference does not model).
    Memo(NodeId),
    /// Panic (with an injected message): the run ends with `Error::TaskPanicked`.
    Panic,
}

/// A DAG of nodes whose last node is the root; children come before their parents.
#[derive(Clone)]
pub struct Program {
    /// The nodes; node `i` only refers to nodes before it.
    pub nodes: Vec<Node>,
    /// Counts the interpreter's tasks alive: each holds one guard while it exists.
    pub live: LiveCounter,
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Program {}

/// The key a value names.
pub fn key_of(value: i64) -> u32 {
    value.rem_euclid(i64::from(KEYS)) as u32
}

fn mix(h: i64, v: i64) -> i64 {
    h.wrapping_mul(31).wrapping_add(v)
}

fn combine(results: impl IntoIterator<Item = Result<i64, Fail>>) -> Result<i64, Fail> {
    results.into_iter().try_fold(17, |h, r| Ok(mix(h, r?)))
}

impl Node {
    fn children(&self) -> Vec<NodeId> {
        match self {
            Node::Const(_) | Node::Load(..) | Node::Panic => Vec::new(),
            Node::Chain(_, c) | Node::Catch(c) | Node::Memo(c) => vec![*c],
            Node::Join(cs) | Node::Seq(cs) | Node::Map(cs) => cs.clone(),
            Node::Pair(a, b) | Node::Array(a, b) => vec![*a, *b],
            Node::Maybe(c, true) => vec![*c],
            Node::Maybe(_, false) => Vec::new(),
            Node::Branch(c, a, b) => vec![*c, *a, *b],
        }
    }
}

/// Evaluations of a node when it is unfolded into a tree, beyond which a node is made a
/// constant: a DAG that reuses its nodes can otherwise describe exponentially many tasks.
const MAX_UNFOLDED: usize = 80;

impl Program {
    /// The program's root node.
    pub fn root(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// A program from generated node shapes: child numbers are taken modulo the node's
    /// position (so every shape makes a DAG), nodes that would unfold into more than
    /// `MAX_UNFOLDED` evaluations become constants, and a root joins the nodes nobody uses.
    pub fn build(specs: Vec<Node>) -> Program {
        Self::build_with(specs, |i, raw| raw % i.max(1), MAX_UNFOLDED)
    }

    /// [`build`](Program::build) with child numbers mapped by `child(position, raw)` (to a
    /// position before the node's) and at most `max_unfolded` evaluations per node.
    fn build_with(
        specs: Vec<Node>,
        child: impl Fn(usize, NodeId) -> NodeId,
        max_unfolded: usize,
    ) -> Program {
        let mut nodes: Vec<Node> = Vec::with_capacity(specs.len());
        let mut unfolded: Vec<usize> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let c = |raw: NodeId| child(i, raw);
            let node = match spec {
                _ if i == 0 && !spec.children().is_empty() => Node::Load(0, 0),
                Node::Const(v) => Node::Const(v),
                Node::Load(s, k) => Node::Load(s % 3, k % KEYS),
                Node::Chain(s, a) => Node::Chain(s % 3, c(a)),
                Node::Join(cs) => Node::Join(cs.into_iter().map(c).collect()),
                Node::Pair(a, b) => Node::Pair(c(a), c(b)),
                Node::Array(a, b) => Node::Array(c(a), c(b)),
                Node::Map(cs) => Node::Map(cs.into_iter().map(c).collect()),
                Node::Maybe(a, flag) => Node::Maybe(c(a), flag),
                Node::Seq(cs) => Node::Seq(cs.into_iter().map(c).collect()),
                Node::Branch(x, a, b) => Node::Branch(c(x), c(a), c(b)),
                Node::Catch(a) => Node::Catch(c(a)),
                Node::Memo(a) => Node::Memo(c(a)),
                Node::Panic => Node::Panic,
            };
            let size = 1 + node.children().iter().map(|&c| unfolded[c]).sum::<usize>();
            if size > max_unfolded {
                nodes.push(Node::Const(i as i64));
                unfolded.push(1);
            } else {
                nodes.push(node);
                unfolded.push(size);
            }
        }
        // The root awaits every node that no other node uses, so that nothing is dead code.
        let mut used = vec![false; nodes.len()];
        for node in &nodes {
            for c in node.children() {
                used[c] = true;
            }
        }
        let sinks: Vec<NodeId> = (0..nodes.len()).filter(|&i| !used[i]).collect();
        if sinks.len() > 1 {
            nodes.push(Node::Join(sinks));
        }
        Program {
            nodes,
            live: LiveCounter::new(),
        }
    }

    /// The nodes the root reaches, in order (all of them, for built programs).
    fn reachable(&self) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.root()];
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.nodes[id].children());
            }
        }
        seen
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |cs: &[NodeId]| {
            cs.iter()
                .map(|c| format!("n{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Node::Const(v) => write!(f, "{v}"),
            Node::Load(s, k) => write!(f, "load {}[{k}]", SOURCE_NAMES[usize::from(*s)]),
            Node::Chain(s, c) => write!(f, "load {}[key(n{c})]", SOURCE_NAMES[usize::from(*s)]),
            Node::Join(cs) => write!(f, "join vec![{}].await", list(cs)),
            Node::Pair(a, b) => write!(f, "join (n{a}, n{b}).await"),
            Node::Array(a, b) => write!(f, "join [n{a}, n{b}].await"),
            Node::Map(cs) => write!(f, "join BTreeMap {{ {} }}.await", list(cs)),
            Node::Maybe(c, true) => write!(f, "Some(n{c}).await"),
            Node::Maybe(_, false) => write!(f, "None.await (0)"),
            Node::Seq(cs) => write!(f, "seq [{}] (each .await?)", list(cs)),
            Node::Branch(c, a, b) => write!(f, "if n{c} is even {{ n{a} }} else {{ n{b} }}"),
            Node::Catch(c) => write!(f, "catch n{c}"),
            Node::Memo(c) => write!(f, "memo n{c}"),
            Node::Panic => write!(f, "panic!()"),
        }
    }
}

impl fmt::Debug for Program {
    /// One line per node the root reaches, so that a shrunk failure reads as a program.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Program {{")?;
        for id in self.reachable() {
            let root = if id == self.root() { "  (root)" } else { "" };
            writeln!(f, "    n{id} = {:?}{root}", self.nodes[id])?;
        }
        write!(f, "}}")
    }
}
