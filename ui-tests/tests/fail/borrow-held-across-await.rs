//! A `RefCell` borrow bound by `let` and still alive at a later `.await`: while this task
//! waits, another task of the run may `borrow_mut` the same cell and panic with "already
//! borrowed". End the borrow before the await: `drop(names);`, or a block around its use.

use std::cell::RefCell;
use std::rc::Rc;

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn greet(seen: Rc<RefCell<Vec<u64>>>, uid: u64) -> String {
    let mut names = seen.borrow_mut();
    names.push(uid);
    let name = user_name(uid).await;
    format!("hello {name}")
}

fn main() {}
