//! A `std::sync::Mutex` guard bound by `let` and still alive at a later `.await`: while this
//! task waits, another task of the run on the same thread may `lock` the same mutex, which
//! deadlocks (or panics). Drop the guard before the await.

use std::sync::Mutex;

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn count(calls: &Mutex<u64>, uid: u64) -> String {
    let mut guard = calls.lock().unwrap();
    *guard += 1;
    user_name(uid).await
}

fn main() {}
