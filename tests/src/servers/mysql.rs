//! A MariaDB (MySQL) server of the tests: `mariadb-install-db` into a temporary directory,
//! then `mariadbd` on a free port of 127.0.0.1 without grant tables (any user, no password).

use std::path::{Path, PathBuf};

use super::{Launch, RunAs, Server, Shared, find_program, server_dir, setup, shared_or_skip};

/// Set (to anything) to make tests fail instead of skipping when MariaDB cannot be started.
pub const MYSQL_REQUIRE_ENV: &str = "ASYNQ_REQUIRE_MYSQL";

/// `mariadb-install-db` and `mariadbd` (or their `mysql` names).
fn programs() -> Result<(PathBuf, PathBuf), String> {
    let dirs = [PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")];
    let missing = || {
        "MariaDB is not installed (no mariadb-install-db and mariadbd); \
         `apt-get install mariadb-server` provides them, as scripts/test.sh does"
            .to_owned()
    };
    let install =
        find_program(&["mariadb-install-db", "mysql_install_db"], &dirs).ok_or_else(missing)?;
    let server = find_program(&["mariadbd", "mysqld"], &dirs).ok_or_else(missing)?;
    Ok((install, server))
}

/// Start a new MariaDB server (a few seconds): a fresh data directory, stopped when dropped.
pub fn start_mysql() -> Result<Server, String> {
    let (install, server) = programs()?;
    let run_as = RunAs::find()?;
    let dir = server_dir("mysql", run_as)?;
    let started = start_in(&dir, run_as, &install, &server);
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

fn start_in(dir: &Path, run_as: RunAs, install: &Path, server: &Path) -> Result<Server, String> {
    let data = dir.join("data").to_string_lossy().into_owned();
    let args = vec![
        "--no-defaults".to_owned(),
        format!("--datadir={data}"),
        "--auth-root-authentication-method=normal".to_owned(),
        "--skip-test-db".to_owned(),
    ];
    setup(run_as, install, &args, &dir.join("install.log"))?;
    let server = server.to_string_lossy().into_owned();
    let dir_text = dir.to_string_lossy().into_owned();
    let command = move |port: u16| -> Vec<String> {
        vec![
            server.clone(),
            "--no-defaults".into(),
            format!("--datadir={data}"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={dir_text}/mysqld.sock"),
            format!("--pid-file={dir_text}/mysqld.pid"),
            format!("--log-error={dir_text}/server.log"),
            // A throwaway server: no accounts to set up, no durability, little memory.
            "--skip-grant-tables".into(),
            "--skip-name-resolve".into(),
            "--skip-log-bin".into(),
            "--character-set-server=utf8mb4".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-log-file-size=16M".into(),
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--max-connections=200".into(),
        ]
    };
    Launch {
        name: "MariaDB",
        run_as,
        dir,
        log: dir.join("server.log"),
        stop_signal: "TERM",
        command: &command,
        ready: "ready for connections",
    }
    .start()
}

/// The MariaDB server shared by the tests of this binary, or `None` (after a line on the
/// terminal) when it cannot be started and [`MYSQL_REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When it cannot be started and [`MYSQL_REQUIRE_ENV`] is set.
#[track_caller]
pub fn mysql(test: &str) -> Option<&'static Server> {
    static SERVER: Shared = Shared::new();
    shared_or_skip(&SERVER, start_mysql, "MariaDB", MYSQL_REQUIRE_ENV, test)
}

impl Server {
    /// The URL of `database` on this MariaDB server (any user: there are no grant tables).
    pub fn mysql_url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port())
    }
}
