use asynq_core::asynq;

#[asynq]
fn user_name(uid: u64) -> String {
    format!("user{uid}")
}

#[asynq]
fn pair() -> (String, i32) {
    (user_name(1), std::future::ready(1)).await
}

fn main() {}
