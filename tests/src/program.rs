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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use asynq_core::{BoxFuture, DataSource, Error, FetchTimeout, Task, asynq};
use proptest::prelude::*;

use crate::faults::{Faulty, Injected, LiveCounter, PANIC_MESSAGE};

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

/// Generated node shapes, with child numbers still raw (see [`Program::build`]).
pub fn node_spec() -> impl Strategy<Value = Node> {
    let id = || 0..64usize;
    prop_oneof![
        1 => (0i64..40).prop_map(Node::Const),
        4 => (0u8..3, 0..KEYS).prop_map(|(s, k)| Node::Load(s, k)),
        5 => (0u8..3, id()).prop_map(|(s, c)| Node::Chain(s, c)),
        3 => prop::collection::vec(id(), 0..5).prop_map(Node::Join),
        2 => (id(), id()).prop_map(|(a, b)| Node::Pair(a, b)),
        1 => (id(), id()).prop_map(|(a, b)| Node::Array(a, b)),
        1 => prop::collection::vec(id(), 0..4).prop_map(Node::Map),
        1 => (id(), any::<bool>()).prop_map(|(c, flag)| Node::Maybe(c, flag)),
        2 => prop::collection::vec(id(), 0..4).prop_map(Node::Seq),
        2 => (id(), id(), id()).prop_map(|(c, a, b)| Node::Branch(c, a, b)),
        1 => id().prop_map(Node::Catch),
    ]
}

/// Generated programs of 1 to `max_nodes` nodes.
pub fn program(max_nodes: usize) -> impl Strategy<Value = Program> {
    prop::collection::vec(node_spec(), 1..=max_nodes).prop_map(Program::build)
}

/// Generated deep and wide programs of `nodes` nodes: each node refers to the few nodes just
/// before it, so the program is about as deep as it is long (every level a boxed task of the
/// interpreter), with joins of up to 40 children and memoized subcomputations
/// ([`Node::Memo`]). Run them over stores without holes ([`runtime_complete`]).
pub fn deep_program(nodes: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Program> {
    let back = || 0..4usize;
    let spec = prop_oneof![
        1 => (0i64..40).prop_map(Node::Const),
        3 => (0u8..3, 0..KEYS).prop_map(|(s, k)| Node::Load(s, k)),
        6 => (0u8..3, back()).prop_map(|(s, c)| Node::Chain(s, c)),
        2 => prop::collection::vec(0..64usize, 0..40).prop_map(Node::Join),
        2 => (back(), back()).prop_map(|(a, b)| Node::Pair(a, b)),
        2 => prop::collection::vec(back(), 1..3).prop_map(Node::Seq),
        1 => (back(), back(), back()).prop_map(|(c, a, b)| Node::Branch(c, a, b)),
        3 => back().prop_map(Node::Memo),
    ];
    prop::collection::vec(spec, nodes).prop_map(|specs| {
        // Chains, pairs, sequences and memos refer to the nodes just before; a join to any
        // earlier node (its children are raw numbers up to 64, taken modulo the position).
        let joins: Vec<bool> = specs.iter().map(|s| matches!(s, Node::Join(_))).collect();
        Program::build_with(
            specs,
            |i, raw| match joins[i] {
                true => raw % i.max(1),
                false => i.saturating_sub(1 + raw),
            },
            MAX_UNFOLDED_DEEP,
        )
    })
}

/// [`MAX_UNFOLDED`] for [`deep_program`]s: a chain is as long as the program.
const MAX_UNFOLDED_DEEP: usize = 20_000;

/// Generated programs of 1 to `max_nodes` nodes, some of which panic.
pub fn program_with_panics(max_nodes: usize) -> impl Strategy<Value = Program> {
    let spec = prop_oneof![12 => node_spec(), 1 => Just(Node::Panic)];
    prop::collection::vec(spec, 1..=max_nodes).prop_map(Program::build)
}

impl Program {
    /// The same program with every `Panic` node made the constant 0.
    pub fn without_panics(&self) -> Program {
        let nodes = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Panic => Node::Const(0),
                other => other.clone(),
            })
            .collect();
        Program {
            nodes,
            live: LiveCounter::new(),
        }
    }
}

/// The name `Error::TaskPanicked` gives to a panic of the interpreter.
pub fn eval_name() -> String {
    format!("{}::eval", module_path!())
}

/// The property tests' settings: `cases` random programs, a failure shrunk up to 4096 times
/// and printed, and no regression file beside the tests.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Generated maximum batch sizes of the three stores (`None`: unlimited).
pub fn batch_sizes() -> impl Strategy<Value = [Option<usize>; 3]> {
    let one = || prop_oneof![Just(None), (1usize..4).prop_map(Some)];
    (one(), one(), one()).prop_map(|(a, b, c)| [a, b, c])
}

