//! The attribute's grammar: `#[asynq]`,
//! `#[asynq(crate = "path", boxed, memo, batch, allow_sequential)]`.
//!
//! Each option is recorded with the span where it was written, so that a duplicate is
//! reported on its own tokens; every mistake in the list is reported, not only the first.

use proc_macro2::{Ident, Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{LitStr, Path, Token};

use crate::error::Errors;

mod kw {
    syn::custom_keyword!(boxed);
    syn::custom_keyword!(allow_sequential);
    syn::custom_keyword!(memo);
    syn::custom_keyword!(batch);
}

/// The accepted options, for messages.
const EXPECTED: &str =
    "expected one of: `crate = \"path\"`, `boxed`, `memo`, `batch`, `allow_sequential`";

/// Parsed options; each remembers where it was written.
#[derive(Default)]
pub(crate) struct Args {
    /// `crate = "path"`: the path of `asynq_core`, for re-exporting and renaming crates.
    pub(crate) krate: Option<(Path, Span)>,
    /// `boxed`: return `Task<BoxFuture<..>>`, a concrete type, so that the function may call
    /// itself.
    pub(crate) boxed: Option<((), Span)>,
    /// `allow_sequential`: do not warn about independent awaits written one after another.
    pub(crate) allow_sequential: Option<((), Span)>,
    /// `memo`: calls with equal arguments share one execution per run.
    pub(crate) memo: Option<((), Span)>,
    /// `batch`: the macro awaits independent awaits together.
    pub(crate) batch: Option<((), Span)>,
}

impl Args {
    /// The path through which expansions reach `asynq_core`.
    pub(crate) fn krate(&self) -> Path {
        match &self.krate {
            Some((path, _)) => path.clone(),
            None => Path {
                leading_colon: Some(Default::default()),
                segments: [syn::PathSegment::from(Ident::new(
                    "asynq_core",
                    Span::call_site(),
                ))]
                .into_iter()
                .collect(),
            },
        }
    }
}

/// Parse the attribute's arguments; on mistakes, the valid options are kept and every error
/// is recorded.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Args {
    let mut parsed = Args::default();
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            if let Err(error) = parse_one(input, &mut parsed) {
                errors.push(error);
                // Skip to the next option, so that the rest are still checked.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(error) = parser.parse2(args) {
        errors.push(error);
    }
    parsed
}

fn parse_one(input: ParseStream<'_>, args: &mut Args) -> syn::Result<()> {
    if input.peek(Token![crate]) {
        let token: Token![crate] = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new_spanned(
                token,
                "expected `crate = \"path\"`, the path of asynq_core as a string",
            ));
        }
        input.parse::<Token![=]>()?;
        let value: syn::Expr = input.parse()?;
        let path = match &value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => parse_path(lit)?,
            _ => {
                return Err(syn::Error::new_spanned(
                    value,
                    "`crate` takes a path in a string, as in `crate = \"my_crate::asynq\"`",
                ));
            }
        };
        return set(&mut args.krate, path, token.span, "crate");
    }
    if input.peek(kw::boxed) {
        let token: kw::boxed = input.parse()?;
        no_value(input, "boxed")?;
        return set(&mut args.boxed, (), token.span, "boxed");
    }
    if input.peek(kw::memo) {
        let token: kw::memo = input.parse()?;
        no_value(input, "memo")?;
        return set(&mut args.memo, (), token.span, "memo");
    }
    if input.peek(kw::batch) {
        let token: kw::batch = input.parse()?;
        no_value(input, "batch")?;
        return set(&mut args.batch, (), token.span, "batch");
    }
    if input.peek(kw::allow_sequential) {
        let token: kw::allow_sequential = input.parse()?;
        no_value(input, "allow_sequential")?;
        return set(
            &mut args.allow_sequential,
            (),
            token.span,
            "allow_sequential",
        );
    }
    let token: proc_macro2::TokenTree = input.parse()?;
    let message = match &token {
        proc_macro2::TokenTree::Ident(ident) => {
            format!("unknown asynq argument `{ident}`; {EXPECTED}")
        }
        _ => format!("expected an asynq argument, found `{token}`; {EXPECTED}"),
    };
    Err(syn::Error::new_spanned(token, message))
}

/// Record an option, or report it as a duplicate on its own span.
fn set<T>(slot: &mut Option<(T, Span)>, value: T, span: Span, name: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("duplicate `{name}` argument; write it once"),
        ));
    }
    *slot = Some((value, span));
    Ok(())
}

/// Flags take no value: `boxed = true` is a mistake, reported on the value.
fn no_value(input: ParseStream<'_>, name: &str) -> syn::Result<()> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        let rest: TokenStream = input.step(|cursor| {
            let mut rest = *cursor;
            let mut tokens = TokenStream::new();
            while let Some((tt, next)) = rest.token_tree() {
                if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                    break;
                }
                tokens.extend([tt]);
                rest = next;
            }
            Ok((tokens, rest))
        })?;
        return Err(syn::Error::new_spanned(
            rest,
            format!("`{name}` takes no value; write #[asynq({name})]"),
        ));
    }
    Ok(())
}

fn parse_path(lit: &LitStr) -> syn::Result<Path> {
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!(
                "`{}` is not a path; `crate` takes a path such as \"my_crate::asynq\"",
                lit.value()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(args: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Errors::default();
        let parsed = parse(args, &mut errors);
        let text = errors.into_compile_errors().to_string();
        let found = text
            .split("compile_error !")
            .skip(1)
            .map(|s| s.trim().to_owned())
            .collect();
        (parsed, found)
    }

    #[test]
    fn accepts_every_option_once() {
        let (args, errors) = messages(quote!(crate = "re::asynq", boxed, memo, allow_sequential,));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(args.boxed.is_some() && args.allow_sequential.is_some() && args.memo.is_some());
        let krate = args.krate();
        assert_eq!(quote!(#krate).to_string(), "re :: asynq");
    }

    #[test]
    fn reports_every_mistake_and_keeps_the_rest() {
        let (args, errors) = messages(quote!(fast, boxed, boxed, crate = 5, allow_sequential));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("unknown asynq argument `fast`; expected one of"));
        assert!(errors[1].contains("duplicate `boxed` argument"));
        assert!(errors[2].contains("`crate` takes a path in a string"));
        assert!(args.boxed.is_some() && args.allow_sequential.is_some());
    }

    #[test]
    fn flags_take_no_value() {
        let (_, errors) = messages(quote!(boxed = true));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("`boxed` takes no value; write #[asynq(boxed)]"));
    }
}
