//! The attribute's grammar: `#[asynq]`, `#[asynq(crate = "path")]`.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Path, Token};

/// The options the attribute accepts, for messages.
const EXPECTED: &str = "expected one of: `crate = \"path\"`";

/// Parsed options; each remembers where it was written, for duplicate errors.
#[derive(Default)]
pub(crate) struct Args {
    /// `crate = "path"`: the path of `asynq_core`.
    pub(crate) krate: Option<(Path, Span)>,
}

impl Args {
    /// The path through which expansions reach `asynq_core`.
    pub(crate) fn krate(&self) -> Path {
        match &self.krate {
            Some((path, _)) => path.clone(),
            None => syn::parse_quote!(::asynq_core),
        }
    }
}

enum Arg {
    Crate(Path, Span),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Token![crate]) {
            let token: Token![crate] = input.parse()?;
            if !input.peek(Token![=]) {
                return Err(syn::Error::new_spanned(
                    token,
                    "expected `crate = \"path\"`, the path of asynq_core as a string",
                ));
            }
            input.parse::<Token![=]>()?;
            let lit: syn::Lit = input.parse()?;
            let syn::Lit::Str(lit) = lit else {
                return Err(syn::Error::new_spanned(
                    lit,
                    "expected a string holding a path, as in `crate = \"my_crate::asynq\"`",
                ));
            };
            let path = parse_path(&lit)?;
            return Ok(Arg::Crate(path, token.span));
        }
        let ident: proc_macro2::TokenTree = input.parse()?;
        Err(syn::Error::new_spanned(
            &ident,
            format!("unknown asynq argument `{ident}`; {EXPECTED}"),
        ))
    }
}

fn parse_path(lit: &LitStr) -> syn::Result<Path> {
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!(
                "`{}` is not a path; expected a path such as `my_crate::asynq`",
                lit.value()
            ),
        )
    })
}

/// Parse the attribute's arguments, reporting every mistake.
pub(crate) fn parse(args: TokenStream) -> Result<Args, syn::Error> {
    let list = syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, args)?;
    let mut parsed = Args::default();
    let mut errors: Option<syn::Error> = None;
    for arg in list {
        match arg {
            Arg::Crate(path, span) => {
                if parsed.krate.is_some() {
                    push(
                        &mut errors,
                        syn::Error::new(span, "duplicate `crate` argument"),
                    );
                } else {
                    parsed.krate = Some((path, span));
                }
            }
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(parsed),
    }
}

pub(crate) fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(e) => e.combine(error),
        None => *errors = Some(error),
    }
}
