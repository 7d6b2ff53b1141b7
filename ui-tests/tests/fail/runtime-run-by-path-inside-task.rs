use asynq_core::{Runtime, asynq};

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn greeting(rt: &Runtime) -> String {
    let name = Runtime::run(rt, user_name(1)).unwrap();
    format!("hello {name}")
}

fn main() {}