// ---------------------------------------------------------------------------------------------
// The interpreter: one asynq function per node kind would be compiled code; one recursive
// function that reads the node does it for any program.

/// Evaluate node `id` of `program` as an asynq task.
#[asynq]
pub fn eval(program: Arc<Program>, id: NodeId) -> Result<i64, Fail> {
    let _live = program.live.guard();
    match program.nodes[id].clone() {
        Node::Const(v) => Ok(v),
        Node::Load(src, key) => load(src, key).await,
        Node::Chain(src, child) => {
            let v = eval_boxed(Arc::clone(&program), child).await?;
            load(src, key_of(v)).await
        }
        Node::Join(children) => {
            let tasks: Vec<_> = children
                .iter()
                .map(|&c| eval_boxed(Arc::clone(&program), c))
                .collect();
            combine(tasks.await)
        }
        Node::Pair(a, b) => {
            let (x, y) = (
                eval_boxed(Arc::clone(&program), a),
                eval_boxed(Arc::clone(&program), b),
            )
                .await;
            combine([x, y])
        }
        Node::Array(a, b) => {
            let tasks = [
                eval_boxed(Arc::clone(&program), a),
                eval_boxed(Arc::clone(&program), b),
            ];
            combine(tasks.await)
        }
        Node::Map(children) => {
            let tasks: BTreeMap<usize, _> = children
                .iter()
                .enumerate()
                .map(|(i, &c)| (i, eval_boxed(Arc::clone(&program), c)))
                .collect();
            combine(tasks.await.into_values())
        }
        Node::Maybe(child, flag) => {
            let task = flag.then(|| eval_boxed(Arc::clone(&program), child));
            task.await.unwrap_or(Ok(0))
        }
        Node::Seq(children) => {
            let mut h = 17;
            for c in children {
                h = mix(h, eval_boxed(Arc::clone(&program), c).await?);
            }
            Ok(h)
        }
        Node::Branch(cond, then, other) => {
            let v = eval_boxed(Arc::clone(&program), cond).await?;
            let next = if v % 2 == 0 { then } else { other };
            eval_boxed(program, next).await
        }
        Node::Catch(child) => Ok(eval_boxed(program, child)
            .await
            .unwrap_or_else(|e| e.code())),
        Node::Memo(child) => eval_memo(Shared(program), child).await,
        Node::Panic => panic!("{PANIC_MESSAGE} in node n{id}"),
    }
}

/// [`eval`], boxed for recursion.
///
/// `eval(..).boxed()` written inside `eval` itself cannot prove `Send` (the type would contain
/// itself); a plain function with a named return type breaks the cycle, so the interpreter's
/// tasks are `Send` and run under multi-threaded executors too.
pub fn eval_boxed(
    program: Arc<Program>,
    id: NodeId,
) -> Task<BoxFuture<'static, Result<i64, Fail>>> {
    eval(program, id).boxed()
}

/// A program as a memo key: compared by identity.
#[derive(Clone, Debug)]
pub struct Shared(pub Arc<Program>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Shared {}

impl std::hash::Hash for Shared {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// [`eval`] of node `id`, memoized: calls of the same node in a run share one execution.
#[asynq(boxed, memo)]
pub fn eval_memo(program: Shared, id: NodeId) -> Result<i64, Fail> {
    eval(program.0, id).await
}

/// Fetch `key` from store `src`.
#[asynq]
pub fn load(src: u8, key: u32) -> Result<i64, Fail> {
    let result = match src {
        0 => SrcA::load(key).await,
        1 => SrcB::load(key).await,
        _ => SrcC::load(key).await,
    };
    result.map_err(Fail::from)
}

/// The root task of `program`.
pub fn root_task(program: &Arc<Program>) -> Task<BoxFuture<'static, Result<i64, Fail>>> {
    eval_boxed(Arc::clone(program), program.root())
}

// ---------------------------------------------------------------------------------------------
// The reference.

/// What a run of a program must give and do (for a run that panics: only its result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The root's result.
    pub result: Result<i64, Fail>,
    /// Rounds of the run: the longest chain of fetches that wait on each other.
    pub rounds: usize,
    /// Per round (from 1), per source number: the keys sent in that round.
    pub sends: BTreeMap<(usize, u8), BTreeSet<u32>>,
}

impl Expected {
    /// Keys sent to source `src` over the whole run.
    pub fn keys_sent(&self, src: u8) -> usize {
        self.sends
            .iter()
            .filter(|((_, s), _)| *s == src)
            .map(|(_, keys)| keys.len())
            .sum()
    }
}

