//! `#[asynq(batch)]`: the macro awaits together what it can prove independent, so that code
//! written one await at a time takes the rounds of code that joins by hand.
//!
//! `independence` (with `Purpose::Rewrite`) and `loops` decide what is independent; this
//! module rewrites it. Inner blocks first, so that a merged loop or group inside a block is
//! in place when the block's own statements are merged.
//!
//! # Awaits of a block
//!
//! Input:  let a = f(x).await?;  log("a");  let b = g(y).await?;
//! Output: let (__b0, __b1) = (any(into_future(f(x))), any(into_future(g(y)))).await;
//!         let a = __b0?;  log("a");  let b = __b1?;
//!
//! Each operand is evaluated at the first await's place and everything else stays in order:
//! `?` applies to each result where its await was, so the first error in program order is
//! the one returned, and the code between runs where it ran (after the fetches now, which is
//! the point). Each operand goes through `Yieldable::into_future` and `any` spanned on it, so
//! that an operand that cannot be awaited is reported on its own tokens.
//!
//! # A `for` loop
//!
//! Input:  for uid in uids { let name = user_name(uid).await; names.push((uid, name)); }
//! Output: let (results, kept) = batch_loop(uids, |uid| (user_name(uid), (uid,))).await;
//!         for ((uid,), result) in zip(kept, results) {
//!             let name = result; names.push((uid, name));
//!         }
//!
//! `batch_loop` (asynq-core) builds every iteration's task and keeps the bindings the body
//! needs; being one call, it is an operand that the block's merge may await together with
//! other awaits of the block. Only the first await's operand moves to that first pass; the
//! bodies run in order, with their results, in the loop. The loop qualifies when `loops` finds its operand mentions nothing
//! the body binds before it or changes (`mappable`), the await runs in every iteration (not
//! in an arm), the operand is `hoist`able and does not borrow the loop's bindings (a task
//! built in the first loop would outlive them: no `&`, no method call on them, no closure),
//! and the pattern binds by value.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprAwait, Ident, Item, Pat, Path, Stmt};

use crate::hoist::{hoistable, macro_args};
use crate::independence::{self, Purpose, unconditional_awaits};
use crate::loops::{self, LoopKind};
use crate::names::{OWNING_METHODS, mentioned, root};
use crate::rewrite::{ends, parens_at, respan};

/// Rewrites `block` so that independent awaits are awaited together.
pub(crate) fn rewrite(krate: &Path, block: &mut Block) {
    Batch { krate, next: 0 }.visit_block_mut(block);
}

struct Batch<'a> {
    krate: &'a Path,
    /// The number of names made so far, so that each is new.
    next: usize,
}

impl VisitMut for Batch<'_> {
    fn visit_block_mut(&mut self, block: &mut Block) {
        visit_mut::visit_block_mut(self, block);
        self.loops(block);
        self.groups(block);
    }

    fn visit_expr_closure_mut(&mut self, _: &mut syn::ExprClosure) {
        // A closure's awaits are errors of their own; its blocks are not the task's.
    }

    fn visit_expr_async_mut(&mut self, _: &mut syn::ExprAsync) {
        // A future of its own.
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // Not part of the task.
    }
}

