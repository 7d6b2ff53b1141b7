//! FEED-1 as a GraphQL API (`docs/feed1.md`): an async-graphql schema of questions, their
//! answers and their authors over the key-value store of [`crate::kv`], and the page rendered
//! from a query's response.
//!
//! The same schema runs with either way of fetching, chosen by its type parameter:
//! [`ViaAsynq`], whose resolvers await fetch requests of an asynq source inside a run
//! ([`asynq_graphql::execute`]: each level of the query is one call), and [`ViaDataLoader`],
//! whose resolvers ask async-graphql's own `DataLoader` (a delay timer decides when to send).
//! The resolvers are the same code; only the fetch differs, so the two can be compared (the
//! `bench` program's `graphql` section does).
//!
//! ```graphql
//! type Query    { feed: [Question!]!  question(id: Int!): Question  user(id: Int!): User }
//! type Question { id: Int!  title: String!  author: User!  answers: [Answer!]! }
//! type Answer   { id: Int!  text: String!  author: User! }
//! type User     { id: Int!  name: String!  photo: String! }
//! ```
//!
//! `feed` lists the page's questions, `0..Q` for the page size ([`Params`]) put into the
//! request's data. [`FEED_QUERY`] asks for everything the page shows; [`render`] makes the page
//! from its response, byte for byte the page of [`feed::feed`](crate::feed::feed).
//!
//! # Examples
//!
//! ```
//! use asynq_core::Runtime;
//! use asynq_examples::feed::{self, Params};
//! use asynq_examples::graphql::{self, ViaAsynq};
//! use asynq_examples::memory::MemoryStore;
//!
//! let p = Params { questions: 10, answers: 5 };
//! let rt = Runtime::new().with_source(feed::memory_store(p));
//! let schema = graphql::schema::<ViaAsynq<MemoryStore>>();
//! let (page, stats) = futures::executor::block_on(graphql::feed_page(&rt, &schema, p))?;
//! assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b); // docs/feed1.md
//! assert_eq!((stats.rounds, stats.calls(), stats.keys()), (3, 3, 195));
//! # Ok::<(), asynq_examples::graphql::PageError>(())
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Object, Request, Schema, SchemaBuilder,
};
use asynq_core::{DataSource, Runtime, Stats};
use asynq_graphql::{ChargeComplexity, ComplexityBudget};
use serde::Deserialize;

use crate::feed::{Params, parse_id, parse_ids};

/// The query of the whole FEED-1 page: every field the page shows.
pub const FEED_QUERY: &str =
    "{ feed { title author { name photo } answers { text author { name } } } }";

/// The FEED-1 schema, fetching with `F`.
pub type FeedSchema<F> = Schema<Query<F>, EmptyMutation, EmptySubscription>;

/// The deepest query the schema accepts (the schema itself nests 4 levels: `feed`, a
/// question's `answers`, an answer's `author`, its `name`).
pub const MAX_DEPTH: usize = 6;

/// How many times a list field's selection counts in a query's complexity: the items a list
/// is taken to hold (FEED-1's answers per question), so that a selection under `feed` and
/// `answers` costs what it costs once per item, not once.
pub const LIST_WEIGHT: usize = 10;

/// The complexity of [`FEED_QUERY`]: 1 for each field, its lists' selections counted
/// [`LIST_WEIGHT`] times (`feed`: 1 + 10 × (`title` 1 + `author` 3 + `answers` 31)).
pub const FEED_QUERY_COMPLEXITY: usize = 351;

/// The most complex query the schema accepts: twice [`FEED_QUERY`]'s. A hostile query cannot
/// ask for the page many times over under aliases: whatever it selects, its response holds
/// about as much as two whole pages of the request's size (a size the server bounds).
pub const MAX_COMPLEXITY: usize = 2 * FEED_QUERY_COMPLEXITY;

/// The most complex batch of queries accepted, all its queries together: as much as one query
/// may cost ([`MAX_COMPLEXITY`]), so that a batch's response is bounded as one query's is.
pub const MAX_BATCH_COMPLEXITY: usize = MAX_COMPLEXITY;

/// The FEED-1 schema whose resolvers fetch with `F`, its queries bounded by [`MAX_DEPTH`] and
/// [`MAX_COMPLEXITY`] (and the parser's own bound on nesting, 32 levels); the page size of
/// `feed` comes from each request's data ([`Params`]).
pub fn schema<F: Fetch>() -> FeedSchema<F> {
    builder().finish()
}

/// The schema of [`schema`], which also charges each request's complexity to the
/// [`ComplexityBudget`] in its data ([`batch_budget`]): for batches. Kept apart from
/// [`schema`] because any extension costs async-graphql some work for each field it resolves.
pub fn batch_schema<F: Fetch>() -> FeedSchema<F> {
    builder().extension(ChargeComplexity).finish()
}

