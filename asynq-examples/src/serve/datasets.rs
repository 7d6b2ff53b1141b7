//! The data sets a server holds: the profile site, and one FEED-1 data set per page size, at
//! most [`Config::max_feed_sizes`] of them (the least recently used one makes room).
//!
//! On SQLite each is a file, watched for damage: a file that shrank, was replaced or removed,
//! or whose queries found it corrupt, is rebuilt (a file of ours, known by its identity) or
//! refused (another's). On a database server ([`Config::backend`]) the profile site is in the
//! tables `asynq_profile_*` ([`crate::profile::servers`]) and each page size's data set under
//! a prefix of its own in `asynq_feed1_kv` ([`crate::sql_kv::servers`]); a data set whose run
//! failed is forgotten, so the next request checks it again (reloading it when rows went
//! missing), and an evicted one's rows are deleted once the last request using it is done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use asynq_core::Runtime;
use axum::http::StatusCode;
use tokio::sync::{OnceCell, OwnedMutexGuard};

use super::{App, Config, Failure};
use crate::async_kv::ReadThrough;
use crate::feed::Params;
use crate::profile::{self, SiteDb};
use crate::sql_kv::servers as kv_servers;
use crate::sqlite::Db;

/// What identifies a file as the one a data set opened, and its size then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    id: (u64, u64),
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Some(Stamp {
            id,
            len: meta.len(),
        })
    }
}

/// An open data set: its runtime, and the file it was opened from (on SQLite).
#[derive(Debug)]
pub(super) struct DataSet {
    pub(super) rt: Arc<Runtime>,
    file: Option<DataFile>,
    /// Set when a server's data set is evicted: its rows are deleted when it is dropped.
    evicted: Mutex<Option<Evicted>>,
}

/// A data set's SQLite file.
#[derive(Debug)]
struct DataFile {
    db: Db,
    path: PathBuf,
    stamp: Option<Stamp>,
}

impl DataSet {
    /// Its SQLite database (of a data set on file).
    pub(super) fn sqlite_db(&self) -> &Db {
        &self.file.as_ref().expect("a data set on file").db
    }

    fn on_file(rt: Runtime, db: Db, path: PathBuf) -> DataSet {
        let stamp = Stamp::of(&path);
        DataSet {
            rt: Arc::new(rt),
            file: Some(DataFile { db, path, stamp }),
            evicted: Mutex::new(None),
        }
    }

    fn on_server(rt: Runtime) -> DataSet {
        DataSet {
            rt: Arc::new(rt),
            file: None,
            evicted: Mutex::new(None),
        }
    }

