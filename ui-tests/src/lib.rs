//! Compile-fail and compile-pass tests of `#[asynq]`: see `tests/ui.rs`.
