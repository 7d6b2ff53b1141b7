use asynq_core::{Runtime, asynq};

#[asynq]
fn user_name(uid: u64) -> Result<String, asynq_core::Error> {
    Ok(format!("user{uid}"))
}

#[asynq]
fn greeting(rt: &Runtime) -> Result<String, asynq_core::Error> {
    let name = futures::executor::block_on(rt.run_async(user_name(1)))?;
    Ok(format!("hello {name}"))
}

fn main() {}
