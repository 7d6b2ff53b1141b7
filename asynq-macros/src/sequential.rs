//! The `sequential awaits` warning: independent awaits written one after another wait for a
//! round each, where awaiting them together would batch them into one.
//!
//! # The heuristic
//!
//! Purely syntactic, over the function's own body (not closures, async blocks or nested
//! items):
//! - Consecutive statements `let a = X.await;` `let b = Y.await;` (each optionally ending in
//!   `?`) form a run when no operand mentions a name bound by an earlier pattern of the run
//!   (any identifier token counts, even inside macros), no operand mentions a name that
//!   another takes as `&mut`, and no operand contains another (awaiting `get(k)` and then
//!   `(get(k), get(j))` re-reads `get(k)` on purpose). A run of two or more is reported once.
//! - A `for` loop whose body awaits `X` (the first await of its statements, as in
//!   `let y = X.await;` or `ys.push(X.await);`, not inside a nested closure or loop) where
//!   `X` mentions no name bound by an earlier `let` of the body and no name assigned
//!   (`=`, `+=`, ...) or taken as `&mut` anywhere in the body, and the statement does not
//!   fold the result into a variable (`acc += X.await;`, `h = mix(h, X.await);`: a fold is
//!   often order-dependent, so it is left alone, though a plain sum could batch). Loops containing `break` or
//!   `return` are skipped: stopping early is then part of the logic.
//!
//! # False positives
//!
//! The check cannot see types or effects, so it also fires when:
//! - the second await depends on the first through a side effect that the syntax does not
//!   show (a method taking `&mut self` on a shared value, interior mutability, a `static`);
//! - the order is deliberate (the first await must finish before the second is worth
//!   starting, as in an access check followed by the expensive load);
//! - the loop's iterations must run in order for another reason.
//!
//! Silence it for one function with `#[asynq(allow_sequential)]`.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Block, Expr, Item, Pat, Stmt};

use crate::code::{code, short};
use crate::rewrite::mentions_await;

/// One warning: the token it points at (the first of the awaits) and its message.
pub(crate) struct Finding {
    pub(crate) span: Span,
    pub(crate) message: String,
}

/// Every run of independent sequential awaits in `block`.
pub(crate) fn find(block: &Block) -> Vec<Finding> {
    let mut finder = Finder(Vec::new());
    finder.visit_block(block);
    finder.0
}

struct Finder(Vec<Finding>);

impl<'ast> Visit<'ast> for Finder {
    fn visit_block(&mut self, block: &'ast Block) {
        self.runs(&block.stmts);
        visit::visit_block(self, block);
    }

    fn visit_expr_for_loop(&mut self, for_loop: &'ast syn::ExprForLoop) {
        self.for_loop(for_loop);
        visit::visit_expr_for_loop(self, for_loop);
    }

    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {
        // Don't look into closures: their awaits are not the task's.
    }

    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {
        // Don't look into async blocks: their awaits are not the task's.
    }

    fn visit_item(&mut self, _: &'ast Item) {
        // Do not recurse into nested items: they are not part of the task.
    }
}

/// An awaiting statement: `let pat = X.await;`, `X.await?;`, ...
struct Awaiting<'a> {
    stmt: &'a Stmt,
    pat: Option<&'a Pat>,
    operand: &'a Expr,
    tried: bool,
}

fn awaiting(stmt: &Stmt) -> Option<Awaiting<'_>> {
    let (pat, expr) = match stmt {
        Stmt::Local(local) => {
            let init = local.init.as_ref()?;
            if init.diverge.is_some() {
                return None;
            }
            (Some(&local.pat), &*init.expr)
        }
        Stmt::Expr(expr, Some(_)) => (None, expr),
        _ => return None,
    };
    let (expr, tried) = match expr {
        Expr::Try(tried) => (&*tried.expr, true),
        other => (other, false),
    };
    let Expr::Await(awaited) = expr else {
        return None;
    };
    if mentions_await(awaited.base.to_token_stream()) {
        return None;
    }
    Some(Awaiting {
        stmt,
        pat,
        operand: &awaited.base,
        tried,
    })
}