    /// Whether its file is no longer what was opened: gone, replaced, shorter, or found
    /// corrupt by a query. (Writes in place that keep the size are the data's owner's
    /// business: such a row fails its own requests.) Never for a server's data set.
    pub(super) fn damaged(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        if file.db.is_broken() {
            return true;
        }
        match (file.stamp, Stamp::of(&file.path)) {
            (Some(then), Some(now)) => then.id != now.id || now.len < then.len,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Remove its file if it is still the one this data set opened (ours, so damaged ours),
    /// so that the next open builds it anew.
    fn remove_damaged_file(&self) {
        if let Some(file) = &self.file
            && let (Some(then), Some(now)) = (file.stamp, Stamp::of(&file.path))
            && then.id == now.id
        {
            let _ = std::fs::remove_file(&file.path);
        }
    }

    /// What it is, for messages: its file, or its place in the server.
    fn describe(&self) -> String {
        match &self.file {
            Some(file) => file.path.display().to_string(),
            None => "the data set".to_owned(),
        }
    }
}

/// The deletion of an evicted server data set's rows, done when it is dropped (when the last
/// request using the data set is done). Holds the lock that a new open of the same size
/// waits for, so that the deletion never removes the rows of the data set opened anew.
#[derive(Debug)]
struct Evicted {
    server: SiteDb,
    p: Params,
    done: Option<OwnedMutexGuard<()>>,
    tokio: tokio::runtime::Handle,
}

impl Drop for Evicted {
    fn drop(&mut self) {
        let (server, p, done) = (self.server.clone(), self.p, self.done.take());
        self.tokio.spawn(async move {
            let removed = match &server {
                SiteDb::Postgres(db) => kv_servers::remove_postgres(db, p).await,
                SiteDb::Mysql(db) => kv_servers::remove_mysql(db, p).await,
                SiteDb::Sqlite(_) => Ok(false),
            };
            if let Err(e) = removed {
                eprintln!(
                    "server: cannot delete the evicted FEED-1 data set Q={} A={}: {}",
                    p.questions,
                    p.answers,
                    chain(&e)
                );
            }
            drop(done);
        });
    }
}

/// The profile site, replaced when its file is damaged.
#[derive(Debug)]
pub(super) struct Profile {
    path: PathBuf,
    users: i64,
    eager: bool,
    current: Mutex<Arc<DataSet>>,
}

impl Profile {
    /// The profile site of `config`: in its SQLite file, or in `server` when there is one
    /// (loaded there now, blocking the calling thread, which must not be tokio's).
    pub(super) fn open(
        config: &Config,
        server: Option<&SiteDb>,
    ) -> Result<Profile, Box<dyn std::error::Error + Send + Sync>> {
        let set = match server {
            None => Profile::build(&config.db, config.users, config.eager)?,
            Some(server) => {
                let tokio = tokio::runtime::Handle::current();
                match server {
                    SiteDb::Postgres(db) => {
                        tokio.block_on(profile::servers::open_postgres(db, config.users))?
                    }
                    SiteDb::Mysql(db) => {
                        tokio.block_on(profile::servers::open_mysql(db, config.users))?
                    }
                    SiteDb::Sqlite(_) => unreachable!("SQLite is the file of `config.db`"),
                };
                let rt = profile::runtime(server).eager_resume(config.eager);
                DataSet::on_server(rt)
            }
        };
        Ok(Profile {
            path: config.db.clone(),
            users: config.users,
            eager: config.eager,
            current: Mutex::new(Arc::new(set)),
        })
    }

    fn build(path: &Path, users: i64, eager: bool) -> Result<DataSet, crate::sqlite::OpenError> {
        let (db, _) = profile::open(path, users)?;
        let rt = profile::runtime(&db).eager_resume(eager);
        Ok(DataSet::on_file(rt, db, path.to_path_buf()))
    }

    pub(super) fn current(&self) -> Arc<DataSet> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The data set to serve a request from: the current one, or, when its file was damaged,
    /// one rebuilt now (on the blocking pool).
    pub(super) async fn get(&self, app: &App) -> Result<Arc<DataSet>, Failure> {
        let set = self.current();
        if !set.damaged() {
            return Ok(set);
        }
        let (path, users, eager) = (self.path.clone(), self.users, self.eager);
        let stale = Arc::clone(&set);
        let built = tokio::task::spawn_blocking(move || {
            stale.remove_damaged_file();
            Profile::build(&path, users, eager)
        })
        .await
        .map_err(|e| internal(format!("rebuilding the profile site: {e}")))?
        .map_err(|e| internal(format!("rebuilding the profile site: {}", chain(&e))))?;
        app.rebuilt.fetch_add(1, Ordering::Relaxed);
        eprintln!("server: {} was damaged; rebuilt it", self.path.display());
        let built = Arc::new(built);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&built);
        Ok(built)
    }
}

/// A page size's data set, set once it is open.
type Slot = Arc<OnceCell<Arc<DataSet>>>;

/// The FEED-1 data sets, by page size, least recently used first out.
#[derive(Debug)]
pub(super) struct FeedSets {
    max: usize,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    by_size: HashMap<(u64, u64), (Slot, u64)>,
    /// On a server: the deletions of evicted data sets' rows, by size, each a lock held until
    /// it is done.
    removing: HashMap<(u64, u64), Arc<tokio::sync::Mutex<()>>>,
    /// A counter of uses: each slot keeps the value of its last use.
    clock: u64,
}

impl FeedSets {
    pub(super) fn new(max: usize) -> FeedSets {
        FeedSets {
            max,
            slots: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sizes held now.
    pub(super) fn sizes(&self) -> Vec<Params> {
        let slots = self.lock();
        let mut sizes: Vec<Params> = slots
            .by_size
            .iter()
            .filter(|(_, (slot, _))| slot.initialized())
            .map(|(&(questions, answers), _)| Params { questions, answers })
            .collect();
        sizes.sort_by_key(|p| (p.questions, p.answers));
        sizes
    }

    /// The slot of size `p`, made (evicting the least recently used open data set when all
    /// places are taken) if there is none.
    fn slot(&self, app: &App, p: Params) -> Result<Slot, Failure> {
        let mut slots = self.lock();
        slots.clock += 1;
        let now = slots.clock;
        let size = (p.questions, p.answers);
        if let Some((slot, used)) = slots.by_size.get_mut(&size) {
            *used = now;
            return Ok(Arc::clone(slot));
        }
        if slots.by_size.len() >= self.max {
            // Only open data sets are evicted: one being built is finished first.
            let oldest = slots
                .by_size
                .iter()
                .filter(|(_, (slot, _))| slot.initialized())
                .min_by_key(|(_, (_, used))| *used)
                .map(|(&size, _)| size);
            let Some(oldest) = oldest else {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "all {} data set places are being built; try again shortly",
                        self.max
                    ),
                ));
            };
            if let Some((slot, _)) = slots.by_size.remove(&oldest)
                && let Some(set) = slot.get()
            {
                match (&set.file, &app.server) {
                    // Requests still rendering from it keep its connection (and the file's
                    // data) until they finish; the file is removed now, if it is ours.
                    (Some(file), _) => {
                        let _ = crate::sqlite::remove_owned(&file.path);
                    }
                    // Its rows are deleted when the requests rendering from it are done.
                    (None, Some(server)) => {
                        let gate = Arc::new(tokio::sync::Mutex::new(()));
                        let done = Arc::clone(&gate).try_lock_owned().ok();
                        slots.removing.insert(oldest, gate);
                        let (questions, answers) = oldest;
                        *set.evicted.lock().unwrap_or_else(|e| e.into_inner()) = Some(Evicted {
                            server: server.clone(),
                            p: Params { questions, answers },
                            done,
                            tokio: tokio::runtime::Handle::current(),
                        });
                    }
                    (None, None) => {}
                }
            }
        }
        let slot = Slot::default();
        slots.by_size.insert(size, (Arc::clone(&slot), now));
        Ok(slot)
    }

