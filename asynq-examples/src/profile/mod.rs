//! `render_profile(uid)` of Quora's asynq talk, over an SQLite schema of users, follows, questions
//! and answers.
//!
//! ```text
//! render_profile(uid) = name, photo, short bio, follow button, recent answers, together
//! render_name / render_photo / render_short_bio   each load the user's row (one key)
//! render_follow_button                            loads the user's follower count
//! render_recent_answers                           loads the user's 3 latest answer ids, then
//!   render_answer(aid)                            each answer's row, then its question's title
//! ```
//!
//! Each function fetches only what it shows, as if sequential; the runtime coalesces the
//! three loads of the user's row into one key and batches everything else by round. One
//! profile takes 3 rounds and 5 queries (users, follower counts, answer ids; answers;
//! questions), and so do any number of profiles rendered together.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_sources::sqlite::{self, FromSqliteRow};
use asynq_sources::{SqlError, Table};

use crate::delayed::Delayed;
use crate::sqlite::Db;
use crate::sqlite::rusqlite::{self, Connection, OptionalExtension as _};

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Display name.
    pub name: String,
    /// Photo URL.
    pub photo: String,
    /// Free text about the user.
    pub bio: String,
}

impl FromSqliteRow for User {
    fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
        Ok(User {
            name: row.get("name")?,
            photo: row.get("photo")?,
            bio: row.get("bio")?,
        })
    }
}

/// A row of `answers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The question answered.
    pub question: i64,
    /// The answer's text.
    pub body: String,
}

impl FromSqliteRow for Answer {
    fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Answer> {
        Ok(Answer {
            question: row.get("question")?,
            body: row.get("body")?,
        })
    }
}

/// Users by id.
#[derive(Debug)]
pub struct UserTable;

impl Table for UserTable {
    type Key = i64;
    type Row = User;
    const NAME: &'static str = "users";
    const TABLE: &'static str = "users";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["name", "photo", "bio"];
}

/// Follower counts by user id (no row for a user nobody follows): the view
/// `follower_counts`, a `GROUP BY` of `follows` (SQLite pushes the key list into it).
#[derive(Debug)]
pub struct FollowerCountTable;

impl Table for FollowerCountTable {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "follower_counts";
    const TABLE: &'static str = "follower_counts";
    const KEY: &'static str = "followee";
    const COLUMNS: &'static [&'static str] = &["followers"];
}

/// The ids of a user's 3 latest answers, newest first: the view `recent_answers`, a window over
/// `answers` partitioned by author (SQLite pushes the key list into it).
#[derive(Debug)]
pub struct RecentAnswerTable;

impl Table for RecentAnswerTable {
    type Key = i64;
    type Row = i64;
    const NAME: &'static str = "recent_answers";
    const TABLE: &'static str = "recent_answers";
    const KEY: &'static str = "author";
    const COLUMNS: &'static [&'static str] = &["id"];
    const ORDER_BY: &'static [&'static str] = &["rank"];
}

/// Answers by id.
#[derive(Debug)]
pub struct AnswerTable;

impl Table for AnswerTable {
    type Key = i64;
    type Row = Answer;
    const NAME: &'static str = "answers";
    const TABLE: &'static str = "answers";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["question", "body"];
}

/// Question titles by id.
#[derive(Debug)]
pub struct QuestionTable;

impl Table for QuestionTable {
    type Key = i64;
    type Row = String;
    const NAME: &'static str = "questions";
    const TABLE: &'static str = "questions";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["title"];
}

/// The source of users' rows.
pub type Users = Delayed<sqlite::Rows<UserTable>>;
/// The source of follower counts.
pub type FollowerCounts = Delayed<sqlite::Rows<FollowerCountTable>>;
/// The source of users' latest answer ids.
pub type RecentAnswers = Delayed<sqlite::Groups<RecentAnswerTable>>;
/// The source of answers' rows.
pub type Answers = Delayed<sqlite::Rows<AnswerTable>>;
/// The source of question titles.
pub type Questions = Delayed<sqlite::Rows<QuestionTable>>;

/// A runtime with the five sources of the profile page over `db`.
pub fn runtime(db: &Db) -> Runtime {
    runtime_with_latency(db, Duration::ZERO)
}

