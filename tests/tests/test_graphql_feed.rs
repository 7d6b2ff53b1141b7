//! The FEED-1 query through the FEED-1 GraphQL schema (`asynq_examples::graphql`) inside an
//! asynq run: 3 calls and the reference page (docs/feed1.md), the same page through
//! async-graphql's DataLoader, a missing key as its field's error with its path, and the
//! schema's bounds on complexity (per query and per batch) and depth.

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::graphql::{self, FEED_QUERY, SourceLoader, ViaAsynq, ViaDataLoader};
use asynq_examples::memory::MemoryStore;

/// The reference figures of docs/feed1.md.
const SIZES: [(u64, u64, usize, usize, u64); 2] = [
    (10, 5, 195, 2152, 0xac26_a36b_50ba_ee7b),
    (100, 10, 3400, 39740, 0x56dc_3f44_6f2c_5f61),
];

#[test]
fn the_feed_query_is_three_calls_and_the_reference_page() {
    for (questions, answers, keys, out_len, fnv) in SIZES {
        let p = Params { questions, answers };
        let rt = Runtime::new().with_source(feed::memory_store(p));
        let schema = graphql::schema::<ViaAsynq<MemoryStore>>();
        let (page, stats) =
            futures::executor::block_on(graphql::feed_page(&rt, &schema, p)).unwrap();
        assert_eq!((page.len(), feed::fnv1a64(page.as_bytes())), (out_len, fnv));
        assert_eq!((stats.rounds, stats.calls(), stats.keys()), (3, 3, keys));
        let store = rt.source::<MemoryStore>().unwrap();
        assert_eq!((store.calls(), store.keys()), (3, keys));
    }
}

#[test]
fn the_dataloader_schema_renders_the_same_page() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (questions, answers, _, out_len, fnv) = SIZES[0];
    let p = Params { questions, answers };
    let store = std::sync::Arc::new(feed::memory_store(p));
    let schema = graphql::schema::<ViaDataLoader<MemoryStore>>();
    let page = tokio.block_on(async {
        let loader = async_graphql::dataloader::DataLoader::new(
            SourceLoader(std::sync::Arc::clone(&store)),
            tokio::spawn,
        );
        graphql::render(
            schema
                .execute(graphql::loader_request(FEED_QUERY, p, loader))
                .await,
        )
    });
    let page = page.unwrap();
    assert_eq!((page.len(), feed::fnv1a64(page.as_bytes())), (out_len, fnv));
    // Batched, though not into the optimal 3 calls: the loader's timer decides.
    assert!(
        store.calls() >= 3 && store.calls() < 195,
        "{}",
        store.calls()
    );
}

#[test]
fn a_missing_key_is_an_error_of_its_field_with_its_path() {
    let p = Params {
        questions: 2,
        answers: 1,
    };
    let mut data = feed::dataset(p);
    data.retain(|(key, _)| key != "a:1:text");
    let rt = Runtime::new().with_source(MemoryStore::from_pairs(data));
    let schema = graphql::schema::<ViaAsynq<MemoryStore>>();
    let err = futures::executor::block_on(graphql::feed_page(&rt, &schema, p)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("the response has an error: "),
        "{message}"
    );
    assert!(message.contains("\"a:1:text\""), "{message}");
    assert!(message.ends_with("(at feed.1.answers.0.text)"), "{message}");
}

/// The FEED-1 query's selection `times` over, under aliases.
fn aliased_pages(times: usize) -> String {
    let selection = FEED_QUERY
        .trim_start_matches("{ feed")
        .trim_end_matches('}');
    let pages: String = (0..times)
        .map(|i| format!("f{i}: feed{selection} "))
        .collect();
    format!("{{ {pages}}}")
}