/// A budget of [`MAX_BATCH_COMPLEXITY`] for the requests of one batch, executed by
/// [`batch_schema`]: put it into the batch's data (`BatchRequest::data`).
pub fn batch_budget() -> ComplexityBudget {
    ComplexityBudget::new(MAX_BATCH_COMPLEXITY)
}

fn builder<F: Fetch>() -> SchemaBuilder<Query<F>, EmptyMutation, EmptySubscription> {
    Schema::build(Query(PhantomData), EmptyMutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// How the schema's resolvers fetch a key of the store.
pub trait Fetch: Send + Sync + 'static {
    /// The value of `key`; an error says which key and why (a field error of the response).
    fn get(
        ctx: &Context<'_>,
        key: String,
    ) -> impl Future<Output = async_graphql::Result<String>> + Send;
}

/// Resolvers that await fetch requests of source `S`: execute requests inside a run of a
/// runtime holding `S` ([`asynq_graphql::execute`]).
#[derive(Debug)]
pub struct ViaAsynq<S>(PhantomData<fn() -> S>);

impl<S: DataSource<Key = String, Value = String>> Fetch for ViaAsynq<S> {
    async fn get(_: &Context<'_>, key: String) -> async_graphql::Result<String> {
        Ok(S::load(key).await?)
    }
}

/// Resolvers that ask async-graphql's `DataLoader<SourceLoader<S>>`, found in the request's
/// data (put there by [`loader_request`]).
#[derive(Debug)]
pub struct ViaDataLoader<S>(PhantomData<fn() -> S>);

impl<S: DataSource<Key = String, Value = String>> Fetch for ViaDataLoader<S> {
    async fn get(ctx: &Context<'_>, key: String) -> async_graphql::Result<String> {
        let loader = ctx.data::<DataLoader<SourceLoader<S>>>()?;
        match loader.load_one(key.clone()).await? {
            Some(value) => Ok(value),
            None => Err(format!("the store has no key {key:?}").into()),
        }
    }
}

/// An asynq source as an async-graphql `Loader`: each batch of the `DataLoader` is one call of
/// the source's `fetch`, so that both ways of fetching use the same store code.
#[derive(Debug)]
pub struct SourceLoader<S>(pub Arc<S>);

impl<S: DataSource<Key = String, Value = String>> Loader<String> for SourceLoader<S> {
    type Value = String;
    /// The source's error, as its message (a `Loader`'s error must be `Clone`).
    type Error = Arc<str>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, String>, Arc<str>> {
        match self.0.fetch(keys).await {
            Ok(pairs) => Ok(pairs.into_iter().collect()),
            Err(error) => Err(error.into().to_string().into()),
        }
    }
}

/// A FEED-1 request for page size `p` whose resolvers fetch through `loader` (a fresh
/// `DataLoader` per request, as async-graphql's documentation shows).
pub fn loader_request<S>(query: &str, p: Params, loader: DataLoader<SourceLoader<S>>) -> Request
where
    S: DataSource<Key = String, Value = String>,
{
    Request::new(query).data(p).data(loader)
}

/// The root: the page's questions, and any question or user by id.
#[derive(Debug)]
pub struct Query<F>(PhantomData<fn() -> F>);

#[Object(name = "Query")]
impl<F: Fetch> Query<F> {
    /// The page's questions, in order: `0..Q` for the request's page size.
    #[graphql(complexity = "LIST_WEIGHT.saturating_mul(child_complexity).saturating_add(1)")]
    async fn feed(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Question<F>>> {
        let p = ctx.data::<Params>()?;
        Ok((0..p.questions).map(Question::new).collect())
    }

    /// A question by id. Its fields fail if the store has no such question, and it is then
    /// `null` (nullable, so that the failure stays within this field).
    async fn question(&self, id: u64) -> Option<Question<F>> {
        Some(Question::new(id))
    }

    /// A user by id; `null` like [`question`](Self::question) if the store has no such user.
    async fn user(&self, id: u64) -> Option<User<F>> {
        Some(User::new(id))
    }
}

/// A question: `q:{id}:title`, `q:{id}:author`, `q:{id}:answers`.
#[derive(Debug)]
pub struct Question<F> {
    id: u64,
    _fetch: PhantomData<fn() -> F>,
}

impl<F> Question<F> {
    fn new(id: u64) -> Self {
        Question {
            id,
            _fetch: PhantomData,
        }
    }
}

#[Object(name = "Question")]
impl<F: Fetch> Question<F> {
    /// The question's id.
    async fn id(&self) -> u64 {
        self.id
    }

    /// Its title.
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        F::get(ctx, format!("q:{}:title", self.id)).await
    }

    /// Who asked it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User<F>> {
        let key = format!("q:{}:author", self.id);
        let value = F::get(ctx, key.clone()).await?;
        Ok(User::new(parse_id(&key, &value)?))
    }

    /// Its answers, in order.
    #[graphql(complexity = "LIST_WEIGHT.saturating_mul(child_complexity).saturating_add(1)")]
    async fn answers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Answer<F>>> {
        let key = format!("q:{}:answers", self.id);
        let value = F::get(ctx, key.clone()).await?;
        Ok(parse_ids(&key, &value)?
            .into_iter()
            .map(Answer::new)
            .collect())
    }
}

