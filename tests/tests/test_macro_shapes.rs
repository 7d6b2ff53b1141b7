//! Robustness of `#[asynq]`: the odd shapes of function the macro claims to support,
//! compiled and run, each result checked. (`test_signatures.rs` has the everyday shapes.)
//!
//! The file shadows what a careless expansion would name by a relative path: a local `core`
//! module, `Result`, `Option`, `Future`, `Box`, `Task` and `Vec` aliases.

#![allow(dead_code, reason = "some shapes exist only to be compiled")]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::Arc;

use asynq_core::{BoxFuture, DataSource, Error, Runtime, asynq, ready};

// Expansions must use absolute paths only.
mod core {}
mod std_shadow {
    pub(crate) type Future = ();
}
#[allow(
    unused_imports,
    reason = "shadows the prelude's names for the expansions"
)]
use std_shadow::Future;
type Result<T, E = Error> = ::core::result::Result<T, E>;
type Task = ();
struct Box;
struct Option;
struct Vec;

/// `k -> 10 k`.
struct Kv;

impl DataSource for Kv {
    type Key = u64;
    type Value = u64;
    type Error = ::std::convert::Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<::std::vec::Vec<(u64, u64)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, 10 * k)).collect())
    }
}

/// `k -> "name{k}"`.
struct Names;

impl DataSource for Names {
    type Key = u64;
    type Value = String;
    type Error = ::std::convert::Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<::std::vec::Vec<(u64, String)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, format!("name{k}"))).collect())
    }
}

fn rt() -> Runtime {
    Runtime::new().with_source(Kv).with_source(Names)
}

#[asynq]
fn get(k: u64) -> Result<u64> {
    Kv::load(k).await
}

// --- Generic over the data source itself, through associated types.

#[asynq]
fn load_from<S>(key: S::Key) -> Result<S::Value>
where
    S: DataSource,
    S::Value: Display,
{
    S::load(key).await
}

#[test]
fn generic_over_the_source() {
    let (a, b) = rt()
        .run((load_from::<Kv>(3), load_from::<Names>(4)))
        .unwrap();
    assert_eq!((a.unwrap(), b.unwrap().as_str()), (30, "name4"));
}

// --- Const generics and awaited arrays.

#[asynq]
fn sum_array<const N: usize>(keys: [u64; N]) -> Result<u64> {
    let loads: [_; N] = keys.map(Kv::load);
    let values = loads.await;
    values.into_iter().sum()
}

#[test]
fn const_generics_and_arrays() {
    let rt = rt();
    assert_eq!(rt.run(sum_array([1, 2, 3])).unwrap(), 60);
    assert_eq!(rt.last_stats().calls(), 1);
    assert_eq!(rt.run(sum_array::<0>([])).unwrap(), 0);
}

// --- `impl Trait` in return position, `dyn` and closure arguments.

#[asynq]
fn shown(k: u64) -> impl Display {
    let v = get(k).await.unwrap_or_default();
    format!("<{v}>")
}

#[asynq]
fn mapped(k: u64, f: &dyn Fn(u64) -> u64, g: impl Fn(u64) -> u64 + Send) -> Result<u64> {
    Ok(g(f(get(k).await?)))
}

#[asynq]
fn show_twice(k: u64) -> String {
    let (a, b) = (shown(k), shown(k + 1)).await;
    format!("{a}{b}")
}

#[test]
fn impl_trait_output_and_function_arguments() {
    let rt = rt();
    assert_eq!(rt.run(show_twice(2)).unwrap(), "<20><30>");
    let double = |x| 2 * x;
    assert_eq!(rt.run(mapped(2, &double, |x| x + 1)).unwrap(), 41);
}

// --- Receivers: `&mut self`, `mut self`, `self: Arc<Self>`, `self: ::std::boxed::Box<Self>`,
// generic impl blocks with generic methods and `where` clauses on both.

struct Counter<T> {
    hits: u64,
    tag: T,
}