/// Evaluate `program` sequentially and compute the breadth-first schedule, with `outcome(src,
/// key)` the result of fetching a key (the same every time it is fetched).
///
/// The schedule: time `t` is the number of rounds done. A fetch first asked for at time `t`
/// is sent in round `t + 1` and answered at time `t + 1`; a fetch asked for later than the
/// key's first request is answered at once from the run's cache. A failed key is not cached:
/// every time it is asked for again after its failure, it is sent again. Children of an
/// awaited collection start together; a sequence starts each child when the previous ends.
///
/// When a key is first asked for depends on when other keys are answered, so the schedule is
/// computed as a fixpoint: start from "every fetch is a first request" and repeat with the
/// first-request times found until they no longer change. Fewer rounds can only make requests
/// earlier, so this converges, to the run's own schedule (unique, since a run at time `t`
/// only depends on what happened before `t`).
pub fn reference(program: &Program, outcome: &dyn Fn(u8, u32) -> Result<i64, Fail>) -> Expected {
    let mut first: HashMap<(u8, u32), usize> = HashMap::new();
    for _ in 0..1000 {
        let mut sim = Sim {
            program,
            outcome,
            first: &first,
            requests: HashMap::new(),
            panicked: false,
        };
        let (result, rounds) = sim.eval(program.root(), 0);
        if sim.panicked {
            // The run ends at the panic; only its result is predicted.
            return Expected {
                result: Err(Fail::TaskPanicked(eval_name())),
                rounds,
                sends: BTreeMap::new(),
            };
        }
        let requests = sim.requests;
        let next: HashMap<(u8, u32), usize> = requests
            .iter()
            .map(|(&key, times)| (key, *times.iter().next().expect("a request time")))
            .collect();
        if next == first {
            let mut sends: BTreeMap<(usize, u8), BTreeSet<u32>> = BTreeMap::new();
            for ((src, key), times) in requests {
                let at: Vec<usize> = if outcome(src, key).is_ok() {
                    vec![first[&(src, key)]]
                } else {
                    times.into_iter().collect()
                };
                for t in at {
                    sends.entry((t + 1, src)).or_default().insert(key);
                }
            }
            return Expected {
                result,
                rounds,
                sends,
            };
        }
        first = next;
    }
    panic!("the reference schedule did not converge for {program:?}");
}

struct Sim<'a> {
    program: &'a Program,
    outcome: &'a dyn Fn(u8, u32) -> Result<i64, Fail>,
    /// First-request times of the previous iteration.
    first: &'a HashMap<(u8, u32), usize>,
    /// Request times of this iteration.
    requests: HashMap<(u8, u32), BTreeSet<usize>>,
    /// A `Panic` node was reached.
    panicked: bool,
}

impl Sim<'_> {
    /// Evaluate node `id` starting at time `t`: its result and the time it finishes.
    fn eval(&mut self, id: NodeId, t: usize) -> (Result<i64, Fail>, usize) {
        match self.program.nodes[id].clone() {
            Node::Const(v) => (Ok(v), t),
            Node::Load(src, key) => self.load(src, key, t),
            Node::Chain(src, child) => match self.eval(child, t) {
                (Ok(v), t) => self.load(src, key_of(v), t),
                err => err,
            },
            Node::Join(children) | Node::Map(children) => self.all(&children, t),
            Node::Pair(a, b) | Node::Array(a, b) => self.all(&[a, b], t),
            Node::Maybe(child, true) => self.eval(child, t),
            Node::Maybe(_, false) => (Ok(0), t),
            Node::Seq(children) => {
                let (mut h, mut t) = (17, t);
                for c in children {
                    match self.eval(c, t) {
                        (Ok(v), end) => (h, t) = (mix(h, v), end),
                        err => return err,
                    }
                }
                (Ok(h), t)
            }
            Node::Branch(cond, then, other) => match self.eval(cond, t) {
                (Ok(v), t) => self.eval(if v % 2 == 0 { then } else { other }, t),
                err => err,
            },
            Node::Catch(child) => {
                let (r, t) = self.eval(child, t);
                (Ok(r.unwrap_or_else(|e| e.code())), t)
            }
            // Over stores without failures, sharing an execution changes no result and no
            // time: a later call of the same node finds every key of it cached or in flight.
            Node::Memo(child) => self.eval(child, t),
            Node::Panic => {
                // Nothing after a panic matters: the run ends.
                self.panicked = true;
                (Err(Fail::TaskPanicked(eval_name())), t)
            }
        }
    }

    fn all(&mut self, children: &[NodeId], t: usize) -> (Result<i64, Fail>, usize) {
        let ran: Vec<_> = children.iter().map(|&c| self.eval(c, t)).collect();
        let end = ran.iter().map(|(_, end)| *end).max().unwrap_or(t);
        (combine(ran.into_iter().map(|(r, _)| r)), end)
    }

    fn load(&mut self, src: u8, key: u32, t: usize) -> (Result<i64, Fail>, usize) {
        self.requests.entry((src, key)).or_default().insert(t);
        let result = (self.outcome)(src, key);
        let first = self.first.get(&(src, key)).copied().unwrap_or(t).min(t);
        let end = if result.is_ok() && first < t {
            t
        } else {
            t + 1
        };
        (result, end)
    }
}

