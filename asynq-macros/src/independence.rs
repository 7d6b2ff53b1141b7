//! Which awaits of a block are independent of each other: the analysis behind the
//! sequential-awaits warning, written so that a rewrite can use it too (it says which awaits,
//! in which statements, in what role, not only where to point). `loops` holds the loop half.
//!
//! The statements of a block are read in order. A statement whose awaits all run
//! unconditionally (not in an `if`/`match` arm, the right side of `&&`/`||`, a loop, a nested
//! block, a closure) and none inside another's operand is *awaiting*; one with other awaits is
//! a *barrier*; one without awaits is *plain*. A group starts at an await and takes each
//! following await whose operand:
//! - mentions no name bound or changed by the group's statements so far (its results, and
//!   what they change: `let mut v = xs.await; v.extend(ys.await);` may group, `ys` does not
//!   mention `v`), nor by the plain statements between;
//! - takes as `&mut` no name another operand of the group mentions, and mentions none that
//!   another takes as `&mut`;
//! - neither contains nor is contained in another operand of the group (awaiting `get(k)` and
//!   then `(get(k), get(j))` reads `get(k)` again after the first read, on purpose).
//!
//! Awaits of `ready(x)` never wait for a round: they are not counted.
//!
//! A plain statement between members must not mention a name the group's statements bound or
//! changed (it would see a result before the later awaits ran), nor `return`, `break` or
//! `continue`; a barrier, or such a statement, ends the group. So does an await whose result
//! is dropped, `check(x).await?;`: taken for its effect or its failure (an access check before
//! a load), its order is the point. Several awaits of one statement
//! (`f(1).await? + f(2).await?`, struct literal fields, call arguments) group the same way.

use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Block, Expr, ExprAwait, Item, Pat, Stmt};

use crate::hoist;
use crate::names::{Effects, Names, contains, exits, flatten, free, mentioned, mutably_borrowed};
use crate::rewrite::mentions_await;

/// Independent awaits of one block, in the order they run.
pub(crate) struct Group<'a> {
    pub(crate) members: Vec<Member<'a>>,
}

impl Group<'_> {
    /// Whether all the awaits are in one statement.
    pub(crate) fn in_one_statement(&self) -> bool {
        self.members.windows(2).all(|w| w[0].stmt == w[1].stmt)
    }
}

/// One await of a group.
pub(crate) struct Member<'a> {
    /// The index of its statement in the block.
    pub(crate) stmt: usize,
    pub(crate) awaited: &'a ExprAwait,
    pub(crate) role: Role<'a>,
    /// Whether `?` applies to its result at once (`X.await?`).
    pub(crate) tried: bool,
}

/// What the statement does with an await's result.
pub(crate) enum Role<'a> {
    /// `let pat = X.await;` (or `X.await?`).
    Bound(&'a Pat),
    /// Anything else: `v.extend(X.await)`, `f(X.await?, Y.await?)`.
    Embedded,
}

/// What the groups are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The warning: awaits that, awaited together, would batch.
    Warn,
    /// The rewrite of `#[asynq(batch)]`: also, each operand can be evaluated at the first
    /// member's place (`hoist`): a statement with an operand that cannot ends a group, and an
    /// operand that mentions a name the group's other code mentions does not join it. A
    /// statement between members may use a result (it runs after the merged await, in order).
    Rewrite,
}

/// The groups of two or more independent awaits in `block` (not in its nested blocks).
pub(crate) fn groups(block: &Block, purpose: Purpose) -> Vec<Group<'_>> {
    let mut found = Vec::new();
    let mut building = Building::default();
    for (i, stmt) in block.stmts.iter().enumerate() {
        match classify(stmt) {
            Kind::Barrier => building.close(&mut found),
            Kind::Plain => {
                if building.members.is_empty() {
                    continue;
                }
                let mentions = mentioned(stmt.to_token_stream());
                // A statement that uses a result would see it before the later awaits ran:
                // the warning takes that order as meant; the rewrite keeps the statement after
                // the merged await, where it sees the same value.
                let touches = !mentions.is_disjoint(&building.results);
                if (purpose == Purpose::Warn && touches) || exits(stmt).any() {
                    building.close(&mut found);
                } else {
                    building.between.extend(Effects::of_stmt(stmt).all());
                    building.code.extend(mentions);
                }
            }
            Kind::Awaiting(awaits) => {
                let operands: Vec<&ExprAwait> = awaits.iter().map(|(a, _)| *a).collect();
                let code = hoist::mentioned_outside(stmt, &operands);
                let hoistable =
                    |a: &ExprAwait| hoist::hoistable(&a.base) && free(&a.base).is_disjoint(&code);
                if purpose == Purpose::Rewrite && !operands.iter().all(|a| hoistable(a)) {
                    building.close(&mut found);
                    continue;
                }
                for (awaited, tried) in awaits {
                    let member = Member {
                        stmt: i,
                        awaited,
                        role: role(stmt, awaited),
                        tried,
                    };
                    if !building.admits(&member, purpose) {
                        building.close(&mut found);
                    }
                    building.members.push(member);
                }
                building.results.extend(Effects::of_stmt(stmt).all());
                building.code.extend(code);
                if exits(stmt).any() {
                    building.close(&mut found);
                }
            }
        }
    }
    building.close(&mut found);
    found
}

