//! Tasks the scheduler polls on its own: boxed tasks.
//!
//! Most tasks are polled *inline*: a task's future is a field of its parent's future, and the
//! parent polls it from its own `poll`. That is the cheapest way to run a task, and the whole
//! page compiles to one state machine. It has one cost that grows with depth: to reach a task
//! woken at depth `d`, the scheduler polls the `d` futures above it, on a stack `d` frames
//! deep. Recursion over data (a comment thread, a category tree) makes `d` as large as the
//! data is deep, so a round would cost O(d) time and O(d) stack, and a deep enough tree would
//! overflow the thread's stack.
//!
//! A recursive asynq function must box its task anyway (a task cannot contain itself), so a
//! boxed task is where the recursion is cut: a [`BoxFuture`] (or [`LocalBoxFuture`]) does not
//! poll its body inline. Its first poll inside a run *registers* the body with the run: the
//! body gets an [`Entry`] in the run's arena and a root node of its own (see
//! [`nodes`](crate::nodes)), and the parent waits on it as it would wait on a fetch. The
//! scheduler loop polls registered bodies directly, each from the loop itself; when a body
//! finishes, its output stays in its cell and the parent's node is woken, and the parent's
//! next poll takes the output. A wake-up, a poll and a finish thus cost the same at any depth,
//! and the stack a run uses is what one body uses, however deep the recursion goes.
//!
//! # Ownership
//!
//! A boxed task's body lives in a heap *cell* owned by its handle (the [`BoxFuture`] inside the
//! parent's future), exactly as a `Pin<Box<dyn Future>>` would; the run only keeps a pointer
//! to it while it is registered. The handle's `Drop` takes it out of the run before it frees
//! the cell, so the run never polls a freed body; and it takes out the bodies registered from
//! inside it first, innermost first, so that cancelling a deep recursion (a run dropped
//! half-way, say) drops its levels one after another instead of recursively. A handle is
//! normally dropped while its run polls (or while the run is dropped, which enters the run the
//! same way); a handle that escaped its run and is dropped elsewhere takes the run's lock
//! ([`RunLink`]), which the run holds while it polls, so the two never touch a body at once.

use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::context::{self, RunLink, RunState, with_ctx};
use crate::frames::Frames;
use crate::nodes::NONE;

use crate::roots::{ErasedBody, Removed};

/// What a boxed task's cell holds.
enum State<F: Future> {
    Running(F),
    Done(F::Output),
    Empty,
}

/// A boxed task's body and, once finished, its output. `repr(C)`: the header comes first.
#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    state: State<F>,
}

/// Where a cell is registered.
pub(crate) struct Header {
    /// The asynq function, for statistics and errors.
    name: &'static str,
    /// Its entry in the run's arena while registered, else [`NONE`].
    entry: u32,
    /// The run it is registered in, while it is.
    link: Option<Arc<RunLink>>,
}

/// A cell with its header, output type erased: what a handle tells the run, and unregisters.
pub(crate) trait Registered: ErasedBody {
    fn header(&mut self) -> &mut Header;
}

/// A cell as its handle sees it.
pub(crate) trait Body<T>: Registered {
    /// The output, once the body has finished; `None` before (and after it was taken).
    fn take_output(&mut self) -> Option<T>;
    /// Neither running nor holding an output: taken, or cancelled.
    fn is_empty(&self) -> bool;
}

impl<F: Future> Registered for Cell<F> {
    fn header(&mut self) -> &mut Header {
        &mut self.header
    }
}

impl<F: Future> ErasedBody for Cell<F> {
    fn unregister(&mut self) {
        self.header.entry = NONE;
        self.header.link = None;
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> bool {
        let State::Running(future) = &mut self.state else {
            return true;
        };
        // SAFETY: the cell is on the heap from its creation to its drop and is never moved
        // (only raw pointers to it exist), and a `Running` future is never moved out of the
        // cell, only dropped in place by the assignments below and in `drop_body`.
        let future = unsafe { Pin::new_unchecked(future) };
        match future.poll(cx) {
            Poll::Ready(output) => {
                self.state = State::Done(output);
                true
            }
            Poll::Pending => false,
        }
    }

    fn name(&self) -> &'static str {
        self.header.name
    }

