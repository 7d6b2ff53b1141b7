//! Misuse inside the body, found syntactically before the rewrite: Python-style `yield`,
//! `.await` inside a closure, blocking on a run, and (in `recursion`) a task of the function's
//! own call held without a box.
//!
//! Each mistake is reported on its own tokens and repaired in place, so that the function
//! still compiles around it and the error is the only one: `yield x` becomes `x.await`, an
//! `.await` in a closure becomes a call with the awaited type, a recursive call gets a box.

use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident, Item, Macro, Path, Token};

use crate::code::{code, short};
use crate::error::Errors;
use crate::guards;
use crate::recursion::Recursion;
use crate::scan::mentions;

/// Checks one function's body, reporting and repairing each misuse. `may_recurse`: the body
/// mentions the function's name (see [`Scan`](crate::scan::Scan)); a boxed function may hold
/// its own calls, so the recursion check runs only for the others that do.
pub(crate) fn check(
    krate: &Path,
    (name, boxed, may_recurse): (&Ident, bool, bool),
    errors: &mut Errors,
    block: &mut syn::Block,
) {
    guards::check(block, errors);
    Misuse::new(krate, errors).visit_block_mut(block);
    if may_recurse && !boxed {
        Recursion::new(name, errors).visit_block_mut(block);
    }
}

/// Finds and repairs the misuses in one function's body.
pub(crate) struct Misuse<'a> {
    pub(crate) krate: &'a Path,
    pub(crate) errors: &'a mut Errors,
    /// The parameters of the plain closures around the expression being visited, innermost
    /// last, as written (`|uid|`).
    closures: Vec<String>,
    /// The next expression visited is the operand of `.await`.
    awaited: bool,
    /// Inside the arguments of a blocking call already reported: `block_on(rt.run_async(t))`
    /// is one mistake.
    in_blocking: bool,
}

impl<'a> Misuse<'a> {
    pub(crate) fn new(krate: &'a Path, errors: &'a mut Errors) -> Self {
        Misuse {
            krate,
            errors,
            closures: Vec::new(),
            awaited: false,
            in_blocking: false,
        }
    }
}

