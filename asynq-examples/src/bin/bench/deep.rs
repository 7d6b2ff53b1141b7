//! Deep and wide data: a recursion as deep as a chain of 100k levels, a recursive tree of 87k
//! comments, and a million tasks waiting on fetches, each next to hand-written code doing the
//! same fetches in the same run.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_examples::feed::fnv1a64;
use asynq_examples::memory::MemoryStore;

use crate::measure::{Workload, ns_interleaved, ns_per_pair};
use crate::sched::{Numbers, fetching_tasks, hand_fetching};

// ---------------------------------------------------------------------------------------------
// A chain: each level fetches the key of the next.

/// Level `k` links to level `k + 1`.
pub(crate) struct Links;

impl DataSource for Links {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Infallible> {
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

/// Walk the chain from `level` down to `end`: the sum of the levels' keys.
#[asynq(boxed)]
fn walk(level: u64, end: u64) -> Result<u64, Error> {
    let next = Links::load(level).await?;
    if next == end {
        return Ok(level);
    }
    Ok(walk(next, end).await? + level)
}

/// The same walk written by hand: one fetch per level, in a loop.
fn hand_walk(end: u64) -> u64 {
    let (mut level, mut sum) = (0, 0);
    loop {
        let answer = futures::executor::block_on(Links.fetch(&[level])).unwrap_or_default();
        let next = answer.first().map_or(end, |&(_, next)| next);
        sum += level;
        if next == end {
            return sum;
        }
        level = next;
    }
}

// ---------------------------------------------------------------------------------------------
// A tree of comments, each rendered with its replies.

/// Replies per comment.
const BRANCHING: u64 = 4;

/// The comments of a tree `levels` deep: `c:{n}:text`, `c:{n}:author`, `c:{n}:kids` (reply
/// ids joined with `,`), and `u:{u}:name` for its authors.
fn tree_store(levels: u32) -> (MemoryStore, u64) {
    let nodes: u64 = (0..levels).map(|l| BRANCHING.pow(l)).sum();
    let users = (nodes / 10).max(1);
    let mut pairs = Vec::new();
    for n in 0..nodes {
        let kids: Vec<String> = (n * BRANCHING + 1..=n * BRANCHING + BRANCHING)
            .filter(|&k| k < nodes)
            .map(|k| k.to_string())
            .collect();
        pairs.push((format!("c:{n}:text"), format!("Comment {n}")));
        pairs.push((format!("c:{n}:author"), ((n * 7 + 3) % users).to_string()));
        pairs.push((format!("c:{n}:kids"), kids.join(",")));
    }
    for u in 0..users {
        pairs.push((format!("u:{u}:name"), format!("User {u}")));
    }
    (MemoryStore::from_pairs(pairs), nodes)
}

fn ids(list: &str) -> impl Iterator<Item = u64> + '_ {
    list.split(',').filter_map(|id| id.parse().ok())
}

/// One comment and its replies: its own keys first, then its author's name and its replies
/// together.
#[asynq(boxed)]
fn comment(n: u64) -> Result<String, Error> {
    let (text, author, kids) = (
        MemoryStore::load(format!("c:{n}:text")),
        MemoryStore::load(format!("c:{n}:author")),
        MemoryStore::load(format!("c:{n}:kids")),
    )
        .await;
    let (text, kids) = (text?, kids?);
    let replies: Vec<_> = ids(&kids).map(comment).collect();
    let (name, replies) = (MemoryStore::load(format!("u:{}:name", author?)), replies).await;
    let mut out = String::new();
    render_head(&mut out, &text, &name?);
    for reply in replies {
        out.push_str(&reply?);
    }
    out.push_str("</c>");
    Ok(out)
}

fn render_head(out: &mut String, text: &str, name: &str) {
    let _ = write!(out, "<c><t>{text}</t><by>{name}</by>");
}

/// The same page by hand: the tree's keys primed level by level (a level's own keys with the
/// names of the level above, as the asynq rounds do), then rendered from the primed values.
fn hand_tree(store: &MemoryStore) -> String {
    let mut values: HashMap<String, String> = HashMap::new();
    let mut level = vec![0u64];
    let mut names: Vec<String> = Vec::new();
    while !level.is_empty() || !names.is_empty() {
        let mut keys = std::mem::take(&mut names);
        for n in &level {
            keys.push(format!("c:{n}:text"));
            keys.push(format!("c:{n}:author"));
            keys.push(format!("c:{n}:kids"));
        }
        values.extend(store.get_multi(&keys));
        let mut seen = HashSet::new();
        let mut next = Vec::new();
        for n in &level {
            let name = format!("u:{}:name", values[&format!("c:{n}:author")]);
            if !values.contains_key(&name) && seen.insert(name.clone()) {
                names.push(name);
            }
            next.extend(ids(&values[&format!("c:{n}:kids")]));
        }
        level = next;
    }
    let mut out = String::new();
    hand_render(0, &values, &mut out);
    out
}

fn hand_render(n: u64, values: &HashMap<String, String>, out: &mut String) {
    let text = &values[&format!("c:{n}:text")];
    let name = &values[&format!("u:{}:name", values[&format!("c:{n}:author")])];
    render_head(out, text, name);
    for kid in ids(&values[&format!("c:{n}:kids")]) {
        hand_render(kid, values, out);
    }
    out.push_str("</c>");
}

// ---------------------------------------------------------------------------------------------

/// Measure and print the deep and wide tables. Err when asynq and the hand-written code
/// disagree.
pub(crate) fn tables(quick: bool) -> Result<(), String> {
    let runs = if quick { 5 } else { 9 };
    let depths: &[u64] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    let rt = Runtime::new().with_source(Links);
    println!();
    println!("Deep: a chain, one boxed task per level, one fetch per level (medians)");
    println!();
    println!(
        "| depth | asynq ns per level | hand-written loop ns per level | asynq / hand | rounds |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut rounds = Vec::new();
    for &depth in depths {
        let expected = hand_walk(depth);
        let got = rt
            .run(walk(0, depth))
            .map_err(|e| format!("chain {depth}: {e}"))?;
        if got != expected {
            return Err(format!("chain {depth}: asynq {got}, by hand {expected}"));
        }
        rounds.push(rt.last_stats().rounds);
    }
    // Every sample walks 100k levels (a 1k chain 100 times), so that a sample of a short chain
    // is as long as one of the longest and timer noise weighs the same on each; the depths take
    // turns, so that the spread compares samples of the same moments.
    let rt = &rt;
    let mut workloads: Vec<Workload<'_>> = Vec::new();
    for &depth in depths {
        let walks = (100_000 / depth).max(1);
        workloads.push((
            depth * walks,
            Box::new(move || {
                (0..walks)
                    .map(|_| rt.run(walk(0, depth)).expect("checked above"))
                    .sum()
            }),
        ));
        workloads.push((
            depth * walks,
            Box::new(move || (0..walks).map(|_| hand_walk(depth)).sum()),
        ));
    }
    let ns = ns_interleaved(runs, &mut workloads);
    let mut per_level = Vec::new();
    for (i, &depth) in depths.iter().enumerate() {
        let (asynq, hand) = (ns[2 * i], ns[2 * i + 1]);
        per_level.push(asynq);
        println!(
            "| {depth} | {asynq:.1} | {hand:.1} | {:.2} | {} |",
            asynq / hand,
            rounds[i]
        );
    }
    let (low, high) = per_level
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    println!();
    println!(
        "Spread of ns per level across depths (target <= 1.25): {:.2}",
        high / low
    );

    let levels = if quick { 7 } else { 9 };
    let (store, nodes) = tree_store(levels);
    let rt = Runtime::new().with_source(store);
    let store = rt.source::<MemoryStore>().expect("registered");
    store.reset_counters();
    let page = rt.run(comment(0)).map_err(|e| format!("tree: {e}"))?;
    let asynq_calls = store.calls();
    store.reset_counters();
    let by_hand = hand_tree(store);
    let hand_calls = store.calls();
    if (page.len(), fnv1a64(page.as_bytes())) != (by_hand.len(), fnv1a64(by_hand.as_bytes())) {
        return Err(format!(
            "tree: asynq rendered {} bytes, by hand {}",
            page.len(),
            by_hand.len()
        ));
    }
    let (asynq, hand) = ns_per_pair(
        runs,
        nodes,
        || rt.run(comment(0)).expect("checked above").len() as u64,
        || hand_tree(store).len() as u64,
    );
    println!();
    println!(
        "Deep: a tree of comments (branching {BRANCHING}, {levels} levels, {nodes} comments), \
         each a boxed task rendering its replies, next to a hand-written breadth-first \
         prime-then-render of the same bytes (medians)"
    );
    println!();
    println!(
        "| comments | asynq ns per comment | hand-written ns per comment | asynq / hand | calls (asynq / hand) | out_len | fnv |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    println!(
        "| {nodes} | {asynq:.1} | {hand:.1} | {:.2} | {asynq_calls} / {hand_calls} | {} | {:016x} |",
        asynq / hand,
        page.len(),
        fnv1a64(page.as_bytes())
    );

    let sizes: &[u64] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let rt = Runtime::new().with_source(Numbers);
    println!();
    println!(
        "Wide: tasks each waiting on one fetch, one flat join, next to the same fetches batched by hand (medians)"
    );
    println!();
    println!("| tasks | asynq ns per task | by hand ns per task | asynq / hand |");
    println!("| ---: | ---: | ---: | ---: |");
    for &n in sizes {
        let runs = if n <= 10_000 { runs * 3 } else { runs };
        let (asynq, hand) = ns_per_pair(
            runs,
            n,
            || rt.run(fetching_tasks(n)).expect("the run succeeds"),
            || hand_fetching(n),
        );
        println!("| {n} | {asynq:.1} | {hand:.1} | {:.2} |", asynq / hand);
    }
    Ok(())
}

/// `--only deep-chain` / `deep-tree` (and their `-hand` baselines): one workload for a
/// profiler; `size` is the depth of the chain, the levels of the tree.
pub(crate) fn only(workload: &str, repeat: usize, size: u64) -> Option<u64> {
    match workload {
        "deep-chain" => {
            let rt = Runtime::new().with_source(Links);
            let mut out = 0;
            for _ in 0..repeat {
                out += rt.run(walk(0, size)).expect("the run succeeds");
            }
            Some(out)
        }
        "deep-tree" => {
            let (store, _) = tree_store(size as u32);
            let rt = Runtime::new().with_source(store);
            let mut out = 0;
            for _ in 0..repeat {
                out += rt.run(comment(0)).expect("the run succeeds").len() as u64;
            }
            Some(out)
        }
        "deep-chain-hand" => Some((0..repeat).map(|_| hand_walk(size)).sum()),
        "deep-tree-hand" => {
            let (store, _) = tree_store(size as u32);
            Some((0..repeat).map(|_| hand_tree(&store).len() as u64).sum())
        }
        _ => None,
    }
}
