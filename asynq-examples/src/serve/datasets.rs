//! The data sets a server holds: the profile site, and one FEED-1 data set per page size, at
//! most [`Config::max_feed_sizes`] of them (the least recently used one makes room). Each is
//! watched for damage: a file that shrank, was replaced or removed, or whose queries found it
//! corrupt, is rebuilt (a file of ours, known by its identity) or refused (another's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use asynq_core::Runtime;
use axum::http::StatusCode;
use tokio::sync::OnceCell;

use super::{App, Config, Failure};
use crate::async_kv::ReadThrough;
use crate::feed::Params;
use crate::profile;
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

/// An open data set: its runtime, its database, and the file it was opened from.
#[derive(Debug)]
pub(super) struct DataSet {
    pub(super) rt: Arc<Runtime>,
    pub(super) db: Db,
    path: PathBuf,
    stamp: Option<Stamp>,
}

impl DataSet {
    /// Whether its file is no longer what was opened: gone, replaced, shorter, or found
    /// corrupt by a query. (Writes in place that keep the size are the data's owner's
    /// business: such a row fails its own requests.)
    pub(super) fn damaged(&self) -> bool {
        if self.db.is_broken() {
            return true;
        }
        match (self.stamp, Stamp::of(&self.path)) {
            (Some(then), Some(now)) => then.id != now.id || now.len < then.len,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Remove its file if it is still the one this data set opened (ours, so damaged ours),
    /// so that the next open builds it anew.
    fn remove_damaged_file(&self) {
        if let (Some(then), Some(now)) = (self.stamp, Stamp::of(&self.path))
            && then.id == now.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
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
    pub(super) fn open(config: &Config) -> Result<Profile, crate::sqlite::OpenError> {
        let set = Profile::build(&config.db, config.users, config.eager)?;
        Ok(Profile {
            path: config.db.clone(),
            users: config.users,
            eager: config.eager,
            current: Mutex::new(Arc::new(set)),
        })
    }

    fn build(path: &Path, users: i64, eager: bool) -> Result<DataSet, crate::sqlite::OpenError> {
        let (db, _) = profile::open(path, users)?;
        Ok(DataSet {
            rt: Arc::new(profile::runtime(&db).eager_resume(eager)),
            db,
            path: path.to_path_buf(),
            stamp: Stamp::of(path),
        })
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
    fn slot(&self, p: Params) -> Result<Slot, Failure> {
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
                // Requests still rendering from it keep its connection (and the file's data)
                // until they finish; the file is removed now, if it is ours.
                let _ = crate::sqlite::remove_owned(&set.path);
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
            let slot = self.slot(p)?;
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

    /// Forget `set` when its run failed because its file is damaged: the next request
    /// rebuilds it. Returns whether it did.
    pub(super) fn forget_if_damaged(&self, app: &App, p: Params, set: &Arc<DataSet>) -> bool {
        if !set.damaged() {
            return false;
        }
        self.discard(app, p, set);
        true
    }

    /// Forget damaged `set` and remove its file (if it is still the one opened), so that the
    /// next use rebuilds it.
    fn discard(&self, app: &App, p: Params, set: &Arc<DataSet>) {
        self.forget(p, set);
        set.remove_damaged_file();
        app.rebuilt.fetch_add(1, Ordering::Relaxed);
        eprintln!("server: {} was damaged; rebuilding it", set.path.display());
    }
}

/// Open (making it if needed) the FEED-1 data set of size `p`, on the blocking pool.
async fn open_feed(app: &App, p: Params) -> Result<Arc<DataSet>, Failure> {
    let path = app.config.feed_db(p);
    let file = path.clone();
    let made = tokio::task::spawn_blocking(move || crate::sqlite::open_feed(&file, p))
        .await
        .map_err(|e| internal(format!("cannot open the FEED-1 data set: {e}")))?;
    let (store, _) =
        made.map_err(|e| internal(format!("cannot open the FEED-1 data set: {}", chain(&e))))?;
    let db = store.sqlite_db().expect("an SQLite store").clone();
    let mut source = ReadThrough::new(store);
    if let Some(mc) = &app.cache {
        let prefix = format!("feed1-q{}-a{}:", p.questions, p.answers);
        source = source.with_cache(mc.clone(), prefix);
    }
    let rt = Runtime::new()
        .with_source(source)
        .eager_resume(app.config.eager);
    Ok(Arc::new(DataSet {
        rt: Arc::new(rt),
        db,
        stamp: Stamp::of(&path),
        path,
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