/// A runtime with the five sources of the profile page over `db`, each query delayed by
/// `latency` (as a database farther away would take).
pub fn runtime_with_latency(db: &Db, latency: Duration) -> Runtime {
    /// The table names are this module's constants, checked by the tests.
    const VALID: &str = "the profile tables' names are valid";
    let users = sqlite::Rows::<UserTable>::new(db.clone()).expect(VALID);
    let followers = sqlite::Rows::<FollowerCountTable>::new(db.clone()).expect(VALID);
    let recent = sqlite::Groups::<RecentAnswerTable>::new(db.clone()).expect(VALID);
    let answers = sqlite::Rows::<AnswerTable>::new(db.clone()).expect(VALID);
    let questions = sqlite::Rows::<QuestionTable>::new(db.clone()).expect(VALID);
    Runtime::new()
        .with_source(Delayed::new(users, latency))
        .with_source(Delayed::new(followers, latency))
        .with_source(Delayed::new(recent, latency))
        .with_source(Delayed::new(answers, latency))
        .with_source(Delayed::new(questions, latency))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo TEXT NOT NULL, bio TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS follows (
    follower INTEGER NOT NULL, followee INTEGER NOT NULL,
    PRIMARY KEY (follower, followee)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follows_by_followee ON follows (followee);
CREATE VIEW IF NOT EXISTS follower_counts AS
    SELECT followee, COUNT(*) AS followers FROM follows GROUP BY followee;
CREATE TABLE IF NOT EXISTS questions (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY, question INTEGER NOT NULL, author INTEGER NOT NULL,
    body TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS answers_by_author ON answers (author, created);
CREATE VIEW IF NOT EXISTS recent_answers AS
    SELECT author, id, rank FROM (
        SELECT author, id, ROW_NUMBER() OVER (PARTITION BY author ORDER BY created DESC) AS rank
        FROM answers)
    WHERE rank <= 3;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

const TOPICS: [&str; 6] = [
    "databases",
    "distributed systems",
    "Rust",
    "compilers",
    "gardening",
    "the history of Byzantium",
];

/// Create the schema in `db` and fill it with a deterministic site of `users` users (when it
/// does not hold that site already). Returns whether it wrote data.
///
/// User `u` has `u % 11` followers' worth of follow edges pointing at it from others, five
/// answers on average, and a bio about one of a few topics.
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
    let tag = mark(users).tag;
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
        "DELETE FROM users; DELETE FROM follows; DELETE FROM questions; DELETE FROM answers;",
    )?;
    let n = users.max(1);
    let questions = (n / 2).max(1);
    {
        let mut user = tx.prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4)")?;
        let mut follow = tx.prepare("INSERT OR IGNORE INTO follows VALUES (?1, ?2)")?;
        for u in 0..n {
            let topic = TOPICS[(u as usize) % TOPICS.len()];
            let bio = format!(
                "Writes about {topic}. Member since {}; {} answers and counting, most of \
                     them long.",
                2010 + u % 15,
                5 + u % 7
            );
            user.execute((u, format!("User {u}"), format!("/img/{u}.png"), bio))?;
            for k in 1..=(u % 11) {
                let follower = (u + k * 37) % n;
                if follower != u {
                    follow.execute((follower, u))?;
                }
            }
        }
        let mut question = tx.prepare("INSERT INTO questions VALUES (?1, ?2)")?;
        for q in 0..questions {
            let topic = TOPICS[(q as usize) % TOPICS.len()];
            question.execute((q, format!("Question {q}: where to start with {topic}?")))?;
        }
        let mut answer = tx.prepare("INSERT INTO answers VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for a in 0..5 * n {
            let (q, author) = ((a * 17 + a / n * 7) % questions, (a * 31 + 7) % n);
            answer.execute((a, q, author, format!("Answer {a}: start small."), a))?;
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
        // 3: the views `follower_counts` and `recent_answers`; older files are rebuilt.
        tag: format!("profile-3 users={users}"),
    }
}

/// Open the profile site at `path`, made and filled by [`populate`] on first use (or when it
/// holds another number of users) through [`crate::sqlite::open_owned`]: built atomically,
/// and a file this crate did not make is refused and left untouched. Returns the database and
/// whether it was built now.
pub fn open(path: impl AsRef<Path>, users: i64) -> Result<(Db, bool), crate::sqlite::OpenError> {
    crate::sqlite::open_owned(path.as_ref(), &mark(users), |c| fill(c, users).map(drop))
}

/// `text` with `&`, `<`, `>` and `"` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// What can fail while rendering a profile: a fetch, or a row the page needs that is absent.
///
/// The page's own error type, as the crate docs of `asynq_core` ("Errors") show: it converts
/// from [`asynq_core::Error`], so `?` works on fetches, and a caller tells an absent user (a
/// 404 for a server) from a failed store by matching it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ProfileError {
    /// A fetch failed: a query, or a key the store did not answer.
    Fetch(Error),
    /// No user has this id.
    NoSuchUser(i64),
    /// A user's recent answer is not in `answers`: the data is inconsistent.
    NoSuchAnswer(i64),
}

