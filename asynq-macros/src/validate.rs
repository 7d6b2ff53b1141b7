//! Signature checks: qualifiers that a lazy task cannot keep.
//!
//! Each mistake is reported on the offending token and the token is removed, so that the
//! function is still emitted and the error is the only one.

use syn::Signature;

use crate::error::Errors;

/// Report and remove `async`, `const`, `extern "ABI"` and `...`.
pub(crate) fn signature(sig: &mut Signature, errors: &mut Errors) {
    if let Some(token) = sig.asyncness.take() {
        errors.spanned(
            token,
            "`async fn` cannot be #[asynq]; remove `async`, the function is resumable already",
        );
    }
    if let Some(token) = sig.constness.take() {
        errors.spanned(
            token,
            "`const fn` cannot be #[asynq]; remove `const`, a task is built at run time",
        );
    }
    if let Some(abi) = sig.abi.take() {
        let written = crate::code::code(&abi);
        errors.spanned(
            abi,
            format!("an `extern` fn cannot be #[asynq]; remove `{written}`, foreign code cannot await a task"),
        );
    }
    if let Some(variadic) = sig.variadic.take() {
        errors.spanned(
            variadic,
            "a variadic fn cannot be #[asynq]; take a slice or a `Vec` instead",
        );
    }
}
