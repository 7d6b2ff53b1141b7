//! How the output of a run's root task becomes the `Result` that `Runtime::run` returns.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use crate::error::Error;

/// The output of a root task, as [`Runtime::run`](crate::Runtime::run) returns it.
///
/// A run can fail as a whole (it stalls, or it is nested in another run), so `run` returns a
/// `Result`. When the root task already returns `Result<T, E>`, the run's own errors are
/// converted into `E` and `run` returns that same `Result<T, E>`: write
/// `let page = rt.run(render(4))?;` and get the page. Any other output `T` (strings, numbers,
/// collections, tuples, ...) comes back as `Result<T, asynq_core::Error>`.
///
/// For your own output types, return `Result<MyType, E>` from the root task, or implement
/// this trait with [`impl_run_output!`](crate::impl_run_output).
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, Error, Runtime};
///
/// #[asynq]
/// fn checked(x: u32) -> Result<u32, Error> {
///     Ok(x + 1)
/// }
///
/// #[asynq]
/// fn plain(x: u32) -> u32 {
///     x + 1
/// }
///
/// let rt = Runtime::new();
/// let a: u32 = rt.run(checked(1))?; // the task's own Result, flattened
/// let b: u32 = rt.run(plain(1))?; // Result<u32, Error>
/// assert_eq!(a, b);
/// # Ok::<(), Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "a run cannot return `{Self}` as it is",
    label = "the root task's output must be a `Result` or implement `RunOutput`",
    note = "return `Result<{Self}, asynq_core::Error>` from the root task, or implement `RunOutput` for `{Self}` with `asynq_core::impl_run_output!`",
    note = "a root task returning `Result<T, E>` needs `E: From<asynq_core::Error>`"
)]
pub trait RunOutput: Sized {
    /// What a successful run returns.
    type Value;
    /// What a failed run returns; the run's own failures convert into it.
    type Error: From<Error>;
    /// Split the output into the run's result.
    fn into_run_result(self) -> Result<Self::Value, Self::Error>;
}

impl<T, E: From<Error>> RunOutput for Result<T, E> {
    type Value = T;
    type Error = E;
    fn into_run_result(self) -> Self {
        self
    }
}

/// Implement [`RunOutput`] for types that a root task returns as plain values: `run` then
/// returns `Result<T, asynq_core::Error>`.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, impl_run_output, Runtime};
///
/// #[derive(Debug, PartialEq)]
/// struct Page(String);
/// impl_run_output!(Page);
///
/// #[asynq]
/// fn page() -> Page {
///     Page("hi".into())
/// }
///
/// assert_eq!(Runtime::new().run(page()).unwrap(), Page("hi".into()));
/// ```
#[macro_export]
macro_rules! impl_run_output {
    ($($ty:ty),+ $(,)?) => {$(
        impl $crate::RunOutput for $ty {
            type Value = Self;
            type Error = $crate::Error;
            fn into_run_result(self) -> ::core::result::Result<Self, $crate::Error> {
                ::core::result::Result::Ok(self)
            }
        }
    )+};
}

macro_rules! plain_generic {
    ($([$($g:tt)*] $ty:ty),+ $(,)?) => {$(
        impl<$($g)*> RunOutput for $ty {
            type Value = Self;
            type Error = Error;
            fn into_run_result(self) -> Result<Self, Error> {
                Ok(self)
            }
        }
    )+};
}

impl_run_output!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    Cow<'static, str>
);

plain_generic!(
    [T] Vec<T>,
    [T] VecDeque<T>,
    [T] Option<T>,
    [T: ?Sized] Box<T>,
    [T: ?Sized] Arc<T>,
    [T: ?Sized] Rc<T>,
    [T, const N: usize] [T; N],
    [K, V, S] HashMap<K, V, S>,
    [K, V] BTreeMap<K, V>,
    [T, S] HashSet<T, S>,
    [T] BTreeSet<T>,
);

macro_rules! plain_tuples {
    ($(($($T:ident),+)),+) => {$(
        impl<$($T),+> RunOutput for ($($T,)+) {
            type Value = Self;
            type Error = Error;
            fn into_run_result(self) -> Result<Self, Error> {
                Ok(self)
            }
        }
    )+};
}

plain_tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
    (A, B, C, D, E, F, G, H, I),
    (A, B, C, D, E, F, G, H, I, J),
    (A, B, C, D, E, F, G, H, I, J, K),
    (A, B, C, D, E, F, G, H, I, J, K, L)
);
