//! FEED-1: one page of a Q&A site, rendered by nested asynq functions (`docs/feed1.md`).
//!
//! `feed -> question -> answer -> user name`, each fetching only its own keys from a key-value
//! store, with siblings awaited together. The runtime turns it into the optimal 3 store calls.
//! [`hand_primed`] is the baseline a performance-minded engineer writes by hand (three
//! `get_multi` calls, then rendering), and [`naive`] makes one call per key.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::num::ParseIntError;

use asynq_core::{DataSource, Error, asynq};

use crate::kv::KvStore;
use crate::memory::MemoryStore;

/// The page's size: `questions` questions with `answers` answers each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Questions on the page (Q).
    pub questions: u64,
    /// Answers per question (A).
    pub answers: u64,
}

impl Params {
    /// Users in the data set: U = 10 Q.
    pub fn users(&self) -> u64 {
        10 * self.questions
    }
}

/// Every key and value of the data set, in a deterministic order.
///
/// # Examples
///
/// ```
/// use asynq_examples::feed::{dataset, Params};
///
/// let data = dataset(Params { questions: 1, answers: 2 });
/// assert!(data.contains(&("q:0:answers".to_string(), "0,1".to_string())));
/// assert_eq!(data.len(), 3 + 2 * 2 + 2 * 10);
/// ```
pub fn dataset(p: Params) -> Vec<(String, String)> {
    let (q_n, a_n, u_n) = (p.questions, p.answers, p.users());
    let mut data = Vec::with_capacity((3 * q_n + 2 * q_n * a_n + 2 * u_n) as usize);
    for q in 0..q_n {
        data.push((format!("q:{q}:title"), format!("Question {q}")));
        data.push((format!("q:{q}:author"), ((q * 7 + 3) % u_n).to_string()));
        let answers: Vec<String> = (0..a_n).map(|j| (q * a_n + j).to_string()).collect();
        data.push((format!("q:{q}:answers"), answers.join(",")));
    }
    for a in 0..q_n * a_n {
        data.push((format!("a:{a}:text"), format!("Answer {a}")));
        data.push((format!("a:{a}:author"), ((a * 13 + 5) % u_n).to_string()));
    }
    for u in 0..u_n {
        data.push((format!("u:{u}:name"), format!("User {u}")));
        data.push((format!("u:{u}:photo"), format!("/img/{u}.png")));
    }
    data
}

/// The in-memory store holding the data set.
pub fn memory_store(p: Params) -> MemoryStore {
    MemoryStore::from_pairs(dataset(p))
}

/// FNV-1a, 64 bits: the page's fingerprint in `docs/feed1.md`.
///
/// # Examples
///
/// ```
/// assert_eq!(asynq_examples::feed::fnv1a64(b""), 0xcbf29ce484222325);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What can fail while rendering FEED-1: a fetch, or a value the page reads as an id.
///
/// The page's own error type, as the crate docs of `asynq_core` ("Errors") show: it converts
/// from [`asynq_core::Error`], so `?` works on fetches and on the page's own parsing alike.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::feed::{self, FeedError, Params};
/// use asynq_examples::memory::MemoryStore;
///
/// let p = Params { questions: 1, answers: 1 };
/// let mut data = feed::dataset(p);
/// data.retain(|(key, _)| key != "q:0:author"); // a question without its author
/// let rt = Runtime::new().with_source(MemoryStore::from_pairs(data.clone()));
/// let err = rt.run(feed::feed::<MemoryStore>(p)).unwrap_err();
/// assert!(matches!(err, FeedError::Fetch(asynq_core::Error::MissingKey { .. })));
///
/// data.push(("q:0:author".into(), "seven".into())); // an author that is not an id
/// let rt = Runtime::new().with_source(MemoryStore::from_pairs(data));
/// let err = rt.run(feed::feed::<MemoryStore>(p)).unwrap_err();
/// assert!(matches!(&err, FeedError::NotAnId { key, .. } if key == "q:0:author"));
/// assert_eq!(err.to_string(), r#"`q:0:author` holds "seven", which is not an id"#);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FeedError {
    /// A fetch failed: the store, or a key it did not answer.
    Fetch(Error),
    /// A value the page reads as an id is not one: the store does not hold FEED-1's data.
    NotAnId {
        /// The key whose value it is.
        key: String,
        /// The part of the value that is not an id, cut to 40 characters.
        value: String,
        /// Why it does not parse.
        error: ParseIntError,
    },
}

