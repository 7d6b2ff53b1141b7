// What a body may contain: nested items and closures, labeled loops with `break` values,
// early `return`, `?`, and awaits inside macros.

use asynq_core::{Error, Runtime, asynq, ready};

#[asynq]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse::<u32>()
}

#[asynq]
fn sum(texts: Vec<&'static str>) -> Result<u32, Box<dyn std::error::Error>> {
    // A nested item is not part of the task: its `.await`s would be its own.
    fn square(x: u32) -> u32 {
        x * x
    }
    if texts.is_empty() {
        return Ok(0);
    }
    let parsed = texts.into_iter().map(parse).collect::<Vec<_>>().await;
    let mut total = 0;
    for value in parsed {
        total += square(value?);
    }
    Ok(total)
}

#[asynq]
fn first_over(limit: u32) -> Option<u32> {
    let found = 'search: loop {
        for candidate in [3, 5, 8, 13] {
            if candidate > limit {
                break 'search Some(candidate);
            }
        }
        break None;
    };
    found
}

#[asynq]
fn closures_and_macros(n: u32) -> Result<String, Error> {
    let double = |x: u32| x * 2;
    let ready_value = ready(double(n)).await;
    assert_eq!(ready_value, 2 * n, "awaited {}", ready(n).await);
    let labels = vec![ready(1).await, ready(2).await];
    Ok(format!("{ready_value} {labels:?}"))
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(sum(vec!["1", "2", "3"])).unwrap(), 14);
    assert_eq!(rt.run(sum(vec![])).unwrap(), 0);
    assert!(rt.run(sum(vec!["1", "x"])).is_err());
    assert_eq!(rt.run(first_over(6)).unwrap(), Some(8));
    assert_eq!(rt.run(first_over(20)).unwrap(), None);
    assert_eq!(rt.run(closures_and_macros(4)).unwrap(), "8 [1, 2]");
}
