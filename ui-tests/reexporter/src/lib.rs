//! A framework that re-exports asynq: its users depend on this crate alone and write
//! `#[reexporter::asynq::asynq(crate = "reexporter::asynq")]`.

pub use asynq_core as asynq;
