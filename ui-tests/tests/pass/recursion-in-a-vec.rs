// Recursion without a box: tasks of the function's own calls collected into a `Vec` live in
// its heap buffer, not in the task, so the task does not contain itself and needs no box.
// `let g = f;` alone holds no task either.

use asynq_core::{Runtime, asynq};

// The sizes of a tree whose node `n` has children `0..n`: every level in one awaited `Vec`.
#[asynq]
fn size(n: u64) -> u64 {
    let children = (0..n).map(size).collect::<Vec<_>>().await;
    1 + children.into_iter().sum::<u64>()
}

#[asynq]
fn size_by_closure(n: u64) -> u64 {
    let children = (0..n)
        .map(|k| size_by_closure(k))
        .collect::<Vec<_>>()
        .await;
    1 + children.iter().sum::<u64>()
}

#[asynq]
fn size_by_vec_macro(n: u64) -> u64 {
    if n < 2 {
        return 1 + n;
    }
    let children = vec![size_by_vec_macro(n - 1), size_by_vec_macro(n - 2)].await;
    1 + children[0] + children[1]
}

#[asynq]
fn size_by_push(n: u64) -> u64 {
    let mut children = Vec::new();
    for k in 0..n {
        children.push(size_by_push(k));
    }
    1 + children.await.into_iter().sum::<u64>()
}

#[asynq]
fn size_by_alias(n: u64) -> u64 {
    let g = size_by_alias;
    let children = (0..n).map(g).collect::<Vec<_>>().await;
    1 + children.into_iter().sum::<u64>()
}

fn main() {
    let rt = Runtime::new();
    // 2^n nodes: node 0 alone, node n its own plus those of 0..n.
    assert_eq!(rt.run(size(5)).unwrap(), 32);
    assert_eq!(rt.run(size_by_closure(5)).unwrap(), 32);
    assert_eq!(rt.run(size_by_push(5)).unwrap(), 32);
    assert_eq!(rt.run(size_by_alias(5)).unwrap(), 32);
    // 1, 2, 4, 7, 12: one for the node plus the sizes of n - 1 and n - 2.
    assert_eq!(rt.run(size_by_vec_macro(4)).unwrap(), 12);
}
