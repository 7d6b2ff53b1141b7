//! The reference: a program evaluated with plain recursion, and the breadth-first schedule a
//! run of it must follow.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{
    Fail, Node, NodeId, Program, SOURCE_NAMES, calls_in_order, combine, eval_name, key_of, mix,
    root_task, sent, stored,
};

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
