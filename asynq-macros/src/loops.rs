//! Which loops run iterations that each await an operand no iteration's await changes: the
//! loop half of the independence analysis (`independence` holds the block half).
//!
//! A `for`, `while` or `loop` whose body awaits (first, in the order the body runs) an
//! operand that no iteration's awaits can change: the operand mentions no *tainted* name, one
//! bound or changed by a statement of the body that awaits or mentions a tainted name
//! (computed to a fixed point, since values flow from one iteration to the next); nor does a
//! `while` condition, or the condition of a `loop`'s `if c { break; }`. Loops with `return`,
//! `continue` or another `break` are left alone, and so is an await whose result is folded
//! into a variable (`acc += f(x).await`): a fold is often order-dependent.

use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Block, Expr, ExprAwait, Item, Pat, Stmt};

use crate::independence::is_ready;
use crate::names::{Effects, Names, exits, is_compound_assign, mentioned};
use crate::rewrite::mentions_await;

/// The kind of a loop, with what decides whether it goes on.
pub(crate) enum LoopKind<'a> {
    For { pat: &'a Pat, iterable: &'a Expr },
    While { cond: &'a Expr },
    Loop,
}

/// A loop whose iterations each await an operand that no iteration's awaits change.
pub(crate) struct Iterations<'a> {
    /// The statement of the body holding the first await.
    pub(crate) stmt: &'a Stmt,
    /// The first await's operand.
    pub(crate) operand: &'a Expr,
    /// The operand mentions nothing bound before it or changed in the body: a `for` loop's
    /// tasks are `iterable.map(|pat| operand)`.
    pub(crate) mappable: bool,
}

/// The independent iterations of a loop, if they are.
pub(crate) fn iterations<'a>(kind: &LoopKind<'a>, body: &'a Block) -> Option<Iterations<'a>> {
    let breaks = loop_breaks(kind, body)?;
    let (index, stmt, operand) = body
        .stmts
        .iter()
        .enumerate()
        .find_map(|(i, stmt)| first_await(stmt).map(|operand| (i, stmt, operand)))?;
    if folds(stmt) || is_ready(operand) || mentions_await(operand.to_token_stream()) {
        return None;
    }
    let tainted = tainted(body);
    let names = mentioned(operand.to_token_stream());
    let cond = match kind {
        LoopKind::While { cond } => mentioned(cond.to_token_stream()),
        _ => Names::new(),
    };
    if !names.is_disjoint(&tainted)
        || !cond.is_disjoint(&tainted)
        || breaks
            .iter()
            .any(|c| !mentioned(c.to_token_stream()).is_disjoint(&tainted))
    {
        return None;
    }
    let mut before = Names::new();
    for earlier in &body.stmts[..index] {
        before.extend(Effects::of_stmt(earlier).bound);
    }
    for any in &body.stmts {
        before.extend(Effects::of_stmt(any).changed);
    }
    let mappable = matches!(kind, LoopKind::For { .. }) && names.is_disjoint(&before);
    Some(Iterations {
        stmt,
        operand,
        mappable,
    })
}

/// The conditions of the body's exits, if it has only those a batched loop keeps: none in a
/// `for` or `while`; in a `loop`, statements `if c { break; }`.
fn loop_breaks<'a>(kind: &LoopKind<'a>, body: &'a Block) -> Option<Vec<&'a Expr>> {
    let mut conditions = Vec::new();
    for stmt in &body.stmts {
        let exits = exits(stmt);
        if !exits.any() {
            continue;
        }
        match (kind, conditional_break(stmt)) {
            (LoopKind::Loop, Some(cond)) if !exits.returns => conditions.push(cond),
            _ => return None,
        }
    }
    match kind {
        // A `loop` that never breaks ends only by `?`: nothing to batch.
        LoopKind::Loop if conditions.is_empty() => None,
        _ => Some(conditions),
    }
}

/// `c` of a statement `if c { break; }` (no label, no value, no `else`).
fn conditional_break(stmt: &Stmt) -> Option<&Expr> {
    let Stmt::Expr(Expr::If(branch), _) = stmt else {
        return None;
    };
    let [only] = branch.then_branch.stmts.as_slice() else {
        return None;
    };
    let is_break = match only {
        Stmt::Expr(Expr::Break(b), _) => b.label.is_none() && b.expr.is_none(),
        _ => false,
    };
    (is_break && branch.else_branch.is_none() && !mentions_await(branch.cond.to_token_stream()))
        .then_some(&*branch.cond)
}

/// The names an iteration's awaits may reach: bound or changed by a statement of the body
/// that awaits or mentions such a name, to a fixed point.
fn tainted(body: &Block) -> Names {
    let effects: Vec<(bool, Names, Names)> = body
        .stmts
        .iter()
        .map(|stmt| {
            let tokens = stmt.to_token_stream();
            (
                mentions_await(tokens.clone()),
                mentioned(tokens),
                Effects::of_stmt(stmt).all(),
            )
        })
        .collect();
    let mut tainted = Names::new();
    loop {
        let size = tainted.len();
        for (awaits, mentions, changes) in &effects {
            if *awaits || !mentions.is_disjoint(&tainted) {
                tainted.extend(changes.iter().cloned());
            }
        }
        if tainted.len() == size {
            return tainted;
        }
    }
}

/// The operand of the first `.await` that a statement runs (`names.push(f(x).await)` awaits
/// `f(x)`), outside closures, async blocks, nested items and nested loops.
pub(crate) fn first_await(stmt: &Stmt) -> Option<&Expr> {
    struct First<'ast>(Option<&'ast Expr>);
    impl<'ast> Visit<'ast> for First<'ast> {
        fn visit_expr_await(&mut self, awaited: &'ast ExprAwait) {
            // The operand first: its awaits run first.
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

/// Whether a statement folds into a variable: `acc += X.await;`, `h = mix(h, X.await);`.
fn folds(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Expr(Expr::Assign(_), _) => true,
        Stmt::Expr(Expr::Binary(binary), _) => is_compound_assign(&binary.op),
        _ => false,
    }
}
