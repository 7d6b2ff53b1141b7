//! Tokens printed back as source code, for the suggestions in messages.
//!
//! `TokenStream::to_string` spaces every token (`user_name (uid) . await`); messages quote
//! code as a person writes it (`user_name(uid).await`). This is a small pretty-printer for
//! the short expressions that suggestions quote, not a formatter.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// Suggestions longer than this are shortened with `..`.
const MAX: usize = 60;

/// `tokens` as source code on one line.
pub(crate) fn code(tokens: &impl ToTokens) -> String {
    let mut out = String::new();
    write(tokens.to_token_stream(), &mut out);
    out
}

/// `tokens` as source code, shortened to `head(..)` when long.
pub(crate) fn short(tokens: &impl ToTokens) -> String {
    let full = code(tokens);
    if full.len() <= MAX {
        return full;
    }
    match full.find('(') {
        Some(open) if open < MAX => format!("{}(..)", &full[..open]),
        _ => "..".to_owned(),
    }
}

fn write(tokens: TokenStream, out: &mut String) {
    let mut before: Option<TokenTree> = None;
    let mut prev: Option<TokenTree> = None;
    let mut pipes = 0_usize;
    for tt in tokens {
        let closing_pipe = is_punct(&tt, '|') && !pipes.is_multiple_of(2);
        if let Some(p) = &prev {
            let after_path_sep =
                is_punct(p, ':') && before.as_ref().is_some_and(|b| is_joint(b, ':'));
            if !after_path_sep && !closing_pipe && space_between(p, &tt, pipes) {
                out.push(' ');
            }
        }
        if is_punct(&tt, '|') {
            pipes += 1;
        }
        match &tt {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write(group.stream(), out);
                out.push_str(close);
            }
            other => out.push_str(&other.to_string()),
        }
        before = prev.replace(tt);
    }
}

/// Keywords that are followed by a space even before `(`: `let (a, b)`, `in (x)`.
const KEYWORDS: &[&str] = &[
    "let", "in", "if", "while", "match", "return", "mut", "move", "for", "else", "as", "ref",
    "loop", "yield", "impl", "dyn", "break",
];

fn space_between(prev: &TokenTree, next: &TokenTree, pipes: usize) -> bool {
    use TokenTree::{Group, Ident, Literal, Punct};
    match (prev, next) {
        // `a::b`, `..`, `'a`: the first mark of a compound hugs the next.
        (Punct(p), _) if p.spacing() == Spacing::Joint => false,
        // `a.b`, `&x`, `!x`, `vec![..]`, `#[..]`, and `|x|` after its opening pipe.
        (Punct(p), _) if matches!(p.as_char(), '.' | '&' | '!' | '#') => false,
        (Punct(p), _) if p.as_char() == '|' => pipes.is_multiple_of(2),
        // `a.b`, `a, b`, `a;`, `f(x)?`, `x: T`, `a::b`.
        (_, Punct(p)) if matches!(p.as_char(), '.' | ',' | ';' | '?' | ':') => false,
        // `vec!`, `format!`: a macro's name hugs its `!` (`a != b` has a joint `!`).
        (Ident(_), Punct(p)) if p.as_char() == '!' && p.spacing() == Spacing::Alone => false,
        (Ident(i), Group(_)) if KEYWORDS.contains(&i.to_string().as_str()) => true,
        // `f(x)`, `v[0]`, `f(x)(y)`: a call or an index hugs its callee.
        (Ident(_) | Group(_) | Literal(_), Group(g)) => g.delimiter() == Delimiter::Brace,
        _ => true,
    }
}

fn is_punct(tt: &TokenTree, c: char) -> bool {
    matches!(tt, TokenTree::Punct(p) if p.as_char() == c)
}

fn is_joint(tt: &TokenTree, c: char) -> bool {
    matches!(tt, TokenTree::Punct(p) if p.as_char() == c && p.spacing() == Spacing::Joint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn prints_like_a_person() {
        assert_eq!(code(&quote!(user_name(uid).await)), "user_name(uid).await");
        assert_eq!(code(&quote!(a::b(&x, y[0])?)), "a::b(&x, y[0])?");
        assert_eq!(
            code(&quote!(let (a, b) = (f(x), g(y)).await)),
            "let (a, b) = (f(x), g(y)).await"
        );
        assert_eq!(code(&quote!(vec![f(1), g(2)])), "vec![f(1), g(2)]");
        assert_eq!(code(&quote!(a != !b)), "a != !b");
        assert_eq!(code(&quote!(|x| f(x))), "|x| f(x)");
        assert_eq!(
            code(&quote!(x.iter().map(|x| x + 1))),
            "x.iter().map(|x| x + 1)"
        );
    }
}
