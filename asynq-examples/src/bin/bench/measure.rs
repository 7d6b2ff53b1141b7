//! Medians, interleaved pairs and page faults: how every figure of the bench is measured.

use std::time::Instant;

use asynq_core::{Runtime, Yieldable};

/// The median of `runs` measurements taken after one warm-up call.
pub(crate) fn median_of(runs: usize, mut measure: impl FnMut() -> f64) -> f64 {
    measure();
    median((0..runs).map(|_| measure()).collect())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub(crate) fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`); 0 where there is
/// no such file.
pub(crate) fn page_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds per unit of `asynq` and of `baseline`: medians over `runs` runs (after a
/// warm-up) in which the two take turns, so that noise hits both alike.
pub(crate) fn ns_per_pair(
    runs: usize,
    units: u64,
    mut asynq: impl FnMut() -> u64,
    mut baseline: impl FnMut() -> u64,
) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let mut ns = [0.0; 2];
        for i in 0..2 {
            let which = (run + i) % 2;
            let start = Instant::now();
            let out = if which == 0 { asynq() } else { baseline() };
            ns[which] = start.elapsed().as_secs_f64() * 1e9 / units as f64;
            std::hint::black_box(out);
        }
        if run > 0 {
            a.push(ns[0]);
            b.push(ns[1]);
        }
    }
    (median(a), median(b))
}

/// Nanoseconds per unit of one run of `task`, `units` units per run.
pub(crate) fn ns_per<Y>(rt: &Runtime, runs: usize, units: u64, task: impl Fn() -> Y) -> f64
where
    Y: Yieldable<Output = u64>,
{
    median_of(runs, || {
        let start = Instant::now();
        let out = rt.run(task()).expect("the run succeeds");
        let ns = start.elapsed().as_secs_f64() * 1e9;
        std::hint::black_box(out);
        ns / units as f64
    })
}