impl Batch<'_> {
    fn fresh(&mut self, what: &str, at: Span) -> Ident {
        self.next += 1;
        Ident::new(
            &format!("__asynq_{what}{}", self.next),
            Span::mixed_site().located_at(at),
        )
    }

    /// Merges each group of independent awaits of `block`.
    fn groups(&mut self, block: &mut Block) {
        // (where the merged await goes, [(the await's address, its operand)])
        let plans: Vec<(usize, Vec<(usize, Expr)>)> = independence::groups(block, Purpose::Rewrite)
            .iter()
            .map(|group| {
                let members = group
                    .members
                    .iter()
                    .map(|m| (address(m.awaited), m.awaited.base.as_ref().clone()))
                    .collect();
                (group.members[0].stmt, members)
            })
            .collect();
        let mut names = HashMap::new();
        let mut merged = Vec::new();
        for (at, members) in plans {
            let mut bindings = Vec::new();
            let mut operands = Vec::new();
            for (awaited, operand) in members {
                let name = self.fresh("batched", ends(&operand).0);
                names.insert(awaited, name.clone());
                bindings.push(name.into_token_stream());
                operands.push(self.yieldable(&operand));
            }
            merged.push((at, merged_let(bindings, operands)));
        }
        // Replace first: the awaits are found by address, which inserting statements moves.
        Replace { names: &names }.visit_block_mut(block);
        for (at, stmt) in merged.into_iter().rev() {
            block.stmts.insert(at, stmt);
        }
    }

    /// Input:  x
    /// Output: ::asynq_core::any(::asynq_core::Yieldable::into_future(x))
    ///
    /// spanned on `x`: an `x` that cannot be awaited is reported there, once (the `any` of an
    /// error is an error, which rustc does not report again in the tuple).
    fn yieldable(&self, operand: &Expr) -> TokenStream {
        // The paths on the operand's first token, the parentheses on its last: both calls span
        // exactly the operand, so that rustc reports its error once.
        let (first, last) = ends(operand);
        let krate = respan(self.krate.to_token_stream(), first);
        let parens = |inner: TokenStream| parens_at(last, inner);
        let future = parens(operand.to_token_stream());
        let future = quote_spanned!(first=> #krate::Yieldable::into_future #future);
        let any = parens(future);
        quote_spanned!(first=> #krate::any #any)
    }

    /// Rewrites each `for` statement of `block` whose iterations can be batched.
    fn loops(&mut self, block: &mut Block) {
        let mut i = 0;
        while i < block.stmts.len() {
            let replacement = match &block.stmts[i] {
                Stmt::Expr(Expr::ForLoop(for_loop), _) => self.batch_loop(for_loop),
                _ => None,
            };
            match replacement {
                Some(stmts) => {
                    let added = stmts.len();
                    block.stmts.splice(i..=i, stmts);
                    i += added;
                }
                None => i += 1,
            }
        }
    }

    fn batch_loop(&mut self, for_loop: &syn::ExprForLoop) -> Option<Vec<Stmt>> {
        let (awaited, bindings) = batchable(for_loop)?;
        let operand = &*awaited.base;
        let at = ends(operand).0;
        let results = self.fresh("results", at);
        let kept = self.fresh("kept", at);
        let result = self.fresh("result", at);
        // The await in a copy of the body: the same one in visiting order.
        let ordinal = ordinal(&for_loop.body, awaited)?;
        let mut body = for_loop.body.clone();
        let names = HashMap::from([(address(nth_await(&body, ordinal)?), result.clone())]);
        Replace { names: &names }.visit_block_mut(&mut body);
        let used = mentioned(body.to_token_stream());
        let carried: Vec<&(Ident, bool)> = bindings
            .iter()
            .filter(|(name, _)| used.contains(&name.to_string()))
            .collect();
        let values = carried.iter().map(|(name, _)| name);
        let pattern = carried.iter().map(|(name, mutable)| match mutable {
            true => quote!(mut #name),
            false => quote!(#name),
        });
        let (pat, iterable, krate) = (&for_loop.pat, &for_loop.expr, self.krate);
        let (attrs, label) = (&for_loop.attrs, &for_loop.label);
        let task = self.yieldable(operand);
        let prepare: Stmt = syn::parse_quote! {
            let (#results, #kept) = #krate::__private::batch_loop(
                #iterable,
                |#pat| (#task, (#(#values,)*))
            )
            .await;
        };
        let run: Stmt = Stmt::Expr(
            syn::parse_quote! {
                #(#attrs)*
                #label for ((#(#pattern,)*), #result) in ::core::iter::Iterator::zip(
                    ::core::iter::IntoIterator::into_iter(#kept),
                    #results
                ) #body
            },
            None,
        );
        Some(vec![prepare, run])
    }
}

/// The await of a `for` loop that `#[asynq(batch)]` batches across its iterations, with the
/// loop's bindings (see the module's documentation for when).
pub(crate) fn batchable(for_loop: &syn::ExprForLoop) -> Option<(&ExprAwait, Vec<(Ident, bool)>)> {
    let kind = LoopKind::For {
        pat: &for_loop.pat,
        iterable: &for_loop.expr,
    };
    let iterations = loops::iterations(&kind, &for_loop.body)?;
    let operand = iterations.operand;
    let awaited = unconditional_awaits(iterations.stmt)?
        .into_iter()
        .find(|a| std::ptr::eq(&*a.base, operand))?;
    let bindings = by_value_bindings(&for_loop.pat)?;
    // The first pass runs the iterator to its end: not an endless `start..`, which only a `?`
    // of the body would end.
    let endless = matches!(independence::peel(&for_loop.expr), Expr::Range(r) if r.end.is_none());
    let qualifies =
        iterations.mappable && !endless && hoistable(operand) && !borrows(operand, &bindings);
    qualifies.then_some((awaited, bindings))
}

/// Whether `#[asynq(batch)]` awaits the first two awaits of `group` (of `block`) together.
pub(crate) fn merges(block: &Block, group: &independence::Group<'_>) -> bool {
    let [first, second, ..] = group.members.as_slice() else {
        return false;
    };
    independence::groups(block, Purpose::Rewrite)
        .iter()
        .any(|merged| {
            let has = |a: &ExprAwait| merged.members.iter().any(|m| std::ptr::eq(m.awaited, a));
            has(first.awaited) && has(second.awaited)
        })
}

/// `let (b0, b1, ..) = (o0, o1, ..).await;`, nested twelve at a time (tuples of up to twelve
/// are yieldable).
fn merged_let(bindings: Vec<TokenStream>, operands: Vec<TokenStream>) -> Stmt {
    let (pattern, tuple) = nested(bindings, operands);
    syn::parse_quote!(let #pattern = #tuple.await;)
}

fn nested(bindings: Vec<TokenStream>, operands: Vec<TokenStream>) -> (TokenStream, TokenStream) {
    if bindings.len() <= 12 {
        return (quote!((#(#bindings,)*)), quote!((#(#operands,)*)));
    }
    let (patterns, tuples): (Vec<_>, Vec<_>) = bindings
        .chunks(12)
        .zip(operands.chunks(12))
        .map(|(b, o)| nested(b.to_vec(), o.to_vec()))
        .unzip();
    nested(patterns, tuples)
}

/// Replaces the awaits found at the given addresses by the given names.
struct Replace<'a> {
    names: &'a HashMap<usize, Ident>,
}

impl VisitMut for Replace<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Await(awaited) = expr
            && let Some(name) = self.names.get(&address(awaited))
        {
            // Input:  x.await
            // Output: (name,).0
            // the parentheses spanned on the await's first token, `.0` on its last: the
            // expression spans `x.await`, so that a mistake in using the result (a type that
            // does not match) is reported on the await, as it is without the option. (Through
            // a function, `identity(name)`, rustc would blame the function's argument.)
            let (first, last) = ends(awaited);
            let tuple = parens_at(first, quote!(#name,));
            let field = quote_spanned!(last=> .0);
            *expr = Expr::Verbatim(quote!(#tuple #field));
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
    }
}

/// The position of `target` among the awaits of `block`, in visiting order.
fn ordinal(block: &Block, target: &ExprAwait) -> Option<usize> {
    let mut awaits = Vec::new();
    collect_awaits(block, &mut awaits);
    awaits.iter().position(|a| std::ptr::eq(*a, target))
}

/// The `n`th await of `block`, in visiting order.
fn nth_await(block: &Block, n: usize) -> Option<&ExprAwait> {
    let mut awaits = Vec::new();
    collect_awaits(block, &mut awaits);
    awaits.get(n).copied()
}

fn collect_awaits<'a>(block: &'a Block, out: &mut Vec<&'a ExprAwait>) {
    struct All<'a, 'o>(&'o mut Vec<&'a ExprAwait>);
    impl<'a> syn::visit::Visit<'a> for All<'a, '_> {
        fn visit_expr_await(&mut self, awaited: &'a ExprAwait) {
            self.0.push(awaited);
            syn::visit::visit_expr_await(self, awaited);
        }
    }
    syn::visit::Visit::visit_block(&mut All(out), block);
}

fn address(awaited: &ExprAwait) -> usize {
    std::ptr::from_ref(awaited) as usize
}

/// The names a `for` pattern binds, each with whether it is `mut`; `None` if one binds by
/// reference (`ref x`) or with a subpattern (`x @ ..`).
fn by_value_bindings(pat: &Pat) -> Option<Vec<(Ident, bool)>> {
    let mut found = Vec::new();
    let mut plain = true;
    collect_bindings(pat, &mut found, &mut plain);
    plain.then_some(found)
}

fn collect_bindings(pat: &Pat, found: &mut Vec<(Ident, bool)>, plain: &mut bool) {
    struct Bindings<'f> {
        found: &'f mut Vec<(Ident, bool)>,
        plain: &'f mut bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Bindings<'_> {
        fn visit_pat_ident(&mut self, ident: &'ast syn::PatIdent) {
            if ident.by_ref.is_some() || ident.subpat.is_some() {
                *self.plain = false;
            }
            self.found
                .push((ident.ident.clone(), ident.mutability.is_some()));
        }
        fn visit_expr(&mut self, _: &'ast Expr) {}
    }
    syn::visit::Visit::visit_pat(&mut Bindings { found, plain }, pat);
}

/// Whether `operand` may borrow one of `bindings`: takes a reference to one, calls a method on
/// one (which may take `&self`), or holds a closure (which may capture by reference).
fn borrows(operand: &Expr, bindings: &[(Ident, bool)]) -> bool {
    struct Borrows<'b> {
        bindings: &'b [(Ident, bool)],
        found: bool,
    }
    impl Borrows<'_> {
        fn is_binding(&self, expr: &Expr) -> bool {
            root(expr).is_some_and(|root| self.bindings.iter().any(|(b, _)| *b == root))
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Borrows<'_> {
        fn visit_expr_reference(&mut self, reference: &'ast syn::ExprReference) {
            self.found |= self.is_binding(&reference.expr);
            syn::visit::visit_expr_reference(self, reference);
        }
        fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
            // `x.clone()`, `x.to_string()`: an owned value, what the body can keep `x` for.
            let owned = OWNING_METHODS.iter().any(|m| call.method == m);
            self.found |= !owned && self.is_binding(&call.receiver);
            syn::visit::visit_expr_method_call(self, call);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {
            self.found = true;
        }
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            // `vec![&x]`: the arguments of the macros `hoistable` admits are expressions.
            for arg in macro_args(mac).unwrap_or_default() {
                syn::visit::Visit::visit_expr(self, &arg);
            }
        }
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            // The closure given to `batch_loop` (an inner loop, batched already) runs within
            // the call and is dropped: only what it builds could borrow.
            if is_batch_loop(&call.func)
                && let [iter, Expr::Closure(each)] = call.args.iter().collect::<Vec<_>>()[..]
            {
                syn::visit::Visit::visit_expr(self, iter);
                syn::visit::Visit::visit_expr(self, &each.body);
                return;
            }
            syn::visit::visit_expr_call(self, call);
        }
    }
    let mut borrows = Borrows {
        bindings,
        found: false,
    };
    syn::visit::Visit::visit_expr(&mut borrows, operand);
    borrows.found
}

/// `..::__private::batch_loop`, as this module writes it.
fn is_batch_loop(func: &Expr) -> bool {
    matches!(func, Expr::Path(path)
        if path.path.segments.last().is_some_and(|s| s.ident == "batch_loop"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batched(body: TokenStream) -> String {
        let mut block: Block = syn::parse2(quote!({ #body })).unwrap();
        let krate: Path = syn::parse_quote!(::asynq_core);
        rewrite(&krate, &mut block);
        block.into_token_stream().to_string()
    }

    /// An await's result in its place, as printed.
    fn result(name: &str) -> String {
        format!("({name} ,) . 0")
    }

    /// `::asynq_core::any(::asynq_core::Yieldable::into_future(x))`, as printed.
    fn any(x: &str) -> String {
        format!(":: asynq_core :: any (:: asynq_core :: Yieldable :: into_future ({x}))")
    }

    #[test]
    fn independent_lets_are_awaited_together_and_tried_in_place() {
        let out = batched(quote! {
            let a = f(x).await?;
            log(1);
            let b = g(y).await?;
            let c = h(a).await;
        });
        let merged = format!(
            "let (__asynq_batched1 , __asynq_batched2 ,) = ({} , {} ,) . await ;",
            any("f (x)"),
            any("g (y)")
        );
        assert!(out.contains(&merged), "{out}");
        assert!(
            out.contains(&format!(
                "let a = {} ? ; log (1) ; let b = {} ? ; let c = h (a) . await ;",
                result("__asynq_batched1"),
                result("__asynq_batched2")
            )),
            "{out}"
        );
    }

    #[test]
    fn awaits_in_one_expression() {
        let out = batched(quote! { Ok(f(1).await? + g(2).await?) });
        assert!(
            out.contains(&format!(
                "Ok ({} ? + {} ?)",
                result("__asynq_batched1"),
                result("__asynq_batched2")
            )),
            "{out}"
        );
    }

    #[test]
    fn what_cannot_move_stays() {
        for body in [
            // The second operand returns early; the first is a macro that may do anything.
            quote! { let a = f(x).await; let b = g(y?).await; },
            quote! { let a = f(x).await; let b = g(dbg!(y)).await; },
            // The code between uses what the second operand uses: it could move it first.
            quote! { let a = f(x).await; keep(y); let b = g(y).await; },
            quote! { let a = combine(y, f(x).await, g(y).await); },
        ] {
            let out = batched(body.clone());
            assert!(!out.contains("__asynq_batched"), "{body}\n{out}");
        }
    }

    #[test]
    fn a_loop_of_independent_iterations() {
        let out = batched(quote! {
            for uid in uids {
                let name = user_name(uid).await;
                names.push((uid, name));
            }
        });
        let expected = format!(
            "let (__asynq_results1 , __asynq_kept2) = :: asynq_core :: __private :: batch_loop \
             (uids , | uid | ({} , (uid ,))) . await ; \
             for ((uid ,) , __asynq_result3) in :: core :: iter :: Iterator :: zip \
             (:: core :: iter :: IntoIterator :: into_iter (__asynq_kept2) , __asynq_results1) \
             {{ let name = {} ; names . push ((uid , name)) ; }}",
            any("user_name (uid)"),
            result("__asynq_result3")
        );
        assert!(out.contains(&expected), "{expected}\n{out}");
    }

    #[test]
    fn loops_that_must_stay_sequential() {
        for body in [
            quote! { for x in xs { prev = f(prev).await; } },
            quote! { for x in xs { let y = g(x); let z = f(y).await; out.push(z); } },
            quote! { for x in xs { if c(x) { f(x).await; } } },
            quote! { for x in xs { let n = f(&x).await; } },
            quote! { for x in xs { let n = x.load().await; } },
            quote! { for x in xs { let n = f(vec![&x]).await; } },
            quote! { for x in xs { let n = f(x.as_str()).await; } },
            quote! { for i in 0.. { out.push(f(i).await?); } },
            quote! { for i in (1..) { out.push(f(i).await?); } },
            quote! { for ref x in xs { let n = f(x).await; } },
            quote! { for x in xs { let n = f(x).await; if n { break; } } },
        ] {
            let out = batched(body.clone());
            assert!(!out.contains("batch_loop"), "{body}\n{out}");
        }
    }

    #[test]
    fn a_loop_whose_operand_clones_its_binding() {
        let out = batched(quote! {
            for s in names { let n = f(s.clone()).await?; log(s, n); }
        });
        assert!(out.contains("batch_loop (names , | s |"), "{out}");
    }

    #[test]
    fn loops_with_the_same_binding_are_merged() {
        let out = batched(quote! {
            for x in xs { a.push(f(x).await?); }
            for x in ys { b.push(g(x).await?); }
            let c = h(z).await?;
        });
        assert_eq!(out.matches(". await").count(), 1, "{out}");
        // A closure's parameter is its own name; an outer name the code uses is not.
        let out = batched(quote! {
            let x = f(y).await?;
            let n = g(x).await?;
            let m = k(w).await?;
        });
        assert_eq!(out.matches(". await").count(), 2, "{out}");
    }

    #[test]
    fn a_loop_merged_with_the_awaits_around_it() {
        let out = batched(quote! {
            let name = user_name(uid).await?;
            let mut answers = Vec::new();
            for a in ids {
                answers.push(answer(a).await?);
            }
            Ok((name, answers))
        });
        // One merged await: the name and the loop's tasks.
        assert_eq!(out.matches(". await").count(), 1, "{out}");
        assert!(out.contains("batch_loop (ids , | a |"), "{out}");
    }
}
