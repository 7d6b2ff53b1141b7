//! Error collection: report every independent mistake at once (serde's `Ctxt`), each on the
//! tokens it is about.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The errors found so far; the expansion still emits the function, then these.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Record `error` next to the ones already found.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Record an error spanned from the first to the last of `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `compile_error!` invocations, one per error, or nothing.
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.combined
            .map(syn::Error::into_compile_error)
            .unwrap_or_default()
    }
}
