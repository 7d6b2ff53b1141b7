//! Medians, interleaved pairs and page faults: how every figure of the bench is measured.
//!
//! The CPU-bound figures are CPU time of the bench's own thread ([`Clock`]): the workloads
//! they measure run on that one thread (in-memory sources, `Runtime::run`), and on a shared,
//! loaded machine wall time mostly measures how often the thread was preempted: a long run
//! (a 100k-level chain) is preempted many times, a short one (1k levels) hardly, which made a
//! flat cost look as if it grew with the size. Figures with latency (sleeping sources) are
//! wall time.

use std::time::{Duration, Instant};

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

/// A stopwatch of CPU time ([`Clock`]) for CPU-bound work, or of wall time for work that
/// waits (sources with latency).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stopwatch {
    Cpu(Clock),
    Wall(Instant),
}

impl Stopwatch {
    /// Start a stopwatch of CPU time when `waits` is false, of wall time when it is true.
    pub(crate) fn start(waits: bool) -> Self {
        match waits {
            false => Stopwatch::Cpu(Clock::start()),
            true => Stopwatch::Wall(Instant::now()),
        }
    }

    /// Milliseconds since the start.
    pub(crate) fn ms(self) -> f64 {
        let elapsed = match self {
            Stopwatch::Cpu(clock) => clock.elapsed(),
            Stopwatch::Wall(start) => start.elapsed(),
        };
        elapsed.as_secs_f64() * 1e3
    }
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

/// A stopwatch of the calling thread's CPU time (user and system) on Linux, of wall time
/// elsewhere.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock(Duration);

impl Clock {
    /// Start now.
    pub(crate) fn start() -> Self {
        Clock(Self::now())
    }

    /// Time since [`Clock::start`].
    pub(crate) fn elapsed(self) -> Duration {
        Self::now().saturating_sub(self.0)
    }

    #[cfg(target_os = "linux")]
    fn now() -> Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec for the call's duration, and
        // CLOCK_THREAD_CPUTIME_ID is a clock every Linux has (since 2.6.12).
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    #[cfg(not(target_os = "linux"))]
    fn now() -> Duration {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// Nanoseconds per unit of `asynq` and of `baseline`: medians over `runs` runs (after a
/// warm-up) in which the two take turns, so that noise hits both alike.
pub(crate) fn ns_per_pair(
    runs: usize,
    units: u64,
    asynq: impl FnMut() -> u64,
    baseline: impl FnMut() -> u64,
) -> (f64, f64) {
    let mut workloads: [Workload<'_>; 2] = [(units, Box::new(asynq)), (units, Box::new(baseline))];
    let ns = ns_interleaved(runs, &mut workloads);
    (ns[0], ns[1])
}

/// A workload of [`ns_interleaved`]: the units of work one call does, and the call (its output
/// is kept from the optimizer).
pub(crate) type Workload<'a> = (u64, Box<dyn FnMut() -> u64 + 'a>);

/// Nanoseconds per unit of each workload, `(units per call, the workload)`: medians over `runs`
/// runs (after a warm-up), each run calling every workload once, starting one further along
/// each time. A machine whose speed drifts over the seconds of a table then slows every
/// workload alike, and ratios between them (a spread across sizes, asynq against a baseline)
/// are taken from samples of the same moments.
pub(crate) fn ns_interleaved(runs: usize, workloads: &mut [Workload<'_>]) -> Vec<f64> {
    let n = workloads.len();
    let mut samples = vec![Vec::with_capacity(runs); n];
    for run in 0..=runs {
        for i in 0..n {
            let which = (run + i) % n;
            let (units, workload) = &mut workloads[which];
            let start = Clock::start();
            let out = workload();
            let ns = start.elapsed().as_secs_f64() * 1e9 / *units as f64;
            std::hint::black_box(out);
            if run > 0 {
                samples[which].push(ns);
            }
        }
    }
    samples.into_iter().map(median).collect()
}

/// Nanoseconds per unit of one run of `task`, `units` units per run.
pub(crate) fn ns_per<Y>(rt: &Runtime, runs: usize, units: u64, task: impl Fn() -> Y) -> f64
where
    Y: Yieldable<Output = u64>,
{
    median_of(runs, || {
        let start = Clock::start();
        let out = rt.run(task()).expect("the run succeeds");
        let ns = start.elapsed().as_secs_f64() * 1e9;
        std::hint::black_box(out);
        ns / units as f64
    })
}