#[test]
fn a_query_may_cost_twice_the_page_and_no_more() {
    let p = Params {
        questions: 3,
        answers: 2,
    };
    let rt = Runtime::new().with_source(feed::memory_store(p));
    let schema = graphql::schema::<ViaAsynq<MemoryStore>>();
    let run = |query: String| {
        let request = async_graphql::Request::new(query).data(p);
        futures::executor::block_on(asynq_graphql::execute(&rt, &schema, request))
    };

    let (response, stats) = run(aliased_pages(2));
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let json = response.data.into_json().unwrap();
    assert_eq!(
        json["f1"][2]["answers"][1]["author"]["name"],
        json["f0"][2]["answers"][1]["author"]["name"]
    );
    assert_eq!(
        stats.calls(),
        3,
        "the second copy comes from the run's cache"
    );

    let (response, stats) = run(aliased_pages(3));
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let message = &response.errors[0].message;
    assert!(message.contains("complex"), "{message}");
    assert_eq!(
        (stats.rounds, stats.calls()),
        (0, 0),
        "refused before it runs"
    );
    assert_eq!(graphql::MAX_COMPLEXITY, 2 * graphql::FEED_QUERY_COMPLEXITY);
}

#[test]
fn the_queries_of_a_batch_share_one_complexity_budget() {
    let p = Params {
        questions: 3,
        answers: 2,
    };
    let rt = Runtime::new().with_source(feed::memory_store(p));
    let schema = graphql::batch_schema::<ViaAsynq<MemoryStore>>();
    let pages = |n: usize| {
        let requests = (0..n).map(|_| async_graphql::Request::new(FEED_QUERY));
        async_graphql::BatchRequest::Batch(requests.collect()).data(p)
    };
    let run = |batch| {
        let (response, stats) =
            futures::executor::block_on(asynq_graphql::execute_batch(&rt, &schema, batch));
        match response {
            async_graphql::BatchResponse::Batch(responses) => (responses, stats),
            async_graphql::BatchResponse::Single(_) => panic!("a batch gets a batch"),
        }
    };
    assert_eq!(
        graphql::MAX_BATCH_COMPLEXITY,
        2 * graphql::FEED_QUERY_COMPLEXITY
    );

    // Two pages fit the budget; the third query would go over it: an error of its own.
    let budget = graphql::batch_budget();
    let (responses, stats) = run(pages(3).data(budget.clone()));
    assert_eq!(responses.len(), 3);
    for response in &responses[..2] {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    assert_eq!(responses[2].errors.len(), 1, "{:?}", responses[2].errors);
    let message = &responses[2].errors[0].message;
    assert!(
        message.contains("complexity is 351")
            && message.contains("spent 702 of their complexity budget of 702"),
        "{message}"
    );
    assert_eq!(responses[2].data, async_graphql::Value::Null);
    assert_eq!(budget.spent(), 2 * graphql::FEED_QUERY_COMPLEXITY);
    // The two pages that ran share their calls: 3 in all.
    assert_eq!((stats.rounds, stats.calls()), (3, 3));

    // Each page alone would pass the schema's limit: without a budget in the batch's data,
    // nothing is charged and all three run (what the budget prevents).
    let (responses, _) = run(pages(3));
    assert!(responses.iter().all(|r| r.errors.is_empty()));

    // A budget spent by earlier requests refuses even a small query.
    let (responses, stats) = run(pages(1).data(budget.clone()));
    assert!(responses[0].errors[0].message.contains("budget"));
    assert_eq!((stats.rounds, stats.calls()), (0, 0));
}

#[test]
fn a_deeply_nested_introspection_query_is_refused() {
    let rt = Runtime::new();
    let schema = graphql::schema::<ViaAsynq<MemoryStore>>();
    let shallow = "{ __schema { types { name fields { name } } } }";
    let (response, _) = futures::executor::block_on(asynq_graphql::execute(&rt, &schema, shallow));
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let deep =
        "{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }";
    let (response, stats) = futures::executor::block_on(asynq_graphql::execute(&rt, &schema, deep));
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let message = &response.errors[0].message;
    assert!(message.contains("too deep"), "{message}");
    assert_eq!(stats.rounds, 0);
}