    /// Forget size `p`'s data set if it is still `set` (it was found damaged).
    fn forget(&self, p: Params, set: &Arc<DataSet>) {
        let mut slots = self.lock();
        let size = (p.questions, p.answers);
        let same = slots
            .by_size
            .get(&size)
            .and_then(|(slot, _)| slot.get())
            .is_some_and(|held| Arc::ptr_eq(held, set));
        if same {
            slots.by_size.remove(&size);
        }
    }

    /// The data set of size `p`: held, made on first use, rebuilt when damaged.
    pub(super) async fn get(&self, app: &App, p: Params) -> Result<Arc<DataSet>, Failure> {
        for _ in 0..2 {
            let slot = self.slot(app, p)?;
            self.removed(p).await;
            let set = slot.get_or_try_init(|| open_feed(app, p)).await?;
            if !set.damaged() {
                return Ok(Arc::clone(set));
            }
            self.discard(app, p, set);
        }
        Err(internal(format!(
            "the FEED-1 data set Q={} A={} was damaged again as it was rebuilt",
            p.questions, p.answers
        )))
    }

    /// Wait until the rows of an evicted data set of size `p` are deleted (on a server), so
    /// that they are loaded anew after.
    async fn removed(&self, p: Params) {
        let size = (p.questions, p.answers);
        let gate = self.lock().removing.get(&size).cloned();
        if let Some(gate) = gate {
            drop(gate.lock().await);
            let mut slots = self.lock();
            if slots
                .removing
                .get(&size)
                .is_some_and(|held| Arc::ptr_eq(held, &gate))
            {
                slots.removing.remove(&size);
            }
        }
    }

    /// After a failed run of `set`: forget it when its file is damaged (the next request
    /// rebuilds it), or when it is a server's (the next request checks it, and reloads it
    /// when rows went missing). Returns what is done, for the failure's message.
    pub(super) fn forget_if_damaged(
        &self,
        app: &App,
        p: Params,
        set: &Arc<DataSet>,
    ) -> Option<&'static str> {
        if set.file.is_none() {
            self.forget(p, set);
            return Some(
                "the data set is checked, and reloaded if incomplete, for the next request",
            );
        }
        if !set.damaged() {
            return None;
        }
        self.discard(app, p, set);
        Some("the data set's file is damaged: it is rebuilt for the next request")
    }

    /// Forget damaged `set` and remove its file (if it is still the one opened), so that the
    /// next use rebuilds it.
    fn discard(&self, app: &App, p: Params, set: &Arc<DataSet>) {
        self.forget(p, set);
        set.remove_damaged_file();
        app.rebuilt.fetch_add(1, Ordering::Relaxed);
        eprintln!("server: {} was damaged; rebuilding it", set.describe());
    }
}

/// Open (making it if needed) the FEED-1 data set of size `p`: its file (on the blocking
/// pool), or its rows in the server.
async fn open_feed(app: &App, p: Params) -> Result<Arc<DataSet>, Failure> {
    let cannot = |e: &(dyn std::error::Error + 'static)| {
        internal(format!("cannot open the FEED-1 data set: {}", chain(e)))
    };
    let (store, file) = match &app.server {
        Some(SiteDb::Postgres(db)) => {
            let (store, _) = kv_servers::open_postgres(db, p)
                .await
                .map_err(|e| cannot(&e))?;
            (store, None)
        }
        Some(SiteDb::Mysql(db)) => {
            let (store, _) = kv_servers::open_mysql(db, p)
                .await
                .map_err(|e| cannot(&e))?;
            (store, None)
        }
        Some(SiteDb::Sqlite(_)) | None => {
            let path = app.config.feed_db(p);
            let file = path.clone();
            let made = tokio::task::spawn_blocking(move || crate::sqlite::open_feed(&file, p))
                .await
                .map_err(|e| cannot(&e))?;
            let (store, _) = made.map_err(|e| cannot(&e))?;
            let db = store.sqlite_db().expect("an SQLite store").clone();
            (store, Some((db, path)))
        }
    };
    let mut source = ReadThrough::new(store);
    if let Some(mc) = &app.cache {
        let prefix = format!("feed1-q{}-a{}:", p.questions, p.answers);
        source = source.with_cache(mc.clone(), prefix);
    }
    let rt = Runtime::new()
        .with_source(source)
        .eager_resume(app.config.eager);
    Ok(Arc::new(match file {
        Some((db, path)) => DataSet::on_file(rt, db, path),
        None => DataSet::on_server(rt),
    }))
}

fn internal(message: String) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// An error and its causes, `: `-separated.
pub(super) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}