impl Finder {
    fn runs(&mut self, stmts: &[Stmt]) {
        let mut run: Vec<Awaiting<'_>> = Vec::new();
        for stmt in stmts {
            let next = awaiting(stmt);
            if let Some(next) = next {
                if !run.is_empty() && independent(&run, &next) {
                    run.push(next);
                    continue;
                }
                self.report_run(std::mem::take(&mut run));
                run.push(next);
            } else {
                self.report_run(std::mem::take(&mut run));
            }
        }
        self.report_run(run);
    }

    fn report_run(&mut self, run: Vec<Awaiting<'_>>) {
        if run.len() < 2 {
            return;
        }
        let pats: Vec<String> = run
            .iter()
            .map(|a| match a.pat {
                Some(Pat::Type(typed)) => code(&typed.pat),
                Some(pat) => code(pat),
                None => "_".to_owned(),
            })
            .collect();
        let operands: Vec<String> = run.iter().map(|a| short(a.operand)).collect();
        let then = if run.iter().any(|a| a.tried) {
            ", then apply `?` to each result"
        } else {
            ""
        };
        let message = format!(
            "these awaits are independent, so each waits for a round of its own; \
             await them together so they batch: `let ({}) = ({}).await`{then}",
            pats.join(", "),
            operands.join(", "),
        );
        self.0.push(Finding {
            span: first_span(run[0].stmt),
            message,
        });
    }

    fn for_loop(&mut self, for_loop: &syn::ExprForLoop) {
        let body = &for_loop.body.stmts;
        if exits_early(&for_loop.body) {
            return;
        }
        let mut dependent = assigned(for_loop.body.to_token_stream());
        for stmt in body {
            if let Some(operand) = first_await(stmt) {
                if !folds(stmt)
                    && names(operand.to_token_stream()).is_disjoint(&dependent)
                    && !mentions_await(operand.to_token_stream())
                {
                    let message = format!(
                        "this loop awaits once per iteration, so each iteration waits for a round \
                         of its own; collect the tasks and await them together so they batch: \
                         `let results = {}.into_iter().map(|{}| {}).collect::<Vec<_>>().await`",
                        receiver(&for_loop.expr),
                        code(&for_loop.pat),
                        short(operand),
                    );
                    self.0.push(Finding {
                        span: first_span(stmt),
                        message,
                    });
                }
                return;
            }
            if let Stmt::Local(local) = stmt {
                dependent.extend(names(local.pat.to_token_stream()));
            }
        }
    }
}

/// The loop's iterable as the receiver of `.into_iter()`: `xs`, `(0..n)`.
fn receiver(iterable: &Expr) -> String {
    match iterable {
        Expr::Path(_)
        | Expr::Call(_)
        | Expr::MethodCall(_)
        | Expr::Field(_)
        | Expr::Index(_)
        | Expr::Macro(_)
        | Expr::Paren(_)
        | Expr::Array(_)
        | Expr::Tuple(_) => short(iterable),
        _ => format!("({})", short(iterable)),
    }
}

