//! Mistakes only the type checker can see, routed through traits of asynq-core whose
//! `#[diagnostic::on_unimplemented]` says what to write, where rustc's own message does not.
//!
//! - `x?`, unless `x` is an `.await`, becomes `TryOperand::check(x)?`: `?` on a task (a tuple
//!   of tasks bound without `.await`, say) reports that the task must be awaited first, where
//!   rustc says "the `?` operator cannot be applied to type `Task<..>`".
//! - An awaited `vec![..]`, array, `if` or `match` whose elements or arms are calls of
//!   different functions: each element or arm after the first goes through
//!   `SameTask::same(x, first)`, so tasks of different functions report that they have
//!   different types and what to write instead (a tuple, an await per arm, `.boxed()`), where
//!   rustc says "expected future, found a different future". Calls of one function, and
//!   elements that are not calls, are left alone; so is a collection bound by `let` and
//!   awaited later (rustc's own message then).
//!
//! Both rewrites leave the value, its type and its evaluation order as they were: the check
//! is the identity for every type that passes it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Item, Macro, Path, Stmt, Token};

use crate::code::code;
use crate::independence::peel;
use crate::rewrite::{ends, mentions_await, respan};

/// Routes the body's `?` operands and awaited collections of calls through their checks.
pub(crate) fn route(krate: &Path, block: &mut Block) {
    Typed { krate }.visit_block_mut(block);
}

struct Typed<'a> {
    krate: &'a Path,
}

impl VisitMut for Typed<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            // Futures of their own: their `?` and awaits are not the task's.
            Expr::Async(_) => return,
            Expr::Closure(closure) if closure.asyncness.is_some() => return,
            _ => {}
        }
        visit_mut::visit_expr_mut(self, expr);
        match expr {
            Expr::Try(tried) if !matches!(peel(&tried.expr), Expr::Await(_)) => {
                // In parentheses: a path starting with `::` right after a label
                // (`break 'outer x?`) would read as the label definition `'outer:`.
                let call = self.call_on(&tried.expr, quote!(TryOperand::check), None);
                // The parentheses on the call's first token, where `Spanned::span` finds it.
                let span = call.func.span();
                *tried.expr = Expr::Paren(syn::ExprParen {
                    attrs: Vec::new(),
                    paren_token: syn::token::Paren(span),
                    expr: Box::new(Expr::Call(call)),
                });
            }
            Expr::Await(awaited) => self.check_same(&mut awaited.base),
            _ => {}
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // Do not recurse into nested items: they are not part of the task.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // Heuristic, as in the rewrite: a macro whose arguments parse as comma-separated
        // expressions (`format!("{}", name?)`, `vec![..]`) gets them checked like the body's.
        if !mentions_question_mark(mac.tokens.clone()) && !mentions_await(mac.tokens.clone()) {
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

/// Whether a `?` appears in the tokens, at any depth.
fn mentions_question_mark(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Punct(punct) => punct.as_char() == '?',
        TokenTree::Group(group) => mentions_question_mark(group.stream()),
        _ => false,
    })
}

