//! The body rewrite: every `.await` of the task itself awaits the yieldable form of its operand.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item, Macro, Path, Token};

/// Rewrites `x.await` into
/// `(<krate>::__private::Yieldable::into_future(::core::convert::identity(x))).await`.
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
            // Output: (::asynq_core::__private::Yieldable::into_future(
            //             ::core::convert::identity(base))).await
            //
            // Both calls span exactly the operand, so that a base that cannot be awaited is the
            // error's span: their paths carry the operand's first span and their parentheses
            // the last. An operand that cannot be awaited fails the trait bound of
            // `Yieldable::into_future` (a trait method, so that rustc adds no note pointing
            // into asynq-core) and, again, the `.await` of its output; with equal spans rustc
            // reports it once. `identity` keeps rustc from narrowing the first report to one
            // element of a tuple, which would defeat that.
            let base = awaited.base.to_token_stream();
            let (first, last) = ends(&base);
            let krate = respan(self.krate.to_token_stream(), first);
            let parens = |inner: TokenStream| parens_at(last, inner);
            let identity = parens(base);
            let identity = quote_spanned!(first=> ::core::convert::identity #identity);
            let args = parens(identity);
            let call = quote_spanned!(first=> #krate::__private::Yieldable::into_future #args);
            // In parentheses: a call starting with `::` right after a label
            // (`break 'outer ::asynq_core::..`) would read as the label definition `'outer:`.
            let call = parens(call);
            let dot = awaited.dot_token;
            let await_token = awaited.await_token;
            // Kept as tokens (syn prints a verbatim expression as it is): parsing them into a
            // syn tree would only be undone when the body is printed.
            *expr = Expr::Verbatim(quote!(#call #dot #await_token));
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

/// The spans of the first and the last token of `tokens` (the call site's if there are none).
pub(crate) fn ends(tokens: &impl ToTokens) -> (Span, Span) {
    let mut tokens = tokens.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |tt| tt.span());
    let last = tokens.last().map_or(first, |tt| tt.span());
    (first, last)
}

/// `(inner)`, the parentheses spanned at `span`.
pub(crate) fn parens_at(span: Span, inner: TokenStream) -> Group {
    let mut group = Group::new(Delimiter::Parenthesis, inner);
    group.set_span(span);
    group
}

/// `tokens` with every span, at any depth, set to `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                TokenTree::Group(new)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// Whether `.await` appears in the tokens, at any depth.
pub(crate) fn mentions_await(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "await",
        TokenTree::Group(group) => mentions_await(group.stream()),
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
        let inner = "(:: asynq_core :: __private :: Yieldable :: into_future (:: core :: convert :: identity (x))) . await";
        let outer = format!(
            "(:: asynq_core :: __private :: Yieldable :: into_future (:: core :: convert :: identity (f ({inner})))) . await"
        );
        assert!(out.contains(&outer), "{out}");
        assert!(out.contains("| | y . await"), "{out}");
        assert!(out.contains("fn inner () { z . await }"));
        assert!(out.contains(
            "println ! (\"{}\" , (:: asynq_core :: __private :: Yieldable :: into_future (:: core :: convert :: identity (w))) . await)"
        ));
    }
}
