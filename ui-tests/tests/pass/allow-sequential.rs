// `#[asynq(allow_sequential)]` silences the sequential-awaits warning for one function, and
// dependent awaits never raise it.
#![deny(warnings)]

use asynq_core::{Runtime, asynq};

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn best_friend(uid: u64) -> u64 {
    uid + 1
}

// Deliberately one after another: the second is only worth starting after the first.
#[asynq(allow_sequential)]
fn names_in_order(uid: u64) -> (String, String) {
    let first = user_name(uid).await;
    let second = user_name(uid + 1).await;
    (first, second)
}

#[asynq(allow_sequential)]
fn names_one_by_one(uids: Vec<u64>) -> Vec<String> {
    let mut names = Vec::new();
    for uid in uids {
        names.push(user_name(uid).await);
    }
    names
}

// The second await needs the first one's result: nothing to batch, no warning.
#[asynq]
fn friend_name(uid: u64) -> String {
    let friend = best_friend(uid).await;
    let name = user_name(friend).await;
    name
}

// Each iteration depends on the previous one: no warning.
#[asynq]
fn chain(uid: u64, hops: u32) -> u64 {
    let mut current = uid;
    for _ in 0..hops {
        current = best_friend(current).await;
    }
    current
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(
        rt.run(names_in_order(1)).unwrap(),
        ("user1".into(), "user2".into())
    );
    assert_eq!(
        rt.run(names_one_by_one(vec![3, 4])).unwrap(),
        ["user3", "user4"]
    );
    assert_eq!(rt.run(friend_name(1)).unwrap(), "user2");
    assert_eq!(rt.run(chain(1, 3)).unwrap(), 4);
}
