//! `#[asynq]` on every kind of function the foundation supports, run for real.

mod common;

use std::fmt::Display;

use asynq_core::{DataSource, Error, Runtime, asynq};
use common::Recorder;

fn rt() -> Runtime {
    Runtime::new().with_source(Recorder::new("rec"))
}

/// Documented, public, with an attribute: all kept.
#[asynq]
#[inline]
pub fn documented(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

struct Account {
    id: u64,
}

impl Account {
    #[asynq]
    fn balance(&self) -> Result<u64, Error> {
        Recorder::load(self.id).await
    }

    #[asynq]
    fn into_balance(self) -> Result<u64, Error> {
        self.balance().await
    }

    #[asynq]
    fn with_lifetime<'a>(&'a self, label: &'a str) -> Result<String, Error> {
        Ok(format!("{label}{}", self.balance().await?))
    }
}

trait Priced {
    #[asynq]
    fn price(&self) -> Result<u64, Error>;

    #[asynq]
    fn doubled(&self) -> Result<u64, Error> {
        Ok(2 * self.price().await?)
    }
}

impl Priced for Account {
    #[asynq]
    fn price(&self) -> Result<u64, Error> {
        Ok(self.balance().await? + 1)
    }
}

#[asynq]
fn generic<T>(items: Vec<T>) -> Result<String, Error>
where
    T: Display + Send,
{
    let n = Recorder::load(items.len() as u64).await?;
    Ok(format!(
        "{n}:{}",
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ))
}

#[asynq]
fn borrowed<'a>(name: &'a str, key: &u64) -> Result<&'a str, Error> {
    Recorder::load(*key).await?;
    Ok(&name[1..])
}

#[asynq]
fn patterns((a, b): (u64, u64), mut acc: u64, shown: impl Display) -> Result<String, Error> {
    for k in [a, b] {
        acc += Recorder::load(k).await?;
    }
    Ok(format!("{shown}={acc}"))
}

#[asynq]
fn early(k: u64) -> Result<u64, Error> {
    if k == 0 {
        return Ok(0);
    }
    let v = Recorder::load(k).await?;
    if v > 100 {
        return Err(Error::MissingKey {
            source: "test".into(),
            key: k.to_string(),
        });
    }
    Ok(v)
}

#[asynq]
fn unit(counter: &std::sync::atomic::AtomicU64) {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[asynq]
fn collects(n: u64) -> Vec<u64> {
    // The declared output type drives inference of `collect()` in the tail expression.
    (0..n).map(|x| x * x).collect()
}

#[asynq]
fn loops(n: u64) -> Result<u64, Error> {
    let mut k = 0;
    let found = 'search: loop {
        while k < n {
            if Recorder::load(k).await? >= 30 {
                break 'search Some(k);
            }
            k += 1;
        }
        if k >= n {
            break None;
        }
    };
    Ok(found.unwrap_or(u64::MAX))
}

#[asynq]
fn awaits_in_macros(k: u64) -> Result<String, Error> {
    assert_eq!(Recorder::load(k).await?, k * 10);
    let shown = format!(
        "{}+{}",
        Recorder::load(k).await?,
        Recorder::load(k + 1).await?
    );
    let v = vec![documented(k).await?, documented(k + 1).await?];
    Ok(format!("{shown} {v:?}"))
}

#[test]
fn free_functions_keep_docs_attributes_and_visibility() {
    let task = documented(2);
    assert!(task.name().ends_with("test_signatures::documented"));
    assert_eq!(rt().run(task).unwrap(), 20);
}

#[test]
fn methods_by_reference_by_value_and_with_lifetimes() {
    let rt = rt();
    let acct = Account { id: 4 };
    assert_eq!(rt.run(acct.balance()).unwrap(), 40);
    assert_eq!(rt.run(acct.with_lifetime("$")).unwrap(), "$40");
    assert_eq!(rt.run(acct.into_balance()).unwrap(), 40);
}

#[test]
fn trait_methods_declared_defaulted_and_implemented() {
    let rt = rt();
    let acct = Account { id: 3 };
    assert_eq!(rt.run(acct.price()).unwrap(), 31);
    assert_eq!(rt.run(acct.doubled()).unwrap(), 62);
}

#[test]
fn generics_lifetimes_patterns_and_impl_trait_arguments() {
    let rt = rt();
    assert_eq!(rt.run(generic(vec!['a', 'b'])).unwrap(), "20:a,b");
    let name = String::from("xyz");
    assert_eq!(rt.run(borrowed(&name, &1)).unwrap(), "yz");
    assert_eq!(rt.run(patterns((1, 2), 5, "sum")).unwrap(), "sum=35");
}

#[test]
fn return_question_mark_unit_and_inference() {
    let rt = rt();
    assert_eq!(rt.run(early(0)).unwrap(), 0);
    assert_eq!(
        rt.last_stats().calls(),
        0,
        "the early return fetched nothing"
    );
    assert_eq!(rt.run(early(5)).unwrap(), 50);
    assert!(matches!(rt.run(early(11)), Err(Error::MissingKey { .. })));
    let counter = std::sync::atomic::AtomicU64::new(0);
    let task = unit(&counter);
    assert_eq!(
        counter.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "tasks are lazy"
    );
    rt.run(task).unwrap();
    assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(rt.run(collects(4)).unwrap(), [0, 1, 4, 9]);
}

#[test]
fn labeled_loops_with_break_values() {
    let rt = rt();
    assert_eq!(rt.run(loops(10)).unwrap(), 3);
    assert_eq!(rt.last_stats().rounds, 4);
}

#[test]
fn awaits_inside_macro_arguments_are_suspension_points() {
    let rt = rt();
    assert_eq!(rt.run(awaits_in_macros(2)).unwrap(), "20+30 [20, 30]");
}
