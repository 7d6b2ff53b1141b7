//! A `RefCell` borrow or a lock guard bound by `let` and still alive at a later `.await` of
//! its block.
//!
//! The tasks of a run take turns on one thread: while one waits at an `.await`, others run.
//! A `RefCell` borrow held across the await makes another task's `borrow_mut` panic
//! (`already borrowed`); a `std::sync::Mutex` guard held across it makes another task's
//! `lock` on the same thread deadlock. rustc accepts both.
//!
//! The macro cannot see types, so the check is syntactic: a `let` whose value is
//! `x.borrow()`, `x.borrow_mut()`, `x.lock()`, `x.read()`, `x.write()` (or their `try_`
//! forms), each without arguments, optionally followed by `.unwrap()`, `.expect(..)` or `?`,
//! binds a guard, unless the `let` names a type that is not a guard (`let v: &str =
//! s.borrow();`, a `Borrow::borrow`). The guard is alive until the end of its block, unless
//! `drop(guard)` (or a move into a call, `consume(guard)`) ends it first. An `.await` of the
//! task in a later statement of the block while it is alive is the error, spanned from the
//! binding to the await. Temporaries (`f(cell.borrow().len()).await`) and guards held in
//! other ways are left to clippy's `await_holding_refcell_ref` and `await_holding_lock`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::visit::{self, Visit};
use syn::{Block, Expr, Item, Local, Pat, Stmt};

use crate::code::short;
use crate::error::Errors;
use crate::names::{self, Names};

/// Methods whose result, bound by `let`, is taken for a borrow or a lock guard.
const GUARD_METHODS: &[&str] = &[
    "borrow",
    "borrow_mut",
    "lock",
    "read",
    "write",
    "try_borrow",
    "try_borrow_mut",
    "try_lock",
    "try_read",
    "try_write",
];

/// Reports every guard of `block` (and of its nested blocks) alive at a later await.
pub(crate) fn check(block: &Block, errors: &mut Errors) {
    Guards { errors }.visit_block(block);
}

struct Guards<'e> {
    errors: &'e mut Errors,
}

impl<'ast> Visit<'ast> for Guards<'_> {
    fn visit_block(&mut self, block: &'ast Block) {
        for (i, stmt) in block.stmts.iter().enumerate() {
            if let Stmt::Local(local) = stmt
                && let Some(guard) = guard(local)
            {
                self.check_guard(local, guard, &block.stmts[i + 1..]);
            }
        }
        visit::visit_block(self, block);
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

impl Guards<'_> {
    /// Reports the first await of `rest` reached while the guard bound by `local` is alive.
    fn check_guard(&mut self, local: &Local, init: &Expr, rest: &[Stmt]) {
        let mut names = names::bound(&local.pat);
        for stmt in rest {
            // The first await of the statement is reached before anything after it in the
            // statement could end the guard.
            if let Some(await_token) = first_await(stmt) {
                let name = names.iter().next().cloned().unwrap_or_default();
                let pat = pattern(&local.pat);
                self.errors.spanned(
                    quote!(#pat #await_token),
                    format!(
                        "`{name}` holds a borrow or a lock guard (`{}`) across this `.await`: \
                         other tasks run while this one waits, and one that borrows or locks \
                         the same value panics (`already borrowed`) or deadlocks; end it \
                         before the await with `drop({name});`, or bind it in a block that \
                         ends there (if `{}` returns no guard, write its type: `let {name}: T`)",
                        short(init),
                        short(init),
                    ),
                );
                return;
            }
            if ends(stmt, &names) {
                return;
            }
            // `let other = guard;` moves the guard: it lives on in `other`.
            if let Stmt::Local(moved) = stmt
                && let Some(init) = &moved.init
                && let Expr::Path(path) = &*init.expr
                && path
                    .path
                    .get_ident()
                    .is_some_and(|i| names.contains(&i.to_string()))
            {
                names.extend(names::bound(&moved.pat));
            }
        }
    }
}

/// The guard expression bound by `local`, if it binds one: `x.borrow()`, `m.lock().unwrap()`,
/// `l.write()?`, ... and no type, or a guard type, written.
fn guard(local: &Local) -> Option<&Expr> {
    let init = local.init.as_ref()?;
    let pat = match &local.pat {
        Pat::Type(typed) => {
            if !is_guard_type(&typed.ty) {
                return None;
            }
            &*typed.pat
        }
        other => other,
    };
    if matches!(pat, Pat::Wild(_)) {
        // `let _ = x.borrow_mut();` drops it at once.
        return None;
    }
    let mut expr = &*init.expr;
    loop {
        match expr {
            Expr::Try(tried) => expr = &tried.expr,
            Expr::MethodCall(call) if matches!(&*call.method.to_string(), "unwrap" | "expect") => {
                expr = &call.receiver;
            }
            Expr::Paren(inner) => expr = &inner.expr,
            _ => break,
        }
    }
    match expr {
        Expr::MethodCall(call)
            if call.args.is_empty()
                && GUARD_METHODS.contains(&&*call.method.to_string())
                && !crate::rewrite::mentions_await(call.receiver.to_token_stream()) =>
        {
            Some(&*init.expr)
        }
        _ => None,
    }
}

/// Whether a written type is a borrow or a guard: `Ref<..>`, `RefMut<..>`, `MutexGuard<..>`,
/// `RwLockReadGuard<..>`, any `..Guard<..>`.
fn is_guard_type(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(path) => path.path.segments.last().is_some_and(|s| {
            let name = s.ident.to_string();
            name == "Ref" || name == "RefMut" || name.ends_with("Guard")
        }),
        syn::Type::Paren(inner) => is_guard_type(&inner.elem),
        syn::Type::Group(inner) => is_guard_type(&inner.elem),
        _ => false,
    }
}

