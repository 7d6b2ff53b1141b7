//! Tasks bound as a tuple without `.await`, then `?` applied to one of them: `?` needs the
//! task's output, which awaiting gives. Await the tuple: `(user_name(uid), bio(uid)).await`.

use asynq_core::{Error, asynq};

#[asynq]
fn user_name(uid: u64) -> Result<String, Error> {
    Ok(format!("user{uid}"))
}

#[asynq]
fn bio(uid: u64) -> Result<String, Error> {
    Ok(format!("bio of {uid}"))
}

#[asynq]
fn greeting(uid: u64) -> Result<String, Error> {
    let (name, _) = (user_name(uid), bio(uid));
    Ok(format!("hello {}", name?))
}

fn main() {}
