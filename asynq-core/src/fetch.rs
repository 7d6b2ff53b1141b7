//! Awaiting a fetch request ([`Load`]): its key asked of the run's per-source state, the task
//! woken when the round's call answers it.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx;
use crate::error::Error;
use crate::source::{DataSource, Load, LoadState};
use crate::source_state::Request;
use crate::yieldable::Yieldable;

impl<S: DataSource> Future for Load<S> {
    type Output = Result<S::Value, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = match this.state {
            LoadState::New => {
                let key = this
                    .key
                    .take()
                    .expect("a fetch request polled after it completed");
                with_ctx(|run| {
                    let Some(index) = run.source_index(TypeId::of::<S>()) else {
                        return Poll::Ready(Err(Error::NoSource {
                            source_type: std::any::type_name::<S>(),
                        }));
                    };
                    let (state, waiter) = run.source_state_and_waiter::<S>(index);
                    match state.request(key, waiter) {
                        Request::Done(r) => Poll::Ready(r),
                        Request::Wait(slot) => {
                            this.state = LoadState::Waiting {
                                source: index,
                                slot,
                            };
                            let node = run.current_node();
                            crate::waker::attach(run, node, cx.waker());
                            Poll::Pending
                        }
                    }
                })
                .unwrap_or_else(|| {
                    Poll::Ready(Err(Error::NotInRun {
                        source_type: std::any::type_name::<S>(),
                        call: "DataSource::load",
                    }))
                })
            }
            LoadState::Waiting { source, slot } => with_ctx(|run| {
                let diagnosing = run.diagnose.is_some();
                let state = run.source_state::<S>(source);
                let poll = state.poll_slot(slot);
                if diagnosing && poll.is_pending() {
                    let what = state.waiting_on(slot);
                    if let Some(diagnosis) = &mut run.diagnose {
                        diagnosis.waits_on(what);
                    }
                }
                if poll.is_pending() {
                    let node = run.current_node();
                    crate::waker::attach(run, node, cx.waker());
                }
                poll
            })
            .unwrap_or_else(|| {
                Poll::Ready(Err(Error::NotInRun {
                    source_type: std::any::type_name::<S>(),
                    call: "DataSource::load",
                }))
            }),
            LoadState::Done => panic!("a fetch request polled after it completed"),
        };
        if result.is_ready() {
            this.state = LoadState::Done;
        }
        result
    }
}

impl<S: DataSource> Yieldable for Load<S> {
    type Output = Result<S::Value, Error>;
    type Future = Self;
    fn into_future(self) -> Self {
        self
    }
}
