//! Chrome trace-event files of runs, for Perfetto and `chrome://tracing`.
//!
//! With the `trace` feature, [`chrome`] installs a `tracing` subscriber that writes every span of
//! asynq-core (`asynq.run`, `asynq.round`, `asynq.fetch`, `asynq.task`) to a JSON file in the
//! Chrome trace-event format, each span as an interval from its creation to its close: rounds
//! and calls on a time axis, and each poll of each asynq function inside them.
//!
//! Open the file at <https://ui.perfetto.dev> ("Open trace file") or in Chromium's
//! `chrome://tracing` ("Load").

use std::error::Error;
use std::path::Path;

/// Flushes and closes the trace file when dropped: keep it until the traced runs are over.
#[must_use = "the trace file is complete only when the guard is dropped"]
pub struct TraceGuard {
    #[cfg(feature = "trace")]
    _flush: tracing_chrome::FlushGuard,
}

impl std::fmt::Debug for TraceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TraceGuard")
    }
}

/// Write the spans of every run from now on to `path`, until the guard drops.
///
/// Fails when a global `tracing` subscriber is already set, or when the crate was built without
/// its `trace` feature (then it says how to build it).
pub fn chrome(path: &Path) -> Result<TraceGuard, Box<dyn Error>> {
    #[cfg(feature = "trace")]
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let (layer, flush) = tracing_chrome::ChromeLayerBuilder::new()
            .file(path)
            .trace_style(tracing_chrome::TraceStyle::Async)
            .include_args(true)
            .build();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(TraceGuard { _flush: flush })
    }
    #[cfg(not(feature = "trace"))]
    {
        Err(format!(
            "cannot write {}: this program was built without tracing; build it with \
             `--features trace` (cargo run --release -p asynq-examples --features trace --bin ...)",
            path.display()
        )
        .into())
    }
}
