// What `#[asynq]` routes through type checks compiles and runs as written: `?` on every type
// it applies to (an operand typed only later, in a closure, in a macro), and awaited
// collections whose elements are calls of different functions with one type.

use std::ops::ControlFlow;
use std::task::Poll;

use asynq_core::{Runtime, asynq};

#[asynq(boxed)]
fn double(x: u64) -> u64 {
    x * 2
}

#[asynq(boxed)]
fn square(x: u64) -> u64 {
    x * x
}

#[asynq]
fn plain(x: u64) -> u64 {
    x + 1
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

#[asynq]
fn operands(text: String) -> Result<u64, String> {
    let n: u64 = parse(&text)?;
    // Typed only by a later use.
    let later = parse(&text);
    let m: u64 = later?;
    let first = || -> Option<char> { Some(text.chars().next()?) };
    let flow: ControlFlow<u64, u64> = ControlFlow::Continue(1);
    let step = || -> ControlFlow<u64, u64> { ControlFlow::Continue(flow?) };
    let ready: Poll<Result<u64, String>> = Poll::Ready(Ok(2));
    let polled = || -> Result<u64, String> {
        match ready? {
            Poll::Ready(v) => Ok(v),
            Poll::Pending => Ok(0),
        }
    };
    let label = format!("{}{}", first().map_or('?', |c| c), parse::<u64>(&text)?);
    assert_eq!(label, "77");
    let ControlFlow::Continue(one) = step() else {
        unreachable!()
    };
    Ok(n + m + one + polled()?)
}

// Deliberately one await after another, to check each shape alone.
#[asynq(allow_sequential)]
fn collections(x: u64, big: bool) -> (Vec<u64>, [u64; 2], u64, u64) {
    // Different functions, one type: both boxed tasks of `u64`.
    let v = vec![double(x), square(x)].await;
    let a = [double(x), square(x)].await;
    let i = (if big { square(x) } else { double(x) }).await;
    let m = match x {
        0 => double(x),
        1 => return (v, a, i, 0),
        _ => square(x),
    }
    .await;
    // One function: left alone.
    let _ = [plain(1), plain(2)].await;
    (v, a, i, m)
}

fn main() {
    let rt = Runtime::new();
    assert_eq!(rt.run(operands("7".into())).unwrap(), 7 + 7 + 1 + 2);
    assert_eq!(
        rt.run(operands("x".into())).unwrap_err().to_string(),
        "bad number \"x\""
    );
    assert_eq!(
        rt.run(collections(3, true)).unwrap(),
        (vec![6, 9], [6, 9], 9, 9)
    );
}
