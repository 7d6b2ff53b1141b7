//! A function that holds a task of its own call: its task would contain itself.
//!
//! An unboxed task is its body's state machine, laid out inline, and so is every task it
//! holds across an await. A task of the function's own call held that way would make the
//! task's type contain itself, which rustc rejects ("recursion in an async block requires
//! boxing"). Only tasks held inline count: tasks collected into a `Vec` (`vec![f(a), f(b)]`,
//! `xs.map(f).collect::<Vec<_>>()`) live in the `Vec`'s heap buffer, and a task given to
//! another function or closure is that function's business, so neither needs a box.
//!
//! What this module sees as held is syntactic: the operand of an `.await`, the initializer of
//! a `let`, and the members of a tuple, array, struct literal, `Some(..)`, `Ok(..)`, `Err(..)`,
//! parentheses, a reference, a block's value or an `if`/`match` arm that is itself held. The
//! calls it recognises are `f(..)`, `Self::f(..)`, `self.f(..)`, and calls through a local
//! bound to the function (`let g = f;`). A recursion through another function (`a` calls
//! `b`, `b` calls `a`) is left to rustc: the unboxed task is built by the macro
//! `unboxed_task_use_asynq_boxed_to_recurse`, which rustc's error then names.
//!
//! Each held recursive call is repaired with `.boxed_local()`, so that the function compiles
//! around the one error reported for it.

use std::collections::HashSet;

use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Ident, Item, Macro, Pat, Stmt, Token};

use crate::code::short;
use crate::error::Errors;
use crate::scan::mentions;

/// Reports and boxes the recursive calls of the body of a function that is not
/// `#[asynq(boxed)]` (a boxed task may hold its own calls).
pub(crate) struct Recursion<'a> {
    /// The function's name.
    name: &'a Ident,
    errors: &'a mut Errors,
    /// Locals bound to the function itself (`let g = f;`).
    aliases: HashSet<String>,
    /// The next expression visited is held inline by the task.
    held: bool,
    /// A recursive call has been reported: one report says how to fix them all.
    reported: bool,
}

impl<'a> Recursion<'a> {
    pub(crate) fn new(name: &'a Ident, errors: &'a mut Errors) -> Self {
        Recursion {
            name,
            errors,
            aliases: HashSet::new(),
            held: false,
            reported: false,
        }
    }

    /// Visits `expr` as held (or not) by the task.
    fn visit_held(&mut self, expr: &mut Expr, held: bool) {
        self.held = held;
        self.visit_expr_mut(expr);
    }

    /// Visits a block whose value is held (or not): its statements, then its value.
    fn visit_held_block(&mut self, block: &mut Block, held: bool) {
        let last = block.stmts.len().saturating_sub(1);
        for (i, stmt) in block.stmts.iter_mut().enumerate() {
            match stmt {
                Stmt::Expr(value, None) if i == last => self.visit_held(value, held),
                other => self.visit_stmt_mut(other),
            }
        }
    }

    /// The callee's name if `expr` calls this function: `f(..)`, `Self::f(..)`, `self.f(..)`,
    /// or `g(..)` for an alias `g`.
    fn recursive_call(&self, expr: &Expr) -> Option<String> {
        let name = self.name;
        match expr {
            Expr::Call(call) => match &*call.func {
                Expr::Path(path) if path.qself.is_none() => {
                    let segments = &path.path.segments;
                    let last = &segments.last()?.ident;
                    let direct = last == name
                        && (segments.len() == 1
                            || (segments.len() == 2 && segments[0].ident == "Self"));
                    let alias = segments.len() == 1 && self.aliases.contains(&last.to_string());
                    (direct || alias).then(|| last.to_string())
                }
                _ => None,
            },
            Expr::MethodCall(call) => (call.method == *name
                && matches!(&*call.receiver, Expr::Path(p) if p.path.is_ident("self")))
            .then(|| name.to_string()),
            _ => None,
        }
    }