impl From<Error> for FeedError {
    fn from(error: Error) -> Self {
        FeedError::Fetch(error)
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the fetch error's message, and below it its `source()`.
            FeedError::Fetch(error) => fmt::Display::fmt(error, f),
            FeedError::NotAnId { key, value, .. } => {
                write!(f, "`{key}` holds {value:?}, which is not an id")
            }
        }
    }
}

impl std::error::Error for FeedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FeedError::Fetch(error) => error.source(),
            FeedError::NotAnId { error, .. } => Some(error),
        }
    }
}

/// A value of the data set that should have been a number.
pub(crate) fn parse_id(key: &str, value: &str) -> Result<u64, FeedError> {
    value.parse().map_err(|error| FeedError::NotAnId {
        key: key.to_owned(),
        value: value.chars().take(40).collect(),
        error,
    })
}

/// Answer ids from a `q:{q}:answers` value.
pub(crate) fn parse_ids(key: &str, value: &str) -> Result<Vec<u64>, FeedError> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|id| parse_id(key, id))
        .collect()
}

/// A user's name.
#[asynq]
pub fn user_name<S>(uid: u64) -> Result<String, FeedError>
where
    S: DataSource<Key = String, Value = String>,
{
    Ok(S::load(format!("u:{uid}:name")).await?)
}

/// One answer: its text and its author's name.
#[asynq]
pub fn answer<S>(a: u64) -> Result<String, FeedError>
where
    S: DataSource<Key = String, Value = String>,
{
    let author_key = format!("a:{a}:author");
    let (text, author) = (S::load(format!("a:{a}:text")), S::load(author_key.clone())).await;
    let name = user_name::<S>(parse_id(&author_key, &author?)?).await?;
    Ok(format!("<a>{}<by>{name}</by></a>", text?))
}

/// One question: title, author's name and photo, and its answers.
#[asynq]
pub fn question<S>(q: u64) -> Result<String, FeedError>
where
    S: DataSource<Key = String, Value = String>,
{
    let (author_key, answers_key) = (format!("q:{q}:author"), format!("q:{q}:answers"));
    let (title, author, answers) = (
        S::load(format!("q:{q}:title")),
        S::load(author_key.clone()),
        S::load(answers_key.clone()),
    )
        .await;
    let author = parse_id(&author_key, &author?)?;
    let ids = parse_ids(&answers_key, &answers?)?;
    let ((name, photo), answers) = (
        (user_name::<S>(author), S::load(format!("u:{author}:photo"))),
        ids.into_iter().map(answer::<S>).collect::<Vec<_>>(),
    )
        .await;
    let mut out = format!("<q><h>{}</h><by>{}<img {}></by>", title?, name?, photo?);
    for answer in answers {
        out.push_str(&answer?);
    }
    out.push_str("</q>");
    Ok(out)
}

/// The whole page.
#[asynq]
pub fn feed<S>(p: Params) -> Result<String, FeedError>
where
    S: DataSource<Key = String, Value = String>,
{
    let questions = (0..p.questions)
        .map(question::<S>)
        .collect::<Vec<_>>()
        .await;
    let mut out = String::new();
    for q in questions {
        out.push_str(&q?);
    }
    Ok(out)
}

/// A source that the render functions fail on when a value is missing.
fn get<'a>(values: &'a std::collections::HashMap<String, String>, key: &str) -> &'a str {
    values.get(key).map_or("", String::as_str)
}

