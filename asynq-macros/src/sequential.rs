//! The sequential-awaits warning: independent awaits written one after another wait for a
//! round each, where awaiting them together would batch them into one.
//!
//! `independence` finds them (its documentation states the rules); this module words the
//! warning. The warning is a `deprecated` warning (the only kind a proc-macro can raise on
//! stable), so rustc prints "use of deprecated function `path`: note": the function is named
//! so that its path says what is wrong (`profile::awaits_are_independent`,
//! `names::iterations_are_independent`), and the note starts with how to batch.
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

use proc_macro2::Span;
use syn::visit::{self, Visit};
use syn::{Block, Expr, Item, Pat};

use crate::batch;
use crate::code::{code, short};
use crate::hoist::hoistable;
use crate::independence::{self, Group, Purpose, Role, peel};
use crate::loops::{self, Iterations, LoopKind};
use crate::rewrite::ends;

/// One warning: the token it points at, the deprecated function's name, and the note.
pub(crate) struct Finding {
    pub(crate) span: Span,
    /// Says what is wrong, as the last segment of the path rustc prints.
    pub(crate) name: &'static str,
    pub(crate) message: String,
}

/// The end of a finding that `#[asynq(batch)]` would fix.
const BATCH: &str = "; or write #[asynq(batch)] on the function, which awaits them together itself";

/// Every group of independent awaits and every loop of independent iterations in `block`;
/// with `batch` (the function has `#[asynq(batch)]`), those it does not merge.
pub(crate) fn find(block: &Block, batch: bool) -> Vec<Finding> {
    let mut finder = Finder {
        found: Vec::new(),
        batch,
    };
    finder.visit_block(block);
    finder.found
}

struct Finder {
    found: Vec<Finding>,
    /// The function has `#[asynq(batch)]`.
    batch: bool,
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_block(&mut self, block: &'ast Block) {
        for group in independence::groups(block, Purpose::Warn) {
            let mut finding = group_finding(block, &group);
            if batch::merges(block, &group) {
                if self.batch {
                    continue;
                }
                finding.message.push_str(BATCH);
            }
            self.found.push(finding);
        }
        visit::visit_block(self, block);
    }

    fn visit_expr_for_loop(&mut self, expr: &'ast syn::ExprForLoop) {
        let kind = LoopKind::For {
            pat: &expr.pat,
            iterable: &expr.expr,
        };
        self.iterations(&kind, &expr.body, batch::batchable(expr).is_some());
        visit::visit_expr_for_loop(self, expr);
    }

    fn visit_expr_while(&mut self, expr: &'ast syn::ExprWhile) {
        self.iterations(&LoopKind::While { cond: &expr.cond }, &expr.body, false);
        visit::visit_expr_while(self, expr);
    }

