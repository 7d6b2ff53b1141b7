//! `feed --trace`: the Chrome trace-event file of a FEED-1 run parses and holds its spans.

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;

#[test]
fn a_feed_trace_is_json_with_rounds_fetches_and_task_polls() {
    let dir = std::env::temp_dir().join(format!("asynq-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    let params = Params {
        questions: 10,
        answers: 5,
    };
    {
        let _guard =
            asynq_examples::trace::chrome(&path).expect("the test binary's only subscriber");
        let rt = Runtime::new().with_source(feed::memory_store(params));
        let page = rt.run(feed::feed::<MemoryStore>(params)).unwrap();
        assert_eq!(page.len(), 2152);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    let events = json.as_array().expect("a JSON array of trace events");
    let count = |name: &str| {
        events
            .iter()
            .filter(|e| e["name"] == name && e["ph"] == "b")
            .count()
    };
    assert_eq!(count("asynq.run"), 1);
    assert_eq!(count("asynq.round"), 3);
    assert_eq!(count("asynq.fetch"), 3);
    // One span per poll of each asynq function: the page's tasks, at least once each.
    let tasks = count("asynq.task");
    assert!(tasks > 10 + 50 + 60, "{tasks} task polls");
    let fetch = events
        .iter()
        .find(|e| e["name"] == "asynq.fetch" && e["ph"] == "b")
        .unwrap();
    assert_eq!(fetch["args"]["source"], "memory");
    assert!(
        events
            .iter()
            .any(|e| e["args"]["task"] == "asynq_examples::feed::question")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
