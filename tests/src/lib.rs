//! Integration tests of asynq: see `tests/`. This library holds helpers shared by them.

// The README's Rust examples compile and run as doctests of this crate.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