/// An answer: `a:{id}:text`, `a:{id}:author`.
#[derive(Debug)]
pub struct Answer<F> {
    id: u64,
    _fetch: PhantomData<fn() -> F>,
}

impl<F> Answer<F> {
    fn new(id: u64) -> Self {
        Answer {
            id,
            _fetch: PhantomData,
        }
    }
}

#[Object(name = "Answer")]
impl<F: Fetch> Answer<F> {
    /// The answer's id.
    async fn id(&self) -> u64 {
        self.id
    }

    /// Its text.
    async fn text(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        F::get(ctx, format!("a:{}:text", self.id)).await
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User<F>> {
        let key = format!("a:{}:author", self.id);
        let value = F::get(ctx, key.clone()).await?;
        Ok(User::new(parse_id(&key, &value)?))
    }
}

/// A user: `u:{id}:name`, `u:{id}:photo`.
#[derive(Debug)]
pub struct User<F> {
    id: u64,
    _fetch: PhantomData<fn() -> F>,
}

impl<F> User<F> {
    fn new(id: u64) -> Self {
        User {
            id,
            _fetch: PhantomData,
        }
    }
}

#[Object(name = "User")]
impl<F: Fetch> User<F> {
    /// The user's id.
    async fn id(&self) -> u64 {
        self.id
    }

    /// Their name.
    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        F::get(ctx, format!("u:{}:name", self.id)).await
    }

    /// Their photo's path.
    async fn photo(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        F::get(ctx, format!("u:{}:photo", self.id)).await
    }
}

/// Why a page could not be made from a response.
#[derive(Debug)]
pub enum PageError {
    /// The response carries errors (of fields, or of the whole request): the first, and how
    /// many there are.
    Response {
        /// The first error's message, with its path.
        first: String,
        /// Errors in all.
        count: usize,
    },
    /// The response's data does not have the shape of [`FEED_QUERY`]'s.
    Shape(async_graphql::DeserializerError),
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Response { first, count: 1 } => {
                write!(f, "the response has an error: {first}")
            }
            PageError::Response { first, count } => {
                write!(f, "the response has {count} errors, the first: {first}")
            }
            PageError::Shape(_) => f.write_str("the response's data is not a FEED-1 page"),
        }
    }
}

impl std::error::Error for PageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PageError::Response { .. } => None,
            PageError::Shape(error) => Some(error),
        }
    }
}

/// The data of [`FEED_QUERY`]'s response.
#[derive(Deserialize)]
struct Page {
    feed: Vec<QuestionData>,
}

#[derive(Deserialize)]
struct QuestionData {
    title: String,
    author: UserData,
    answers: Vec<AnswerData>,
}

#[derive(Deserialize)]
struct AnswerData {
    text: String,
    author: UserData,
}

#[derive(Deserialize)]
struct UserData {
    name: String,
    #[serde(default)]
    photo: String,
}

/// The FEED-1 page from the response of [`FEED_QUERY`]: the same bytes as
/// [`feed::feed`](crate::feed::feed) renders, or why not.
pub fn render(response: async_graphql::Response) -> Result<String, PageError> {
    if let Some(first) = response.errors.first() {
        let path = first.path.iter().map(|segment| match segment {
            async_graphql::PathSegment::Field(name) => name.clone(),
            async_graphql::PathSegment::Index(i) => i.to_string(),
        });
        let path = path.collect::<Vec<_>>();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" (at {})", path.join("."))
        };
        return Err(PageError::Response {
            first: format!("{}{at}", first.message),
            count: response.errors.len(),
        });
    }
    let page: Page = async_graphql::from_value(response.data).map_err(PageError::Shape)?;
    let mut out = String::new();
    for q in page.feed {
        let _ = write!(
            out,
            "<q><h>{}</h><by>{}<img {}></by>",
            q.title, q.author.name, q.author.photo
        );
        for a in q.answers {
            let _ = write!(out, "<a>{}<by>{}</by></a>", a.text, a.author.name);
        }
        out.push_str("</q>");
    }
    Ok(out)
}

/// The FEED-1 page of size `p` through `schema`, executed inside a run of `rt` (which holds
/// source `S`): the page and the run's statistics.
pub async fn feed_page<S>(
    rt: &Runtime,
    schema: &FeedSchema<ViaAsynq<S>>,
    p: Params,
) -> Result<(String, Stats), PageError>
where
    S: DataSource<Key = String, Value = String>,
{
    let request = Request::new(FEED_QUERY).data(p);
    let (response, stats) = asynq_graphql::execute(rt, schema, request).await;
    Ok((render(response)?, stats))
}
