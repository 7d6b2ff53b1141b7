//! The names code mentions, binds and may change: the vocabulary of the independence analysis.
//!
//! Everything here is syntactic and over-approximates: any identifier token counts as a
//! mention (a field or method of the same name too, and inside macros), and a name counts as
//! changed when it is assigned, taken as `&mut`, the receiver of a method call (which may take
//! `&mut self`; not `clone`, `to_owned`, `to_string`, `to_vec`), or an argument of a macro that is not known to only read its arguments. A
//! change the syntax does not show (interior mutability, a `static`, a `&mut` held in a
//! struct) is not seen.

use std::collections::HashSet;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Expr, Item, Pat, Stmt};

/// A set of identifiers, as written.
pub(crate) type Names = HashSet<String>;

/// Macros that only read their arguments: their arguments are mentioned, not changed.
const READING_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "debug",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "eprint",
    "eprintln",
    "error",
    "format",
    "format_args",
    "info",
    "panic",
    "print",
    "println",
    "todo",
    "trace",
    "unimplemented",
    "unreachable",
    "vec",
    "warn",
];

/// Methods that read their receiver (`&self`) and return a value that owns its data, by the
/// standard library's signatures: `x.clone()` changes nothing, and what it returns does not
/// borrow `x`.
pub(crate) const OWNING_METHODS: &[&str] = &["clone", "to_owned", "to_string", "to_vec"];

/// Every identifier in `tokens`, at any depth.
pub(crate) fn mentioned(tokens: TokenStream) -> Names {
    let mut found = Names::new();
    collect(tokens, &mut found);
    found
}

fn collect(tokens: TokenStream, found: &mut Names) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) => {
                found.insert(ident.to_string());
            }
            TokenTree::Group(group) => collect(group.stream(), found),
            TokenTree::Literal(literal) => found.extend(captured(&literal.to_string())),
            TokenTree::Punct(_) => {}
        }
    }
}

/// The names a string literal may capture as a format string: `x` in `"{x}"` and `"{x:?}"`.
/// Any string counts, since a macro may take it as a format string.
fn captured(literal: &str) -> Names {
    let mut found = Names::new();
    if !literal.ends_with('"') {
        return found;
    }
    for (i, _) in literal.match_indices('{') {
        let name: String = literal[i + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let next = literal[i + 1 + name.len()..].chars().next();
        let starts_like_a_name = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if starts_like_a_name && matches!(next, Some('}' | ':')) {
            found.insert(name);
        }
    }
    found
}

/// The names right after `&mut`, at any depth.
pub(crate) fn mutably_borrowed(tokens: TokenStream) -> Names {
    let mut found = Names::new();
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

/// The names `expr` mentions that refer to something outside it: [`mentioned`], less the
/// names a closure's parameters or a `for` loop's pattern bind, where they are in scope (in
/// `batch_loop(xs, |x| f(x))`, `x` is not the `x` of the code around). Macros, literals and
/// nested items count whole, as in [`mentioned`].
pub(crate) fn free(expr: &Expr) -> Names {
    struct Free(Names);
    impl<'ast> Visit<'ast> for Free {
        fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
            self.0.insert(ident.to_string());
        }
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            self.0.extend(mentioned(mac.to_token_stream()));
        }
        fn visit_lit(&mut self, lit: &'ast syn::Lit) {
            self.0.extend(mentioned(lit.to_token_stream()));
        }
        fn visit_item(&mut self, item: &'ast Item) {
            self.0.extend(mentioned(item.to_token_stream()));
        }
        fn visit_expr_closure(&mut self, closure: &'ast syn::ExprClosure) {
            let mut params = Names::new();
            for input in &closure.inputs {
                params.extend(bound(input));
                if let Pat::Type(typed) = input {
                    self.0.extend(mentioned(typed.ty.to_token_stream()));
                }
            }
            if let syn::ReturnType::Type(_, ty) = &closure.output {
                self.0.extend(mentioned(ty.to_token_stream()));
            }
            self.0
                .extend(free(&closure.body).difference(&params).cloned());
        }
        fn visit_expr_for_loop(&mut self, expr: &'ast syn::ExprForLoop) {
            self.visit_expr(&expr.expr);
            let body = Expr::Block(syn::ExprBlock {
                attrs: Vec::new(),
                label: None,
                block: expr.body.clone(),
            });
            let pattern = bound(&expr.pat);
            self.0.extend(free(&body).difference(&pattern).cloned());
        }
    }
    let mut free = Free(Names::new());
    free.visit_expr(expr);
    free.0
}

