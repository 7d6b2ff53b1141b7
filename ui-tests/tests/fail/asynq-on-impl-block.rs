use asynq_core::asynq;

struct Users;

#[asynq]
impl Users {
    fn name(&self, uid: u64) -> String {
        format!("user{uid}")
    }
}

fn main() {}