/// The binding itself, without its type: `guard`, `mut guard`.
fn pattern(pat: &Pat) -> &Pat {
    match pat {
        Pat::Type(typed) => &typed.pat,
        other => other,
    }
}

/// The `.await` token of the first await that `stmt` reaches, outside closures, async blocks
/// and nested items.
fn first_await(stmt: &Stmt) -> Option<TokenStream> {
    struct First(Option<TokenStream>);
    impl<'ast> Visit<'ast> for First {
        fn visit_expr_await(&mut self, awaited: &'ast syn::ExprAwait) {
            // The operand first: its awaits come before this one.
            visit::visit_expr_await(self, awaited);
            if self.0.is_none() {
                let (dot, token) = (&awaited.dot_token, &awaited.await_token);
                self.0 = Some(quote!(#dot #token));
            }
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_item(&mut self, _: &'ast Item) {}
    }
    let mut first = First(None);
    first.visit_stmt(stmt);
    first.0
}

/// Whether `stmt` ends the guard: `drop(guard)` (or `mem::drop`), or the guard moved into any
/// other call, `consume(guard)`.
fn ends(stmt: &Stmt, names: &Names) -> bool {
    struct Ends<'n>(&'n Names, bool);
    impl<'ast> Visit<'ast> for Ends<'_> {
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            let moved = call.args.iter().any(|arg| {
                matches!(arg, Expr::Path(path)
                    if path.path.get_ident().is_some_and(|i| self.0.contains(&i.to_string())))
            });
            self.1 |= moved;
            visit::visit_expr_call(self, call);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast Item) {}
    }
    let mut ends = Ends(names, false);
    ends.visit_stmt(stmt);
    ends.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;

    fn errors(body: TokenStream) -> String {
        let block: Block = syn::parse2(quote!({ #body })).unwrap();
        let mut errors = Errors::default();
        check(&block, &mut errors);
        errors.into_compile_errors().to_string()
    }

    #[test]
    fn a_guard_alive_at_a_later_await_is_reported() {
        for body in [
            quote! { let names = cache.borrow(); let n = user_name(1).await; },
            quote! { let mut names = cache.borrow_mut(); names.clear(); f().await; },
            quote! { let g = lock.lock().unwrap(); if x { f().await; } },
            quote! { let g = lock.write()?; let h = g; f().await; },
            quote! { let g: RefMut<'_, u8> = cell.borrow_mut(); f().await; },
            quote! { let g = cell.try_borrow().expect("free"); { f().await } },
        ] {
            let found = errors(body.clone());
            assert_eq!(found.matches("compile_error").count(), 1, "{body}: {found}");
            assert!(found.contains("across this `.await`"), "{body}: {found}");
        }
    }

    #[test]
    fn guards_ended_or_not_guards_are_fine() {
        for body in [
            quote! { let g = cache.borrow(); drop(g); f().await; },
            quote! { let g = cache.borrow(); std::mem::drop(g); f().await; },
            quote! { let g = cache.borrow(); consume(g); f().await; },
            quote! { { let g = cache.borrow(); use_it(&g); } f().await; },
            quote! { let n = cache.borrow().len(); f(n).await; },
            quote! { let _ = cache.borrow_mut(); f().await; },
            quote! { let s: &str = owned.borrow(); f(s).await; },
            quote! { let n = file.read(&mut buf); f().await; },
            quote! { let v = f().await; let g = cache.borrow(); },
            quote! { let g = cache.borrow(); let c = || async { f().await }; },
        ] {
            assert_eq!(errors(body.clone()), "", "{body}");
        }
    }

    #[test]
    fn the_message_names_the_binding_and_the_fix() {
        let found = errors(quote! { let names = cache.borrow(); f().await; });
        assert!(
            found.contains("`names` holds a borrow or a lock guard (`cache.borrow()`)"),
            "{found}"
        );
        assert!(found.contains("`drop(names);`"), "{found}");
    }
}