    fn drop_body(&mut self) {
        if matches!(self.state, State::Running(_)) {
            self.state = State::Empty;
        }
    }
}

impl<F: Future> Body<F::Output> for Cell<F> {
    fn take_output(&mut self) -> Option<F::Output> {
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Done(output) => Some(output),
            other => {
                self.state = other;
                None
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self.state, State::Empty)
    }
}

/// The owner of a cell: the shared part of [`BoxFuture`] and [`LocalBoxFuture`].
struct Handle<B: ?Sized> {
    /// The cell, typed by its output: owned, freed by `Drop`.
    cell: NonNull<B>,
    /// The same cell as the run sees it, with its lifetime erased: the run holds it only while
    /// the cell is registered, and `Drop` unregisters it before the cell is freed.
    erased: NonNull<dyn Registered>,
}

impl<B: ?Sized> Handle<B> {
    /// Take ownership of `cell`, made by `Box::into_raw`; `erased` points to the same cell.
    fn new(cell: NonNull<B>, erased: NonNull<dyn Registered + '_>) -> Self {
        // SAFETY: only the lifetime of the trait object changes (same layout); see `erased`
        // for why the run never uses it past the cell's life.
        let erased = unsafe {
            std::mem::transmute::<NonNull<dyn Registered + '_>, NonNull<dyn Registered>>(erased)
        };
        Handle { cell, erased }
    }

