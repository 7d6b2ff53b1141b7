//! `#[asynq(memo)]`: calls with equal arguments share one execution per run.
//!
//! The arguments are cloned into the memo key before the body takes them (`check_key`, which
//! also type-erases them, so that the shared execution carries no trait bounds and a bad
//! argument type is reported once, on the argument), and the function is
//! identified by a marker type declared in its body together with its type parameters (so
//! `f::<A>` and `f::<B>` have tables of their own). Each argument and the output are checked
//! where they are written, so that a type that cannot be a key (or be shared) is reported on
//! its own tokens.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Pat, ReceiverKind, Signature, Type};

use crate::error::Errors;

/// What the expansion adds for a memoized function.
pub(crate) struct Memo {
    /// Statements run when the function is called: checks, and the key.
    pub(crate) prelude: TokenStream,
    /// The type naming the function's memo table.
    pub(crate) id: TokenStream,
}

/// Input:  fn f<T>(a: A, b: B) -> O
/// Output: fn f<T: 'static>(a: A, b: B) -> O
///         prelude: struct __AsynqMemo;
///                  let __asynq_memo_key = vec![check_key(&a), check_key(&b)];
///                  let __asynq_memo_share = check_output::<O>().failures(..);
///         id:      (__AsynqMemo, fn() -> (T,))
pub(crate) fn prepare(
    sig: &mut Signature,
    krate: &syn::Path,
    output: &Type,
    errors: &mut Errors,
) -> Memo {
    let mut keys = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if matches!(receiver.kind, ReceiverKind::Reference(..)) => errors.spanned(
                receiver,
                "#[asynq(memo)] keys each call on its arguments, and a borrowed `self` cannot be \
                 kept as a key; take `self` by value (a cheap clone or an `Arc`), or remove `memo`",
            ),
            FnArg::Receiver(receiver) => {
                let span = receiver.self_token.span;
                keys.push(quote_spanned!(span=> #krate::__private::check_key(&self)));
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(binding) if binding.by_ref.is_none() && binding.subpat.is_none() => {
                    let ident = &binding.ident;
                    let span = typed.ty.span();
                    keys.push(quote_spanned!(span=> #krate::__private::check_key(&#ident)));
                }
                pattern => errors.spanned(
                    pattern,
                    "#[asynq(memo)] keys each call on its arguments by name; bind this argument \
                     to a name and destructure it in the body",
                ),
            },
        }
    }
    let output_span = output.span();
    let share = quote_spanned!(Span::mixed_site()=> __asynq_memo_share);
    let check_output = quote_spanned!(output_span=> #krate::__private::check_output::<#output>());
    // Type parameters name the table, so they must be 'static (as memo keys are). The bound
    // goes on the parameter itself: a `where` clause next to inline bounds trips clippy.
    let mut params = Vec::new();
    for param in &mut sig.generics.params {
        if let GenericParam::Type(param) = param {
            param.bounds.push(syn::parse_quote!('static));
            let ident = &param.ident;
            params.push(quote!(#ident));
        }
    }
    let marker = quote_spanned!(Span::mixed_site()=> __AsynqMemo);
    let key = quote_spanned!(Span::mixed_site()=> __asynq_memo_key);
    // How to tell a failed execution (not kept): `MemoFailure::is_failure` where the output
    // implements it, else never (autoref specialization: see asynq_core's memo.rs).
    let failures = quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{FailureByTrait as _, FailureNever as _};
        (&&::core::marker::PhantomData::<#output>).asynq_memo_failure()
    }};
    let prelude = quote! {
        struct #marker;
        let #key = ::std::vec![#(#keys),*];
        let #share = #check_output.failures(#failures);
    };
    let id = quote!((#marker, fn() -> (#(#params,)*)));
    Memo { prelude, id }
}

/// Input:  future
/// Output: ::asynq_core::__private::memo::<id, _>(__asynq_memo_key, __asynq_memo_share, future)
pub(crate) fn wrap(memo: &Memo, krate: &syn::Path, future: TokenStream) -> TokenStream {
    let id = &memo.id;
    let key = quote_spanned!(Span::mixed_site()=> __asynq_memo_key);
    let share = quote_spanned!(Span::mixed_site()=> __asynq_memo_share);
    quote!(#krate::__private::memo::<#id, _>(#key, #share, #future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_on_every_named_argument_and_bounds_type_parameters() {
        let mut sig: Signature =
            syn::parse_quote!(fn f<T: Clone>(self, a: u32, mut b: T) -> String);
        let krate: syn::Path = syn::parse_quote!(::asynq_core);
        let output: Type = syn::parse_quote!(String);
        let mut errors = Errors::default();
        let memo = prepare(&mut sig, &krate, &output, &mut errors);
        assert!(errors.into_compile_errors().is_empty());
        let prelude = memo.prelude.to_string();
        assert!(prelude.contains("check_key (& self)"), "{prelude}");
        assert!(prelude.contains("check_key (& b)"), "{prelude}");
        assert!(prelude.contains("check_key (& a)"), "{prelude}");
        assert!(
            prelude.contains("check_output :: < String > ()"),
            "{prelude}"
        );
        assert!(memo.id.to_string().contains("fn () -> (T ,)"));
        let sig = quote!(#sig).to_string();
        assert!(sig.contains("< T : Clone + 'static >"), "{sig}");
    }

    #[test]
    fn rejects_borrowed_self_and_patterns() {
        let mut sig: Signature = syn::parse_quote!(fn f(&self, (a, b): (u32, u32)) -> u32);
        let krate: syn::Path = syn::parse_quote!(::asynq_core);
        let mut errors = Errors::default();
        prepare(&mut sig, &krate, &syn::parse_quote!(u32), &mut errors);
        let text = errors.into_compile_errors().to_string();
        assert!(
            text.contains("a borrowed `self` cannot be kept as a key"),
            "{text}"
        );
        assert!(text.contains("bind this argument to a name"), "{text}");
    }
}
