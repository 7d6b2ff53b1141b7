//! The measurement behind asynq-sources' choice of drivers (docs/sources.md, "Why these
//! drivers"): the query a source sends for a round, rows by a batch of primary keys, through
//! sqlx and through the drivers asynq-sources uses, with the client's and the server's CPU
//! time per key.
//!
//! ```text
//! driver-bench [--postgres URL] [--mysql URL] [--mysql-process NAME] [--scale F]
//! ```
//!
//! For each server named, it creates the table `asynq_driver_bench_items` (100,000 rows; it
//! refuses to start when a table of that name exists, so it never writes into a table it did
//! not make), sends batches of 1 to 10,000 random distinct keys (about 9% of them absent),
//! one query after another on a current-thread tokio runtime, and drops the table at the end.
//! Each driver is set up as asynq-sources sets it up: sqlx without its ping before each
//! acquire (`test_before_acquire(false)`), mysql_async without its reset on return,
//! deadpool-postgres with its default (fast) recycling.
//!
//! Per driver and batch size it prints the median and 90th-percentile latency of a query,
//! the client's CPU time per key (`getrusage` of this process) and the server's (the CPU time
//! of every process named `postgres`, or `--mysql-process`, default `mariadbd`, read from
//! `/proc`, so run it against servers of your own on this machine). `--scale 0.1` sends a
//! tenth of the queries.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;

/// Rows in the table; keys are drawn from 10% more, so some are absent.
const ROWS: i64 = 100_000;
/// The table this program makes and drops.
const TABLE: &str = "asynq_driver_bench_items";

type BoxError = Box<dyn std::error::Error>;

/// The CPU time of this process, user and system.
fn cpu_self() -> Duration {
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero bytes are a valid
    // value; getrusage only writes into the struct it is given, which lives across the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF is a valid `who`, and `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail");
    let time =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The CPU time of every process whose command name is `name`, from /proc (in clock ticks,
/// taken as 10 ms: USER_HZ is 100 on Linux).
fn cpu_of(name: &str) -> Duration {
    let mut ticks = 0u64;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    for entry in procs.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        // After the command: state, ppid, ... utime is the 12th field, stime the 13th.
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        for f in fields.iter().skip(11).take(2) {
            ticks += f.parse::<u64>().unwrap_or(0);
        }
    }
    Duration::from_millis(ticks * 10)
}

/// A small deterministic generator (splitmix64): the same batches on every run.
struct Keys(u64);

impl Keys {
    fn next(&mut self, below: i64) -> i64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % below as u64) as i64
    }
}

/// `n` batches of `batch` distinct keys.
fn batches(batch: usize, n: usize, seed: u64) -> Vec<Vec<i64>> {
    let mut keys = Keys(seed);
    (0..n)
        .map(|_| {
            let mut set = HashSet::with_capacity(batch);
            while set.len() < batch {
                set.insert(keys.next(ROWS + ROWS / 10));
            }
            set.into_iter().collect()
        })
        .collect()
}

/// MySQL's query for `batch` keys: one placeholder each.
fn in_list(batch: usize) -> String {
    let mut sql = format!("SELECT id, name, score FROM {TABLE} WHERE id IN (");
    for i in 0..batch {
        sql.push_str(if i == 0 { "?" } else { ",?" });
    }
    sql.push(')');
    sql
}

/// Time `n` queries of `batch` keys through `query` (after 20 to warm up) and print the
/// figures.
async fn bench<F, Fut>(driver: &str, server: &str, batch: usize, n: usize, mut query: F)
where
    F: FnMut(Vec<i64>) -> Fut,
    Fut: Future<Output = Result<usize, BoxError>>,
{
    for keys in batches(batch, 20, 1) {
        query(keys).await.expect("a warm-up query");
    }
    let work = batches(batch, n.max(1), 7);
    let (client0, server0) = (cpu_self(), cpu_of(server));
    let mut latencies = Vec::with_capacity(work.len());
    let mut rows = 0;
    for keys in work {
        let start = Instant::now();
        rows += query(keys).await.expect("a query");
        latencies.push(start.elapsed());
    }
    let (client, server) = (cpu_self() - client0, cpu_of(server) - server0);
    latencies.sort();
    let n = latencies.len();
    let keys = (n * batch) as f64;
    println!(
        "{driver:15} batch={batch:5} queries={n:5} rows={rows:7} median_us={:8.1} \
         p90_us={:8.1} client_cpu_ns_per_key={:8.0} server_cpu_ns_per_key={:8.0}",
        latencies[n / 2].as_secs_f64() * 1e6,
        latencies[n * 9 / 10].as_secs_f64() * 1e6,
        client.as_nanos() as f64 / keys,
        server.as_nanos() as f64 / keys,
    );
}

/// Batch sizes and query counts, scaled.
fn plan(scale: f64) -> Vec<(usize, usize)> {
    [(1, 4000), (10, 3000), (100, 1000), (1000, 200), (10000, 20)]
        .into_iter()
        .map(|(batch, n)| (batch, ((n as f64) * scale) as usize))
        .collect()
}

