//! The body rewrite: every `.await` of the task itself awaits the yieldable form of its operand.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item, Macro, Path, Token};

/// Rewrites `x.await` into `<krate>::__private::into_future(x).await`.
pub(crate) struct Awaits<'a> {
    pub(crate) krate: &'a Path,
}

impl VisitMut for Awaits<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {
                // Don't transform inner closures or async blocks: their `.await`s are not
                // suspension points of this task.
                return;
            }
            _ => {}
        }
        // Recurse first, then replace: `a.await.b().await` rewrites both.
        visit_mut::visit_expr_mut(self, expr);
        if let Expr::Await(awaited) = expr {
            // Input:  base.await
            // Output: ::asynq_core::__private::into_future(base).await
            // spanned on `base`, so that a base that cannot be awaited is the error's span.
            let krate = self.krate;
            let base = &awaited.base;
            let dot = awaited.dot_token;
            let await_token = awaited.await_token;
            let call = quote_spanned!(base.span()=> #krate::__private::into_future(#base));
            *expr = syn::parse_quote!(#call #dot #await_token);
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // Do not recurse into nested items: they are not part of the task.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // Heuristic: a macro whose arguments parse as comma-separated expressions
        // (`println!`, `assert_eq!`, `vec![a, b]`, `format!`) gets its `.await`s rewritten
        // like the body's. Other macros are left as written.
        if !mentions_await(mac.tokens.clone()) {
            return;
        }
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(mut args) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
            for arg in args.iter_mut() {
                self.visit_expr_mut(arg);
            }
            mac.tokens = args.into_token_stream();
        }
    }
}

/// Whether `.await` appears in the tokens, at any depth.
fn mentions_await(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Ident(ident) => ident == "await",
        proc_macro2::TokenTree::Group(group) => mentions_await(group.stream()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn rewrite(body: TokenStream) -> String {
        let mut block: syn::Block = syn::parse2(quote!({ #body })).unwrap();
        let krate: Path = syn::parse_quote!(::asynq_core);
        Awaits { krate: &krate }.visit_block_mut(&mut block);
        block.into_token_stream().to_string()
    }

    #[test]
    fn rewrites_nested_awaits_but_not_closures_or_items() {
        let out = rewrite(quote! {
            let a = f(x.await).await;
            let c = || y.await;
            fn inner() { z.await }
            println!("{}", w.await);
        });
        assert!(out.contains(":: asynq_core :: __private :: into_future (f (:: asynq_core :: __private :: into_future (x) . await)) . await"));
        assert!(out.contains("| | y . await"), "{out}");
        assert!(out.contains("fn inner () { z . await }"));
        assert!(out.contains(
            "println ! (\"{}\" , :: asynq_core :: __private :: into_future (w) . await)"
        ));
    }
}
