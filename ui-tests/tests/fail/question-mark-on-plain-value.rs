//! `?` on a value of a type it does not apply to: `#[asynq]` checks the operands of `?` for
//! tasks, and for any other type the message stays rustc's own.

use asynq_core::asynq;

#[asynq]
fn number(x: u32) -> Result<u32, String> {
    let y = x?;
    Ok(y)
}

fn main() {}