impl Typed<'_> {
    /// Input:  x
    /// Output: ::asynq_core::__private::#function(x, #extra)
    ///
    /// spanned exactly on `x` (the path on its first token, the parentheses on its last), so
    /// that the check's error points at `x` and rustc reports it once.
    ///
    /// Built as a syn tree around the operand's own tree, without printing and parsing it again
    /// (the operand can be long, and the await rewrite still has to see inside it).
    fn call_on(
        &self,
        operand: &Expr,
        function: TokenStream,
        extra: Option<TokenStream>,
    ) -> syn::ExprCall {
        let (first, last) = ends(operand);
        let krate = respan(self.krate.to_token_stream(), first);
        let function = respan(function, first);
        let mut args = Punctuated::new();
        args.push(operand.clone());
        if let Some(extra) = extra {
            args.push(Expr::Verbatim(extra));
        }
        syn::ExprCall {
            attrs: Vec::new(),
            func: Box::new(Expr::Verbatim(
                quote_spanned!(first=> #krate::__private::#function),
            )),
            paren_token: syn::token::Paren(last),
            args,
        }
    }

    /// The checks of an awaited `vec![..]`, array, `if` or `match` of calls of different
    /// functions.
    fn check_same(&self, base: &mut Expr) {
        match base {
            // The parentheses of `(if c { f(x) } else { g(y) }).await` go: the `match` that
            // replaces the `if` is the argument of a call after the rewrite, where rustc would
            // call them unnecessary.
            Expr::Paren(syn::ExprParen { expr: inner, .. })
            | Expr::Group(syn::ExprGroup { expr: inner, .. }) => {
                let before = inner.to_token_stream().to_string();
                self.check_same(inner);
                if inner.to_token_stream().to_string() != before {
                    *base = (**inner).clone();
                }
            }
            Expr::Array(array) => {
                let elems = array.elems.iter().cloned().collect();
                if let Some(checked) = self.same_elements(elems, |elems| quote!([#(#elems),*])) {
                    *base = checked;
                }
            }
            Expr::Macro(mac) if mac.mac.path.is_ident("vec") || is_std_vec(&mac.mac.path) => {
                let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
                let Ok(elems) = syn::parse::Parser::parse2(parser, mac.mac.tokens.clone()) else {
                    // `vec![x; n]`: one element, repeated.
                    return;
                };
                let path = &mac.mac.path;
                let bang = mac.mac.bang_token;
                if let Some(checked) = self.same_elements(
                    elems.into_iter().collect(),
                    |elems| quote!(#path #bang [#(#elems),*]),
                ) {
                    *base = checked;
                }
            }
            Expr::If(_) | Expr::Match(_) => {
                let mut arms = Vec::new();
                arm_values(base, &mut arms);
                if distinct_callees(arms.iter().map(|arm| &**arm)) {
                    let witness = witness();
                    let mut first = true;
                    for arm in arms {
                        let check = if std::mem::take(&mut first) {
                            self.call_on(arm, quote!(first_arm), Some(quote!(&#witness)))
                        } else {
                            self.call_on(
                                arm,
                                quote!(SameTask::same),
                                Some(witness.to_token_stream()),
                            )
                        };
                        *arm = Expr::Call(check);
                    }
                    *base = syn::parse_quote!(
                        match ::core::marker::PhantomData { #witness => #base }
                    );
                }
            }
            _ => {}
        }
    }

    /// Input:  e1, e2, e3                  (calls of at least two different functions)
    /// Output: match e1 {
    ///             first => {
    ///                 let witness = ::asynq_core::__private::first_of(&first);
    ///                 build([first, SameTask::same(e2, witness), SameTask::same(e3, witness)])
    ///             }
    ///         }
    ///
    /// The first element is matched, not bound by `let`, so that its temporaries live as long
    /// as they did; the others are evaluated after it, as before.
    fn same_elements(
        &self,
        elems: Vec<Expr>,
        build: impl FnOnce(Vec<TokenStream>) -> TokenStream,
    ) -> Option<Expr> {
        if elems.len() < 2 || !distinct_callees(elems.iter()) {
            return None;
        }
        let krate = self.krate;
        let first = syn::Ident::new("__asynq_first", Span::mixed_site());
        let witness = witness();
        let mut elems = elems.into_iter();
        let head = elems.next()?;
        let mut built = vec![first.to_token_stream()];
        for elem in elems {
            let checked = if is_call(&elem) {
                Expr::Call(self.call_on(
                    &elem,
                    quote!(SameTask::same),
                    Some(witness.to_token_stream()),
                ))
            } else {
                elem
            };
            built.push(checked.to_token_stream());
        }
        let built = build(built);
        Some(syn::parse_quote! {
            match #head {
                #first => {
                    let #witness = #krate::__private::first_of(&#first);
                    #built
                }
            }
        })
    }
}

/// The name of the first element's or arm's type witness (a `PhantomData`).
fn witness() -> syn::Ident {
    syn::Ident::new("__asynq_first_type", Span::mixed_site())
}

/// `std::vec` or `::std::vec` or `alloc::vec`.
fn is_std_vec(path: &Path) -> bool {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    matches!(segments.as_slice(), [krate, vec] if (krate == "std" || krate == "alloc") && vec == "vec")
}

fn is_call(expr: &Expr) -> bool {
    matches!(peel(expr), Expr::Call(_) | Expr::MethodCall(_))
}

/// What a call calls, as written: `user_name`, `Users::load`, `.boxed`.
fn callee(expr: &Expr) -> Option<String> {
    match peel(expr) {
        Expr::Call(call) => Some(code(&call.func)),
        Expr::MethodCall(call) => Some(format!(".{}", call.method)),
        _ => None,
    }
}

/// Whether the calls among `exprs` call at least two different functions.
fn distinct_callees<'a>(exprs: impl Iterator<Item = &'a Expr>) -> bool {
    let mut seen: Option<String> = None;
    for callee in exprs.filter_map(callee) {
        match &seen {
            Some(first) if *first != callee => return true,
            Some(_) => {}
            None => seen = Some(callee),
        }
    }
    false
}

/// The values of an `if`'s or a `match`'s arms that are calls, in order: the last expression
/// of each block arm, each expression arm; arms ending otherwise (`return`, a statement) are
/// not collected.
fn arm_values<'a>(expr: &'a mut Expr, out: &mut Vec<&'a mut Expr>) {
    match expr {
        Expr::If(branches) => {
            block_value(&mut branches.then_branch, out);
            if let Some((_, otherwise)) = &mut branches.else_branch {
                arm_values(otherwise, out);
            }
        }
        Expr::Match(matched) => {
            for arm in &mut matched.arms {
                arm_values(&mut arm.body, out);
            }
        }
        Expr::Block(block) => block_value(&mut block.block, out),
        other if is_call(other) => out.push(other),
        _ => {}
    }
}

fn block_value<'a>(block: &'a mut Block, out: &mut Vec<&'a mut Expr>) {
    if let Some(Stmt::Expr(value, None)) = block.stmts.last_mut() {
        arm_values(value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(body: TokenStream) -> String {
        let mut block: Block = syn::parse2(quote!({ #body })).unwrap();
        let krate: Path = syn::parse_quote!(::asynq_core);
        route(&krate, &mut block);
        block.into_token_stream().to_string()
    }

    #[test]
    fn question_marks_are_checked_unless_on_an_await() {
        let out = routed(quote! {
            let (a, b) = (f(1), g(2));
            let x = a?;
            let y = f(3).await?;
            let z = s.parse::<u32>()?;
        });
        assert!(
            out.contains("let x = (:: asynq_core :: __private :: TryOperand :: check (a)) ?"),
            "{out}"
        );
        assert!(out.contains("let y = f (3) . await ?"), "{out}");
        assert!(
            out.contains("TryOperand :: check (s . parse :: < u32 > ())"),
            "{out}"
        );
    }

    #[test]
    fn awaited_collections_of_different_calls_are_checked() {
        let out = routed(quote! {
            let a = vec![f(1), g(2), 3].await;
            let b = [f(1), f(2)].await;
            let c = (if k { f(1) } else if j { return x } else { g(2) }).await;
            let d = match k { 0 => f(1), _ => { log(); g(2) } }.await;
        });
        let same = ":: asynq_core :: __private :: SameTask :: same";
        let first = ":: asynq_core :: __private :: first_arm";
        for expected in [
            "let a = match f (1) { __asynq_first => { let __asynq_first_type = \
             :: asynq_core :: __private :: first_of (& __asynq_first) ; \
             vec ! [__asynq_first , {same} (g (2) , __asynq_first_type) , 3] } } . await",
            "let b = [f (1) , f (2)] . await",
            "let c = match :: core :: marker :: PhantomData { __asynq_first_type => \
             if k { {first} (f (1) , & __asynq_first_type) } else if j { return x } \
             else { {same} (g (2) , __asynq_first_type) } } . await",
            "let d = match :: core :: marker :: PhantomData { __asynq_first_type => \
             match k { 0 => {first} (f (1) , & __asynq_first_type) , \
             _ => { log () ; {same} (g (2) , __asynq_first_type) } } } . await",
        ] {
            let expected = expected.replace("{same}", same).replace("{first}", first);
            assert!(out.contains(&expected), "{expected}\nin\n{out}");
        }
    }
}