/// Run `program` on `rt` and compare everything with `expected`: the result, the rounds, the
/// calls in order (each round's keys per source), and the statistics.
pub fn check_run(
    rt: &asynq_core::Runtime,
    program: &Arc<Program>,
    max_batch: [Option<usize>; 3],
    expected: &Expected,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let (result, stats) =
        futures::executor::block_on(rt.run_async(root_task(program)).with_stats());
    proptest::prop_assert_eq!(&result, &expected.result, "result");
    proptest::prop_assert_eq!(stats.rounds, expected.rounds, "rounds (critical path)");
    if let Err(why) = check_calls(expected, &calls_in_order(rt), max_batch) {
        return Err(proptest::test_runner::TestCaseError::fail(why));
    }
    let sent = sent(rt);
    for (src, calls) in sent.iter().enumerate() {
        let keys: usize = calls.iter().map(Vec::len).sum();
        proptest::prop_assert_eq!(
            keys,
            expected.keys_sent(src as u8),
            "keys sent to source {}",
            src
        );
        if let Some(s) = stats.source(SOURCE_NAMES[src]) {
            proptest::prop_assert_eq!(s.calls, calls.len(), "stats calls of source {}", src);
            proptest::prop_assert_eq!(s.keys, keys, "stats keys of source {}", src);
        } else {
            proptest::prop_assert!(calls.is_empty(), "calls to source {} without stats", src);
        }
    }
    Ok(())
}

/// The outcome of fetching a key from the healthy stores.
pub fn healthy(src: u8, key: u32) -> Result<i64, Fail> {
    stored(src, key).ok_or(Fail::Missing(src, key))
}

/// Check that the calls the sources saw, in the order they were made ([`calls_in_order`]),
/// follow the expected schedule: round by round, the calls of a round carry exactly the keys
/// the reference sends to each source in it, none twice, at most `max_batch` keys each, in at
/// most `ceil(keys / max_batch)` calls per source. Returns a description of the first
/// difference.
///
/// All calls of a round are made before any call of the next (the next round only starts
/// once every call of this one has answered), so the rounds are consecutive stretches of the
/// order: a key sent a round early or late is caught, whichever source it belongs to.
pub fn check_calls(
    expected: &Expected,
    calls: &[(u8, Vec<u32>)],
    max_batch: [Option<usize>; 3],
) -> Result<(), String> {
    let max = |src: usize| max_batch[src].unwrap_or(usize::MAX);
    let mut next = 0;
    for round in 1..=expected.rounds {
        let want: [BTreeSet<u32>; 3] = std::array::from_fn(|src| {
            let key = (round, src as u8);
            expected.sends.get(&key).cloned().unwrap_or_default()
        });
        let need: usize = want.iter().map(BTreeSet::len).sum();
        let mut got: [BTreeSet<u32>; 3] = Default::default();
        let mut made = [0usize; 3];
        while got.iter().map(BTreeSet::len).sum::<usize>() < need {
            let Some((src, keys)) = calls.get(next) else {
                return Err(format!(
                    "round {round}: no more calls, expected {want:?}, got {got:?}"
                ));
            };
            let s = usize::from(*src);
            let name = SOURCE_NAMES[s];
            if keys.is_empty() || keys.len() > max(s) {
                return Err(format!(
                    "round {round}: a call of {} keys to {name} (max {})",
                    keys.len(),
                    max(s)
                ));
            }
            for &k in keys {
                if !want[s].contains(&k) {
                    return Err(format!(
                        "round {round}: {name} was sent key {k}; expected {want:?}"
                    ));
                }
                if !got[s].insert(k) {
                    return Err(format!("round {round}: {name} was sent key {k} twice"));
                }
            }
            made[s] += 1;
            next += 1;
        }
        for s in 0..3 {
            if made[s] > want[s].len().div_ceil(max(s)) {
                return Err(format!(
                    "round {round}: {} calls to {} for {} keys with max batch {}",
                    made[s],
                    SOURCE_NAMES[s],
                    want[s].len(),
                    max(s)
                ));
            }
        }
    }
    match calls.get(next..) {
        Some([]) | None => Ok(()),
        Some(rest) => Err(format!("calls after the last round: {rest:?}")),
    }
}
