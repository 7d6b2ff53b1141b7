//! The `#[asynq]` attribute of [asynq-core](https://docs.rs/asynq-core).
//!
//! Depend on `asynq-core`, which re-exports the attribute and holds the runtime that its
//! expansion names; this crate is an implementation detail.

#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

use proc_macro::TokenStream;

mod args;
mod expand;
mod rewrite;

/// Turn a function written as if sequential into a lazy asynq task.
///
/// `#[asynq] fn f(args) -> T { body }` becomes `fn f(args) -> Task<impl Future<Output = T>>`:
/// calling it runs nothing; the task runs when another asynq function awaits it or when a
/// `Runtime` runs it. Inside the body, `.await` takes tasks, fetch requests and collections of
/// them (see `asynq_core::Yieldable`); `return` and `?` work as in an ordinary function.
///
/// Options:
/// - `#[asynq(crate = "path")]`: the path of `asynq_core` when it is re-exported or renamed.
///
/// See the documentation of `asynq-core` for the model and examples.
#[proc_macro_attribute]
pub fn asynq(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::asynq(args.into(), input.into()).into()
}
