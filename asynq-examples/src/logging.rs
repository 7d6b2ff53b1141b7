//! Warnings of the libraries (a cache server's outage starting and ending, from
//! `asynq_sources`) printed on stderr, one line each: what the programs install at start.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Writes each warning or error as one line on stderr, as it is.
#[derive(Debug)]
struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Print the warnings and errors logged through the `log` facade on stderr. Does nothing if
/// a logger is installed already.
pub fn to_stderr() {
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Warn);
    }
}