    fn poll<T>(&mut self, cx: &mut Context<'_>, local: bool) -> Poll<T>
    where
        B: Body<T>,
    {
        // SAFETY: the cell is alive (owned by `self`) and no other reference to it exists now:
        // the run makes one only while it polls or unregisters the body, never while a parent
        // polls its handle.
        let cell = unsafe { self.cell.as_mut() };
        if let Some(output) = cell.take_output() {
            return Poll::Ready(output);
        }
        assert!(!cell.is_empty(), "a boxed task polled after it completed");
        let header = cell.header();
        let erased: NonNull<dyn ErasedBody> = self.erased;
        if header.entry == NONE {
            let waker = cx.waker();
            match with_ctx(|run| register(run, header, erased, local, waker)) {
                Some(()) => return Poll::Pending,
                // Outside any run (a task polled by hand): poll the body where it is.
                None => {
                    return match cell.poll_body(cx) {
                        true => Poll::Ready(cell.take_output().expect("a finished body")),
                        false => Poll::Pending,
                    };
                }
            }
        }
        // Registered: the scheduler polls it; this is a spurious poll, or a stall's last pass.
        let link = header.link.clone();
        with_ctx(|run| {
            let ours = link.as_ref().is_some_and(|l| Arc::ptr_eq(l, &run.link));
            assert!(ours, "a boxed task of one asynq run polled in another");
            if let Some(diagnosis) = &mut run.diagnose {
                diagnosis.waits_on_detached();
            }
            let node = run.current_node();
            crate::waker::attach(run, node, cx.waker());
        })
        .expect("a boxed task polled outside the asynq run it belongs to");
        Poll::Pending
    }
}

impl<B: ?Sized> Drop for Handle<B> {
    fn drop(&mut self) {
        // SAFETY: as in `poll`; the reference ends before `cancel` reaches the cell again.
        let header = unsafe { self.erased.as_mut() }.header();
        let (entry, link) = (header.entry, header.link.clone());
        if entry != NONE
            && let Some(link) = link
        {
            cancel(&link, entry);
        }
        // SAFETY: `cell` came from `Box::into_raw` and is freed only here; the run no longer
        // points to it (it was never registered, has finished, or was just unregistered).
        drop(unsafe { Box::from_raw(self.cell.as_ptr()) });
    }
}

/// Register the cell in the run polling on this thread: an entry, a root node, queued.
fn register(
    run: &mut RunState,
    header: &mut Header,
    body: NonNull<dyn ErasedBody>,
    local: bool,
    waker: &std::task::Waker,
) {
    let awaiter = run.current_waiter();
    crate::waker::attach(run, run.current, waker);
    let parent = run.current_entry;
    let frames = run.frames.clone();
    if local {
        run.pin_to_thread();
    }
    let entry = run.detached.insert(body, awaiter, frames, parent);
    let node = run.nodes.alloc(NONE, entry);
    if let Some(e) = run.detached.entry(entry) {
        e.node = node;
    }
    run.nodes.wake(run.nodes.waiter(node));
    header.entry = entry;
    header.link = Some(Arc::clone(&run.link));
}

/// Unregister `top` and every body registered from inside it, dropping those bodies innermost
/// first (`top`'s own body is its handle's to drop).
fn cancel(link: &Arc<RunLink>, top: u32) {
    let ours = with_ctx(|run| Arc::ptr_eq(&run.link, link)).unwrap_or(false);
    if ours {
        cancel_in_run(top);
    } else {
        // Dropped outside its run: wait until the run is not polling, then act in it.
        link.with_run(|state| {
            let _entered = context::enter(state);
            cancel_in_run(top);
        });
    }
}

fn cancel_in_run(top: u32) {
    let mut current = top;
    loop {
        let removed = with_ctx(|run| {
            let arena = &mut run.detached;
            while let Some(child) = arena.first_child(current) {
                current = child;
            }
            arena.remove(current, &mut run.nodes)
        })
        .flatten();
        let Some(Removed {
            body,
            parent,
            frames,
        }) = removed
        else {
            return; // already gone (dropped by something it owned): nothing left to do
        };
        drop(frames);
        if current == top {
            return;
        }
        // SAFETY: the body is registered until now, so its handle has not freed it; its handle
        // is inside its parent's body, which is dropped later than this, innermost first.
        unsafe { (*body.as_ptr()).drop_body() };
        current = parent;
    }
}

/// Drop every registered body of the run, innermost first (the run is being dropped).
pub(crate) fn cancel_all() {
    let top = with_ctx(|run| run.detached.top_level()).unwrap_or_default();
    for entry in top {
        // SAFETY-free: `cancel_in_run` unregisters the subtree and drops every body in it but
        // `entry`'s own, which is dropped here the same way (its handle then frees the cell).
        cancel_in_run_with_top(entry);
    }
}

/// [`cancel_in_run`], dropping `top`'s body too.
fn cancel_in_run_with_top(top: u32) {
    let body = with_ctx(|run| run.detached.entry(top).and_then(|e| e.body)).flatten();
    cancel_in_run(top);
    if let Some(body) = body {
        // SAFETY: unregistered just now and not freed: its handle frees it, later, when the
        // root future is dropped; until then nothing else refers to it.
        unsafe { (*body.as_ptr()).drop_body() };
    }
}

/// What the scheduler needs to poll a registered body.
pub(crate) struct Polling {
    body: NonNull<dyn ErasedBody>,
    frames: Frames,
    /// The frames in force before, to put back.
    outer: Frames,
}

/// Prepare the poll of the body of root node `node`, entry `id`: the run's bookkeeping, as
/// [`TaskFuture`](crate::TaskFuture) does for inline tasks.
pub(crate) fn begin(run: &mut RunState, node: u32, id: u32) -> Option<Polling> {
    let entry = run.detached.entry(id)?;
    let body = entry.body?;
    let first = !std::mem::replace(&mut entry.started, true);
    // SAFETY: registered, so alive (see `Handle`), and not referenced elsewhere: its parent
    // waits, and the scheduler is about to poll it.
    let name = unsafe { body.as_ref() }.name();
    let frames = entry.frames.clone();
    run.current = node;
    run.current_entry = id;
    run.task = name;
    if first {
        run.counters.tasks += 1;
    }
    run.counters.polls += 1;
    if run.diagnose.is_some() {
        let (path, hidden) = run.detached.path(id, 3);
        if let Some(diagnosis) = &mut run.diagnose {
            diagnosis.enter_root(path, hidden);
        }
    }
    if let Some(profile) = &mut run.profile {
        profile.enter(name, first);
    }
    let outer = std::mem::replace(&mut run.frames, frames.clone());
    Some(Polling {
        body,
        frames,
        outer,
    })
}

/// Poll the body (the run's state not borrowed: the body reaches it itself).
pub(crate) fn poll(polling: &Polling, cx: &mut Context<'_>) -> bool {
    let _in_force = polling.frames.enter();
    // SAFETY: registered, so alive (see `Handle`); the scheduler is the only one touching it
    // now: its parent waits, and the run's lock keeps an escaped handle out.
    unsafe { (*polling.body.as_ptr()).poll_body(cx) }
}

/// End the poll of entry `id`; when its body has `finished`, wake its awaiter and unregister
/// it. Returns the frames to drop once the run's state is released.
pub(crate) fn end(run: &mut RunState, id: u32, polling: Polling, finished: bool) -> [Frames; 2] {
    let name = run.task;
    if let Some(diagnosis) = &mut run.diagnose {
        diagnosis.exit_root(!finished);
    }
    if let Some(profile) = &mut run.profile {
        profile.exit(name);
    }
    run.current_entry = NONE;
    let Polling { frames, outer, .. } = polling;
    let left = std::mem::replace(&mut run.frames, outer);
    let mut removed = Frames::default();
    if finished {
        let awaiter = run.detached.entry(id).map(|e| e.awaiter);
        if let Some(r) = run.detached.remove(id, &mut run.nodes) {
            removed = r.frames;
        }
        if let Some(awaiter) = awaiter {
            run.nodes.wake(awaiter);
        }
    }
    drop(frames);
    [left, removed]
}

/// The task future of a boxed task: its body on the heap, `Send`. See [`Task::boxed`].
///
/// Inside a run the scheduler polls the body on its own (the recursion of a boxed asynq
/// function costs no stack and the same time at any depth); elsewhere it is polled where it is.
///
/// [`Task::boxed`]: crate::Task::boxed
pub struct BoxFuture<'a, T>(Handle<dyn Body<T> + 'a>);