impl<T> Counter<T>
where
    T: Clone + Display + Send + Sync,
{
    #[asynq]
    fn bump(&mut self, k: u64) -> Result<u64> {
        self.hits += get(k).await?;
        Ok(self.hits)
    }

    #[asynq]
    fn consume(mut self, k: u64) -> Result<String> {
        self.hits += get(k).await?;
        Ok(format!("{}:{}", self.tag, self.hits))
    }

    #[asynq]
    fn shared(self: Arc<Self>, k: u64) -> Result<String> {
        let v = get(k).await?;
        Ok(format!("{}+{v}", self.tag))
    }

    #[asynq]
    fn boxed_self(self: ::std::boxed::Box<Self>) -> String {
        self.tag.to_string()
    }

    #[asynq]
    fn convert<U>(&self, k: u64) -> Result<U>
    where
        U: From<u64>,
    {
        Ok(U::from(get(k).await? + self.hits))
    }
}

#[test]
fn receivers_and_generic_impls() {
    let rt = rt();
    let mut c = Counter { hits: 1, tag: "t" };
    assert_eq!(rt.run(c.bump(2)).unwrap(), 21);
    assert_eq!(rt.run(c.bump(1)).unwrap(), 31);
    let wide: u128 = rt.run(c.convert::<u128>(1)).unwrap();
    assert_eq!(wide, 41);
    assert_eq!(rt.run(c.consume(3)).unwrap(), "t:61");
    let shared = Arc::new(Counter { hits: 0, tag: 7 });
    assert_eq!(rt.run(Arc::clone(&shared).shared(5)).unwrap(), "7+50");
    let boxed = ::std::boxed::Box::new(Counter { hits: 0, tag: 'x' });
    assert_eq!(rt.run(boxed.boxed_self()).unwrap(), "x");
}

// --- Traits: generic methods with defaults, blanket impls, `Self` in bodies.

trait Lookup {
    fn base(&self) -> u64;

    #[asynq]
    fn lookup(&self, offset: u64) -> Result<u64> {
        get(self.base() + offset).await
    }

    #[asynq]
    fn lookup_both<O: Lookup + Sync>(&self, other: &O) -> Result<u64>
    where
        Self: Sync,
    {
        let (a, b) = (self.lookup(0), other.lookup(0)).await;
        Ok(a? + b?)
    }
}

impl<T: AsRef<[u64]>> Lookup for T {
    fn base(&self) -> u64 {
        self.as_ref().iter().sum()
    }
}

#[test]
fn trait_defaults_and_blanket_impls() {
    let rt = rt();
    assert_eq!(rt.run([1u64, 2].lookup(1)).unwrap(), 40);
    assert_eq!(rt.run([1u64].lookup_both(&[2u64, 3])).unwrap(), 60);
    assert_eq!(rt.last_stats().calls(), 1);
}

// --- Recursion, `Send` and not.

fn fib_boxed(n: u64) -> asynq_core::Task<BoxFuture<'static, Result<u64>>> {
    fib(n).boxed()
}

#[asynq]
fn fib(n: u64) -> Result<u64> {
    if n < 2 {
        return get(n).await.map(|v| v / 10);
    }
    let (a, b) = (fib_boxed(n - 1), fib_boxed(n - 2)).await;
    Ok(a? + b?)
}

#[asynq]
fn depth(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1 + depth(n - 1).boxed_local().await
    }
}

/// `boxed`: the function returns a concrete, `Send` task type, so it may call itself.
#[asynq(boxed)]
fn fib_self(n: u64) -> Result<u64> {
    if n < 2 {
        return get(n).await.map(|v| v / 10);
    }
    let (a, b) = (fib_self(n - 1), fib_self(n - 2)).await;
    Ok(a? + b?)
}

/// Independent awaits one after another, on purpose: two rounds, no warning.
#[asynq(allow_sequential, crate = "::asynq_core")]
fn two_rounds(a: u64, b: u64) -> Result<u64> {
    let x = get(a).await?;
    let y = get(b).await?;
    Ok(x + y)
}

#[test]
fn recursion() {
    let rt = rt();
    assert_eq!(rt.run(fib(10)).unwrap(), 55);
    assert_eq!(rt.last_stats().rounds, 1, "every leaf asks in round 1");
    assert_eq!(rt.run(fib_self(10)).unwrap(), 55);
    assert_eq!(rt.last_stats().rounds, 1);
    assert_eq!(rt.run(two_rounds(1, 2)).unwrap(), 30);
    assert_eq!(rt.last_stats().rounds, 2);
    assert_send(&fib_self(3));
    assert_eq!(rt.run(depth(50)).unwrap(), 50);
    assert_send(&fib(3));
}

