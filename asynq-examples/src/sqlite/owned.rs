//! Database files this crate makes for itself: marked as its own, built atomically, and never
//! confused with a file it did not make.
//!
//! [`open_owned`] opens the data set a program needs (the FEED-1 table, the profile site) at a
//! path, making it when there is none. A file made here carries SQLite's `application_id`
//! [`APPLICATION_ID`], a `user_version` naming the kind of data set ([`Mark::user_version`]),
//! and a tag in its `meta` table naming the exact data set ([`Mark::tag`]). When the path holds
//! anything else (another program's database, a text file, an empty file) it is refused with
//! [`OpenError::NotOurs`] and left byte for byte as it was: the check reads the file's first
//! 100 bytes, the SQLite header, without opening it with SQLite (which could roll back a hot
//! journal and so change it).
//!
//! A new file is built under a temporary name in the same directory, synced, and only then
//! linked to its path (never over a file that appeared meanwhile), so a process killed at any
//! moment leaves either no file at the path or a complete one. A file of ours holding another
//! data set of the same kind (another FEED-1 size) is rebuilt the same way and renamed over
//! the old one. Temporary files left by killed processes are removed by the next build.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::rusqlite::{self, Connection, OpenFlags, OptionalExtension as _};

use super::Db;

/// The `application_id` of every SQLite file this crate makes: `asyq` in ASCII.
pub const APPLICATION_ID: i32 = 0x6173_7971;

/// How [`open_owned`] knows a file as the one it wants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mark {
    /// The kind of data set and its layout, stored as the file's `user_version`: a file of
    /// ours with another value is another kind of data set and is refused, not replaced.
    pub user_version: i32,
    /// The exact data set (`FEED-1 Q=10 A=5`), in the `meta` table's `dataset` row: a file of
    /// the same kind with another tag is rebuilt.
    pub tag: String,
}

/// Why [`open_owned`] gave no database.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The path holds a file this crate did not make, or one of another kind: nothing was
    /// changed.
    NotOurs {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        found: String,
    },
    /// A file operation failed.
    Io {
        /// What was being done, and to which file.
        doing: String,
        /// The failure.
        source: io::Error,
    },
    /// SQLite failed while reading or building the file, or opening its pool.
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The failure: a [`rusqlite::Error`] or an [`asynq_sources::SqlError`].
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotOurs { path, found } => write!(
                f,
                "{} was not made by this program ({found}), so it is left as it is; give \
                 another path, or remove the file yourself if it is no longer needed",
                path.display()
            ),
            OpenError::Io { doing, .. } => write!(f, "cannot {doing}"),
            OpenError::Sqlite { path, .. } => write!(f, "SQLite failed on {}", path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::NotOurs { .. } => None,
            OpenError::Io { source, .. } => Some(source),
            OpenError::Sqlite { source, .. } => Some(&**source),
        }
    }
}

fn io_error(doing: String) -> impl FnOnce(io::Error) -> OpenError {
    move |source| OpenError::Io { doing, source }
}

fn sqlite_error<E>(path: &Path) -> impl FnOnce(E) -> OpenError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// What the path holds.
enum Found {
    Nothing,
    /// Ours, the right kind, with the wanted tag.
    Current,
    /// Ours, the right kind, another data set (or unreadable past its header).
    Stale,
}

/// The SQLite header's first 16 bytes.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` holds a file this crate made (by its header), without changing it.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("not-ours-{}.txt", std::process::id()));
/// std::fs::write(&path, "hello")?;
/// assert!(!asynq_examples::sqlite::is_owned(&path));
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_owned(path: &Path) -> bool {
    matches!(header(path), Ok(Some((APPLICATION_ID, _))))
}

/// The `application_id` and `user_version` of the SQLite file at `path`, `None` when there
/// is no file; an error saying what the file is when it is not an SQLite database.
fn header(path: &Path) -> Result<Option<(i32, i32)>, OpenError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("read {}", path.display()))(e)),
    };
    let not_ours = |found: String| OpenError::NotOurs {
        path: path.to_path_buf(),
        found,
    };
    let meta = file
        .metadata()
        .map_err(io_error(format!("read {}", path.display())))?;
    if !meta.is_file() {
        return Err(not_ours("not a regular file".into()));
    }
    let mut head = Vec::with_capacity(100);
    file.take(100)
        .read_to_end(&mut head)
        .map_err(io_error(format!("read {}", path.display())))?;
    if head.len() < 100 || !head.starts_with(MAGIC) {
        return Err(not_ours(format!(
            "{} bytes, not an SQLite database",
            meta.len()
        )));
    }
    let word = |at: usize| i32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    Ok(Some((word(68), word(60))))
}

