// asynq through a crate that re-exports it: `#[asynq(crate = "path")]` routes the expansion
// through that path. (`asynq-ui-downstream` does the same where `asynq_core` is no name at
// all; this runs its task.)

use reexporter::asynq::{Runtime, asynq};

#[asynq(crate = "reexporter::asynq")]
fn triple(x: u32) -> u32 {
    x * 3
}

#[asynq(crate = "reexporter::asynq")]
fn both(x: u32) -> (u32, u32) {
    (triple(x), downstream::sum_to(x)).await
}

fn main() {
    assert_eq!(Runtime::new().run(both(4)).unwrap(), (12, 10));
}