fn assert_send<T: Send>(_: &T) {}

// --- Control flow around awaits.

#[asynq]
fn control_flow(k: u64) -> Result<u64> {
    // `let else`.
    let Ok(first) = get(k).await else {
        return Ok(0);
    };
    // A labeled block with a break value.
    let picked = 'pick: {
        if first > 100 {
            break 'pick get(1).await?;
        }
        get(2).await?
    };
    // `while let` whose condition awaits.
    let mut n = 0;
    let mut sum = 0;
    while let Some(v) = Some(get(n).await?).filter(|v| *v < 40) {
        sum += v;
        n += 1;
    }
    // A `match` on an awaited value with awaits in its arms.
    let tail = match get(3).await? {
        30 => get(4).await?,
        _ => unreachable!(),
    };
    // Chained awaits, method calls on an awaited value, awaits inside macros.
    let chained = get(get(1).await? / 10).await?.to_string().len() as u64;
    let listed = format!("{}-{}", get(5).await?, ready(6).await);
    assert_eq!(listed, "50-6");
    assert!(matches!(get(7).await, Ok(70)));
    Ok(first + picked + sum + tail + chained)
}

#[test]
fn awaits_in_every_position() {
    assert_eq!(rt().run(control_flow(1)).unwrap(), 10 + 20 + 60 + 40 + 2);
}

// --- Awaits in expression positions: match guards, let chains, repeat expressions, struct
// literals, ranges, casts, indices, unary operators, `unsafe` blocks.

struct Pair {
    a: u64,
    b: u64,
}

// One await per position, on purpose: the positions are the shapes under test, so the
// sequential-awaits warning (which would batch the independent ones) is off.
#[asynq(allow_sequential)]
#[allow(
    unused_unsafe,
    reason = "an `unsafe` block around an await is the shape under test"
)]
fn expression_positions(k: u64) -> Result<i64> {
    let guard = match k {
        x if get(x).await? > 5 => 1,
        _ => 2,
    };
    let chained = if let Ok(v) = get(1).await
        && let Ok(w) = get(v / 10 + 1).await
    {
        w
    } else {
        0
    };
    let repeated = [get(2).await?; 3];
    let pair = Pair {
        a: get(3).await?,
        b: get(4).await?,
    };
    let range = get(5).await?..get(6).await?;
    let cast = get(7).await? as u32;
    let index = [1u64, 2, 3][get(0).await? as usize];
    let negated = -(get(8).await? as i64);
    // SAFETY: nothing unsafe happens; the block only puts an await inside `unsafe`.
    let in_unsafe = unsafe { get(9).await? };
    let sum = guard + chained + repeated.iter().sum::<u64>() + pair.a + pair.b;
    let sum = sum + range.start + range.end + u64::from(cast) + index + in_unsafe;
    Ok(sum as i64 + negated)
}

#[test]
fn awaits_in_expression_positions() {
    let expected = 1 + 20 + 60 + 30 + 40 + 50 + 60 + 70 + 1 + 90 - 80;
    assert_eq!(rt().run(expression_positions(1)).unwrap(), expected);
}

// --- Hygiene: names the expansion uses are the user's to use too.

#[asynq]
fn hygiene(__asynq_ret: u64) -> Result<u64> {
    let into_future = 1;
    let new_task = 2;
    let __asynq_inner = get(__asynq_ret).await?;
    Ok(__asynq_inner + into_future + new_task)
}

#[test]
fn generated_names_do_not_clash_with_the_users() {
    assert_eq!(rt().run(hygiene(4)).unwrap(), 43);
}

// --- Nested collections awaited at once, in one round.

