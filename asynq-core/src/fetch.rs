//! Awaiting a fetch request ([`Load`]): its key asked of the run's per-source state, the task
//! woken when the round's call answers it.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx_or;
use crate::error::Error;
use crate::source::{DataSource, Load, LoadState};
use crate::source_state::Request;
use crate::yieldable::Yieldable;

impl<S: DataSource> Future for Load<S> {
    type Output = Result<S::Value, Error>;

    // Each branch builds its result where `poll` returns it: the result is large (`Error` is
    // 64 bytes), and passing it out of the run's closure as an `Option`, then through a local
    // to the return, copied it twice per poll.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.state {
            LoadState::New(_) => {
                // Done from now on unless it waits (also if `request` unwinds).
                let LoadState::New(key) = std::mem::replace(&mut this.state, LoadState::Done)
                else {
                    unreachable!("matched as new")
                };
                with_ctx_or(
                    &mut this.state,
                    |run, state| {
                        let Some(index) = run.source_index(TypeId::of::<S>()) else {
                            return Poll::Ready(Err(Error::NoSource {
                                source_type: std::any::type_name::<S>(),
                            }));
                        };
                        let (source, waiter) = run.source_state_and_waiter::<S>(index);
                        match source.request(key, waiter) {
                            Request::Done(r) => Poll::Ready(r),
                            Request::Wait(slot) => {
                                *state = LoadState::Waiting {
                                    source: u32::try_from(index)
                                        .expect("fewer than 2^32 registered sources"),
                                    slot,
                                };
                                crate::waker::attach_current(run, cx.waker());
                                Poll::Pending
                            }
                        }
                    },
                    |_| not_in_run::<S>(),
                )
            }
            LoadState::Waiting { source, slot } => with_ctx_or(
                &mut this.state,
                |run, state| {
                    let diagnosing = run.diagnose.is_some();
                    let source = run.source_state::<S>(source as usize);
                    let poll = source.poll_slot(slot);
                    if poll.is_ready() {
                        *state = LoadState::Done;
                        return poll;
                    }
                    if diagnosing {
                        let what = source.waiting_on(slot);
                        if let Some(diagnosis) = &mut run.diagnose {
                            diagnosis.waits_on(what);
                        }
                    }
                    crate::waker::attach_current(run, cx.waker());
                    poll
                },
                |state| {
                    *state = LoadState::Done;
                    not_in_run::<S>()
                },
            ),
            LoadState::Done => panic!("a fetch request polled after it completed"),
        }
    }
}

/// A fetch request polled outside any run.
#[cold]
fn not_in_run<S: DataSource>() -> Poll<Result<S::Value, Error>> {
    Poll::Ready(Err(Error::NotInRun {
        source_type: std::any::type_name::<S>(),
        call: "DataSource::load",
    }))
}

impl<S: DataSource> Yieldable for Load<S> {
    type Output = Result<S::Value, Error>;
    type Future = Self;
    fn into_future(self) -> Self {
        self
    }
}
