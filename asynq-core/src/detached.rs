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
use crate::nodes::{NONE, Nodes, Waiter};

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

/// A cell as the run sees it: output type and lifetime erased.
pub(crate) trait ErasedBody {
    fn header(&mut self) -> &mut Header;
    /// Poll the body once; when it finishes, keep its output and drop the body. True once done.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> bool;
    /// Drop the body in place, unfinished (its task is cancelled).
    fn drop_body(&mut self);
}

/// A cell as its handle sees it.
pub(crate) trait Body<T>: ErasedBody {
    /// The output, once the body has finished; `None` before (and after it was taken).
    fn take_output(&mut self) -> Option<T>;
    /// Neither running nor holding an output: taken, or cancelled.
    fn is_empty(&self) -> bool;
}

impl<F: Future> ErasedBody for Cell<F> {
    fn header(&mut self) -> &mut Header {
        &mut self.header
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
    erased: NonNull<dyn ErasedBody>,
}

impl<B: ?Sized> Handle<B> {
    /// Take ownership of `cell`, made by `Box::into_raw`; `erased` points to the same cell.
    fn new(cell: NonNull<B>, erased: NonNull<dyn ErasedBody + '_>) -> Self {
        // SAFETY: only the lifetime of the trait object changes (same layout); see `erased`
        // for why the run never uses it past the cell's life.
        let erased = unsafe {
            std::mem::transmute::<NonNull<dyn ErasedBody + '_>, NonNull<dyn ErasedBody>>(erased)
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
        let erased = self.erased;
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
            run.attach_foreign(node, cx.waker());
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
    run.attach_foreign(run.current, waker);
    let parent = run.current_entry;
    let frames = run.frames.clone();
    if local {
        run.pin_to_thread();
    }
    let entry = run
        .detached
        .insert(body, header.name, awaiter, frames, parent);
    let node = run.nodes.alloc(NONE, entry);
    run.detached.entries[entry as usize].node = node;
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

/// One registered body in a run's arena.
struct Entry {
    /// The cell; `None` on the free list.
    body: Option<NonNull<dyn ErasedBody>>,
    /// Its root node.
    node: u32,
    /// The node of the future awaiting it, woken when it finishes.
    awaiter: Waiter,
    /// The scoped values and hooks in force where it was first awaited.
    frames: Frames,
    name: &'static str,
    /// Counted as a started task yet.
    started: bool,
    /// The entry it was registered from ([`NONE`]: the run's root task), and its place among
    /// that entry's children (the next free entry, on the free list).
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    prev_sibling: u32,
}

/// What [`Detached::remove`] gives back.
struct Removed {
    body: NonNull<dyn ErasedBody>,
    parent: u32,
    frames: Frames,
}

/// The bodies registered in one run.
#[derive(Default)]
pub(crate) struct Detached {
    entries: Vec<Entry>,
    free: u32,
    live: usize,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("live", &self.live)
            .finish()
    }
}

// SAFETY: the bodies are owned by handles inside the run's root future and are only touched
// while the run is polled, or dropped, on the thread doing it, or under the run's lock (see
// the module docs). A run holding `!Send` bodies (`LocalBoxFuture`) is `!Send` through its
// root future; one whose `!Send` body came from elsewhere is pinned to its thread
// (`RunState::pin_to_thread`).
unsafe impl Send for Detached {}

impl Detached {
    pub(crate) fn new() -> Self {
        Detached {
            entries: Vec::new(),
            free: NONE,
            live: 0,
        }
    }

    fn insert(
        &mut self,
        body: NonNull<dyn ErasedBody>,
        name: &'static str,
        awaiter: Waiter,
        frames: Frames,
        parent: u32,
    ) -> u32 {
        let entry = Entry {
            body: Some(body),
            node: NONE,
            awaiter,
            frames,
            name,
            started: false,
            parent,
            first_child: NONE,
            next_sibling: NONE,
            prev_sibling: NONE,
        };
        let id = if self.free != NONE {
            let id = self.free;
            self.free = self.entries[id as usize].parent;
            self.entries[id as usize] = entry;
            id
        } else {
            let id = u32::try_from(self.entries.len())
                .ok()
                .filter(|&id| id < NONE - 4)
                .expect("more than 2^32 - 5 boxed tasks waiting at once in one run");
            self.entries.push(entry);
            id
        };
        self.live += 1;
        if parent != NONE {
            let first = std::mem::replace(&mut self.entries[parent as usize].first_child, id);
            self.entries[id as usize].next_sibling = first;
            if first != NONE {
                self.entries[first as usize].prev_sibling = id;
            }
        }
        id
    }

    fn first_child(&self, id: u32) -> Option<u32> {
        let child = self.entries.get(id as usize)?.first_child;
        (child != NONE).then_some(child)
    }

    /// Take entry `id` out (its node freed, its cell marked unregistered); `None` if it is not
    /// registered.
    fn remove(&mut self, id: u32, nodes: &mut Nodes) -> Option<Removed> {
        let entry = self.entries.get_mut(id as usize)?;
        let mut body = entry.body.take()?;
        let (parent, prev, next) = (entry.parent, entry.prev_sibling, entry.next_sibling);
        let frames = std::mem::take(&mut entry.frames);
        nodes.free(entry.node);
        entry.parent = self.free;
        self.free = id;
        self.live -= 1;
        if prev != NONE {
            self.entries[prev as usize].next_sibling = next;
        } else if parent != NONE {
            self.entries[parent as usize].first_child = next;
        }
        if next != NONE {
            self.entries[next as usize].prev_sibling = prev;
        }
        // The children of a finished body are all finished; those of a cancelled one are
        // removed first. Any left (a body registered from inside another one but owned
        // elsewhere) become children of the run's root task.
        let mut child = std::mem::replace(&mut self.entries[id as usize].first_child, NONE);
        while child != NONE {
            let c = &mut self.entries[child as usize];
            c.parent = NONE;
            c.prev_sibling = NONE;
            child = std::mem::replace(&mut c.next_sibling, NONE);
        }
        // SAFETY: the body is registered until now, so its cell is alive, and no reference to
        // it is held (its handle is not being polled while the run updates the arena).
        let header = unsafe { body.as_mut() }.header();
        header.entry = NONE;
        header.link = None;
        Some(Removed {
            body,
            parent,
            frames,
        })
    }

    /// Every entry registered from the run's root task (for dropping a run innermost first).
    pub(crate) fn top_level(&self) -> Vec<u32> {
        (0..self.entries.len() as u32)
            .filter(|&id| {
                let e = &self.entries[id as usize];
                e.body.is_some() && e.parent == NONE
            })
            .collect()
    }

    /// The names of the entries above `id`, outermost first, at most `limit` of each end.
    pub(crate) fn path(&self, id: u32, limit: usize) -> (Vec<&'static str>, usize) {
        let mut names = Vec::new();
        let mut current = id;
        while let Some(entry) = self.entries.get(current as usize)
            && entry.body.is_some()
        {
            names.push(entry.name);
            current = entry.parent;
        }
        names.reverse();
        let hidden = names.len().saturating_sub(2 * limit);
        if hidden > 0 {
            names.drain(limit..names.len() - limit);
        }
        (names, hidden)
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
    let body =
        with_ctx(|run| run.detached.entries.get(top as usize).and_then(|e| e.body)).flatten();
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
    let entry = run.detached.entries.get_mut(id as usize)?;
    let body = entry.body?;
    let (name, first) = (entry.name, !std::mem::replace(&mut entry.started, true));
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
        let awaiter = run.detached.entries[id as usize].awaiter;
        if let Some(r) = run.detached.remove(id, &mut run.nodes) {
            removed = r.frames;
        }
        run.nodes.wake(awaiter);
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
