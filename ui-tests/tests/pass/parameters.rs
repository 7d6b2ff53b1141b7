// Patterns and `mut` in parameters.

use asynq_core::{Runtime, asynq};

struct Point {
    x: i32,
    y: i32,
}

#[asynq]
fn swap((a, b): (u32, u32)) -> (u32, u32) {
    (b, a)
}

#[asynq]
fn manhattan(Point { x, y }: Point, &scale: &i32) -> i32 {
    (x.abs() + y.abs()) * scale
}

#[asynq]
fn countdown(mut n: u32, mut log: Vec<u32>) -> Vec<u32> {
    while n > 0 {
        log.push(n);
        n -= 1;
    }
    log
}

#[asynq]
fn ignore(_: u32, _unused: &str) -> u32 {
    7
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(swap((1, 2))).unwrap(), (2, 1));
    assert_eq!(rt.run(manhattan(Point { x: -3, y: 4 }, &2)).unwrap(), 14);
    assert_eq!(rt.run(countdown(3, vec![])).unwrap(), [3, 2, 1]);
    assert_eq!(rt.run(ignore(1, "x")).unwrap(), 7);
}