impl From<Error> for ProfileError {
    fn from(error: Error) -> Self {
        ProfileError::Fetch(error)
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the fetch error's message, and below it its `source()`.
            ProfileError::Fetch(error) => fmt::Display::fmt(error, f),
            ProfileError::NoSuchUser(uid) => write!(f, "no such user: {uid}"),
            ProfileError::NoSuchAnswer(aid) => write!(f, "no such answer: {aid}"),
        }
    }
}

impl std::error::Error for ProfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProfileError::Fetch(error) => error.source(),
            ProfileError::NoSuchUser(_) | ProfileError::NoSuchAnswer(_) => None,
        }
    }
}

/// The user's row; an absent user is an error naming it.
#[asynq]
fn user(uid: i64) -> Result<User, ProfileError> {
    Users::load(uid).await?.ok_or(ProfileError::NoSuchUser(uid))
}

/// The user's name as a heading.
#[asynq]
pub fn render_name(uid: i64) -> Result<String, ProfileError> {
    Ok(format!("<h1>{}</h1>", escape(&user(uid).await?.name)))
}

/// The user's photo.
#[asynq]
pub fn render_photo(uid: i64) -> Result<String, ProfileError> {
    Ok(format!("<img src=\"{}\">", escape(&user(uid).await?.photo)))
}

/// The first sentence of the user's bio, at most 60 characters.
#[asynq]
pub fn render_short_bio(uid: i64) -> Result<String, ProfileError> {
    let bio = user(uid).await?.bio;
    let first = bio.split_inclusive(". ").next().unwrap_or("").trim_end();
    let short: String = first.chars().take(60).collect();
    Ok(format!("<p>{}</p>", escape(&short)))
}

/// A follow button with the user's follower count.
#[asynq]
pub fn render_follow_button(uid: i64) -> Result<String, ProfileError> {
    let followers = FollowerCounts::load(uid).await?.unwrap_or(0);
    let noun = if followers == 1 {
        "follower"
    } else {
        "followers"
    };
    Ok(format!(
        "<button data-uid=\"{uid}\">Follow · {followers} {noun}</button>"
    ))
}

/// One answer: its question's title and its text.
#[asynq]
pub fn render_answer(aid: i64) -> Result<String, ProfileError> {
    let answer = Answers::load(aid)
        .await?
        .ok_or(ProfileError::NoSuchAnswer(aid))?;
    let title = Questions::load(answer.question).await?.unwrap_or_default();
    Ok(format!(
        "<li><a href=\"/q/{}\">{}</a> {}</li>",
        answer.question,
        escape(&title),
        escape(&answer.body)
    ))
}

/// The user's latest answers.
#[asynq]
pub fn render_recent_answers(uid: i64) -> Result<String, ProfileError> {
    let ids = RecentAnswers::load(uid).await?;
    let items = ids.into_iter().map(render_answer).collect::<Vec<_>>().await;
    let mut out = String::from("<ul>");
    for item in items {
        out.push_str(&item?);
    }
    out.push_str("</ul>");
    Ok(out)
}

/// The whole profile: every part requested together.
#[asynq]
pub fn render_profile(uid: i64) -> Result<String, ProfileError> {
    let (photo, name, bio, follow_button, answers) = (
        render_photo(uid),
        render_name(uid),
        render_short_bio(uid),
        render_follow_button(uid),
        render_recent_answers(uid),
    )
        .await;
    Ok(format!(
        "<div class=\"profile\">{}{}{}{}{}</div>",
        photo?, name?, bio?, follow_button?, answers?
    ))
}

/// Several profiles on one page, rendered together (their queries shared).
#[asynq]
pub fn render_profiles(uids: Vec<i64>) -> Result<Vec<String>, ProfileError> {
    uids.into_iter()
        .map(render_profile)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
