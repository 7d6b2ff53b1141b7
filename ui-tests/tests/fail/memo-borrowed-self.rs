use asynq_core::asynq;

struct Profile {
    uid: u64,
}

impl Profile {
    #[asynq(memo)]
    fn name(&self) -> String {
        format!("user {}", self.uid)
    }
}

fn main() {
    let _task = Profile { uid: 1 }.name();
}