/// The group being built.
#[derive(Default)]
struct Building<'a> {
    members: Vec<Member<'a>>,
    /// Names bound or changed by the members' statements.
    results: Names,
    /// Names bound or changed by the plain statements between members.
    between: Names,
    /// Names mentioned by the group's code other than its operands.
    code: Names,
}

impl<'a> Building<'a> {
    fn admits(&self, member: &Member<'_>, purpose: Purpose) -> bool {
        if self.members.is_empty() {
            return true;
        }
        let operand = &member.awaited.base;
        // The rewrite moves the operand whole: a closure's parameter in it is its own.
        let names = match purpose {
            Purpose::Warn => mentioned(operand.to_token_stream()),
            Purpose::Rewrite => free(operand),
        };
        let borrowed = mutably_borrowed(operand.to_token_stream());
        let tokens = flatten(operand.to_token_stream());
        names.is_disjoint(&self.results)
            && names.is_disjoint(&self.between)
            && (purpose == Purpose::Warn || names.is_disjoint(&self.code))
            && self.members.iter().all(|other| {
                let other = &other.awaited.base;
                let other_tokens = flatten(other.to_token_stream());
                !contains(&tokens, &other_tokens)
                    && !contains(&other_tokens, &tokens)
                    && borrowed.is_disjoint(&mentioned(other.to_token_stream()))
                    && mutably_borrowed(other.to_token_stream()).is_disjoint(&names)
            })
    }

    fn close(&mut self, found: &mut Vec<Group<'a>>) {
        let members = std::mem::take(&mut self.members);
        self.results.clear();
        self.between.clear();
        self.code.clear();
        if members.len() >= 2 {
            found.push(Group { members });
        }
    }
}

/// The awaits of `stmt`, in the order they run, if they all run and none is inside another's
/// operand: the awaits a group could take from it.
pub(crate) fn unconditional_awaits(stmt: &Stmt) -> Option<Vec<&ExprAwait>> {
    match classify(stmt) {
        Kind::Awaiting(awaits) => Some(awaits.into_iter().map(|(a, _)| a).collect()),
        Kind::Plain | Kind::Barrier => None,
    }
}

enum Kind<'a> {
    /// No await.
    Plain,
    /// Awaits that all run, none in another's operand, in order, each with whether `?`
    /// applies to it at once.
    Awaiting(Vec<(&'a ExprAwait, bool)>),
    /// Awaits that may not run, or run inside another's operand.
    Barrier,
}

fn classify(stmt: &Stmt) -> Kind<'_> {
    if let Stmt::Expr(expr, Some(_)) = stmt
        && let Expr::Await(_) = peel_try(expr)
    {
        // `check(x).await?;`: a step taken for its effect or its failure, an access check
        // before a load, say. Its order is the point.
        return Kind::Barrier;
    }
    let mut awaits = Awaits::default();
    awaits.visit_stmt(stmt);
    if awaits.barrier {
        Kind::Barrier
    } else if awaits.found.is_empty() {
        Kind::Plain
    } else {
        let tried = awaits.tried;
        Kind::Awaiting(
            awaits
                .found
                .into_iter()
                .map(|a| (a, tried.iter().any(|t| std::ptr::eq(*t, a))))
                .collect(),
        )
    }
}

