// Borrows and guards that end before the task awaits, and look-alikes that are no guards:
// none is reported, and each runs.
#![deny(warnings)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

use asynq_core::{Runtime, asynq};

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn dropped(seen: Rc<RefCell<Vec<u64>>>, uid: u64) -> String {
    let mut names = seen.borrow_mut();
    names.push(uid);
    drop(names);
    user_name(uid).await
}

#[asynq]
fn scoped(calls: &Mutex<u64>, uid: u64) -> String {
    {
        let mut guard = calls.lock().unwrap();
        *guard += 1;
    }
    user_name(uid).await
}

#[asynq]
fn temporary(seen: Rc<RefCell<Vec<u64>>>) -> String {
    // The borrow is a temporary of this statement only.
    let first = seen.borrow()[0];
    user_name(first).await
}

#[asynq]
fn not_a_guard(owned: String) -> String {
    use std::borrow::Borrow;
    // `Borrow::borrow`, with its type written: a plain reference.
    let text: &str = owned.borrow();
    let len = text.len() as u64;
    user_name(len).await
}

fn main() {
    let rt = Runtime::new();
    let seen = Rc::new(RefCell::new(vec![7]));
    assert_eq!(rt.run(dropped(seen.clone(), 1)).unwrap(), "user1");
    assert_eq!(*seen.borrow(), [7, 1]);
    let calls = Mutex::new(0);
    assert_eq!(rt.run(scoped(&calls, 2)).unwrap(), "user2");
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(rt.run(temporary(seen)).unwrap(), "user7");
    assert_eq!(rt.run(not_a_guard("abc".into())).unwrap(), "user3");
}
