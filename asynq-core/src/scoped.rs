//! Values and hooks scoped to a task and everything it awaits, across its suspensions.
//!
//! A run interleaves its tasks: between two polls of one task, its siblings run. A thread-local
//! set by a task would leak into them, and a guard held across an `.await` would be active
//! while other tasks run. The wrappers here act on *polls* instead: [`ScopedKey::scope`] puts a
//! value in place only while the wrapped task (or something it awaits) is being polled, and
//! [`with_hooks`] calls [`TaskHooks::resume`] before and [`TaskHooks::pause`] after each poll.
//! Python asynq spells these `AsyncScopedValue`/`async_override` and `AsyncContext`.
//!
//! Both also hold for the boxed tasks awaited inside (which the scheduler polls on its own,
//! see [`BoxFuture`](crate::BoxFuture)): the run keeps the scopes and hooks in force as a
//! chain of frames ([`frames`](crate::frames)), each boxed task keeps the chain of the place
//! it was awaited from, and the scheduler puts it back in force around each of its polls.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use crate::context::with_ctx;
use crate::frames::{Frames, HookFrame, ValueFrame};
use crate::yieldable::Yieldable;

/// Declare task-scoped values: `scoped_value!(static LOCALE: String);` (several separated by
/// `;`, each with optional attributes and visibility).
///
/// Each becomes a [`ScopedKey`]: [`scope`](ScopedKey::scope) a task with a value, then read it
/// with [`get`](ScopedKey::get) or [`with`](ScopedKey::with) anywhere in that task or in what it
/// awaits.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, scoped_value, Runtime};
///
/// scoped_value!(static LOCALE: &'static str);
///
/// #[asynq]
/// fn greet() -> String {
///     match LOCALE.get() {
///         Some("fr") => "bonjour".to_owned(),
///         _ => "hello".to_owned(),
///     }
/// }
///
/// #[asynq]
/// fn page() -> (String, String) {
///     // Siblings interleave, yet each sees only its own scope.
///     (LOCALE.scope("fr", greet()), greet()).await
/// }
///
/// let (fr, default) = Runtime::new().run(page()).unwrap();
/// assert_eq!((fr.as_str(), default.as_str()), ("bonjour", "hello"));
/// ```
#[macro_export]
macro_rules! scoped_value {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty);+ $(;)?) => {$(
        $(#[$attr])*
        $vis static $name: $crate::ScopedKey<$ty> = {
            ::std::thread_local! {
                static __ASYNQ_SCOPED: ::core::cell::Cell<*const $ty> =
                    const { ::core::cell::Cell::new(::core::ptr::null()) };
            }
            $crate::ScopedKey::__new(&__ASYNQ_SCOPED)
        };
    )+};
}

/// A task-scoped value, declared with [`scoped_value!`].
///
/// Values are `Send + Sync`: a scope's value is shared by every task polled under it,
/// including boxed tasks, which the scheduler polls on their own (it puts the scopes of a
/// boxed task back in force around each of its polls).
pub struct ScopedKey<T: 'static> {
    /// The value in force on this thread: the innermost scope being polled, or null.
    slot: &'static LocalKey<Cell<*const T>>,
}

impl<T: 'static> fmt::Debug for ScopedKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopedKey")
    }
}

impl<T: 'static> ScopedKey<T> {
    #[doc(hidden)]
    pub const fn __new(slot: &'static LocalKey<Cell<*const T>>) -> Self {
        ScopedKey { slot }
    }

    /// `task` (any yieldable) with this key set to `value` while it and what it awaits run.
    ///
    /// Scopes nest: an inner scope of the same key hides the outer one until it ends.
    pub fn scope<Y: Yieldable>(&'static self, value: T, task: Y) -> Scoped<T, Y>
    where
        T: Send + Sync,
    {
        Scoped {
            key: self,
            value: Some(value),
            task,
        }
    }

    /// Call `f` with the value of the innermost scope being polled, or `None` outside any.
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let value = self.slot.with(Cell::get);
        // SAFETY: a non-null pointer is set only while a poll in the scope runs on this thread
        // (`ValueCell::enter` to `exit`, around code that holds the cell alive), and this call
        // happens inside that poll; the value is never mutated while shared.
        f(unsafe { value.as_ref() })
    }

    /// A clone of the value of the innermost scope being polled, or `None` outside any.
    pub fn get(&'static self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|v| v.cloned())
    }
}