/// The hand-primed baseline: three hand-written `get_multi` calls, then rendering from the
/// fetched values. The fastest straightforward Rust, and twice the code to keep in sync.
pub fn hand_primed(store: &MemoryStore, p: Params) -> String {
    use std::collections::HashMap;
    let mut values: HashMap<String, String> = HashMap::new();
    // Round 1: every question's title, author and answer ids.
    let mut keys = Vec::with_capacity(3 * p.questions as usize);
    for q in 0..p.questions {
        keys.extend([
            format!("q:{q}:title"),
            format!("q:{q}:author"),
            format!("q:{q}:answers"),
        ]);
    }
    values.extend(store.get_multi(&keys));
    // Round 2: question authors' names and photos; answers' texts and authors.
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for q in 0..p.questions {
        let author = get(&values, &format!("q:{q}:author"));
        for key in [format!("u:{author}:name"), format!("u:{author}:photo")] {
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        for a in get(&values, &format!("q:{q}:answers"))
            .split(',')
            .filter(|s| !s.is_empty())
        {
            keys.extend([format!("a:{a}:text"), format!("a:{a}:author")]);
        }
    }
    values.extend(store.get_multi(&keys));
    // Round 3: answer authors' names not fetched yet.
    let mut keys = Vec::new();
    for a in 0..p.questions * p.answers {
        let key = format!("u:{}:name", get(&values, &format!("a:{a}:author")));
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    if !keys.is_empty() {
        values.extend(store.get_multi(&keys));
    }
    // Render.
    let mut out = String::new();
    for q in 0..p.questions {
        let author = get(&values, &format!("q:{q}:author"));
        let _ = write!(
            out,
            "<q><h>{}</h><by>{}<img {}></by>",
            get(&values, &format!("q:{q}:title")),
            get(&values, &format!("u:{author}:name")),
            get(&values, &format!("u:{author}:photo"))
        );
        for a in get(&values, &format!("q:{q}:answers"))
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let author = get(&values, &format!("a:{a}:author"));
            let _ = write!(
                out,
                "<a>{}<by>{}</by></a>",
                get(&values, &format!("a:{a}:text")),
                get(&values, &format!("u:{author}:name"))
            );
        }
        out.push_str("</q>");
    }
    out
}

/// The naive page: the same nesting, one `get_multi` call per key.
pub fn naive(store: &MemoryStore, p: Params) -> String {
    naive_on(store, p).unwrap_or_else(|e| match e {})
}

/// The naive page over any backend: one round trip per key, in the order the page needs them.
///
/// The number of round trips equals the number of keys (34,000 at Q=1000, A=10), against 3
/// for the asynq page: the batching factor in one figure.
///
/// # Examples
///
/// ```
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::kv::KvStore;
///
/// let p = Params { questions: 10, answers: 5 };
/// let store = feed::memory_store(p);
/// let page = feed::naive_on(&store, p).unwrap();
/// assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
/// assert_eq!(store.round_trips(), 200); // 195 keys, some asked twice
/// ```
pub fn naive_on<S: KvStore + ?Sized>(store: &S, p: Params) -> Result<String, S::Error> {
    let get = |key: String| -> Result<String, S::Error> {
        Ok(store
            .get_multi(std::slice::from_ref(&key))?
            .pop()
            .map(|(_, v)| v)
            .unwrap_or_default())
    };
    let mut out = String::new();
    for q in 0..p.questions {
        let author = get(format!("q:{q}:author"))?;
        let _ = write!(
            out,
            "<q><h>{}</h><by>{}<img {}></by>",
            get(format!("q:{q}:title"))?,
            get(format!("u:{author}:name"))?,
            get(format!("u:{author}:photo"))?
        );
        for a in get(format!("q:{q}:answers"))?
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let author = get(format!("a:{a}:author"))?;
            let _ = write!(
                out,
                "<a>{}<by>{}</by></a>",
                get(format!("a:{a}:text"))?,
                get(format!("u:{author}:name"))?
            );
        }
        out.push_str("</q>");
    }
    Ok(out)
}