/// The task future of a boxed task that need not be `Send`; see [`Task::boxed_local`].
///
/// [`Task::boxed_local`]: crate::Task::boxed_local
pub struct LocalBoxFuture<'a, T>(Handle<dyn Body<T> + 'a>);

// SAFETY: the body was `Send` when boxed (the bound of `BoxFuture::new`), and its output is
// `Send`; the handle owns both, and shares them only with its run (see `Detached`).
unsafe impl<T: Send> Send for BoxFuture<'_, T> {}

impl<'a, T> BoxFuture<'a, T> {
    pub(crate) fn new<F>(name: &'static str, future: F) -> Self
    where
        F: Future<Output = T> + Send + 'a,
    {
        let cell = Box::into_raw(Box::new(Cell {
            header: Header {
                name,
                entry: NONE,
                link: None,
            },
            state: State::Running(future),
        }));
        // SAFETY: from `Box::into_raw`, never null.
        let cell = unsafe { NonNull::new_unchecked(cell) };
        let typed: NonNull<dyn Body<T> + 'a> = cell;
        BoxFuture(Handle::new(typed, cell))
    }
}

impl<'a, T> LocalBoxFuture<'a, T> {
    pub(crate) fn new<F>(name: &'static str, future: F) -> Self
    where
        F: Future<Output = T> + 'a,
    {
        let cell = Box::into_raw(Box::new(Cell {
            header: Header {
                name,
                entry: NONE,
                link: None,
            },
            state: State::Running(future),
        }));
        // SAFETY: from `Box::into_raw`, never null.
        let cell = unsafe { NonNull::new_unchecked(cell) };
        let typed: NonNull<dyn Body<T> + 'a> = cell;
        LocalBoxFuture(Handle::new(typed, cell))
    }
}

impl<T> Future for BoxFuture<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.poll(cx, false)
    }
}

impl<T> Future for LocalBoxFuture<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.poll(cx, true)
    }
}

impl<T> std::fmt::Debug for BoxFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxFuture").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for LocalBoxFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBoxFuture").finish_non_exhaustive()
    }
}