#[asynq]
fn nested_collections() -> Result<u64> {
    let map: HashMap<&str, _> = HashMap::from([("a", get(1)), ("b", get(2))]);
    let tree: BTreeMap<u64, _> = (3..5).map(|k| (k, (get(k), Names::load(k)))).collect();
    let (map, tree, maybe, none, nested) = (
        map,
        tree,
        Some(get(5)),
        None::<asynq_core::Load<Kv>>,
        ::std::vec![(get(6), [get(7), get(8)])],
    )
        .await;
    assert!(none.is_none());
    let mut total = map["a"].clone()? + map["b"].clone()? + maybe.unwrap()?;
    for (k, (v, name)) in tree {
        total += v?;
        assert_eq!(name?, format!("name{k}"));
    }
    for (a, [b, c]) in nested {
        total += a? + b? + c?;
    }
    Ok(total)
}

#[test]
fn nested_collections_run_in_one_round() {
    let rt = rt();
    assert_eq!(
        rt.run(nested_collections()).unwrap(),
        10 * (1..=8).sum::<u64>()
    );
    assert_eq!(rt.last_stats().rounds, 1);
    assert_eq!(rt.last_stats().calls(), 2, "one call per source");
}

// --- Items nested in the body, including another asynq function; attributes everywhere.

#[asynq]
#[inline]
#[allow(clippy::needless_return, reason = "the shape under test")]
/// Docs after other attributes.
pub(crate) fn with_items(#[allow(unused_variables)] unused: u8, k: u64) -> Result<u64> {
    const OFFSET: u64 = 1;

    #[asynq]
    fn inner(k: u64) -> Result<u64> {
        get(k + OFFSET).await
    }

    struct Local(u64);
    impl Local {
        fn value(&self) -> u64 {
            self.0
        }
    }
    let plain = |x: u64| x * 2; // a closure without awaits is fine
    let v = inner(k).await?;
    return Ok(plain(Local(v).value()));
}

#[test]
fn items_and_attributes_in_and_on_the_function() {
    assert_eq!(rt().run(with_items(0, 1)).unwrap(), 40);
}

// --- Errors converted by `?` into the function's own error type.

#[derive(Debug, PartialEq)]
enum PageError {
    Fetch(String),
    Invalid(u64),
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError::Fetch(e.to_string())
    }
}

#[asynq]
fn own_error(k: u64) -> Result<u64, PageError> {
    let v = get(k).await?;
    if v > 50 {
        return Err(PageError::Invalid(v));
    }
    Ok(v)
}

#[test]
fn question_mark_converts_into_the_functions_error() {
    let rt = rt();
    assert_eq!(rt.run(own_error(2)), Ok(20));
    assert_eq!(rt.run(own_error(9)), Err(PageError::Invalid(90)));
}

// --- An unsafe function, a unit function and a function returning a tuple.

/// # Safety
///
/// `p` must point to a live `u64`.
#[asynq]
unsafe fn read_then_get(p: *const u64) -> Result<u64> {
    // SAFETY: the caller promises that `p` points to a live `u64`.
    let k = unsafe { *p };
    get(k).await
}

#[asynq]
fn unit_and_tuple(k: u64) -> (u64, ()) {
    (get(k).await.unwrap(), ())
}

#[test]
fn unsafe_unit_and_tuple_outputs() {
    let rt = rt();
    let k = 3u64;
    // SAFETY: `k` lives until the end of the test.
    let task = unsafe { read_then_get(&k) };
    assert_eq!(rt.run(task).unwrap(), 30);
    assert_eq!(rt.run(unit_and_tuple(2)).unwrap(), (20, ()));
}

// --- A re-exporting crate: `#[asynq(crate = "...")]`.

mod facade {
    pub(crate) use ::asynq_core as engine;
}

#[asynq(crate = "crate::facade::engine")]
fn through_facade(k: u64) -> Result<u64> {
    get(k).await
}

#[test]
fn crate_path_option() {
    assert_eq!(rt().run(through_facade(4)).unwrap(), 40);
}

/// `break 'label value.await`: the rewritten operand once started with `::asynq_core`, and
/// `break 'label ::..` re-parsed as the label definition `'label: ..` (the macro panicked).
#[asynq]
fn labeled_break_with_an_awaited_value(k: u64) -> Result<u64> {
    let mut tries = 0;
    'outer: loop {
        tries += 1;
        if tries == 2 {
            break 'outer get(k).await;
        }
    }
}

#[test]
fn a_labeled_break_takes_an_awaited_value() {
    assert_eq!(
        rt().run(labeled_break_with_an_awaited_value(3)).unwrap(),
        30
    );
}