    fn visit_expr_loop(&mut self, expr: &'ast syn::ExprLoop) {
        self.iterations(&LoopKind::Loop, &expr.body, false);
        visit::visit_expr_loop(self, expr);
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

impl Finder {
    fn iterations(&mut self, kind: &LoopKind<'_>, body: &Block, batches: bool) {
        if let Some(iterations) = loops::iterations(kind, body) {
            let mut finding = loop_finding(kind, &iterations);
            if batches {
                if self.batch {
                    return;
                }
                finding.message.push_str(BATCH);
            }
            self.found.push(finding);
        }
    }
}

/// Input:  let name = user_name(uid).await; let about = bio(uid).await;
/// Output: "await them together so they batch: `let (name, about) = (user_name(uid), bio(uid)).await`"
fn group_finding(block: &Block, group: &Group<'_>) -> Finding {
    let operands: Vec<String> = group
        .members
        .iter()
        .map(|m| short(&m.awaited.base))
        .collect();
    let tuple = format!("({}).await", operands.join(", "));
    let then = if group.members.iter().any(|m| m.tried) {
        ", then apply `?` to each result"
    } else {
        ""
    };
    let first = &group.members[0];
    let message = if group.in_one_statement() {
        let names: Vec<String> = (1..=group.members.len()).map(|i| format!("r{i}")).collect();
        let uses: Vec<String> = group
            .members
            .iter()
            .zip(&names)
            .map(|(m, name)| {
                if m.tried {
                    format!("`{name}?`")
                } else {
                    format!("`{name}`")
                }
            })
            .collect();
        format!(
            "each waits for a round of its own; await them together so they batch: \
             `let ({}) = {tuple};` before this statement, then use {} in their place",
            names.join(", "),
            uses.join(", "),
        )
    } else {
        let mut embedded = Vec::new();
        let pats: Vec<String> = group
            .members
            .iter()
            .enumerate()
            .map(|(i, member)| match &member.role {
                Role::Bound(Pat::Type(typed)) => code(&typed.pat),
                Role::Bound(pat) => code(pat),
                Role::Embedded => {
                    let name = match peel(&member.awaited.base) {
                        Expr::Path(path) if path.path.get_ident().is_some() => code(path),
                        _ => format!("r{}", i + 1),
                    };
                    embedded.push(format!(
                        "`{name}` where `{}.await` was",
                        short(&member.awaited.base)
                    ));
                    name
                }
            })
            .collect();
        let place = if embedded.is_empty() {
            String::new()
        } else {
            format!(", and use {}", embedded.join(", "))
        };
        format!(
            "each waits for a round of its own; await them together so they batch: \
             `let ({}) = {tuple}`{then}{place}",
            pats.join(", "),
        )
    };
    // A group in one statement points at its first operand, others at their first statement.
    let span = if group.in_one_statement() {
        ends(&first.awaited.base).0
    } else {
        ends(&block.stmts[first.stmt]).0
    };
    Finding {
        span,
        name: "awaits_are_independent",
        message,
    }
}

/// Input:  for uid in uids { let name = user_name(uid).await; names.push(name); }
/// Output: "await all the iterations' tasks at once: `let results =
///          uids.into_iter().map(|uid| user_name(uid)).collect::<Vec<_>>().await`"
fn loop_finding(kind: &LoopKind<'_>, iterations: &Iterations<'_>) -> Finding {
    let operand = short(iterations.operand);
    let suggestion = match kind {
        // A closure cannot hold what returns from the function (`?`, `return`).
        LoopKind::For { pat, iterable } if iterations.mappable && hoistable(iterations.operand) => {
            format!(
                "await all the iterations' tasks at once: `let results = {}.into_iter().map(|{}| \
             {operand}).collect::<Vec<_>>().await`",
                receiver(iterable),
                code(pat),
            )
        }
        _ => format!(
            "collect the iterations' tasks in the loop, `tasks.push({operand});`, await them \
             once after it, `let results = tasks.await;`, then use the results"
        ),
    };
    let what = match kind {
        LoopKind::For { .. } => "this `for` loop",
        LoopKind::While { .. } => "this `while` loop",
        LoopKind::Loop => "this `loop`",
    };
    Finding {
        span: ends(iterations.stmt).0,
        name: "iterations_are_independent",
        message: format!(
            "{what} awaits `{operand}` once per iteration, so each iteration waits for a round \
             of its own; {suggestion}"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn messages(body: TokenStream) -> Vec<String> {
        let block: Block = syn::parse2(quote!({ #body })).unwrap();
        find(&block, false).into_iter().map(|f| f.message).collect()
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
            found[0].contains(
                "`let (a, b, c) = (f(x), g(y), h(z)).await`, then apply `?` to each result"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn dependent_or_mutating_awaits_are_fine() {
        for body in [
            quote! { let a = f(x).await; let b = g(a).await; },
            quote! { let a = f(&mut s).await; let b = g(&s).await; },
            quote! { let a = f(x).await; println!("{a}"); let b = g(y).await; },
            quote! { let c = || { let a = f(x).await; let b = g(y).await; }; },
            quote! { let a = f(x).await; x += 1; let b = f(x).await; },
            quote! { let a = f(x).await; v.push(1); let b = g(&v).await; },
            quote! { let a = f(x).await; if a { return; } let b = g(y).await; },
            quote! { let a = f(x).await; let b = if c { g(y).await } else { 0 }; },
            quote! { let mut v = xs.await; v.extend(g(v.len()).await); },
            quote! { let x = h(f(1).await).await; },
            quote! { let x = f(1).await && g(2).await; },
            quote! { let a = get(k).await; let b = (get(k), get(j)).await; },
            quote! { check(uid).await?; let page = load(uid).await?; },
            quote! { check(uid).await?; load(uid).await },
        ] {
            assert!(messages(body.clone()).is_empty(), "{body}");
        }
    }

    #[test]
    fn awaits_separated_by_statements_that_touch_neither() {
        let found = messages(quote! {
            let a = f(1).await;
            log(x);
            let b = f(2).await;
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("`let (a, b) = (f(1), f(2)).await`"),
            "{found:?}"
        );
    }

    #[test]
    fn a_result_extended_by_an_independent_await() {
        let found = messages(quote! {
            let mut v = xs.await;
            v.extend(ys.await);
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .contains("`let (mut v, ys) = (xs, ys).await`, and use `ys` where `ys.await` was"),
            "{found:?}"
        );
    }

    #[test]
    fn awaits_in_one_expression() {
        for body in [
            quote! { Ok(f(1).await? + f(2).await?) },
            quote! { let page = Page { a: f(1).await?, b: g(2).await? }; },
            quote! { let s = combine(f(1).await, g(2).await); },
        ] {
            let found = messages(body.clone());
            assert_eq!(found.len(), 1, "{body}: {found:?}");
            assert!(
                found[0].contains("`let (r1, r2) = (f(1), "),
                "{body}: {found:?}"
            );
        }
    }

    #[test]
    fn loops_awaiting_per_iteration() {
        let found = messages(quote! {
            for uid in uids { let name = user_name(uid).await; names.push(name); }
        });
        assert_eq!(found.len(), 1);
        assert!(found[0].contains(
            "`let results = uids.into_iter().map(|uid| user_name(uid)).collect::<Vec<_>>().await`"
        ));
        let pushed = messages(quote! { for x in xs { ys.push(f(x).await); } });
        assert!(
            pushed[0].contains("xs.into_iter().map(|x| f(x))"),
            "{pushed:?}"
        );
        let ranged = messages(quote! { for k in 0..n { let v = load(k).await; vs.push(v); } });
        assert!(
            ranged[0].contains("`let results = (0..n).into_iter().map(|k| load(k))"),
            "{ranged:?}"
        );
        // An operand that needs a value computed in the body: collect the tasks in the loop.
        let computed =
            messages(quote! { for x in xs { let y = g(x); let z = f(y).await; out.push(z); } });
        assert!(computed[0].contains("`tasks.push(f(y));`"), "{computed:?}");
        for body in [
            quote! { for x in xs { total += f(x, total).await; } },
            quote! { for x in xs { let c = || f(x).await; } },
            quote! { for k in 0..n { sum += load(k).await; } },
            quote! { for c in cs { h = mix(h, eval(c).await?); } },
            quote! { for x in xs { if f(x).await { break; } } },
            quote! { for x in xs { let y = f(x).await; if y { break; } } },
            quote! { for x in xs { let y = f(prev).await; prev = y; } },
        ] {
            assert!(messages(body.clone()).is_empty(), "{body}");
        }
    }

    #[test]
    fn while_and_loop_awaiting_per_iteration() {
        let found = messages(quote! {
            while i < n { names.push(user_name(i).await); i += 1; }
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("this `while` loop awaits `user_name(i)`"),
            "{found:?}"
        );
        let popped = messages(quote! {
            while let Some(uid) = queue.pop() { let n = user_name(uid).await; out.push(n); }
        });
        assert_eq!(popped.len(), 1, "{popped:?}");
        let counted = messages(quote! {
            loop { if i >= n { break; } out.push(f(i).await); i += 1; }
        });
        assert_eq!(counted.len(), 1, "{counted:?}");
        for body in [
            quote! { while let Some(id) = next { let page = fetch(id).await; next = page.next; } },
            quote! { loop { let page = fetch(cursor).await; if page.last { break; } cursor = page.next; } },
            quote! { loop { out.push(f(i).await); i += 1; } },
            quote! { while i < n { let v = f(i).await; i += v; } },
            quote! { while i < n { if f(i).await { return; } i += 1; } },
        ] {
            assert!(messages(body.clone()).is_empty(), "{body}");
        }
    }

    #[test]
    fn the_batch_option_is_suggested_where_it_applies() {
        let suggests = |body: TokenStream| messages(body)[0].ends_with(BATCH);
        assert!(suggests(quote! { let a = f(x).await; let b = g(y).await; }));
        assert!(suggests(quote! { for x in xs { ys.push(f(x).await); } }));
        // `?` in an operand cannot move: the batch option leaves it where it is.
        assert!(!suggests(
            quote! { let a = f(x).await; let b = g(y?).await; }
        ));
        assert!(!suggests(
            quote! { while i < n { names.push(f(i).await); i += 1; } }
        ));
    }
}
