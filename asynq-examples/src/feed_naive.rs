//! FEED-1 (`docs/feed1.md`) written the naive way, twice from one text: plain `for` loops, one
//! `let .. = .. .await` per line, no tuples.
//!
//! [`batched::feed`] has `#[asynq(batch)]` on every function: the macro awaits together what
//! is independent, and the page renders in FEED-1's 3 calls, as the hand-joined
//! [`crate::feed::feed`] does. [`sequential::feed`] is the same text without the option
//! (`allow_sequential`, since it is sequential on purpose): one round per await. The `bench`
//! program times both against the hand-joined version (`--sections batch`), and
//! `tests/tests/test_batch.rs` checks their pages and calls.

/// The naive FEED-1, with the asynq options given (`batch`, or `allow_sequential`).
macro_rules! naive_feed {
    ($($option:tt)*) => {
        use asynq_core::{DataSource, Error, asynq};

        use crate::feed::Params;

        fn id(value: &str) -> Result<u64, Error> {
            value
                .parse()
                .map_err(|_| Error::other(format!("{value:?} is not an id")))
        }

        /// A user's name.
        #[asynq($($option)*)]
        pub fn user_name<S>(uid: u64) -> Result<String, Error>
        where
            S: DataSource<Key = String, Value = String>,
        {
            Ok(S::load(format!("u:{uid}:name")).await?)
        }

        /// One answer: its text and its author's name.
        #[asynq($($option)*)]
        pub fn answer<S>(a: u64) -> Result<String, Error>
        where
            S: DataSource<Key = String, Value = String>,
        {
            let text = S::load(format!("a:{a}:text")).await?;
            let author = S::load(format!("a:{a}:author")).await?;
            let name = user_name::<S>(id(&author)?).await?;
            Ok(format!("<a>{text}<by>{name}</by></a>"))
        }

        /// One question: title, author's name and photo, and its answers.
        #[asynq($($option)*)]
        pub fn question<S>(q: u64) -> Result<String, Error>
        where
            S: DataSource<Key = String, Value = String>,
        {
            let title = S::load(format!("q:{q}:title")).await?;
            let author = S::load(format!("q:{q}:author")).await?;
            let answer_ids = S::load(format!("q:{q}:answers")).await?;
            let author = id(&author)?;
            let mut ids = Vec::new();
            for a in answer_ids.split(',').filter(|s| !s.is_empty()) {
                ids.push(id(a)?);
            }
            let name = user_name::<S>(author).await?;
            let photo = S::load(format!("u:{author}:photo")).await?;
            let mut answers = Vec::new();
            for a in ids {
                answers.push(answer::<S>(a).await?);
            }
            let mut out = format!("<q><h>{title}</h><by>{name}<img {photo}></by>");
            for answer in answers {
                out.push_str(&answer);
            }
            out.push_str("</q>");
            Ok(out)
        }

        /// The whole page.
        #[asynq($($option)*)]
        pub fn feed<S>(p: Params) -> Result<String, Error>
        where
            S: DataSource<Key = String, Value = String>,
        {
            let mut out = String::new();
            for q in 0..p.questions {
                out.push_str(&question::<S>(q).await?);
            }
            Ok(out)
        }
    };
}

/// The naive FEED-1 with `#[asynq(batch)]`: 3 calls.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::feed_naive;
/// use asynq_examples::memory::MemoryStore;
///
/// let p = Params { questions: 10, answers: 5 };
/// let rt = Runtime::new().with_source(feed::memory_store(p));
/// let page = rt.run(feed_naive::batched::feed::<MemoryStore>(p))?;
/// assert_eq!(rt.last_stats().calls(), 3);
/// let hand = Runtime::new().with_source(feed::memory_store(p));
/// assert_eq!(hand.run(feed::feed::<MemoryStore>(p)).unwrap(), page);
/// # Ok::<(), asynq_core::Error>(())
/// ```
pub mod batched {
    naive_feed!(batch);
}

/// The naive FEED-1 without `batch`: a round per await.
pub mod sequential {
    naive_feed!(allow_sequential);
}