    /// Input:  f(n - 1)                    (held inside `fn f`)
    /// Output: (f(n - 1)).boxed_local(), and an error on the first such call
    fn box_held_call(&mut self, expr: &mut Expr, callee: &str) {
        if !std::mem::replace(&mut self.reported, true) {
            let name = self.name;
            let call = short(&*expr);
            let through = if *name == callee {
                String::new()
            } else {
                format!(" (`{callee}` is `{name}`)")
            };
            self.errors.spanned(
                &*expr,
                format!(
                    "`{call}`{through} is a task of `{name}` held inside the task of `{name}`, \
                     and a task cannot contain itself; write #[asynq(boxed)] on `fn {name}` to \
                     box its task, or box each such call: `{call}.boxed_local()` (tasks \
                     collected into a `Vec` need no box: they live in its heap buffer)"
                ),
            );
        }
        let span = expr.span();
        *expr = syn::parse_quote_spanned!(span=> (#expr).boxed_local());
    }

    /// Input:  f(n - 1).boxed()            (inside `fn f`)
    /// Output: f(n - 1).boxed_local(), and an error on `boxed`
    ///
    /// Proving `Send` for the task of the function being defined needs its hidden type,
    /// which rustc cannot see from inside the function: `.boxed()` fails wherever the task
    /// goes, in a `Vec` or not.
    fn report_boxed_send(&mut self, call: &mut syn::ExprMethodCall) {
        call.method = Ident::new("boxed_local", call.method.span());
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let name = self.name;
        self.errors.spanned(
            &call.method,
            format!(
                "`.boxed()` cannot prove `Send` for a task that contains itself; \
                 write #[asynq(boxed)] on `fn {name}` for a `Send` task, \
                 or call `.boxed_local()` here"
            ),
        );
    }
}

impl VisitMut for Recursion<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        let held = std::mem::take(&mut self.held);
        match expr {
            // Futures of their own, not the task's.
            Expr::Async(_) => return,
            Expr::Await(awaited) => return self.visit_held(&mut awaited.base, true),
            Expr::MethodCall(call)
                if matches!(&*call.method.to_string(), "boxed" | "boxed_local") =>
            {
                visit_mut::visit_expr_method_call_mut(self, call);
                if call.method == "boxed" && self.recursive_call(&call.receiver).is_some() {
                    self.report_boxed_send(call);
                }
                return;
            }
            Expr::Tuple(tuple) => {
                for elem in &mut tuple.elems {
                    self.visit_held(elem, held);
                }
            }
            Expr::Array(array) => {
                for elem in &mut array.elems {
                    self.visit_held(elem, held);
                }
            }
            Expr::Paren(inner) => self.visit_held(&mut inner.expr, held),
            Expr::Group(inner) => self.visit_held(&mut inner.expr, held),
            Expr::Reference(inner) => self.visit_held(&mut inner.expr, held),
            Expr::Struct(literal) => {
                for field in &mut literal.fields {
                    self.visit_held(&mut field.expr, held);
                }
                if let Some(rest) = &mut literal.rest {
                    self.visit_held(rest, false);
                }
            }
            Expr::Call(call) if is_inline_wrapper(&call.func) => {
                for arg in &mut call.args {
                    self.visit_held(arg, held);
                }
            }
            Expr::Block(block) => self.visit_held_block(&mut block.block, held),
            Expr::If(branches) => {
                self.visit_held(&mut branches.cond, false);
                self.visit_held_block(&mut branches.then_branch, held);
                if let Some((_, otherwise)) = &mut branches.else_branch {
                    self.visit_held(otherwise, held);
                }
            }
            Expr::Match(matched) => {
                self.visit_held(&mut matched.expr, false);
                for arm in &mut matched.arms {
                    self.visit_pat_mut(&mut arm.pat); // with its guard, if any
                    self.visit_held(&mut arm.body, held);
                }
            }
            // A closure's value goes where the closure is called: an iterator collected into a
            // `Vec`, usually.
            _ => visit_mut::visit_expr_mut(self, expr),
        }
        if held && let Some(callee) = self.recursive_call(expr) {
            self.box_held_call(expr, &callee);
        }
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let Some(init) = &mut local.init {
            self.visit_held(&mut init.expr, true);
            if let Some((_, otherwise)) = &mut init.diverge {
                self.visit_held(otherwise, false);
            }
        }
        // `let g = f;` (or `Self::f`): later calls of `g` call the function.
        if let (Pat::Ident(binding), Some(init)) = (&local.pat, &local.init)
            && let Expr::Path(path) = &*init.expr
            && path.qself.is_none()
        {
            let segments = &path.path.segments;
            let is_self = segments.last().is_some_and(|s| s.ident == *self.name)
                && (segments.len() == 1 || (segments.len() == 2 && segments[0].ident == "Self"));
            let is_alias =
                segments.len() == 1 && self.aliases.contains(&segments[0].ident.to_string());
            if is_self || is_alias {
                self.aliases.insert(binding.ident.to_string());
            }
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // Do not recurse into nested items: they are not part of the task.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // Heuristic, as in the rewrite: arguments that parse as comma-separated expressions
        // (`vec![f(a), f(b)]`, `println!`) are checked like the body; none of them is held
        // (a `vec!` is on the heap), but an await inside one is. Only those that mention the
        // function or an alias of it can call it: the others are not parsed.
        let calls = |ident: &Ident| ident == self.name || self.aliases.contains(&ident.to_string());
        if !mentions(mac.tokens.clone(), &calls) {
            return;
        }
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(mut args) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
            for arg in args.iter_mut() {
                self.visit_held(arg, false);
            }
            mac.tokens = args.into_token_stream();
        }
    }
}

