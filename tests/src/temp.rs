//! Files in the temporary directory that tests remove when done.

use std::path::{Path, PathBuf};

/// A database file in the temporary directory, removed (with any earlier file of the same
/// name) when made and when dropped. Its name holds the process id, so that test binaries
/// running at once never share one.
#[derive(Debug)]
pub struct TempDb(PathBuf);

impl TempDb {
    /// `asynq-test-<pid>-<name>.sqlite` in the temporary directory; `name` must be unique
    /// within the test binary.
    pub fn new(name: &str) -> TempDb {
        let path =
            std::env::temp_dir().join(format!("asynq-test-{}-{name}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempDb(path)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
