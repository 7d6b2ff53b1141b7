//! The joins of awaited tuples: one pinned field per child, projected by `pin-project-lite`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Child, JoinState};

macro_rules! tuple_join {
    ($(#[$doc:meta])* $Join:ident, $len:literal; $($F:ident $idx:tt $field:ident),+) => {
        pin_project_lite::pin_project! {
            $(#[$doc])*
            #[must_use = "futures do nothing unless polled"]
            pub struct $Join<$($F: Future),+> {
                state: JoinState,
                $(#[pin] $field: Child<$F>,)+
            }
        }

        impl<$($F: Future),+> $Join<$($F),+> {
            pub(crate) fn new(futures: ($($F,)+)) -> Self {
                $Join { state: JoinState::new(), $($field: Child::new(futures.$idx),)+ }
            }
        }

        impl<$($F: Future),+> Future for $Join<$($F),+> {
            type Output = ($($F::Output,)+);
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let mut this = self.project();
                let done = this.state.drive($len, cx, &mut |slot, parent, cx| match slot {
                    $($idx => this.$field.as_mut().poll(parent, slot, cx),)+
                    _ => unreachable!("tuple join slot out of range"),
                });
                if !done {
                    return Poll::Pending;
                }
                Poll::Ready(($(this.$field.as_mut().take(),)+))
            }
        }

        impl<$($F: Future),+> fmt::Debug for $Join<$($F),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Join)).field("state", &self.state).finish()
            }
        }
    };
}

tuple_join!(/// The future of an awaited 1-tuple.
    Join1, 1; A 0 a);
tuple_join!(/// The future of an awaited 2-tuple.
    Join2, 2; A 0 a, B 1 b);
tuple_join!(/// The future of an awaited 3-tuple.
    Join3, 3; A 0 a, B 1 b, C 2 c);
tuple_join!(/// The future of an awaited 4-tuple.
    Join4, 4; A 0 a, B 1 b, C 2 c, D 3 d);
tuple_join!(/// The future of an awaited 5-tuple.
    Join5, 5; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e);
tuple_join!(/// The future of an awaited 6-tuple.
    Join6, 6; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f);
tuple_join!(/// The future of an awaited 7-tuple.
    Join7, 7; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g);
tuple_join!(/// The future of an awaited 8-tuple.
    Join8, 8; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g, H 7 h);
tuple_join!(/// The future of an awaited 9-tuple.
    Join9, 9; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g, H 7 h, I 8 i);
tuple_join!(/// The future of an awaited 10-tuple.
    Join10, 10; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g, H 7 h, I 8 i, J 9 j);
tuple_join!(/// The future of an awaited 11-tuple.
    Join11, 11; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g, H 7 h, I 8 i, J 9 j, K 10 k);
tuple_join!(/// The future of an awaited 12-tuple.
    Join12, 12; A 0 a, B 1 b, C 2 c, D 3 d, E 4 e, F 5 f, G 6 g, H 7 h, I 8 i, J 9 j, K 10 k, L 11 l);
