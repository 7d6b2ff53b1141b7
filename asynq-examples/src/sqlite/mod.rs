//! The examples' SQLite data set files: the FEED-1 `kv` table and the profile site, each in a
//! file of its own that this crate made.
//!
//! The sources that read them are `asynq-sources`' (feature `sqlite`): a pool of connections
//! to the file ([`Db`], re-exported here), one `SELECT ... WHERE key IN (...)` per source and
//! round, each query on a blocking thread (tokio's blocking pool inside a tokio runtime).
//! The FEED-1 store is [`SqlKv`](crate::sql_kv::SqlKv), opened on a file by [`open_feed`];
//! the profile page's sources are in [`profile`](crate::profile).
//!
//! Files: [`open_owned`] opens a data set file this crate made, building it atomically when
//! missing and refusing (untouched) any file it did not make; [`open_feed`] and
//! `profile::open` go through it. A [`Db`] remembers when one of its queries found the file
//! damaged ([`Db::is_broken`]), so that a server can rebuild it.

mod kv;
mod owned;

pub use asynq_sources::sqlite::{Db, rusqlite};
pub use kv::{FEED_FILE_VERSION, feed_mark, fill_kv, open_feed};
pub use owned::{APPLICATION_ID, Mark, OpenError, is_owned, open_owned, remove_owned};