/// The awaits of a statement, in the order they run.
#[derive(Default)]
struct Awaits<'a> {
    found: Vec<&'a ExprAwait>,
    /// Awaits that `?` applies to at once.
    tried: Vec<&'a ExprAwait>,
    /// Inside code that may not run (an arm, a loop, ...).
    conditional: usize,
    barrier: bool,
}

impl<'a> Awaits<'a> {
    fn conditionally(&mut self, visit: impl FnOnce(&mut Self)) {
        self.conditional += 1;
        visit(self);
        self.conditional -= 1;
    }
}

impl<'ast> Visit<'ast> for Awaits<'ast> {
    fn visit_expr_await(&mut self, awaited: &'ast ExprAwait) {
        if is_ready(&awaited.base) {
            // Never waits for a round.
            return;
        }
        if self.conditional > 0 || mentions_await(awaited.base.to_token_stream()) {
            self.barrier = true;
        } else {
            self.found.push(awaited);
        }
    }

    fn visit_expr_try(&mut self, tried: &'ast syn::ExprTry) {
        if let Expr::Await(awaited) = peel(&tried.expr) {
            self.tried.push(awaited);
        }
        visit::visit_expr_try(self, tried);
    }

    fn visit_expr_if(&mut self, expr: &'ast syn::ExprIf) {
        self.visit_expr(&expr.cond);
        self.conditionally(|this| {
            this.visit_block(&expr.then_branch);
            if let Some((_, otherwise)) = &expr.else_branch {
                this.visit_expr(otherwise);
            }
        });
    }

    fn visit_expr_match(&mut self, expr: &'ast syn::ExprMatch) {
        self.visit_expr(&expr.expr);
        self.conditionally(|this| {
            for arm in &expr.arms {
                this.visit_arm(arm);
            }
        });
    }

    fn visit_expr_binary(&mut self, expr: &'ast syn::ExprBinary) {
        self.visit_expr(&expr.left);
        if matches!(expr.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) {
            self.conditionally(|this| this.visit_expr(&expr.right));
        } else {
            self.visit_expr(&expr.right);
        }
    }

    fn visit_expr_for_loop(&mut self, expr: &'ast syn::ExprForLoop) {
        self.visit_expr(&expr.expr);
        self.conditionally(|this| this.visit_block(&expr.body));
    }

    fn visit_expr_while(&mut self, expr: &'ast syn::ExprWhile) {
        self.conditionally(|this| visit::visit_expr_while(this, expr));
    }

    fn visit_expr_loop(&mut self, expr: &'ast syn::ExprLoop) {
        self.conditionally(|this| visit::visit_expr_loop(this, expr));
    }

    fn visit_block(&mut self, block: &'ast Block) {
        // A nested block's statements are grouped on their own.
        self.conditionally(|this| visit::visit_block(this, block));
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if let Some(init) = &local.init {
            self.visit_expr(&init.expr);
            if let Some((_, otherwise)) = &init.diverge {
                self.conditionally(|this| this.visit_expr(otherwise));
            }
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // The awaits inside a macro's arguments are not seen as syntax (the arguments are
        // tokens): such a statement ends a group.
        if mentions_await(mac.tokens.clone()) {
            self.barrier = true;
        }
    }

    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast Item) {}
}

/// `ready(x)` (`asynq_core::ready`): awaiting it never waits for a round.
pub(crate) fn is_ready(operand: &Expr) -> bool {
    matches!(peel(operand), Expr::Call(call)
        if matches!(&*call.func, Expr::Path(path)
            if path.path.segments.last().is_some_and(|s| s.ident == "ready")))
}

/// `let pat = X.await(?);` or anything else.
fn role<'a>(stmt: &'a Stmt, awaited: &ExprAwait) -> Role<'a> {
    let is_it = |expr: &Expr| match peel_try(expr) {
        Expr::Await(a) => std::ptr::eq(a, awaited),
        _ => false,
    };
    match stmt {
        Stmt::Local(local) if local.init.as_ref().is_some_and(|i| is_it(&i.expr)) => {
            Role::Bound(&local.pat)
        }
        _ => Role::Embedded,
    }
}

/// The expression inside parentheses and invisible groups.
pub(crate) fn peel(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(inner) => peel(&inner.expr),
        Expr::Group(inner) => peel(&inner.expr),
        other => other,
    }
}

/// The expression `?` applies to, if it is one.
fn peel_try(expr: &Expr) -> &Expr {
    match peel(expr) {
        Expr::Try(tried) => peel(&tried.expr),
        other => other,
    }
}