/// A yieldable with a scoped value; see [`ScopedKey::scope`].
#[must_use = "a scoped task does nothing unless awaited"]
pub struct Scoped<T: 'static, Y> {
    key: &'static ScopedKey<T>,
    value: Option<T>,
    task: Y,
}

impl<T: 'static, Y> fmt::Debug for Scoped<T, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scoped")
    }
}

impl<T: Send + Sync + 'static, Y: Yieldable> Yieldable for Scoped<T, Y> {
    type Output = Y::Output;
    type Future = ScopedFuture<T, Y::Future>;
    fn into_future(self) -> Self::Future {
        ScopedFuture {
            future: self.task.into_future(),
            key: self.key,
            value: self.value,
            frame: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Scoped`] task.
    #[must_use = "futures do nothing unless polled"]
    pub struct ScopedFuture<T: 'static, F> {
        #[pin]
        future: F,
        key: &'static ScopedKey<T>,
        // The value until the first poll, which moves it into `frame`.
        value: Option<T>,
        // The value, shared with the boxed tasks registered under it, and the chain of
        // frames in force inside the scope.
        frame: Option<(Arc<ValueCell<T>>, Frames)>,
    }
}

impl<T: 'static, F> fmt::Debug for ScopedFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopedFuture")
    }
}

/// A scope's value, as a frame of the run's chain (see [`frames`](crate::frames)).
struct ValueCell<T: 'static> {
    /// The key: a `static`, whose address identifies it (a `LocalKey`'s need not).
    key: &'static ScopedKey<T>,
    value: T,
}

impl<T: Send + Sync + 'static> ValueFrame for ValueCell<T> {
    fn key(&self) -> *const () {
        std::ptr::from_ref(self.key).cast()
    }

    fn enter(&self) -> *const () {
        self.key.slot.with(|slot| slot.replace(&self.value)).cast()
    }

    fn exit(&self, previous: *const ()) {
        self.key.slot.with(|slot| slot.set(previous.cast()));
    }
}

/// Puts the previous value (and chain) back when a scope's poll ends, even by a panic.
struct Restore<T: Send + Sync + 'static> {
    cell: Arc<ValueCell<T>>,
    previous: *const (),
    outer: Option<Frames>,
}

impl<T: Send + Sync + 'static> Drop for Restore<T> {
    fn drop(&mut self) {
        self.cell.exit(self.previous);
        if let Some(outer) = self.outer.take() {
            with_ctx(|run| run.frames = outer);
        }
    }
}

impl<T: Send + Sync + 'static, F: Future> Future for ScopedFuture<T, F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let (cell, chain) = this.frame.get_or_insert_with(|| {
            let value = this
                .value
                .take()
                .expect("a scope's value is kept until its first poll");
            let cell = Arc::new(ValueCell {
                key: this.key,
                value,
            });
            let outer = with_ctx(|run| run.frames.clone()).unwrap_or_default();
            let chain = outer.with_value(Arc::clone(&cell) as Arc<dyn ValueFrame>);
            (cell, chain)
        });
        let outer = with_ctx(|run| std::mem::replace(&mut run.frames, chain.clone()));
        let _restore = Restore {
            previous: cell.enter(),
            cell: Arc::clone(cell),
            outer,
        };
        this.future.poll(cx)
    }
}

/// What to do each time a task resumes and suspends; see [`with_hooks`].
///
/// `resume` runs before every poll of the task (its start and each resumption after a fetch),
/// `pause` after it, whether the task then waits or finishes. Between the two, the task runs its
/// own code and that of what it awaits, and no sibling runs.
pub trait TaskHooks {
    /// The task is about to run.
    fn resume(&mut self);
    /// The task stopped running: it waits, or it has finished.
    fn pause(&mut self);
}

/// `task` with `hooks` called around each of its polls.
///
/// The hooks are shared (behind a mutex) with the boxed tasks awaited inside, whose polls
/// call them too; hence `Send + 'static`.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, with_hooks, Runtime, TaskHooks};
///
/// struct CountPolls(u32);
/// impl TaskHooks for CountPolls {
///     fn resume(&mut self) { self.0 += 1; }
///     fn pause(&mut self) {}
/// }
///
/// #[asynq]
/// fn two() -> u32 {
///     2
/// }
///
/// assert_eq!(Runtime::new().run(with_hooks(CountPolls(0), two())).unwrap(), 2);
/// ```
pub fn with_hooks<H: TaskHooks + Send + 'static, Y: Yieldable>(hooks: H, task: Y) -> Hooked<H, Y> {
    Hooked { hooks, task }
}

/// A yieldable with hooks; see [`with_hooks`].
#[must_use = "a hooked task does nothing unless awaited"]
pub struct Hooked<H, Y> {
    hooks: H,
    task: Y,
}

impl<H, Y> fmt::Debug for Hooked<H, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hooked")
    }
}

