//! The items the attribute accepts: free functions, methods, and trait methods.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{ImplItemFn, Signature, TraitItemFn};

/// A function the attribute accepts.
pub(crate) enum Function {
    /// A free function or a method in an `impl` block.
    WithBody(ImplItemFn),
    /// A method declaration in a trait, with or without a default body.
    InTrait(TraitItemFn),
}

impl Function {
    pub(crate) fn sig(&self) -> &Signature {
        match self {
            Function::WithBody(f) => &f.sig,
            Function::InTrait(f) => &f.sig,
        }
    }

    pub(crate) fn sig_mut(&mut self) -> &mut Signature {
        match self {
            Function::WithBody(f) => &mut f.sig,
            Function::InTrait(f) => &mut f.sig,
        }
    }

    pub(crate) fn body_mut(&mut self) -> Option<&mut syn::Block> {
        match self {
            Function::WithBody(f) => Some(&mut f.block),
            Function::InTrait(f) => f.default.as_mut(),
        }
    }
}

impl ToTokens for Function {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Function::WithBody(f) => f.to_tokens(tokens),
            Function::InTrait(f) => f.to_tokens(tokens),
        }
    }
}

/// Parse the item under the attribute, or return what to emit instead: the item as written
/// and one error on its first token, so that the error is the only one.
pub(crate) fn function(input: TokenStream) -> Result<Function, TokenStream> {
    if let Ok(f) = syn::parse2::<ImplItemFn>(input.clone()) {
        return Ok(Function::WithBody(f));
    }
    if let Ok(f) = syn::parse2::<TraitItemFn>(input.clone()) {
        return Ok(Function::InTrait(f));
    }
    let span = input
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    if syn::parse2::<syn::ExprClosure>(input.clone()).is_ok() {
        // An attribute on an expression must expand to an expression.
        let error = syn::Error::new_spanned(
            &input,
            "#[asynq] cannot be applied to a closure; write a nested `#[asynq] fn` and call it",
        )
        .into_compile_error();
        return Err(quote!({ #error; #input }));
    }
    let what = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(item) => describe(&item),
        Err(_) => "this item",
    };
    let hint = match what {
        "an impl block" | "a trait" => "put it on each method instead",
        _ => "it applies to functions and methods",
    };
    let error = syn::Error::new(
        span,
        format!("#[asynq] cannot be applied to {what}; {hint}"),
    )
    .into_compile_error();
    Err(quote!(#error #input))
}

fn describe(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Union(_) => "a union",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Impl(_) => "an impl block",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Mod(_) => "a module",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a use declaration",
        syn::Item::ExternCrate(_) => "an extern crate",
        syn::Item::ForeignMod(_) => "an extern block",
        syn::Item::Macro(_) => "a macro",
        _ => "this item",
    }
}
