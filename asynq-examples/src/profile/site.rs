//! The generated profile site: its rows (the same on every backend), and its SQLite file.

use std::path::Path;

use asynq_sources::SqlError;

use crate::sqlite::Db;
use crate::sqlite::rusqlite::{self, Connection, OptionalExtension as _};

const TOPICS: [&str; 6] = [
    "databases",
    "distributed systems",
    "Rust",
    "compilers",
    "gardening",
    "the history of Byzantium",
];

/// The deterministic site of `users` users: user `u` has `u % 11` followers' worth of follow
/// edges pointing at it from others, five answers on average, and a bio about one of a few
/// topics. Rows are made one at a time, so a site of any size is written in bounded memory.
#[derive(Clone, Copy, Debug)]
pub(super) struct Site {
    /// Users, at least 1.
    pub(super) users: i64,
}

impl Site {
    pub(super) fn new(users: i64) -> Site {
        Site {
            users: users.max(1),
        }
    }

    /// Questions in the site.
    pub(super) fn questions(self) -> i64 {
        (self.users / 2).max(1)
    }

    /// Answers in the site.
    pub(super) fn answers(self) -> i64 {
        5 * self.users
    }

    /// User `u`'s row: id, name, photo, bio.
    pub(super) fn user(self, u: i64) -> (i64, String, String, String) {
        let topic = TOPICS[(u as usize) % TOPICS.len()];
        let bio = format!(
            "Writes about {topic}. Member since {}; {} answers and counting, most of them long.",
            2010 + u % 15,
            5 + u % 7
        );
        (u, format!("User {u}"), format!("/img/{u}.png"), bio)
    }

    /// The users following user `u`, each once.
    pub(super) fn followers(self, u: i64) -> Vec<i64> {
        let mut followers = Vec::new();
        for k in 1..=(u % 11) {
            let follower = (u + k * 37) % self.users;
            if follower != u && !followers.contains(&follower) {
                followers.push(follower);
            }
        }
        followers
    }

    /// Question `q`'s row: id, title.
    pub(super) fn question(self, q: i64) -> (i64, String) {
        let topic = TOPICS[(q as usize) % TOPICS.len()];
        (q, format!("Question {q}: where to start with {topic}?"))
    }

    /// Answer `a`'s row: id, question, author, body, created.
    pub(super) fn answer(self, a: i64) -> (i64, i64, i64, String, i64) {
        let n = self.users;
        let (q, author) = ((a * 17 + a / n * 7) % self.questions(), (a * 31 + 7) % n);
        (a, q, author, format!("Answer {a}: start small."), a)
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS asynq_profile_users (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo TEXT NOT NULL, bio TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS asynq_profile_follows (
    follower INTEGER NOT NULL, followee INTEGER NOT NULL,
    PRIMARY KEY (follower, followee)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS asynq_profile_follows_by_followee ON asynq_profile_follows (followee);
CREATE VIEW IF NOT EXISTS asynq_profile_follower_counts AS
    SELECT followee, COUNT(*) AS followers FROM asynq_profile_follows GROUP BY followee;
CREATE TABLE IF NOT EXISTS asynq_profile_questions (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS asynq_profile_answers (
    id INTEGER PRIMARY KEY, question INTEGER NOT NULL, author INTEGER NOT NULL,
    body TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS asynq_profile_answers_by_author
    ON asynq_profile_answers (author, created);
CREATE VIEW IF NOT EXISTS asynq_profile_recent_answers AS
    SELECT author, id, recency FROM (
        SELECT author, id,
            ROW_NUMBER() OVER (PARTITION BY author ORDER BY created DESC) AS recency
        FROM asynq_profile_answers)
    WHERE recency <= 3;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Create the schema in `db` and fill it with the site of `users` users (when it does not
/// hold that site already). Returns whether it wrote data.
///
/// # Examples
///
/// ```
/// use asynq_examples::{profile, sqlite::Db};
///
/// let db = Db::open_in_memory()?;
/// assert!(profile::populate(&db, 50)?);
/// assert!(!profile::populate(&db, 50)?); // already there
/// let rt = profile::runtime(&db);
/// let html = rt.run(profile::render_profile(7))?;
/// assert!(html.contains("<h1>User 7</h1>"));
/// assert_eq!(rt.last_stats().rounds, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn populate(db: &Db, users: i64) -> Result<bool, SqlError> {
    db.with_conn(|c| fill(c, users))
}

/// [`populate`] over one connection.
fn fill(c: &mut Connection, users: i64) -> rusqlite::Result<bool> {
    let tag = super::tag(users);
    c.execute_batch(SCHEMA)?;
    let held: Option<String> = c
        .query_row("SELECT value FROM meta WHERE name = 'dataset'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if held.as_deref() == Some(tag.as_str()) {
        return Ok(false);
    }
    let tx = c.transaction()?;
    tx.execute_batch(
        "DELETE FROM asynq_profile_users; DELETE FROM asynq_profile_follows;
         DELETE FROM asynq_profile_questions; DELETE FROM asynq_profile_answers;",
    )?;
    let site = Site::new(users);
    {
        let mut user = tx.prepare("INSERT INTO asynq_profile_users VALUES (?1, ?2, ?3, ?4)")?;
        let mut follow = tx.prepare("INSERT INTO asynq_profile_follows VALUES (?1, ?2)")?;
        for u in 0..site.users {
            user.execute(site.user(u))?;
            for follower in site.followers(u) {
                follow.execute((follower, u))?;
            }
        }
        let mut question = tx.prepare("INSERT INTO asynq_profile_questions VALUES (?1, ?2)")?;
        for q in 0..site.questions() {
            question.execute(site.question(q))?;
        }
        let mut answer =
            tx.prepare("INSERT INTO asynq_profile_answers VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for a in 0..site.answers() {
            answer.execute(site.answer(a))?;
        }
    }
    tx.execute("INSERT OR REPLACE INTO meta VALUES ('dataset', ?1)", [&tag])?;
    tx.commit()?;
    Ok(true)
}

/// How a profile site's file made by [`open`] is known (see [`crate::sqlite::open_owned`]).
pub fn mark(users: i64) -> crate::sqlite::Mark {
    crate::sqlite::Mark {
        user_version: 2001,
        tag: super::tag(users),
    }
}

/// Open the profile site at `path`, made and filled by [`populate`] on first use (or when it
/// holds another number of users) through [`crate::sqlite::open_owned`]: built atomically,
/// and a file this crate did not make is refused and left untouched. Returns the database and
/// whether it was built now.
pub fn open(path: impl AsRef<Path>, users: i64) -> Result<(Db, bool), crate::sqlite::OpenError> {
    crate::sqlite::open_owned(path.as_ref(), &mark(users), |c| fill(c, users).map(drop))
}