/// The operand of the first `.await` that a statement evaluates (`names.push(f(x).await)`
/// awaits `f(x)`), outside closures, async blocks, nested items and nested loops.
fn first_await(stmt: &Stmt) -> Option<&Expr> {
    struct First<'ast>(Option<&'ast Expr>);
    impl<'ast> Visit<'ast> for First<'ast> {
        fn visit_expr_await(&mut self, awaited: &'ast syn::ExprAwait) {
            // Recurse first: the innermost await runs first.
            visit::visit_expr_await(self, awaited);
            self.0.get_or_insert(&awaited.base);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_expr_for_loop(&mut self, _: &'ast syn::ExprForLoop) {}
        fn visit_expr_while(&mut self, _: &'ast syn::ExprWhile) {}
        fn visit_expr_loop(&mut self, _: &'ast syn::ExprLoop) {}
        fn visit_item(&mut self, _: &'ast Item) {}
    }
    let mut first = First(None);
    first.visit_stmt(stmt);
    first.0
}

/// Whether `next` can join `run`: it mentions none of the run's bindings, no name is taken
/// as `&mut` by one and mentioned by another, and neither repeats the other's expression.
fn independent(run: &[Awaiting<'_>], next: &Awaiting<'_>) -> bool {
    let mentioned = names(next.operand.to_token_stream());
    let next_mut = mutably_borrowed(next.operand.to_token_stream());
    let next_tokens = flatten(next.operand.to_token_stream());
    run.iter().all(|earlier| {
        // Awaiting the same expression again (`let a = get(k).await; let b = (get(k),
        // get(j)).await;`) reads it again after the first await, on purpose: batching would
        // merge the two reads.
        let earlier_tokens = flatten(earlier.operand.to_token_stream());
        if contains(&next_tokens, &earlier_tokens) || contains(&earlier_tokens, &next_tokens) {
            return false;
        }
        let bound = earlier
            .pat
            .map(|p| names(p.to_token_stream()))
            .unwrap_or_default();
        let earlier_mut = mutably_borrowed(earlier.operand.to_token_stream());
        bound.is_disjoint(&mentioned)
            && earlier_mut.is_disjoint(&mentioned)
            && next_mut.is_disjoint(&names(earlier.operand.to_token_stream()))
    })
}

/// The tokens as a flat sequence of words, groups marked by their delimiters.
fn flatten(tokens: TokenStream) -> Vec<String> {
    let mut words = Vec::new();
    for tt in tokens {
        match tt {
            TokenTree::Group(group) => {
                words.push(format!("{:?}(", group.delimiter()));
                words.extend(flatten(group.stream()));
                words.push(")".to_owned());
            }
            other => words.push(other.to_string()),
        }
    }
    words
}

/// Whether `needle` occurs in `haystack` as a contiguous run of tokens.
fn contains(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every identifier in `tokens`, at any depth.
fn names(tokens: TokenStream) -> HashSet<String> {
    let mut found = HashSet::new();
    collect_names(tokens, &mut found);
    found
}

fn collect_names(tokens: TokenStream, found: &mut HashSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) => {
                found.insert(ident.to_string());
            }
            TokenTree::Group(group) => collect_names(group.stream(), found),
            _ => {}
        }
    }
}

/// The names right after `&mut`, at any depth.
fn mutably_borrowed(tokens: TokenStream) -> HashSet<String> {
    let mut found = HashSet::new();
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in tokens.iter().enumerate() {
        match tt {
            TokenTree::Group(group) => found.extend(mutably_borrowed(group.stream())),
            TokenTree::Punct(p) if p.as_char() == '&' => {
                if let (Some(TokenTree::Ident(m)), Some(TokenTree::Ident(name))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                    && m == "mut"
                {
                    found.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
    found
}

/// The names assigned (`x = ..`, `x += ..`, `x.f = ..`) or taken as `&mut` in a loop body.
fn assigned(body: TokenStream) -> HashSet<String> {
    struct Assigned(HashSet<String>);
    impl<'ast> Visit<'ast> for Assigned {
        fn visit_expr_assign(&mut self, assign: &'ast syn::ExprAssign) {
            self.0.extend(names(assign.left.to_token_stream()));
            visit::visit_expr_assign(self, assign);
        }
        fn visit_expr_binary(&mut self, binary: &'ast syn::ExprBinary) {
            if is_compound_assign(&binary.op) {
                self.0.extend(names(binary.left.to_token_stream()));
            }
            visit::visit_expr_binary(self, binary);
        }
    }
    let mut found = Assigned(mutably_borrowed(body.clone()));
    if let Ok(block) = syn::parse2::<Block>(body) {
        found.visit_block(&block);
    }
    found.0
}

/// `+=`, `-=`, `|=`, ...
fn is_compound_assign(op: &syn::BinOp) -> bool {
    use syn::BinOp::*;
    matches!(
        op,
        AddAssign(_)
            | SubAssign(_)
            | MulAssign(_)
            | DivAssign(_)
            | RemAssign(_)
            | BitXorAssign(_)
            | BitAndAssign(_)
            | BitOrAssign(_)
            | ShlAssign(_)
            | ShrAssign(_)
    )
}

/// Whether a statement folds into a variable: `acc += X.await;`, `h = mix(h, X.await);`.
fn folds(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Expr(Expr::Assign(_), _) => true,
        Stmt::Expr(Expr::Binary(binary), _) => is_compound_assign(&binary.op),
        _ => false,
    }
}

/// Whether a loop body can leave the loop early: `break` or `return`, outside closures and
/// nested items.
fn exits_early(body: &Block) -> bool {
    struct Exits(bool);
    impl<'ast> Visit<'ast> for Exits {
        fn visit_expr_break(&mut self, _: &'ast syn::ExprBreak) {
            self.0 = true;
        }
        fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
            self.0 = true;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast Item) {}
    }
    let mut exits = Exits(false);
    exits.visit_block(body);
    exits.0
}

fn first_span(stmt: &Stmt) -> Span {
    stmt.to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |tt| tt.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(body: TokenStream) -> Vec<String> {
        let block: Block = syn::parse2(quote!({ #body })).unwrap();
        find(&block).into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn independent_lets_are_one_finding() {
        let found = messages(quote! {
            let a = f(x).await?;
            let b: u32 = g(y).await;
            let c = h(z).await;
            let d = k(c).await;
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].ends_with(
                "`let (a, b, c) = (f(x), g(y), h(z)).await`, then apply `?` to each result"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn dependent_or_mutating_awaits_are_fine() {
        assert!(messages(quote! { let a = f(x).await; let b = g(a).await; }).is_empty());
        assert!(messages(quote! { let a = f(&mut s).await; let b = g(&s).await; }).is_empty());
        assert!(
            messages(quote! { let a = f(x).await; println!("{a}"); let b = g(y).await; })
                .is_empty()
        );
        assert!(
            messages(quote! { let c = || { let a = f(x).await; let b = g(y).await; }; }).is_empty()
        );
    }

    #[test]
    fn loops_awaiting_per_iteration() {
        let found = messages(quote! {
            for uid in uids { let name = user_name(uid).await; names.push(name); }
        });
        assert_eq!(found.len(), 1);
        assert!(found[0].ends_with(
            "`let results = uids.into_iter().map(|uid| user_name(uid)).collect::<Vec<_>>().await`"
        ));
        assert!(messages(quote! { for x in xs { total += f(x, total).await; } }).is_empty());
        let pushed = messages(quote! { for x in xs { ys.push(f(x).await); } });
        assert_eq!(pushed.len(), 1);
        assert!(
            pushed[0].contains("xs.into_iter().map(|x| f(x))"),
            "{pushed:?}"
        );
        assert!(messages(quote! { for x in xs { let c = || f(x).await; } }).is_empty());
        // Folds are left alone; a range is parenthesized in the suggestion.
        assert!(messages(quote! { for k in 0..n { sum += load(k).await; } }).is_empty());
        assert!(messages(quote! { for c in cs { h = mix(h, eval(c).await?); } }).is_empty());
        let ranged = messages(quote! { for k in 0..n { let v = load(k).await; vs.push(v); } });
        assert!(
            ranged[0].contains("`let results = (0..n).into_iter().map(|k| load(k))"),
            "{ranged:?}"
        );
        assert!(messages(quote! { for x in xs { let y = g(x); let z = f(y).await; } }).is_empty());
        assert!(messages(quote! { for x in xs { if f(x).await { break; } } }).is_empty());
        assert!(
            messages(quote! { for x in xs { let y = f(x).await; if y { break; } } }).is_empty()
        );
    }
}