impl<H: TaskHooks + Send + 'static, Y: Yieldable> Yieldable for Hooked<H, Y> {
    type Output = Y::Output;
    type Future = HookedFuture<H, Y::Future>;
    fn into_future(self) -> Self::Future {
        HookedFuture {
            future: self.task.into_future(),
            hooks: Arc::new(HookCell(Mutex::new(self.hooks))),
            chain: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Hooked`] task.
    #[must_use = "futures do nothing unless polled"]
    pub struct HookedFuture<H, F> {
        // First, so that it is dropped before the hooks it may still call.
        #[pin]
        future: F,
        // Shared with the boxed tasks registered inside, whose polls call them too.
        hooks: Arc<HookCell<H>>,
        // The chain of frames in force inside, made at the first poll.
        chain: Option<Frames>,
    }
}

impl<H, F> fmt::Debug for HookedFuture<H, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HookedFuture")
    }
}

/// Hooks, as a frame of the run's chain (see [`frames`](crate::frames)).
struct HookCell<H>(Mutex<H>);

impl<H: TaskHooks + Send> HookFrame for HookCell<H> {
    fn resume(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resume();
    }

    fn pause(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pause();
    }
}

/// Calls `pause` (and puts the outer chain back) when the poll ends, even by a panic.
struct Pause<'a, H: TaskHooks + Send> {
    hooks: &'a HookCell<H>,
    outer: Option<Frames>,
}

impl<H: TaskHooks + Send> Drop for Pause<'_, H> {
    fn drop(&mut self) {
        if let Some(outer) = self.outer.take() {
            with_ctx(|run| run.frames = outer);
        }
        self.hooks.pause();
    }
}

impl<H: TaskHooks + Send + 'static, F: Future> Future for HookedFuture<H, F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let hooks = &*this.hooks;
        let chain = this.chain.get_or_insert_with(|| {
            let outer = with_ctx(|run| run.frames.clone()).unwrap_or_default();
            outer.with_hooks(Arc::clone(hooks) as Arc<dyn HookFrame>)
        });
        hooks.resume();
        let outer = with_ctx(|run| std::mem::replace(&mut run.frames, chain.clone()));
        let _pause = Pause { hooks, outer };
        this.future.poll(cx)
    }
}

/// Time spent running tasks: their own code and what they await, never the time they wait
/// for fetches. Python asynq's `AsyncTimer`, built on [`TaskHooks`].
///
/// One timer may time several tasks, and be read while they run; clones share the total.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, Runtime, Timer};
///
/// #[asynq]
/// fn busy() -> u64 {
///     (0..100_000u64).sum()
/// }
///
/// let timer = Timer::new();
/// assert_eq!(Runtime::new().run(timer.time(busy())).unwrap(), 4_999_950_000);
/// assert!(timer.elapsed() > std::time::Duration::ZERO);
/// assert_eq!(timer.resumptions(), 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Timer {
    shared: Arc<TimerShared>,
}

#[derive(Debug, Default)]
struct TimerShared {
    nanos: AtomicU64,
    resumptions: AtomicU64,
}

impl Timer {
    /// A timer at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// `task`, timed by this timer.
    pub fn time<Y: Yieldable>(&self, task: Y) -> Hooked<TimerHooks, Y> {
        with_hooks(
            TimerHooks {
                shared: Arc::clone(&self.shared),
                started: None,
            },
            task,
        )
    }

    /// Total time the timed tasks have spent running so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.shared.nanos.load(Ordering::Relaxed))
    }

    /// How many times the timed tasks were resumed (polled) so far.
    pub fn resumptions(&self) -> u64 {
        self.shared.resumptions.load(Ordering::Relaxed)
    }
}

/// The hooks of a [`Timer`].
#[derive(Debug)]
pub struct TimerHooks {
    shared: Arc<TimerShared>,
    started: Option<Instant>,
}

impl TaskHooks for TimerHooks {
    fn resume(&mut self) {
        self.shared.resumptions.fetch_add(1, Ordering::Relaxed);
        self.started = Some(Instant::now());
    }

    fn pause(&mut self) {
        if let Some(started) = self.started.take() {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared.nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }
}
