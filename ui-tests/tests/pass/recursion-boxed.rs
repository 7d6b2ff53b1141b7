// Recursion: `#[asynq(boxed)]` gives the task a concrete, `Send` type, so the function may
// call itself; `.boxed_local()` at the call does the same without `Send`.

use asynq_core::{Runtime, asynq};

#[asynq(boxed)]
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = (fib(n - 1), fib(n - 2)).await;
    a + b
}

#[asynq]
fn fib_local(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = (
        fib_local(n - 1).boxed_local(),
        fib_local(n - 2).boxed_local(),
    )
        .await;
    a + b
}

struct Tree {
    value: u32,
    children: Vec<Tree>,
}

impl Tree {
    #[asynq(boxed)]
    fn total(&self) -> u32 {
        let children = self
            .children
            .iter()
            .map(Tree::total)
            .collect::<Vec<_>>()
            .await;
        self.value + children.into_iter().sum::<u32>()
    }
}

#[asynq(boxed)]
fn depth<'a, T: Sync>(items: &'a [T], prefix: &str) -> String {
    match items.split_first() {
        None => prefix.to_owned(),
        Some((_, rest)) => depth(rest, &format!("{prefix}+")).await,
    }
}

// In a trait, `boxed` on the declaration and on the implementation alike; the boxed task
// type also makes the trait usable as `dyn Shape`.
trait Shape: Sync {
    #[asynq(boxed)]
    fn area(&self) -> u32;
}

struct Square(u32);

struct Group(Vec<Box<dyn Shape>>);

impl Shape for Square {
    #[asynq(boxed)]
    fn area(&self) -> u32 {
        self.0 * self.0
    }
}

impl Shape for Group {
    #[asynq(boxed)]
    fn area(&self) -> u32 {
        let areas = self.0.iter().map(|s| s.area()).collect::<Vec<_>>().await;
        areas.into_iter().sum()
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(assert_send(fib(10))).unwrap(), 55);
    assert_eq!(rt.run(fib_local(10)).unwrap(), 55);
    let tree = Tree {
        value: 1,
        children: vec![
            Tree {
                value: 2,
                children: vec![],
            },
            Tree {
                value: 3,
                children: vec![Tree {
                    value: 4,
                    children: vec![],
                }],
            },
        ],
    };
    assert_eq!(rt.run(assert_send(tree.total())).unwrap(), 10);
    assert_eq!(rt.run(depth(&[1, 2, 3], "")).unwrap(), "+++");
    let nested = Group(vec![
        Box::new(Square(2)),
        Box::new(Group(vec![Box::new(Square(3))])),
    ]);
    let shape: &dyn Shape = &nested;
    assert_eq!(rt.run(assert_send(shape.area())).unwrap(), 13);
}
