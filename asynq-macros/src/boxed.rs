//! `#[asynq(boxed)]`: a task type that names no opaque type, so that the function may call
//! itself, and that stays `Send`.
//!
//! The boxed future borrows every argument, so it lives as long as the shortest of their
//! lifetimes. As in async-trait, that lifetime is named `'__asynq`, every elided lifetime of
//! the arguments gets a name of its own, and each lifetime, type parameter, `impl Trait`
//! argument and `Self` must outlive `'__asynq`.
//!
//! Limit: a lifetime hidden in a path (`Ref<T>` for `Ref<'_, T>`) cannot be seen here; write
//! it as `Ref<'_, T>`.

use proc_macro2::Span;
use syn::visit_mut::{self, VisitMut};
use syn::{FnArg, GenericParam, Lifetime, ReceiverKind, Signature, TypeParamBound};

/// Input:  fn f<'a, T>(&self, x: &'a T, y: &str, z: impl Display)
/// Output: fn f<'__asynq, '__asynq_life0, '__asynq_life1, 'a, T>(
///             &'__asynq_life0 self, x: &'a T, y: &'__asynq_life1 str, z: impl Display + '__asynq,
///         ) where '__asynq_life0: '__asynq, '__asynq_life1: '__asynq, 'a: '__asynq,
///                 T: '__asynq, Self: '__asynq
///
/// Returns `'__asynq`, the lifetime of the boxed future.
pub(crate) fn bound_lifetimes(sig: &mut Signature) -> Lifetime {
    let bound = Lifetime::new("'__asynq", Span::call_site());
    let mut elided = Elided {
        bound: bound.clone(),
        named: Vec::new(),
    };
    let mut has_self = false;
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                has_self = true;
                match &mut receiver.kind {
                    ReceiverKind::Reference(_, Some(lifetime), _) => {
                        elided.visit_lifetime_mut(lifetime);
                    }
                    ReceiverKind::Reference(_, lifetime, _) => *lifetime = Some(elided.fresh()),
                    // `self: &Self`, `self: Box<Self>`: the lifetimes of the written type.
                    ReceiverKind::Typed(_, ty) => elided.visit_type_mut(ty),
                    _ => {}
                }
            }
            FnArg::Typed(typed) => elided.visit_type_mut(&mut typed.ty),
        }
    }
    let params = sig.generics.params.clone();
    let where_clause = sig.generics.make_where_clause();
    for param in &params {
        match param {
            GenericParam::Lifetime(param) => {
                let lifetime = &param.lifetime;
                where_clause
                    .predicates
                    .push(syn::parse_quote!(#lifetime: #bound));
            }
            GenericParam::Type(param) => {
                let ident = &param.ident;
                where_clause
                    .predicates
                    .push(syn::parse_quote!(#ident: #bound));
            }
            GenericParam::Const(_) => {}
        }
    }
    for lifetime in &elided.named {
        where_clause
            .predicates
            .push(syn::parse_quote!(#lifetime: #bound));
    }
    if has_self {
        where_clause
            .predicates
            .push(syn::parse_quote!(Self: #bound));
    }
    let mut params: Vec<GenericParam> = vec![syn::parse_quote!(#bound)];
    params.extend(
        elided
            .named
            .iter()
            .map(|l| -> GenericParam { syn::parse_quote!(#l) }),
    );
    for param in params.into_iter().rev() {
        sig.generics.params.insert(0, param);
    }
    bound
}

/// Names the elided lifetimes of argument types and bounds `impl Trait` arguments.
struct Elided {
    bound: Lifetime,
    named: Vec<Lifetime>,
}

impl Elided {
    fn fresh(&mut self) -> Lifetime {
        let lifetime = Lifetime::new(
            &format!("'__asynq_life{}", self.named.len()),
            Span::call_site(),
        );
        self.named.push(lifetime.clone());
        lifetime
    }
}

impl VisitMut for Elided {
    fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
        if reference.lifetime.is_none() {
            reference.lifetime = Some(self.fresh());
        }
        visit_mut::visit_type_reference_mut(self, reference);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.fresh();
        }
    }

    fn visit_type_impl_trait_mut(&mut self, impl_trait: &mut syn::TypeImplTrait) {
        visit_mut::visit_type_impl_trait_mut(self, impl_trait);
        let bound = &self.bound;
        impl_trait
            .bounds
            .push(TypeParamBound::Lifetime(bound.clone()));
    }

    fn visit_type_fn_ptr_mut(&mut self, _: &mut syn::TypeFnPtr) {
        // A `fn(&T)` type has its own elision scope.
    }

    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
        // Neither has `Fn(&T) -> &U`.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    #[test]
    fn names_and_bounds_every_lifetime() {
        let mut sig: Signature = syn::parse_quote! {
            fn f<'a, T: Clone>(&self, x: &'a T, y: &str, z: impl std::fmt::Display, w: fn(&u8))
        };
        let bound = bound_lifetimes(&mut sig);
        assert_eq!(bound.to_string(), "'__asynq");
        let text = sig.into_token_stream().to_string();
        for expected in [
            "fn f < '__asynq , '__asynq_life0 , '__asynq_life1 , 'a , T : Clone >",
            "(& '__asynq_life0 self , x : & 'a T , y : & '__asynq_life1 str",
            "z : impl std :: fmt :: Display + '__asynq , w : fn (& u8))",
            "where 'a : '__asynq , T : '__asynq , '__asynq_life0 : '__asynq , '__asynq_life1 : '__asynq , Self : '__asynq",
        ] {
            assert!(text.contains(expected), "{expected}\nin\n{text}");
        }
    }

    #[test]
    fn names_the_lifetime_of_a_typed_receiver() {
        let mut sig: Signature = syn::parse_quote!(fn f(self: &Self, x: &u8));
        bound_lifetimes(&mut sig);
        let text = sig.into_token_stream().to_string();
        assert!(
            text.contains("(self : & '__asynq_life0 Self , x : & '__asynq_life1 u8)"),
            "{text}"
        );
    }
}