/// The names a pattern binds.
pub(crate) fn bound(pat: &Pat) -> Names {
    struct Bound(Names);
    impl<'ast> Visit<'ast> for Bound {
        fn visit_pat_ident(&mut self, ident: &'ast syn::PatIdent) {
            self.0.insert(ident.ident.to_string());
            visit::visit_pat_ident(self, ident);
        }
        fn visit_type(&mut self, _: &'ast syn::Type) {}
        fn visit_expr(&mut self, _: &'ast Expr) {}
    }
    let mut bound = Bound(Names::new());
    bound.visit_pat(pat);
    bound.0
}

/// What a statement (or an expression) binds and may change, outside closures and nested items
/// (a closure's assignments happen when it is called, which may be anywhere; they are counted
/// where the closure is written, conservatively, through its mentions).
#[derive(Default)]
pub(crate) struct Effects {
    /// Names bound by `let` (including `let` in conditions).
    pub(crate) bound: Names,
    /// Names assigned, taken as `&mut`, receiving a method call, or given to a macro that may
    /// change them.
    pub(crate) changed: Names,
}

impl Effects {
    pub(crate) fn of_stmt(stmt: &Stmt) -> Self {
        let mut effects = Finder(Effects::default());
        effects.visit_stmt(stmt);
        effects
            .0
            .changed
            .extend(mutably_borrowed(stmt.to_token_stream()));
        effects.0
    }

    pub(crate) fn of_expr(expr: &Expr) -> Self {
        let mut effects = Finder(Effects::default());
        effects.visit_expr(expr);
        effects
            .0
            .changed
            .extend(mutably_borrowed(expr.to_token_stream()));
        effects.0
    }

    /// Both, as one set.
    pub(crate) fn all(&self) -> Names {
        self.bound.union(&self.changed).cloned().collect()
    }
}

struct Finder(Effects);

impl<'ast> Visit<'ast> for Finder {
    fn visit_local(&mut self, local: &'ast syn::Local) {
        self.0.bound.extend(bound(&local.pat));
        visit::visit_local(self, local);
    }

    fn visit_expr_let(&mut self, expr: &'ast syn::ExprLet) {
        self.0.bound.extend(bound(&expr.pat));
        visit::visit_expr_let(self, expr);
    }

    fn visit_expr_assign(&mut self, assign: &'ast syn::ExprAssign) {
        self.0.changed.extend(root(&assign.left));
        visit::visit_expr_assign(self, assign);
    }

    fn visit_expr_binary(&mut self, binary: &'ast syn::ExprBinary) {
        if is_compound_assign(&binary.op) {
            self.0.changed.extend(root(&binary.left));
        }
        visit::visit_expr_binary(self, binary);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if !OWNING_METHODS.iter().any(|m| call.method == m) {
            self.0.changed.extend(root(&call.receiver));
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let reads = mac
            .path
            .segments
            .last()
            .is_some_and(|s| READING_MACROS.contains(&&*s.ident.to_string()));
        if !reads {
            self.0.changed.extend(mentioned(mac.tokens.clone()));
        }
    }

    fn visit_expr_closure(&mut self, closure: &'ast syn::ExprClosure) {
        // Whatever a closure changes may change wherever it is called.
        self.0
            .changed
            .extend(Effects::of_expr(&closure.body).changed);
    }

    fn visit_item(&mut self, _: &'ast Item) {}
}

/// The variable a place expression starts from: `v` for `v`, `v.field`, `v[i]`, `*v`,
/// `v.method()`; nothing for other expressions.
pub(crate) fn root(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(path) => path.path.get_ident().map(|i| i.to_string()),
        Expr::Field(field) => root(&field.base),
        Expr::Index(index) => root(&index.expr),
        Expr::Unary(unary) => root(&unary.expr),
        Expr::Paren(inner) => root(&inner.expr),
        Expr::Group(inner) => root(&inner.expr),
        Expr::MethodCall(call) => root(&call.receiver),
        Expr::Reference(reference) => root(&reference.expr),
        _ => None,
    }
}

/// `+=`, `-=`, `|=`, ...
pub(crate) fn is_compound_assign(op: &syn::BinOp) -> bool {
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

/// The tokens as a flat sequence of words, groups marked by their delimiters.
pub(crate) fn flatten(tokens: TokenStream) -> Vec<String> {
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
pub(crate) fn contains(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// How code can leave the statements around it early, outside closures and nested items.
#[derive(Default, Clone, Copy)]
pub(crate) struct Exits {
    /// `return`.
    pub(crate) returns: bool,
    /// `break` or `continue` of an enclosing loop (not of a loop inside the code).
    pub(crate) breaks: bool,
}

impl Exits {
    pub(crate) fn any(self) -> bool {
        self.returns || self.breaks
    }
}

/// The exits of `stmt`.
pub(crate) fn exits(stmt: &Stmt) -> Exits {
    struct Finder {
        exits: Exits,
        loops: usize,
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_expr_return(&mut self, expr: &'ast syn::ExprReturn) {
            self.exits.returns = true;
            visit::visit_expr_return(self, expr);
        }
        fn visit_expr_break(&mut self, expr: &'ast syn::ExprBreak) {
            // A labelled break may leave the loops around; an unlabelled one inside a loop of
            // the code leaves only that loop.
            self.exits.breaks |= self.loops == 0 || expr.label.is_some();
            visit::visit_expr_break(self, expr);
        }
        fn visit_expr_continue(&mut self, expr: &'ast syn::ExprContinue) {
            self.exits.breaks |= self.loops == 0 || expr.label.is_some();
        }
        fn visit_expr_for_loop(&mut self, expr: &'ast syn::ExprForLoop) {
            self.loops += 1;
            visit::visit_expr_for_loop(self, expr);
            self.loops -= 1;
        }
        fn visit_expr_while(&mut self, expr: &'ast syn::ExprWhile) {
            self.loops += 1;
            visit::visit_expr_while(self, expr);
            self.loops -= 1;
        }
        fn visit_expr_loop(&mut self, expr: &'ast syn::ExprLoop) {
            self.loops += 1;
            visit::visit_expr_loop(self, expr);
            self.loops -= 1;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
        fn visit_item(&mut self, _: &'ast Item) {}
    }
    let mut finder = Finder {
        exits: Exits::default(),
        loops: 0,
    };
    finder.visit_stmt(stmt);
    finder.exits
}