impl VisitMut for Misuse<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        let awaited = std::mem::take(&mut self.awaited);
        match expr {
            Expr::Async(_) => {
                // Don't look into async blocks: they are futures of their own, not the task.
                return;
            }
            Expr::Closure(closure) if closure.asyncness.is_some() => return,
            Expr::Closure(closure) => {
                let params = closure.inputs.iter().map(code).collect::<Vec<_>>();
                self.closures.push(params.join(", "));
                visit_mut::visit_expr_closure_mut(self, closure);
                self.closures.pop();
                return;
            }
            _ => {}
        }
        // `yield x` is reported once, as a `yield`, then treated as the `x.await` it meant.
        let from_yield = matches!(expr, Expr::Yield(_));
        if from_yield {
            self.replace_yield(expr);
        }
        let outer_blocking = self.in_blocking;
        if !self.in_blocking && self.check_blocking(expr, awaited) {
            self.in_blocking = true;
        }
        // Recurse first, then check and repair this expression.
        match expr {
            Expr::Await(awaited) => {
                self.awaited = true;
                self.visit_expr_mut(&mut awaited.base);
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
        self.in_blocking = outer_blocking;
        if let Expr::Await(_) = expr
            && !self.closures.is_empty()
        {
            self.replace_closure_await(expr, !from_yield);
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {
        // Do not recurse into nested items: they are not part of the task.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // Heuristic, as in the rewrite: arguments that parse as comma-separated expressions
        // (`println!`, `assert_eq!`, `vec![a, b]`) are checked like the body. Only those that
        // mention what a misuse needs are parsed: parsing and printing them back is costly.
        let misused = |ident: &proc_macro2::Ident| {
            ["await", "yield", "run", "run_async", "block_on"]
                .iter()
                .any(|word| ident == word)
        };
        if !mentions(mac.tokens.clone(), &misused) {
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

impl Misuse<'_> {
    /// Input:  yield x
    /// Output: x.await, and an error on `yield x`
    fn replace_yield(&mut self, expr: &mut Expr) {
        let Expr::Yield(yielded) = expr else { return };
        let operand = match &yielded.expr {
            Some(operand) => code(operand),
            None => "x".to_owned(),
        };
        self.errors.spanned(
            &*yielded,
            format!("`yield` cannot suspend an asynq function; write `{operand}.await` in #[asynq] functions"),
        );
        let span = yielded.yield_token.span;
        let base = match yielded.expr.take() {
            Some(operand) => operand,
            None => Box::new(syn::parse_quote_spanned!(span=> ())),
        };
        // syn adds the parentheses that precedence needs when it prints the await.
        *expr = Expr::Await(syn::ExprAwait {
            attrs: std::mem::take(&mut yielded.attrs),
            base,
            dot_token: Token![.](span),
            await_token: Token![await](span),
        });
    }

    /// Input:  |x| f(x).await
    /// Output: |x| ::asynq_core::__private::await_in_closure(f(x)), and an error on `.await`
    ///
    /// The replacement has the type that the `.await` would have had, so that nothing else
    /// in the closure fails to type-check.
    fn replace_closure_await(&mut self, expr: &mut Expr, report: bool) {
        let Expr::Await(awaited) = expr else { return };
        let base = &awaited.base;
        let mut tokens = awaited.dot_token.to_token_stream();
        awaited.await_token.to_tokens(&mut tokens);
        let params = self.closures.last().map_or("", String::as_str);
        let krate = crate::rewrite::respan(self.krate.to_token_stream(), base.span());
        let replacement =
            syn::parse_quote_spanned!(base.span()=> #krate::__private::await_in_closure(#base));
        if !report {
            *expr = replacement;
            return;
        }
        self.errors.spanned(
            tokens,
            format!(
                "a closure cannot suspend the task; remove this `.await` and await all the \
                 closure's tasks at once: `.map(|{params}| {}).collect::<Vec<_>>().await`",
                short(base)
            ),
        );
        *expr = replacement;
    }

    /// `rt.run(task)`, `block_on(task)`, `Runtime::run(&rt, task)` inside the body; returns
    /// whether it reported one.
    fn check_blocking(&mut self, expr: &Expr, awaited: bool) -> bool {
        let (what, task) = match expr {
            // `x.run(y).await` is an asynq method named `run`, not a blocking run.
            Expr::MethodCall(call) if call.args.len() == 1 => match &*call.method.to_string() {
                "run" if !awaited => ("run", &call.args[0]),
                "run_async" => ("run_async", &call.args[0]),
                "block_on" => ("block_on", &call.args[0]),
                _ => return false,
            },
            Expr::Call(call) if call.args.len() == 1 || call.args.len() == 2 => {
                let Expr::Path(path) = &*call.func else {
                    return false;
                };
                let segments: Vec<String> = path
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                let last = segments.last().map(String::as_str);
                let runtime = segments.len() >= 2 && segments[segments.len() - 2] == "Runtime";
                match last {
                    Some("block_on") if call.args.len() == 1 => ("block_on", &call.args[0]),
                    Some("run") if runtime => ("Runtime::run", &call.args[call.args.len() - 1]),
                    Some("run_async") if runtime => {
                        ("Runtime::run_async", &call.args[call.args.len() - 1])
                    }
                    _ => return false,
                }
            }
            _ => return false,
        };
        // `block_on(rt.run_async(task))`: the task is the inner argument.
        let task = match task {
            Expr::MethodCall(inner)
                if inner.args.len() == 1
                    && matches!(&*inner.method.to_string(), "run" | "run_async") =>
            {
                &inner.args[0]
            }
            other => other,
        };
        self.errors.spanned(
            expr,
            format!(
                "`{what}` inside an asynq function blocks the scheduler and defeats batching; \
                 await the task instead: `{}.await`",
                short(task)
            ),
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn check(body: TokenStream) -> (String, String) {
        let mut block: syn::Block = syn::parse2(quote!({ #body })).unwrap();
        let krate: Path = syn::parse_quote!(::asynq_core);
        let name: Ident = syn::parse_quote!(fib);
        let mut errors = Errors::default();
        super::check(&krate, (&name, false, true), &mut errors, &mut block);
        (
            block.into_token_stream().to_string(),
            errors.into_compile_errors().to_string(),
        )
    }

    #[test]
    fn allows_what_is_fine() {
        let (_, errors) = check(quote! {
            let a = self.run(x).await;
            let b = fib(n - 1).boxed_local().await;
            let c = async { rt.run(x) };
            fn inner() { fib(1); rt.run(x); }
            let d = xs.iter().map(|x| x + 1);
        });
        assert_eq!(errors, "");
    }

    #[test]
    fn reports_and_repairs() {
        let (body, errors) = check(quote! {
            let a = yield f(1);
            let b = xs.map(|x| g(x).await);
            let c = rt.run(h(1));
            let d = futures::executor::block_on(rt.run_async(h(2)));
            let e = fib(n - 1).await;
            let f = fib(n - 2).boxed().await;
        });
        assert!(body.contains("let a = f (1) . await"), "{body}");
        assert!(
            body.contains("| x | :: asynq_core :: __private :: await_in_closure (g (x))"),
            "{body}"
        );
        assert!(body.contains("(fib (n - 1)) . boxed_local ()"), "{body}");
        assert!(
            errors.contains("write `f(1).await` in #[asynq] functions"),
            "{errors}"
        );
        assert!(
            errors.contains("a closure cannot suspend the task"),
            "{errors}"
        );
        assert!(
            errors.contains("`run` inside an asynq function blocks the scheduler"),
            "{errors}"
        );
        assert!(errors.contains("`block_on` inside an asynq function blocks the scheduler and defeats batching; await the task instead: `h(2).await`"), "{errors}");
        assert_eq!(
            errors.matches("blocks the scheduler").count(),
            2,
            "{errors}"
        );
        assert!(
            errors.contains("`fib(n - 1)` is a task of `fib` held"),
            "{errors}"
        );
        // One report for the function's recursion; every recursive call is repaired.
        assert!(body.contains("fib (n - 2) . boxed_local ()"), "{body}");
        assert_eq!(errors.matches("held inside").count(), 1, "{errors}");
        assert!(!errors.contains("`.boxed()`"), "{errors}");
    }

    #[test]
    fn blocking_calls_by_path() {
        let (_, errors) = check(quote! {
            let a = Runtime::run(&rt, h(1));
            let b = asynq_core::Runtime::run_async(&rt, h(2));
            let c = Engine::run(&engine, 3);
        });
        assert!(
            errors.contains("`Runtime::run` inside an asynq function"),
            "{errors}"
        );
        assert!(errors.contains("`Runtime::run_async` inside"), "{errors}");
        assert!(
            errors.contains("await the task instead: `h(2).await`"),
            "{errors}"
        );
        assert_eq!(
            errors.matches("blocks the scheduler").count(),
            2,
            "{errors}"
        );
    }

    #[test]
    fn yield_in_a_closure_is_one_mistake() {
        let (body, errors) = check(quote! {
            let b = xs.map(|x| yield g(x));
        });
        assert!(body.contains("await_in_closure (g (x))"), "{body}");
        assert_eq!(errors.matches("compile_error").count(), 1, "{errors}");
        assert!(errors.contains("`yield` cannot suspend"), "{errors}");
    }

    #[test]
    fn boxed_recursion_cannot_be_send() {
        let (body, errors) = check(quote! {
            let (a, b) = (fib(n - 1).boxed(), fib(n - 2).boxed()).await;
        });
        assert!(!body.contains(". boxed ()"), "{body}");
        assert_eq!(
            errors.matches("`.boxed()` cannot prove `Send`").count(),
            1,
            "{errors}"
        );
    }
}
