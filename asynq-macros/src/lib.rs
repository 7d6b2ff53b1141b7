//! The `#[asynq]` attribute of [asynq-core](https://docs.rs/asynq-core).
//!
//! Depend on `asynq-core`, which re-exports the attribute and holds the runtime that its
//! expansion names; this crate is an implementation detail.
//!
//! `expand` drives the expansion, in this order: `args` parses the options, `parse` and
//! `validate` accept the function, `boxed` and `memo` adjust the signature for their options,
//! `misuse` and `sequential` check the body, `rewrite` turns its awaits into yieldable
//! awaits, and `expand` writes the task around it (`code` prints tokens back as source for
//! the messages, `error` collects them).

#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

use proc_macro::TokenStream;

mod args;
mod batch;
mod boxed;
mod code;
mod error;
mod expand;
mod guards;
mod hoist;
mod independence;
mod loops;
mod memo;
mod misuse;
mod names;
mod parse;
mod recursion;
mod rewrite;
mod scan;
mod sequential;
mod typed;
mod validate;

/// Turn a function written as if sequential into a lazy asynq task.
///
/// `#[asynq] fn f(args) -> T { body }` becomes `fn f(args) -> Task<impl Future<Output = T>>`:
/// calling it runs nothing; the task runs when another asynq function awaits it or when a
/// `Runtime` runs it. Inside the body, `.await` takes tasks, fetch requests and collections of
/// them (see `asynq_core::Yieldable`); `return` and `?` work as in an ordinary function.
///
/// # Options
///
/// - `#[asynq(crate = "path")]`: the path of `asynq_core` when it is re-exported or renamed
///   (`crate = "my_crate::asynq"`).
/// - `#[asynq(boxed)]`: the task's future is boxed, `Task<BoxFuture<'_, T>>`. A function
///   that awaits a task of its own call needs it (or that call `.boxed_local()`): a task
///   cannot contain itself. Tasks collected into a `Vec` need no box: they live in the
///   `Vec`'s heap buffer, not in the task. The boxed task is `Send`, so
///   the body must not hold non-`Send` values across an await; for those, leave `boxed` out
///   and await `f(..).boxed_local()` at the recursive call instead. The output type must be
///   nameable (not `impl Trait`). On a trait method (declaration and implementations alike)
///   it also makes the trait usable as `dyn Trait`.
/// - `#[asynq(memo)]`: within one run, calls with equal arguments (under the same scoped
///   values) share one execution and every caller gets a clone of its output (Python asynq's
///   `deduplicate`, Haxl's `memo`).
///   Each argument must be `Hash + Eq + Clone + Send + 'static` (a memo key), bound to a name,
///   and `self`, if any, taken by value; the output must be `Clone + Send + 'static`; type
///   parameters get a `'static` bound. Each violation is a compile error on the argument or
///   output it is about. A failed execution (an `Err`, or a failure by the output type's
///   `asynq_core::MemoFailure`) is not kept: the calls that waited on it get the error, and
///   the next call runs the body again.
/// - `#[asynq(batch)]`: await together the awaits the macro can prove independent:
///   consecutive `let`s whose awaited operands do not use what the earlier ones bound,
///   awaits within one expression (operands, fields, arguments), and `for` loops whose
///   iterations are independent (every iteration's task is built in a first pass and they
///   are awaited together; the bodies then run in order with their results); nested, inner
///   blocks first. Results, the first error in program order (`?` stays where each await
///   was) and the side effects of the other code in program order are those of the code
///   as written; the operands of merged awaits (and a batched loop's iterator) are
///   evaluated earlier, at the first await they are merged with. What cannot be proven
///   independent from the syntax stays sequential, and the sequential-awaits warning still
///   reports it. The rules: `docs/batch.md` of the repository.
/// - `#[asynq(allow_sequential)]`: do not warn about independent sequential awaits.
///
/// # Mistakes reported at compile time
///
/// - On anything but a function; on an `async`, `const`, `extern` or variadic function.
/// - Unknown, duplicated or malformed options.
/// - Awaiting anything but a task, a fetch request or a collection of them (through the
///   `Yieldable` trait's diagnostic).
/// - Python-style `yield x`: write `x.await`.
/// - `.await` inside a plain closure: a closure cannot suspend the task.
/// - Blocking on a run inside the body: `rt.run(..)`, `block_on(..)`, `rt.run_async(..)`,
///   `Runtime::run(..)`. The check is syntactic: a method of another type named `run` that
///   takes one argument is reported too (unless its result is awaited, as an asynq method's
///   is); call such a method by its path, `Engine::run(&engine, x)`. A run hidden in a
///   helper function is not seen here; `Runtime::run` then fails at run time with
///   `Error::NestedRun` (which is also how a test exercises that check on purpose).
/// - A task of the function's own call (`f(..)`, `Self::f(..)`, `self.f(..)`, or `g(..)`
///   after `let g = f;`) held inside its task without `#[asynq(boxed)]` or `.boxed_local()`:
///   awaited, alone or in a tuple, array, struct, `Some`/`Ok`/`Err`, or bound by `let`;
///   reported once per function. Not in a `Vec` (`vec![f(a), f(b)]`, `.map(f).collect()`),
///   nor given to another function. And `.boxed()` on such a call, which cannot prove `Send`
///   for a type that contains itself. Recursion through another function (`a` calls `b`, `b`
///   calls `a`) is left to rustc: "recursion in an async block requires boxing", whose last
///   note names the macro `unboxed_task_use_asynq_boxed_to_recurse`: put `#[asynq(boxed)]`
///   on one of them.
/// - A `RefCell` borrow or a lock guard bound by `let` (`let g = x.borrow_mut();`,
///   `x.lock().unwrap()`, `x.read()`, `x.write()`, ...) still alive at a later `.await` of its
///   block: another task that borrows or locks it meanwhile panics or deadlocks. Syntactic:
///   a `let` that writes a type other than a guard's is not reported; temporaries are left
///   to clippy's `await_holding_refcell_ref` and `await_holding_lock`.
/// - Through type checks whose messages the macro sets up (rustc's alone say nothing of
///   tasks): `?` applied to a task (every `x?` whose `x` is not an `.await` is checked, as
///   the identity for the types `?` applies to); an awaited `vec![..]`, array, `if` or
///   `match` whose elements or arms are tasks of different functions (checked where they are
///   calls of different functions). Outside asynq functions, asynq-core's own items report
///   a task awaited in a plain `async fn` or given to another executor, and `unwrap`, `map`,
///   `ok`, `len`, ... called on a task.
///
/// # The sequential-awaits warning
///
/// Independent awaits written one after another wait for a round each; awaited together
/// they share one. The macro warns (a `deprecated` warning, the only kind a macro can raise
/// on stable: "use of deprecated function `f::awaits_are_independent`: ..." with how to
/// batch them) on:
/// - awaits of one block whose operands do not use what the awaits before them bound or
///   changed: in consecutive statements (`let a = X.await; let b = Y.await;`), with
///   statements between them that use no result, several in one statement (operands,
///   struct literal fields, call arguments), or extending a result (`let mut v = xs.await;
///   v.extend(ys.await);`). No name is taken as `&mut` by one operand and mentioned by
///   another, and no operand contains another (awaiting the same expression twice is a
///   deliberate re-read). Awaits in arms, after `&&`/`||`, or whose result is dropped
///   (`check(x).await?;`, an ordering step) end a group; `ready(x)` is not counted;
/// - a `for`, `while` or `loop` whose body awaits (first, outside nested closures and loops)
///   an operand that no iteration's await can change ("iterations_are_independent"), and
///   whose `while` condition, or `loop`'s `if c { break; }` conditions, no await changes
///   either; not when the result is folded into a variable (`acc += X.await`), nor in loops
///   with `return`, `continue` or another `break`.
///
/// The check is syntactic and has false positives: a dependency through a side effect the
/// syntax does not show (a `&mut self` method, interior mutability), a deliberate order (an
/// access check before an expensive load), iterations that must run in order. Silence it
/// for one function with `#[asynq(allow_sequential)]`.
///
/// See the documentation of `asynq-core` for the model and examples.
#[proc_macro_attribute]
pub fn asynq(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::asynq(args.into(), input.into()).into()
}
