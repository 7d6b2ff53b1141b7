//! The generators of random programs for the property tests, and their settings.

use proptest::prelude::*;

use super::{KEYS, LiveCounter, Node, Program};

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
/// ([`Node::Memo`]). Run them over stores without holes ([`runtime_complete`](super::runtime_complete)).
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
