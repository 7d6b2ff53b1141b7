//! `render_profile(uid)` of Quora's asynq talk, over a schema of users, follows, questions and
//! answers in SQLite, PostgreSQL or MySQL/MariaDB.
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
//!
//! The site is generated (deterministic for a number of users) into an SQLite file of its own
//! ([`open`]), or into a PostgreSQL or MySQL database ([`servers`]); the tables and the two
//! views (`asynq_profile_follower_counts`, `asynq_profile_recent_answers`) have the same names
//! and the same rows everywhere, so a page renders to the same bytes, in the same queries, on
//! each. [`runtime`] takes the database as a [`SiteDb`] (or an `&` of any backend's `Db`).

use std::fmt;
use std::time::Duration;

use asynq_core::{DataSource as _, Error, Runtime, asynq};

pub mod servers;
mod site;
mod tables;

pub use site::{mark, open, populate};
pub use tables::{
    Answer, AnswerTable, Answers, AnyGroups, AnyRows, FollowerCountTable, FollowerCounts, OnAny,
    PREFIX, QuestionTable, Questions, RecentAnswerTable, RecentAnswers, SiteDb, User, UserTable,
    Users,
};

/// The tag of the site of `users` users: the row that says which site a database holds.
/// (4: the tables and views are named `asynq_profile_*`; older files are rebuilt.)
pub fn tag(users: i64) -> String {
    format!("profile-4 users={users}")
}

/// A runtime with the five sources of the profile page over `db` (an SQLite, PostgreSQL or
/// MySQL `Db`, or a [`SiteDb`]).
pub fn runtime(db: impl Into<SiteDb>) -> Runtime {
    runtime_with_latency(db, Duration::ZERO)
}

/// A runtime with the five sources of the profile page over `db`, each query delayed by
/// `latency` (as a database farther away would take).
pub fn runtime_with_latency(db: impl Into<SiteDb>, latency: Duration) -> Runtime {
    tables::runtime_on(&db.into(), latency)
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
