//! What the tokens of a function mention, found in one walk over the tokens as written: lets
//! the expansion skip the passes that could find nothing there.
//!
//! Every pass walks a syn tree, and the passes that look inside macro calls parse their
//! arguments and print them back (through the compiler's bridge: a proc-macro's tokens live in
//! the compiler). For a function that does not call itself, or awaits once outside any loop,
//! the recursion check and the sequential-awaits warning can find nothing: a walk over the
//! tokens says so for a fraction of their cost. The answers over-approximate (a `for` of a
//! `for<'a>` bound counts as a loop), which only means a pass runs when it need not.

use proc_macro2::{Ident, TokenStream, TokenTree};

/// What the tokens of a function mention.
pub(crate) struct Scan {
    /// The `await`s and `yield`s (a `yield` is reported, then repaired into an await).
    pub(crate) awaits: usize,
    /// A `for`, `while` or `loop` keyword.
    pub(crate) loops: bool,
    /// The mentions of the function's name, its declaration included.
    pub(crate) own_name: usize,
}

impl Scan {
    /// Scans the tokens of the function `name` (all of it: attributes, signature, body).
    pub(crate) fn of(tokens: TokenStream, name: &Ident) -> Self {
        let mut scan = Scan {
            awaits: 0,
            loops: false,
            own_name: 0,
        };
        scan.walk(tokens, &name.to_string());
        scan
    }

    fn walk(&mut self, tokens: TokenStream, name: &str) {
        for tt in tokens {
            match tt {
                TokenTree::Ident(ident) => {
                    let ident = ident.to_string();
                    match ident.as_str() {
                        "await" | "yield" => self.awaits += 1,
                        "for" | "while" | "loop" => self.loops = true,
                        _ => {}
                    }
                    if ident == name {
                        self.own_name += 1;
                    }
                }
                TokenTree::Group(group) => self.walk(group.stream(), name),
                _ => {}
            }
        }
    }

    /// Whether the body can call the function itself: it mentions its name beyond the
    /// declaration (a call `f(..)`, `Self::f(..)`, `self.f(..)`, or `let g = f;`).
    pub(crate) fn may_recurse(&self) -> bool {
        self.own_name > 1
    }

    /// Whether the body can hold awaits that the sequential-awaits warning reports: two of
    /// them, or one in a loop.
    pub(crate) fn may_await_sequentially(&self) -> bool {
        self.awaits >= 2 || (self.awaits == 1 && self.loops)
    }
}

/// Whether an identifier that `wanted` accepts appears in the tokens, at any depth.
pub(crate) fn mentions(tokens: TokenStream, wanted: &impl Fn(&Ident) -> bool) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => wanted(&ident),
        TokenTree::Group(group) => mentions(group.stream(), wanted),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn scan(tokens: TokenStream) -> Scan {
        Scan::of(tokens, &Ident::new("f", proc_macro2::Span::call_site()))
    }

    #[test]
    fn counts_awaits_loops_and_the_name() {
        let once = scan(quote!(
            fn f(x: u32) -> u32 {
                g(x).await
            }
        ));
        assert!(!once.may_await_sequentially() && !once.may_recurse());
        let twice = scan(quote!(
            fn f() {
                let a = g().await;
                println!("{}", h(a).await);
            }
        ));
        assert!(twice.may_await_sequentially());
        let looped = scan(quote!(
            fn f(xs: Vec<u32>) {
                for x in xs {
                    g(x).await;
                }
            }
        ));
        assert!(looped.may_await_sequentially());
        let yielded = scan(quote!(
            fn f() {
                yield g();
                yield h();
            }
        ));
        assert!(yielded.may_await_sequentially());
        assert!(
            scan(quote!(
                fn f(n: u32) {
                    Self::f(n - 1).await
                }
            ))
            .may_recurse()
        );
        assert!(
            scan(quote!(
                fn f(&self) {
                    self.f().await
                }
            ))
            .may_recurse()
        );
        assert!(
            scan(quote!(
                fn f() {
                    let g = f;
                    g().await
                }
            ))
            .may_recurse()
        );
    }

    #[test]
    fn finds_identifiers_inside_groups() {
        let tokens = quote!(println!("{}", (a, [b.run(x)])));
        assert!(mentions(tokens.clone(), &|i: &Ident| i == "run"));
        assert!(!mentions(tokens, &|i: &Ident| i == "block_on"));
    }
}
