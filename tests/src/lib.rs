//! Integration tests of asynq: see `tests/`. This library holds helpers shared by them:
//! [`faults`], a source wrapper that injects faults, [`fake_memcached`], a memcached server
//! answering what a test tells it to, [`program`], random asynq programs
//! with a reference interpreter for the property tests, [`TempDb`], a database file
//! removed when done, and [`servers`], PostgreSQL and MariaDB servers that tests start.

pub mod fake_memcached;
pub mod faults;
pub mod program;
#[cfg(unix)]
pub mod servers;
mod temp;

pub use temp::TempDb;

// The README's Rust examples compile and run as doctests of this crate.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

// The Rust examples of the pages under docs/ too.
#[doc = include_str!("../../docs/from-python-asynq.md")]
#[cfg(doctest)]
pub struct MigrationGuideDoctests;

#[doc = include_str!("../../docs/feed1.md")]
#[cfg(doctest)]
pub struct Feed1Doctests;

#[doc = include_str!("../../docs/observability.md")]
#[cfg(doctest)]
pub struct ObservabilityDoctests;

#[doc = include_str!("../../docs/serving.md")]
#[cfg(doctest)]
pub struct ServingDoctests;

#[doc = include_str!("../../docs/from-dataloader.md")]
#[cfg(doctest)]
pub struct FromDataloaderDoctests;

#[doc = include_str!("../../docs/batch.md")]
#[cfg(doctest)]
pub struct BatchDoctests;
