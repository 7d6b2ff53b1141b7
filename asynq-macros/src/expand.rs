//! The expansion of `#[asynq]`: parse, check, rewrite, generate.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, Lifetime, ReturnType, Signature, Type};

use crate::error::Errors;
use crate::memo::{self, Memo};
use crate::rewrite::Awaits;
use crate::scan::Scan;
use crate::sequential::{self, Finding};
use crate::{args, batch, boxed, misuse, parse, typed, validate};

pub(crate) fn asynq(args: TokenStream, input: TokenStream) -> TokenStream {
    let tokens = input.clone();
    let mut function = match parse::function(input) {
        Ok(function) => function,
        Err(fallback) => return fallback,
    };
    let mut errors = Errors::default();
    let args = args::parse(args, &mut errors);
    validate::signature(function.sig_mut(), &mut errors);
    let krate = args.krate();
    let output = output_type(function.sig());
    let opaque_output = contains_impl_trait(&output);
    let name = function.sig().ident.clone();
    let boxed = match &args.boxed {
        Some(_) if opaque_output => {
            // A boxed future names its output type, and `impl Trait` cannot be named there.
            errors.spanned(
                &output,
                "#[asynq(boxed)] needs an output type it can name; \
                 write a concrete type or `Box<dyn Trait>` instead of `impl Trait`",
            );
            None
        }
        Some(_) => Some(boxed::bound_lifetimes(function.sig_mut())),
        None => None,
    };
    let memo = match (&args.memo, function.body_mut().is_some()) {
        (Some(_), true) => Some(memo::prepare(
            function.sig_mut(),
            &krate,
            &output,
            &mut errors,
        )),
        (Some((_, span)), false) => {
            errors.push(syn::Error::new(
                *span,
                "#[asynq(memo)] applies to a function with a body; put it on the implementation",
            ));
            None
        }
        (None, _) => None,
    };
    set_task_type(function.sig_mut(), &krate, &output, boxed.as_ref());
    if let Some(block) = function.body_mut() {
        // Passes that can find nothing in this function are skipped (see `scan`).
        let scan = Scan::of(tokens, &name);
        let recursion = (&name, boxed.is_some(), scan.may_recurse());
        misuse::check(&krate, recursion, &mut errors, block);
        // Found on the code as written; with `batch`, what the rewrite merges is not reported.
        let findings = match args.allow_sequential {
            None if scan.may_await_sequentially() => sequential::find(block, args.batch.is_some()),
            _ => Vec::new(),
        };
        if args.batch.is_some() {
            batch::rewrite(&krate, block);
        }
        typed::route(&krate, block);
        Awaits { krate: &krate }.visit_block_mut(block);
        *block = task_body(
            &krate,
            &name,
            (&output, opaque_output),
            block,
            boxed.is_some(),
            memo.as_ref(),
            &findings,
        );
    }
    // The function is emitted even when there are errors, so that its callers see it and the
    // errors above are the only ones.
    let errors = errors.into_compile_errors();
    quote!(#errors #function)
}

/// Input:  fn f(args) -> T
/// Output: fn f(args) -> ::asynq_core::__private::Task<impl Future<Output = T>>
///     or, with `boxed`: ::asynq_core::__private::Task<BoxFuture<'__asynq, T>>
fn set_task_type(sig: &mut Signature, krate: &syn::Path, output: &Type, boxed: Option<&Lifetime>) {
    let span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    // As tokens, not parsed into a syn type: nothing reads it before it is printed. (`> >`
    // is what syn prints for the closing brackets of a type.)
    let task_type = match boxed {
        None => quote_spanned!(span=>
            #krate::__private::Task<impl #krate::__private::Future<Output = #output> >
        ),
        Some(lifetime) => quote_spanned!(span=>
            #krate::__private::Task<#krate::__private::BoxFuture<#lifetime, #output> >
        ),
    };
    sig.output = ReturnType::Type(Default::default(), Box::new(Type::Verbatim(task_type)));
}

/// The function's declared output type, `()` when there is none.
fn output_type(sig: &Signature) -> Type {
    match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    }
}

/// Input:  { body }
/// Output: {
///             { #[deprecated(note = "..")] fn awaits_are_independent() {} awaits_are_independent(); }
///             ::asynq_core::__private::new_task(&concat!(module_path!(), "::f"), async move {
///                 let __asynq_ret: T = { body };
///                 __asynq_ret
///             })
///         }
///
/// The typed `let` gives the body its expected type (for `collect()`, `?`, `into()`), as the
/// function's return type does. An output type containing `impl Trait` (`opaque`) cannot be
/// written in a `let`; the body is then left to inference. With `boxed`, `new_boxed_task`
/// boxes the future.
fn task_body(
    krate: &syn::Path,
    name: &Ident,
    (output, opaque): (&Type, bool),
    block: &Block,
    boxed: bool,
    memo: Option<&Memo>,
    findings: &[Finding],
) -> Block {
    // The braces' span: `Spanned::span` would print the whole body to find it.
    let span = block.brace_token.span.join();
    let body = if opaque {
        quote!(#block)
    } else {
        quote_spanned! {Span::mixed_site()=>
            #[allow(clippy::let_and_return, clippy::needless_return)]
            let __asynq_ret: #output = #block;
            #[allow(unreachable_code)]
            __asynq_ret
        }
    };
    let name = format!("::{name}");
    let constructor = if boxed {
        quote!(new_boxed_task)
    } else {
        quote!(new_task)
    };
    let warnings = findings.iter().map(warning);
    let mut future = if boxed {
        quote!(async move { #body })
    } else {
        // A macro, so that rustc's error for a recursion through another function names it.
        quote!(#krate::__private::unboxed_task_use_asynq_boxed_to_recurse!({ #body }))
    };
    let mut prelude = TokenStream::new();
    if let Some(memo) = memo {
        // With `memo`: clone the key first, then share the body's future by key.
        prelude = memo.prelude.clone();
        future = memo::wrap(memo, krate, future);
    }
    // The new body stays tokens: parsing it back into a syn tree only to print it again cost
    // more than the rest of the expansion together (the macro runs unoptimized, as cargo
    // builds proc-macros by default, and every token crosses the compiler's bridge).
    let stmts = quote_spanned! {span=>
        #(#warnings)*
        #prelude
        #krate::__private::#constructor(&::core::concat!(::core::module_path!(), #name), #future)
    };
    Block {
        brace_token: syn::token::Brace(span),
        stmts: vec![syn::Stmt::Expr(syn::Expr::Verbatim(stmts), None)],
    }
}

/// A warning on stable, with the `#[deprecated]`-item technique: the use of a deprecated
/// function, spanned on the first token of the finding. (rustc reports a deprecated path on
/// its last segment only, so the warning cannot underline a range.)
///
/// Output: {
///             #[deprecated(note = "these awaits are independent, ..")]
///             fn awaits_are_independent() {}
///             awaits_are_independent();
///         }
fn warning(finding: &Finding) -> TokenStream {
    let function = Ident::new(finding.name, Span::call_site());
    let used = Ident::new(finding.name, finding.span);
    let note = &finding.message;
    quote! {
        {
            #[deprecated(note = #note)]
            fn #function() {}
            #used();
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_type_impl_trait(&mut self, _: &syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}
