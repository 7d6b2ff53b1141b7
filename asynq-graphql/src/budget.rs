//! One complexity budget shared by the requests of a batch.
//!
//! async-graphql bounds each request's complexity (`SchemaBuilder::limit_complexity`), but a
//! batch of `n` requests may then cost `n` times that limit. A [`ComplexityBudget`] put into
//! every request of a batch (`BatchRequest::data` clones it into each) is charged by the
//! [`ChargeComplexity`] extension with each request's complexity as the request is validated,
//! before any of its resolvers runs: the request that would take the batch's total over the
//! budget is refused with an error of its own, and the requests charged before it run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};

/// A budget of query complexity shared by the requests that hold a clone of it in their data;
/// charged by [`ChargeComplexity`].
///
/// # Examples
///
/// ```
/// use async_graphql::{BatchRequest, BatchResponse, EmptyMutation, EmptySubscription, Object, Request, Schema};
/// use asynq_graphql::{ChargeComplexity, ComplexityBudget};
///
/// struct Query;
/// #[Object]
/// impl Query {
///     async fn a(&self) -> u32 { 1 }
///     async fn b(&self) -> u32 { 2 }
/// }
///
/// let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
///     .limit_complexity(2) // each request
///     .extension(ChargeComplexity) // the batch, with a budget in its data
///     .finish();
/// let budget = ComplexityBudget::new(3);
/// let batch = BatchRequest::Batch(vec![Request::new("{ a b }"), Request::new("{ a b }")]);
/// let response = futures::executor::block_on(schema.execute_batch(batch.data(budget.clone())));
/// let BatchResponse::Batch(responses) = response else { unreachable!("a batch") };
/// assert!(responses[0].errors.is_empty()); // costs 2 of the 3
/// assert!(responses[1].errors[0].message.contains("budget")); // 2 more would be 4
/// assert_eq!(budget.spent(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ComplexityBudget {
    limit: usize,
    spent: Arc<AtomicUsize>,
}

impl ComplexityBudget {
    /// A budget of `limit`, nothing spent.
    pub fn new(limit: usize) -> Self {
        ComplexityBudget {
            limit,
            spent: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The complexity the requests holding this budget may cost in all.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The complexity charged so far (requests refused are not charged).
    pub fn spent(&self) -> usize {
        self.spent.load(Ordering::Relaxed)
    }

    /// Charge `cost`, or say what was spent before if that would go over the limit (and charge
    /// nothing).
    fn charge(&self, cost: usize) -> Result<(), usize> {
        self.spent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spent| {
                spent.checked_add(cost).filter(|&total| total <= self.limit)
            })
            .map(drop)
    }
}

/// The extension (register it with `SchemaBuilder::extension`) that charges each request's
/// complexity to the [`ComplexityBudget`] in its data, as the request is validated: a request
/// that would go over the budget fails validation (an error response, nothing resolved).
/// Requests without a budget in their data are not charged.
///
/// Registering any extension costs async-graphql some work for every field it resolves (it
/// then calls the extensions' `resolve` hook): a server may keep a schema without it for
/// single requests, which the schema's own complexity limit bounds, and one with it for
/// batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChargeComplexity;

impl ExtensionFactory for ChargeComplexity {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ChargeComplexity)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ChargeComplexity {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let Some(budget) = ctx.data_opt::<ComplexityBudget>() else {
            return Ok(result);
        };
        match budget.charge(result.complexity) {
            Ok(()) => Ok(result),
            Err(spent) => Err(vec![ServerError::new(
                format!(
                    "the query's complexity is {}, and the batch's other queries have spent {spent} \
                     of their complexity budget of {}: refused",
                    result.complexity, budget.limit
                ),
                None,
            )]),
        }
    }
}
