//! Writes `$OUT_DIR/batch_programs.rs`: random asynq programs for `tests/test_batch_programs.rs`.
//!
//! `#[asynq(batch)]` rewrites code at compile time, so a property test of it needs programs
//! that are compiled: this script generates them, from a seed (`ASYNQ_BATCH_SEED`, 1 by
//! default; set it to explore other programs). Each program is one asynq function written
//! with sequential awaits: fetches bound by `let` (with `?` or a default), two fetches in one
//! expression, plain computations, side effects logged between the awaits, `for` loops with
//! a fetch per iteration (independent, or needing a value of the iteration), an `if` whose
//! block fetches twice, and fetches whose key is computed from an earlier fetch's value. The
//! text is instantiated twice (`allow_sequential`, and `batch`), and `check_all` runs every
//! program both ways on the given keys through the test's `check`, and adds up their rounds.
//!
//! A program marked independent fetches only keys given as arguments, outside any `if`: the
//! batch rewrite must run it in exactly one round.

use std::fmt::Write as _;

/// Programs generated.
const PROGRAMS: usize = 48;

/// xorshift64*: enough randomness for program shapes, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The text of one program, as it is being written.
struct Program {
    body: String,
    /// The `i64` values bound so far, by name.
    values: Vec<String>,
    /// The next value's number.
    next: usize,
    /// Vectors of keys not yet looped over (`ks0`, `ks1`).
    lists: Vec<&'static str>,
    /// Whether every key is an argument.
    independent: bool,
    /// The operands fetched so far.
    fetched: Vec<String>,
}

impl Program {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// A key: an argument, or (sometimes, if `dependent` is allowed) computed from an
    /// earlier value.
    fn key(&self, rng: &mut Rng, dependent: bool) -> String {
        if dependent && !self.values.is_empty() && rng.chance(40) {
            let v = &self.values[rng.below(self.values.len())];
            return format!("key({v})");
        }
        ["k0", "k1", "k2"][rng.below(3)].to_owned()
    }

    /// A fetch's awaited value: `?` applied, or a default for a missing key.
    ///
    /// In an independent program each fetch is of its own source and key: an operand that
    /// repeats another is left for after it (docs/batch.md), which is not what this program
    /// is about.
    fn fetch(&mut self, rng: &mut Rng, key: &str) -> String {
        let mut source = ["SrcA", "SrcB", "SrcC"][rng.below(3)];
        let mut key = key.to_owned();
        if self.independent {
            // Another source, or else another key: `k0 + 24` is another key of the stores.
            let base = key.clone();
            let mut tries = 0;
            while self.fetched.contains(&format!("{source}::load({key})")) {
                tries += 1;
                source = ["SrcA", "SrcB", "SrcC"][tries % 3];
                key = match tries / 3 {
                    0 => base.clone(),
                    n => format!("{base} + {}", 24 * n),
                };
            }
        }
        self.fetched.push(format!("{source}::load({key})"));
        match rng.chance(70) {
            true => format!("{source}::load({key}).await?"),
            false => format!("{source}::load({key}).await.unwrap_or(-1)"),
        }
    }

    fn log(&mut self, rng: &mut Rng, what: &str) {
        let shown = match self.values.is_empty() {
            true => "0".to_owned(),
            false => self.values[rng.below(self.values.len())].clone(),
        };
        let _ = writeln!(
            self.body,
            "    log.borrow_mut().push(format!(\"{what} {{}}\", {shown}));"
        );
    }
}

