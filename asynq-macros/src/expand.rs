//! The expansion of `#[asynq]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, ImplItemFn, ReturnType, Signature, TraitItemFn, Type};

use crate::args::{self, Args};
use crate::rewrite::Awaits;

/// The functions the attribute accepts.
enum Function {
    /// A free function or a method in an `impl` block.
    WithBody(ImplItemFn),
    /// A method declaration in a trait, with or without a default body.
    InTrait(TraitItemFn),
}

pub(crate) fn asynq(args: TokenStream, input: TokenStream) -> TokenStream {
    let function = match parse_function(input.clone()) {
        Ok(function) => function,
        Err(error) => {
            // Not a function: keep the item as written, so that the only error is ours.
            let error = error.into_compile_error();
            return quote!(#error #input);
        }
    };
    let (args, mut errors) = match args::parse(args) {
        Ok(args) => (args, None),
        Err(error) => (Args::default(), Some(error)),
    };
    let mut function = function;
    let sig = match &mut function {
        Function::WithBody(f) => &mut f.sig,
        Function::InTrait(f) => &mut f.sig,
    };
    check_signature(sig, &mut errors);
    let krate = args.krate();
    let output = output_type(sig);
    let name = format!("::{}", sig.ident);
    // Input:  fn f(args) -> T
    // Output: fn f(args) -> ::asynq_core::__private::Task<impl Future<Output = T>>
    let span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    let task_type: Type = syn::parse_quote_spanned!(span=>
        #krate::__private::Task<impl #krate::__private::Future<Output = #output>>
    );
    sig.output = ReturnType::Type(Default::default(), Box::new(task_type));
    let body = match &mut function {
        Function::WithBody(f) => Some(&mut f.block),
        Function::InTrait(f) => f.default.as_mut(),
    };
    if let Some(block) = body {
        Awaits { krate: &krate }.visit_block_mut(block);
        *block = task_body(&krate, &name, &output, block);
    }
    let function = match function {
        Function::WithBody(f) => f.into_token_stream(),
        Function::InTrait(f) => f.into_token_stream(),
    };
    let errors = errors.map(syn::Error::into_compile_error);
    quote!(#errors #function)
}

fn parse_function(input: TokenStream) -> syn::Result<Function> {
    if let Ok(f) = syn::parse2::<ImplItemFn>(input.clone()) {
        return Ok(Function::WithBody(f));
    }
    if let Ok(f) = syn::parse2::<TraitItemFn>(input.clone()) {
        return Ok(Function::InTrait(f));
    }
    let what = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(item) => describe(&item),
        Err(_) => "this",
    };
    let span = input
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    Err(syn::Error::new(
        span,
        format!("#[asynq] cannot be applied to {what}; it applies to functions and methods"),
    ))
}

fn describe(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Impl(_) => "an impl block; put it on the methods instead",
        syn::Item::Trait(_) => "a trait; put it on the methods instead",
        syn::Item::Mod(_) => "a module",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a use declaration",
        _ => "this item",
    }
}

/// Reject signatures the expansion cannot keep, spanned on the offending token.
fn check_signature(sig: &mut Signature, errors: &mut Option<syn::Error>) {
    if let Some(token) = sig.asyncness.take() {
        args::push(
            errors,
            syn::Error::new_spanned(
                token,
                "`async fn` cannot be #[asynq]; remove `async`, the function is resumable already",
            ),
        );
    }
    if let Some(token) = sig.constness.take() {
        args::push(
            errors,
            syn::Error::new_spanned(
                token,
                "`const fn` cannot be #[asynq]; remove `const`, a task is built at run time",
            ),
        );
    }
    if let Some(abi) = sig.abi.take() {
        args::push(
            errors,
            syn::Error::new_spanned(
                abi,
                "an `extern` fn cannot be #[asynq]; its callers cannot await a task, so remove the ABI",
            ),
        );
    }
    if let Some(variadic) = sig.variadic.take() {
        args::push(
            errors,
            syn::Error::new_spanned(variadic, "a variadic fn cannot be #[asynq]"),
        );
    }
}

/// The function's declared output type, `()` when there is none.
fn output_type(sig: &Signature) -> Type {
    match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    }
}

/// Input:  { body }
/// Output: { ::asynq_core::__private::new_task(concat!(module_path!(), "::f"), async move {
///               let __asynq_ret: T = { body };
///               __asynq_ret
///           }) }
///
/// The typed `let` gives the body its expected type (for `collect()`, `?`, `into()`), as the
/// function's return type does. An output type containing `impl Trait` cannot be written in a
/// `let`; the body is then left to inference.
fn task_body(krate: &syn::Path, name: &str, output: &Type, block: &Block) -> Block {
    let span = block.span();
    let body = if contains_impl_trait(output) {
        quote!(#block)
    } else {
        quote_spanned! {Span::mixed_site()=>
            #[allow(clippy::let_and_return, clippy::needless_return)]
            let __asynq_ret: #output = #block;
            #[allow(unreachable_code)]
            __asynq_ret
        }
    };
    syn::parse_quote_spanned! {span=>
        {
            #krate::__private::new_task(::core::concat!(::core::module_path!(), #name), async move { #body })
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