/// What `path` holds, judged without changing it.
fn inspect(path: &Path, mark: &Mark) -> Result<Found, OpenError> {
    let Some((application_id, user_version)) = header(path)? else {
        return Ok(Found::Nothing);
    };
    let not_ours = |found: String| OpenError::NotOurs {
        path: path.to_path_buf(),
        found,
    };
    if application_id != APPLICATION_ID {
        return Err(not_ours(format!(
            "an SQLite database with application_id {application_id:#x}, not {APPLICATION_ID:#x}"
        )));
    }
    if user_version != mark.user_version {
        return Err(not_ours(format!(
            "a data set of another kind: user_version {user_version}, not {}",
            mark.user_version
        )));
    }
    // Ours: read its tag. A file of ours that SQLite cannot read is rebuilt.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let tag = Connection::open_with_flags(path, flags).and_then(|c| {
        c.query_row("SELECT value FROM meta WHERE name = 'dataset'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    });
    Ok(match tag {
        Ok(Some(tag)) if tag == mark.tag => Found::Current,
        _ => Found::Stale,
    })
}

/// Open the data set marked `mark` at `path`, building it with `build` when the path holds
/// none (or an older data set of ours of the same kind). Returns the database and whether it
/// was built now.
///
/// `build` fills a fresh database (in a temporary file, over one connection); the marks are
/// written around it.
/// Anything at `path` that this crate did not make is refused with [`OpenError::NotOurs`] and
/// left untouched.
///
/// # Examples
///
/// ```
/// use asynq_examples::sqlite::{Mark, OpenError, open_owned};
///
/// let dir = std::env::temp_dir().join(format!("owned-doc-{}", std::process::id()));
/// let path = dir.join("numbers.sqlite");
/// let mark = Mark { user_version: 7, tag: "numbers 1..3".into() };
/// let build = |c: &mut asynq_examples::sqlite::rusqlite::Connection| {
///     c.execute_batch("CREATE TABLE n (x); INSERT INTO n VALUES (1), (2), (3);")
/// };
/// let (_, built) = open_owned(&path, &mark, build)?;
/// assert!(built);
/// let (_, built) = open_owned(&path, &mark, build)?;
/// assert!(!built); // reused
///
/// // Someone else's file is refused, and left as it was.
/// let theirs = dir.join("theirs.sqlite");
/// std::fs::write(&theirs, "my notes")?;
/// let err = open_owned(&theirs, &mark, build).unwrap_err();
/// assert!(matches!(err, OpenError::NotOurs { .. }));
/// assert_eq!(std::fs::read(&theirs)?, b"my notes");
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_owned(
    path: &Path,
    mark: &Mark,
    build: impl FnOnce(&mut Connection) -> rusqlite::Result<()>,
) -> Result<(Db, bool), OpenError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_error(format!("create {}", dir.display())))?;
    let open = |path: &Path| Db::open(path).map_err(sqlite_error(path));
    let replace = match inspect(path, mark)? {
        Found::Current => return Ok((open(path)?, false)),
        Found::Nothing => false,
        Found::Stale => true,
    };
    let temp = Temp::build(dir, path, mark, build)?;
    if replace {
        temp.rename_over(path)?;
    } else if !temp.link_to(path)? {
        // Another process made the file meanwhile: take it if it is the one we want.
        return match inspect(path, mark)? {
            Found::Current => Ok((open(path)?, false)),
            _ => Err(OpenError::NotOurs {
                path: path.to_path_buf(),
                found: "a file made by another process while this one was building".into(),
            }),
        };
    }
    Ok((open(path)?, true))
}

/// Remove the file at `path` if this crate made it (by its header); returns whether it did.
/// A file that is not ours is left untouched.
pub fn remove_owned(path: &Path) -> Result<bool, OpenError> {
    match header(path) {
        Ok(Some((APPLICATION_ID, _))) => {
            std::fs::remove_file(path).map_err(io_error(format!("remove {}", path.display())))?;
            Ok(true)
        }
        Ok(_) | Err(OpenError::NotOurs { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A data set being built under a temporary name; removed on drop unless it was moved to its
/// path.
struct Temp {
    path: PathBuf,
    kept: bool,
}

/// Temporary files made by this process so far (part of their names).
static TEMPS: AtomicUsize = AtomicUsize::new(0);

impl Temp {
    /// `.<file name>.<pid>-<n>.tmp` beside `target`, filled by `build` and marked, then synced.
    fn build(
        dir: &Path,
        target: &Path,
        mark: &Mark,
        build: impl FnOnce(&mut Connection) -> rusqlite::Result<()>,
    ) -> Result<Temp, OpenError> {
        let name = target
            .file_name()
            .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
        remove_abandoned(dir, &name);
        let n = TEMPS.fetch_add(1, Ordering::Relaxed);
        let temp = Temp {
            path: dir.join(format!(".{name}.{}-{n}.tmp", std::process::id())),
            kept: false,
        };
        let _ = std::fs::remove_file(&temp.path);
        // One plain connection builds it: nothing else reads the file yet.
        let mut conn = Connection::open(&temp.path).map_err(sqlite_error(&temp.path))?;
        let fill = || {
            build(&mut conn)?;
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {};",
                mark.user_version
            ))?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('dataset', ?1)",
                [&mark.tag],
            )
            .map(drop)
        };
        fill().map_err(sqlite_error(&temp.path))?;
        conn.close().map_err(|(_, e)| sqlite_error(&temp.path)(e))?; // the file is complete
        File::open(&temp.path)
            .and_then(|f| f.sync_all())
            .map_err(io_error(format!("sync {}", temp.path.display())))?;
        Ok(temp)
    }

    /// Give the file the name `target` unless something holds that name; returns whether it
    /// did.
    fn link_to(self, target: &Path) -> Result<bool, OpenError> {
        match std::fs::hard_link(&self.path, target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            // A file system without hard links: rename, checking for a file just before.
            Err(_) if !target.exists() => return self.rename_over(target).map(|()| true),
            Err(e) => return Err(io_error(format!("create {}", target.display()))(e)),
        }
        sync_dir(target);
        Ok(true) // `self` drops: the temporary name goes, the file stays under `target`
    }

    /// Replace `target` (a file of ours) with this one.
    fn rename_over(mut self, target: &Path) -> Result<(), OpenError> {
        std::fs::rename(&self.path, target)
            .map_err(io_error(format!("replace {}", target.display())))?;
        self.kept = true;
        sync_dir(target);
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
        let mut journal = self.path.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}

/// Make a rename or link in `path`'s directory durable (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}

/// Remove temporary files for `name` in `dir` left by processes that no longer run (known
/// where `/proc` lists processes; elsewhere they stay).
fn remove_abandoned(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split(['-', '.']).next().unwrap_or("");
        let alive = Path::new("/proc").join(pid).exists();
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
