//! What `#[asynq(batch)]` may evaluate earlier than written: an await's operand moved to the
//! place of the first await it is batched with, before the code between them.
//!
//! Moving an operand is safe when evaluating it has no effect the code it moves over could
//! see or undo, and when that code does not use what the operand uses. The first is checked
//! on the operand's shape: calls, method calls, paths, literals, references, field accesses,
//! indexing, operators, casts, tuples, arrays, struct literals, closures, `format!` and
//! `vec!`; nothing that returns early (`?`, `return`, `break`), assigns, branches or expands
//! another macro. The second on
//! names: the operand mentions no name that the code it moves over mentions (an operand that
//! moves or borrows a value the code uses would then move or borrow it first). Calls are
//! still evaluated earlier, which is the one observable difference the batch option
//! documents: an asynq function's call only builds its task, but other calls in an operand
//! run sooner.

use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Expr, ExprAwait, Item, Stmt};

use crate::names::{Names, is_compound_assign, mentioned};

/// Whether evaluating `expr` earlier cannot return, branch, assign or expand a macro.
pub(crate) fn hoistable(expr: &Expr) -> bool {
    match expr {
        Expr::Path(_) | Expr::Lit(_) | Expr::Closure(_) => true,
        Expr::Call(call) => hoistable(&call.func) && call.args.iter().all(hoistable),
        Expr::MethodCall(call) => hoistable(&call.receiver) && call.args.iter().all(hoistable),
        Expr::Field(field) => hoistable(&field.base),
        Expr::Index(index) => hoistable(&index.expr) && hoistable(&index.index),
        Expr::Paren(inner) => hoistable(&inner.expr),
        Expr::Group(inner) => hoistable(&inner.expr),
        Expr::Reference(inner) => hoistable(&inner.expr),
        Expr::Unary(unary) => hoistable(&unary.expr),
        Expr::Cast(cast) => hoistable(&cast.expr),
        Expr::Binary(binary) => {
            !is_compound_assign(&binary.op) && hoistable(&binary.left) && hoistable(&binary.right)
        }
        Expr::Tuple(tuple) => tuple.elems.iter().all(hoistable),
        Expr::Array(array) => array.elems.iter().all(hoistable),
        Expr::Repeat(repeat) => hoistable(&repeat.expr) && hoistable(&repeat.len),
        Expr::Range(range) => {
            range.start.as_deref().is_none_or(hoistable)
                && range.end.as_deref().is_none_or(hoistable)
        }
        // `format!`, `vec!`: their arguments are evaluated, nothing else happens.
        Expr::Macro(mac) if is_evaluating_macro(&mac.mac) => {
            macro_args(&mac.mac).is_some_and(|args| args.iter().all(hoistable))
        }
        Expr::Struct(literal) => {
            literal.fields.iter().all(|field| hoistable(&field.expr))
                && literal.rest.as_deref().is_none_or(hoistable)
        }
        _ => false,
    }
}

/// `format!` and `vec!` (by their last path segment).
fn is_evaluating_macro(mac: &syn::Macro) -> bool {
    mac.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "format" || s.ident == "vec")
}

/// A macro's arguments, if they parse as comma-separated expressions.
pub(crate) fn macro_args(mac: &syn::Macro) -> Option<Vec<Expr>> {
    let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
    syn::parse::Parser::parse2(parser, mac.tokens.clone())
        .ok()
        .map(|args| args.into_iter().collect())
}

/// The names `stmt` mentions outside the operands of `awaits` (which move with the awaits).
pub(crate) fn mentioned_outside(stmt: &Stmt, awaits: &[&ExprAwait]) -> Names {
    struct Outside<'a> {
        awaits: &'a [&'a ExprAwait],
        found: Names,
    }
    impl<'ast> Visit<'ast> for Outside<'_> {
        fn visit_expr_await(&mut self, awaited: &'ast ExprAwait) {
            if !self.awaits.iter().any(|a| std::ptr::eq(*a, awaited)) {
                visit::visit_expr_await(self, awaited);
            }
        }
        fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
            self.found.insert(ident.to_string());
        }
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            self.found.extend(mentioned(mac.to_token_stream()));
        }
        fn visit_lit(&mut self, lit: &'ast syn::Lit) {
            // A format string's captured names.
            self.found.extend(mentioned(lit.to_token_stream()));
        }
        fn visit_item(&mut self, item: &'ast Item) {
            self.found.extend(mentioned(item.to_token_stream()));
        }
    }
    let mut outside = Outside {
        awaits,
        found: Names::new(),
    };
    outside.visit_stmt(stmt);
    outside.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_expressions_are_hoistable() {
        for yes in [
            "f(x)",
            "Users::load(k)",
            "self.user(uid)",
            "f(&a.b[0], -x as u64, (1, [2; 3]), S { a: 1 }, |y| y + 1)",
            "g(0..n)",
            "S::load(format!(\"q:{q}:title\"))",
            "f(vec![a, b])",
        ] {
            let expr: Expr = syn::parse_str(yes).unwrap();
            assert!(hoistable(&expr), "{yes}");
        }
        for no in [
            "f(x?)",
            "f(if c { 1 } else { 2 })",
            "f({ log(); 1 })",
            "f(format!(\"{}\", x?))",
            "f(println!(\"{x}\"))",
            "f(x = 1)",
            "f(x += 1)",
            "f(return)",
            "f(g().await)",
        ] {
            let expr: Expr = syn::parse_str(no).unwrap();
            assert!(!hoistable(&expr), "{no}");
        }
    }

    #[test]
    fn names_outside_the_awaits() {
        let stmt: Stmt = syn::parse_str("let a = combine(x, f(y).await, g(z).await);").unwrap();
        let Stmt::Local(local) = &stmt else {
            unreachable!()
        };
        let Expr::Call(call) = &*local.init.as_ref().unwrap().expr else {
            unreachable!()
        };
        let Expr::Await(first) = &call.args[1] else {
            unreachable!()
        };
        let outside = mentioned_outside(&stmt, &[first]);
        for name in ["a", "combine", "x", "g", "z"] {
            assert!(outside.contains(name), "{name}: {outside:?}");
        }
        assert!(!outside.contains("y"), "{outside:?}");
    }
}
