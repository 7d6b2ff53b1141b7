// Type and const generics, lifetimes, `where` clauses, and `impl Trait` in arguments and in
// the return type.

use std::fmt::Display;

use asynq_core::{Runtime, asynq};

#[asynq]
fn show<T: Display>(value: T) -> String {
    value.to_string()
}

#[asynq]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() { a } else { b }
}

#[asynq]
fn show_all<T, const N: usize>(values: [T; N]) -> Vec<String>
where
    T: Display + Clone,
{
    values.map(show).into_iter().collect::<Vec<_>>().await
}

#[asynq]
fn joined(parts: impl IntoIterator<Item = impl Display>, separator: &str) -> String {
    let shown = parts.into_iter().map(show).collect::<Vec<_>>().await;
    shown.join(separator)
}

#[asynq]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(
        rt.run(longest_owned("longer".to_owned())).unwrap(),
        "longer"
    );
    assert_eq!(rt.run(show_all([1, 2, 3])).unwrap(), ["1", "2", "3"]);
    assert_eq!(rt.run(joined(vec![1.5, 2.5], ", ")).unwrap(), "1.5, 2.5");
    let evens: Vec<u32> = rt.run(async_evens()).unwrap();
    assert_eq!(evens, [0, 2, 4]);
}

#[asynq]
fn async_evens() -> Vec<u32> {
    evens(5).await.collect()
}

// A task that borrows its caller's local across the await.
#[asynq]
fn longest_owned(text: String) -> String {
    longest(&text, "short").await.to_owned()
}
