// Shapes `#[asynq(batch)]` rewrites, each run and checked: methods, generics, tuple and `mut`
// bindings, a labelled loop, a loop inside a loop, awaits in one expression, and results
// used by the statements between the awaits.
#![deny(warnings)]

use std::collections::BTreeMap;

use asynq_core::{Runtime, asynq};

#[asynq]
fn double(x: u64) -> u64 {
    x * 2
}

struct Scale(u64);

impl Scale {
    #[asynq]
    fn apply(&self, x: u64) -> u64 {
        self.0 * x
    }

    #[asynq(batch)]
    fn all(&self, xs: Vec<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        for x in xs {
            out.push(self.apply(x).await);
        }
        out
    }
}

#[asynq(batch)]
fn generic<T: Into<u64> + Copy>(xs: Vec<T>) -> u64 {
    let mut total = 0;
    for x in xs {
        let d = double(x.into()).await;
        total += d;
    }
    total
}

#[asynq(batch)]
fn pairs(map: BTreeMap<u64, u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    'each: for (k, mut v) in map {
        let d = double(k).await;
        v += d;
        out.push((k, v));
        if out.len() > 100 {
            continue 'each;
        }
    }
    out
}

#[asynq(batch)]
fn grid(n: u64) -> Vec<Vec<u64>> {
    let mut rows = Vec::new();
    for i in 0..n {
        let mut row = Vec::new();
        for j in 0..n {
            row.push(double(i * 10 + j).await);
        }
        rows.push(row);
    }
    rows
}

#[asynq(batch)]
fn around(x: u64) -> (u64, String, u64) {
    let a = double(x).await;
    let seen = format!("a = {a}");
    let b = double(x + 1).await + double(x + 2).await;
    (a, seen, b)
}

#[asynq]
fn length(s: String) -> usize {
    s.len()
}

/// A binding the operand clones and the body keeps: not `Copy`, carried to the body.
#[asynq(batch)]
fn lengths(names: Vec<String>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for name in names {
        let n = length(name.clone()).await;
        out.push((name, n));
    }
    out
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(Scale(3).all(vec![1, 2, 3])).unwrap(), [3, 6, 9]);
    assert_eq!(rt.last_stats().rounds, 0);
    assert_eq!(rt.run(generic(vec![1u8, 2, 3])).unwrap(), 12);
    let map = BTreeMap::from([(1, 10), (2, 20)]);
    assert_eq!(rt.run(pairs(map)).unwrap(), [(1, 12), (2, 24)]);
    assert_eq!(
        rt.run(grid(2)).unwrap(),
        [vec![0, 2], vec![20, 22]]
    );
    assert_eq!(
        rt.run(around(1)).unwrap(),
        (2, "a = 2".to_owned(), 4 + 6)
    );
    assert_eq!(
        rt.run(lengths(vec!["ab".to_owned(), "c".to_owned()])).unwrap(),
        [("ab".to_owned(), 2), ("c".to_owned(), 1)]
    );
}