async fn postgres(url: &str, scale: f64) -> Result<(), BoxError> {
    let sx = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect(url)
        .await?;
    let exists: (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(TABLE)
        .fetch_one(&sx)
        .await?;
    if exists.0 {
        return Err(
            format!("PostgreSQL: table {TABLE} exists; drop it or use another database").into(),
        );
    }
    let create = format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score BIGINT NOT NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&sx)
        .await?;
    let fill = format!(
        "INSERT INTO {TABLE} SELECT g, 'item ' || g, g * 7 FROM generate_series(0, $1 - 1) g"
    );
    sqlx::query(sqlx::AssertSqlSafe(fill))
        .bind(ROWS)
        .execute(&sx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {TABLE}")))
        .execute(&sx)
        .await?;

    let mut config = deadpool_postgres::Config::new();
    config.url = Some(url.to_owned());
    let dp = config.create_pool(
        Some(deadpool_postgres::Runtime::Tokio1),
        tokio_postgres::NoTls,
    )?;
    let sql = format!("SELECT id, name, score FROM {TABLE} WHERE id = ANY($1)");
    for (batch, n) in plan(scale) {
        bench("sqlx-pg", "postgres", batch, n, |keys| {
            let (sx, sql) = (sx.clone(), sql.clone());
            async move {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(keys)
                    .fetch_all(&sx)
                    .await?;
                Ok(rows.len())
            }
        })
        .await;
        bench("tokio-postgres", "postgres", batch, n, |keys| {
            let (dp, sql) = (dp.clone(), sql.clone());
            async move {
                let client = dp.get().await?;
                let statement = client.prepare_cached(&sql).await?;
                let mut out = Vec::new();
                for row in client.query(&statement, &[&keys]).await? {
                    let row: (i64, String, i64) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    out.push(row);
                }
                Ok(out.len())
            }
        })
        .await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {TABLE}")))
        .execute(&sx)
        .await?;
    Ok(())
}

async fn mysql(url: &str, process: &str, scale: f64) -> Result<(), BoxError> {
    let sx = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect(url)
        .await?;
    let exists: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(TABLE)
    .fetch_one(&sx)
    .await?;
    if exists.0 > 0 {
        return Err(format!("MySQL: table {TABLE} exists; drop it or use another database").into());
    }
    let create = format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
         score BIGINT NOT NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&sx)
        .await?;
    let fill = format!(
        "INSERT INTO {TABLE} VALUES {}",
        vec!["(?, ?, ?)"; 1000].join(", ")
    );
    for low in (0..ROWS).step_by(1000) {
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(fill.clone()));
        for i in low..low + 1000 {
            insert = insert.bind(i).bind(format!("item {i}")).bind(i * 7);
        }
        insert.execute(&sx).await?;
    }

    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(url)?)
        .pool_opts(mysql_async::PoolOpts::default().with_reset_connection(false));
    let ma = mysql_async::Pool::new(opts);
    for (batch, n) in plan(scale) {
        let sql = in_list(batch);
        bench("sqlx-mysql", process, batch, n, |keys| {
            let (sx, sql) = (sx.clone(), sql.clone());
            async move {
                let mut query = sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(sql));
                for key in keys {
                    query = query.bind(key);
                }
                Ok(query.fetch_all(&sx).await?.len())
            }
        })
        .await;
        bench("mysql_async", process, batch, n, |keys| {
            let (ma, sql) = (ma.clone(), sql.clone());
            async move {
                let mut conn = ma.get_conn().await?;
                let rows: Vec<(i64, String, i64)> = conn.exec(sql, keys).await?;
                Ok(rows.len())
            }
        })
        .await;
    }
    ma.disconnect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {TABLE}")))
        .execute(&sx)
        .await?;
    Ok(())
}

/// The command line: which servers, and how much work.
struct Args {
    postgres: Option<String>,
    mysql: Option<String>,
    mysql_process: String,
    scale: f64,
}

const USAGE: &str =
    "usage: driver-bench [--postgres URL] [--mysql URL] [--mysql-process NAME] [--scale F]";

fn args() -> Result<Args, String> {
    let mut args = Args {
        postgres: None,
        mysql: None,
        mysql_process: "mariadbd".to_owned(),
        scale: 1.0,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--postgres" => args.postgres = Some(value()?),
            "--mysql" => args.mysql = Some(value()?),
            "--mysql-process" => args.mysql_process = value()?,
            "--scale" => {
                let v = value()?;
                args.scale = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 100.0)
                    .ok_or_else(|| {
                        format!("--scale must be a number above 0, at most 100, not {v:?}")
                    })?;
            }
            "--help" | "-h" => return Err(String::new()),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    if args.postgres.is_none() && args.mysql.is_none() {
        return Err("name a server: --postgres URL and/or --mysql URL".to_owned());
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("driver-bench: {message}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(async {
        if let Some(url) = &args.postgres {
            postgres(url, args.scale).await?;
        }
        if let Some(url) = &args.mysql {
            mysql(url, &args.mysql_process, args.scale).await?;
        }
        Ok::<(), BoxError>(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driver-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
