//! A PostgreSQL server of the tests: `initdb` into a temporary directory, then `postgres` on a
//! free port of 127.0.0.1, trusting local connections of the user `postgres`.

use std::path::PathBuf;

use super::{Launch, RunAs, Server, Shared, find_program, server_dir, setup, shared_or_skip};

/// Set (to anything) to make tests fail instead of skipping when PostgreSQL cannot be started.
pub const POSTGRES_REQUIRE_ENV: &str = "ASYNQ_REQUIRE_POSTGRES";

/// `initdb` and `postgres`: Debian keeps them in `/usr/lib/postgresql/<version>/bin`, off
/// `PATH`; the newest version there, else `PATH`.
fn programs() -> Result<(PathBuf, PathBuf), String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    let dirs: Vec<PathBuf> = versions.into_iter().rev().map(|(_, dir)| dir).collect();
    let missing = || {
        "PostgreSQL is not installed (no initdb and postgres in /usr/lib/postgresql/*/bin or on \
         PATH); `apt-get install postgresql` provides them, as scripts/test.sh does"
            .to_owned()
    };
    let initdb = find_program(&["initdb"], &dirs).ok_or_else(missing)?;
    let postgres = initdb
        .parent()
        .map(|dir| dir.join("postgres"))
        .filter(|p| p.is_file())
        .or_else(|| find_program(&["postgres"], &dirs))
        .ok_or_else(missing)?;
    Ok((initdb, postgres))
}

/// Start a new PostgreSQL server (a few seconds): a fresh cluster, stopped when dropped.
pub fn start_postgres() -> Result<Server, String> {
    let (initdb, postgres) = programs()?;
    let run_as = RunAs::find()?;
    let dir = server_dir("postgres", run_as)?;
    let started = start_in(&dir, run_as, &initdb, &postgres);
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

fn start_in(
    dir: &std::path::Path,
    run_as: RunAs,
    initdb: &std::path::Path,
    postgres: &std::path::Path,
) -> Result<Server, String> {
    let data = dir.join("data");
    let args = [
        "-D",
        data.to_str()
            .ok_or("the temporary directory's path is not UTF-8")?,
        "--auth=trust",
        "--username=postgres",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    setup(run_as, initdb, &args, &dir.join("initdb.log"))?;
    let (postgres, data, socket_dir) = (
        postgres.to_string_lossy().into_owned(),
        data.to_string_lossy().into_owned(),
        dir.to_string_lossy().into_owned(),
    );
    let command = move |port: u16| -> Vec<String> {
        let mut c = vec![postgres.clone(), "-D".into(), data.clone()];
        c.extend([
            "-p".into(),
            port.to_string(),
            "-k".into(),
            socket_dir.clone(),
        ]);
        // A throwaway cluster: no durability, little memory.
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "shared_buffers=32MB",
            "max_connections=100",
        ] {
            c.extend(["-c".into(), setting.into()]);
        }
        c
    };
    Launch {
        name: "PostgreSQL",
        run_as,
        dir,
        log: dir.join("server.log"),
        stop_signal: "INT", // a fast shutdown
        command: &command,
        ready: "database system is ready to accept connections",
    }
    .start()
}

/// The PostgreSQL server shared by the tests of this binary, or `None` (after a line on the
/// terminal) when it cannot be started and [`POSTGRES_REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When it cannot be started and [`POSTGRES_REQUIRE_ENV`] is set.
#[track_caller]
pub fn postgres(test: &str) -> Option<&'static Server> {
    static SERVER: Shared = Shared::new();
    shared_or_skip(
        &SERVER,
        start_postgres,
        "PostgreSQL",
        POSTGRES_REQUIRE_ENV,
        test,
    )
}

impl Server {
    /// The URL of `database` on this PostgreSQL server, as the superuser `postgres`.
    pub fn postgres_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port())
    }
}
