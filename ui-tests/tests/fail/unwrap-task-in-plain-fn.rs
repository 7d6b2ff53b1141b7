//! An asynq function called from a plain function as if it returned its output (Python asynq
//! runs a function called without `.asynq()` at once): the call is a task, which runs only when
//! an asynq function awaits it or a `Runtime` runs it: `Runtime::new().run(user_name(1))`.

use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> Result<String, asynq_core::Error> {
    Ok(format!("user{uid}"))
}

pub fn plain() -> String {
    user_name(1).unwrap()
}

fn main() {}
