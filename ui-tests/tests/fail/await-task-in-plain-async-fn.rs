//! A task awaited in a plain `async fn` (outside any asynq function): tasks are not futures,
//! so this does not compile. Run it instead: `rt.run_async(user_name(1)).await`.

use asynq_core::asynq;

#[asynq]
fn user_name(id: u64) -> String {
    format!("user {id}")
}

async fn plain() -> String {
    user_name(1).await
}

fn main() {
    drop(plain());
}