/// `Some`, `Ok`, `Err`: a call that keeps its argument inline.
fn is_inline_wrapper(func: &Expr) -> bool {
    matches!(func, Expr::Path(path)
        if path.qself.is_none()
            && path.path.segments.last().is_some_and(|s| matches!(&*s.ident.to_string(), "Some" | "Ok" | "Err")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn check(body: TokenStream) -> (String, String) {
        let mut block: Block = syn::parse2(quote!({ #body })).unwrap();
        let name: Ident = syn::parse_quote!(fib);
        let mut errors = Errors::default();
        Recursion::new(&name, &mut errors).visit_block_mut(&mut block);
        (
            block.into_token_stream().to_string(),
            errors.into_compile_errors().to_string(),
        )
    }

    #[test]
    fn held_calls_are_boxed_and_reported_once() {
        let (body, errors) = check(quote! {
            let (a, b) = (fib(n - 1), fib(n - 2)).await;
            let c = Some(Self::fib(n - 3)).await;
            let t = self.fib(n - 4);
            let d = if x { fib(1) } else { fib(2) }.await;
        });
        for call in [
            "fib (n - 1)",
            "fib (n - 2)",
            "Self :: fib (n - 3)",
            "self . fib (n - 4)",
            "fib (1)",
            "fib (2)",
        ] {
            assert!(
                body.contains(&format!("({call}) . boxed_local ()")),
                "{call}: {body}"
            );
        }
        assert_eq!(errors.matches("compile_error").count(), 1, "{errors}");
        assert!(
            errors.contains("`fib(n - 1)` is a task of `fib` held inside the task of `fib`"),
            "{errors}"
        );
    }

    #[test]
    fn tasks_in_a_vec_or_given_away_are_not_held() {
        let (body, errors) = check(quote! {
            let a = xs.into_iter().map(fib).collect::<Vec<_>>().await;
            let b = xs.iter().map(|&x| fib(x)).collect::<Vec<_>>().await;
            let c = vec![fib(1), fib(2)].await;
            let mut v = Vec::new();
            v.push(fib(3));
            let g = fib;
            let d = ys.into_iter().map(g).collect::<Vec<_>>().await;
            let e = fib(n - 1).boxed_local().await;
        });
        assert_eq!(errors, "", "{body}");
        assert!(!body.contains("boxed_local () . boxed_local"), "{body}");
    }

    #[test]
    fn calls_through_an_alias_are_recursive() {
        let (body, errors) = check(quote! {
            let g = fib;
            let h = g;
            let a = h(n - 1).await;
        });
        assert!(body.contains("(h (n - 1)) . boxed_local ()"), "{body}");
        assert!(
            errors.contains("`h(n - 1)` (`h` is `fib`) is a task of `fib`"),
            "{errors}"
        );
    }

    #[test]
    fn boxed_recursion_cannot_be_send() {
        let (body, errors) = check(quote! {
            let a = vec![fib(n - 1).boxed(), fib(n - 2).boxed()].await;
        });
        assert!(!body.contains(". boxed ()"), "{body}");
        assert_eq!(
            errors.matches("`.boxed()` cannot prove `Send`").count(),
            1,
            "{errors}"
        );
    }
}