/// One program's function, and whether it is independent.
fn program(rng: &mut Rng, index: usize, independent: bool) -> String {
    let mut p = Program {
        body: String::new(),
        values: Vec::new(),
        next: 0,
        lists: vec!["ks0", "ks1"],
        independent,
        fetched: Vec::new(),
    };
    let statements = 3 + rng.below(6);
    for s in 0..statements {
        match rng.below(8) {
            // A fetch bound by `let` (the first statement always fetches).
            _ if s == 0 => {
                let (v, key) = (p.fresh("v"), p.key(rng, false));
                let fetch = p.fetch(rng, &key);
                let _ = writeln!(p.body, "    let {v} = {fetch};");
                p.values.push(v);
            }
            0 | 1 => {
                let (v, key) = (p.fresh("v"), p.key(rng, !independent));
                let fetch = p.fetch(rng, &key);
                let _ = writeln!(p.body, "    let {v} = {fetch};");
                p.values.push(v);
            }
            // Two fetches in one expression.
            2 => {
                let v = p.fresh("v");
                let (a, b) = (p.key(rng, !independent), p.key(rng, !independent));
                let (a, b) = (p.fetch(rng, &a), p.fetch(rng, &b));
                let _ = writeln!(p.body, "    let {v} = {a} * 2 + {b};");
                p.values.push(v);
            }
            // A plain computation from earlier values.
            3 => {
                let v = p.fresh("v");
                let a = &p.values[rng.below(p.values.len())];
                let b = &p.values[rng.below(p.values.len())];
                let _ = writeln!(p.body, "    let {v} = {a} * 3 - {b};");
                p.values.push(v);
            }
            // A side effect.
            4 => {
                let what = p.fresh("s");
                p.log(rng, &what);
            }
            // A loop with a fetch per iteration.
            5 if !p.lists.is_empty() => {
                let list = p.lists.remove(rng.below(p.lists.len()));
                let (items, v, step) = (p.fresh("l"), p.fresh("v"), p.fresh("i"));
                // Loops of one program share their binding's name, or not.
                let x = match rng.chance(50) {
                    true => "x".to_owned(),
                    false => p.fresh("x"),
                };
                let key = match (independent, rng.below(3)) {
                    // An iteration's own value: the loop stays sequential.
                    (false, 0) => {
                        let _ = writeln!(p.body, "    let mut {items} = Vec::new();");
                        let _ = writeln!(p.body, "    for {x} in {list} {{");
                        let _ = writeln!(p.body, "        let y = {x} + 1;");
                        "y".to_owned()
                    }
                    (false, 1) if !p.values.is_empty() => {
                        let outer = &p.values[rng.below(p.values.len())];
                        let _ = writeln!(p.body, "    let mut {items} = Vec::new();");
                        let _ = writeln!(p.body, "    for {x} in {list} {{");
                        format!("key({outer}) ^ {x}")
                    }
                    _ => {
                        let _ = writeln!(p.body, "    let mut {items} = Vec::new();");
                        let _ = writeln!(p.body, "    for {x} in {list} {{");
                        x.clone()
                    }
                };
                let _ = writeln!(
                    p.body,
                    "        log.borrow_mut().push(format!(\"{step} before {{{x}}}\"));"
                );
                let fetch = p.fetch(rng, &key);
                let _ = writeln!(p.body, "        let r = {fetch};");
                let _ = writeln!(
                    p.body,
                    "        log.borrow_mut().push(format!(\"{step} after {{{x}}} {{r}}\"));"
                );
                let _ = writeln!(p.body, "        {items}.push(r);");
                let _ = writeln!(p.body, "    }}");
                let _ = writeln!(p.body, "    let {v}: i64 = {items}.iter().sum();");
                p.values.push(v);
            }
            // An `if` whose block fetches twice (not in an independent program: its awaits
            // are merged within the block, not with those around it).
            6 if !independent => {
                let c = p.values[rng.below(p.values.len())].clone();
                let (a, b) = (p.key(rng, !independent), p.key(rng, false));
                let (a, b) = (p.fetch(rng, &a), p.fetch(rng, &b));
                let what = p.fresh("b");
                let _ = writeln!(p.body, "    if {c} % 2 == 0 {{");
                let _ = writeln!(p.body, "        let a = {a};");
                let _ = writeln!(p.body, "        let b = {b};");
                let _ = writeln!(
                    p.body,
                    "        log.borrow_mut().push(format!(\"{what} {{a}} {{b}}\"));"
                );
                let _ = writeln!(p.body, "    }}");
            }
            _ => {
                let (v, key) = (p.fresh("v"), p.key(rng, !independent));
                let fetch = p.fetch(rng, &key);
                let _ = writeln!(p.body, "    let {v} = {fetch};");
                p.values.push(v);
            }
        }
    }
    let values = p.values.join(", ");
    format!(
        "/// Program {index} (independent: {independent}).\n\
         #[asynq($($option)*)]\n\
         #[allow(deprecated)] // The sequential-awaits warning: sequential on purpose.\n\
         pub(crate) fn p{index}(log: Log, k0: u32, k1: u32, k2: u32, ks0: Vec<u32>, ks1: Vec<u32>) \
         -> Result<Vec<i64>, Error> {{\n\
         let _ = (&log, k0, k1, k2, &ks0, &ks1);\n{}    Ok(vec![{values}])\n}}\n",
        p.body
    )
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=ASYNQ_BATCH_SEED");
    let seed = std::env::var("ASYNQ_BATCH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut functions = String::new();
    let mut checks = String::new();
    for index in 0..PROGRAMS {
        let independent = index % 2 == 0;
        functions.push_str(&program(&mut rng, index, independent));
        let _ = writeln!(
            checks,
            "    let (p, b) = check(\"p{index}\", {independent}, keys, \
             |log, k: &Keys| plain::p{index}(log, k.k[0], k.k[1], k.k[2], k.ks[0].clone(), k.ks[1].clone()), \
             |log, k: &Keys| batched::p{index}(log, k.k[0], k.k[1], k.k[2], k.ks[0].clone(), k.ks[1].clone()))?;\n    rounds.0 += p;\n    rounds.1 += b;"
        );
    }
    let out = format!(
        "// Generated by tests/build.rs (seed {seed}); see there.\n\
         macro_rules! generated {{\n    ($($option:tt)*) => {{\n\
         use asynq_core::{{asynq, DataSource, Error}};\n\
         use asynq_tests::program::{{SrcA, SrcB, SrcC}};\n\
         #[allow(unused_imports)]\n\
         use super::{{Log, key}};\n\
         {functions}\n    }};\n}}\n\n\
         mod plain {{\n    generated!(allow_sequential);\n}}\n\n\
         mod batched {{\n    generated!(batch);\n}}\n\n\
         /// The seed the programs were generated from.\n\
         const SEED: u64 = {seed};\n\n\
         /// Every program, run both ways on `keys` by `check`: the rounds of all, plain and batched.\n\
         fn check_all(keys: &Keys) -> Result<(usize, usize), TestCaseError> {{\n    let mut rounds = (0, 0);\n{checks}    Ok(rounds)\n}}\n"
    );
    let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{dir}/batch_programs.rs"), out).expect("OUT_DIR is writable");
}
