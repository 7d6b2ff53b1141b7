//! What is in force around a poll: scoped values and hooks, as a chain a run carries.
//!
//! [`ScopedKey::scope`](crate::ScopedKey::scope) and [`with_hooks`](crate::with_hooks) act on
//! the polls of the task they wrap and of everything it awaits. Most of those polls happen
//! inside the wrapper's own poll, which sets the value (or calls the hooks) around them. A
//! task that the scheduler polls on its own (a boxed task, see
//! [`detached`](crate::detached)) is not polled from inside its ancestors, so the run keeps
//! the chain of frames in force while it polls ([`Frames`]), each detached task captures the
//! chain when it is first awaited, and the scheduler puts the chain back in force around each
//! of its polls ([`Frames::enter`]).
//!
//! A chain holds each scoped key at most once (a scope of a key hides the outer scopes of
//! that key, so they are left out when the inner frame is made), so putting a chain in force
//! costs the number of distinct keys and hooks around the task, not the depth of the
//! recursion that set them.

use std::sync::Arc;

use smallvec::SmallVec;

/// A value in force for one scoped key.
pub(crate) trait ValueFrame: Send + Sync {
    /// The key, as an address (the key's thread-local).
    fn key(&self) -> *const ();
    /// Put the value in force on this thread; returns what was in force before.
    fn enter(&self) -> *const ();
    /// Put back what [`enter`](ValueFrame::enter) returned.
    fn exit(&self, previous: *const ());
}

/// Hooks around each poll.
pub(crate) trait HookFrame: Send + Sync {
    fn resume(&self);
    fn pause(&self);
}

enum Kind {
    Value(Arc<dyn ValueFrame>),
    Hooks(Arc<dyn HookFrame>),
}

impl Clone for Kind {
    fn clone(&self) -> Self {
        match self {
            Kind::Value(v) => Kind::Value(Arc::clone(v)),
            Kind::Hooks(h) => Kind::Hooks(Arc::clone(h)),
        }
    }
}

/// One frame of a chain, innermost first.
pub(crate) struct Frame {
    kind: Kind,
    rest: Frames,
}

/// A chain of frames; empty outside any scope or hooks.
#[derive(Clone, Default)]
pub(crate) struct Frames(Option<Arc<Frame>>);

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames")
            .field("len", &self.iter().count())
            .finish()
    }
}

impl Frames {
    fn iter(&self) -> impl Iterator<Item = &Frame> {
        std::iter::successors(self.0.as_deref(), |f| f.rest.0.as_deref())
    }

    /// This chain with `value` innermost, and any outer frame of the same key left out.
    pub(crate) fn with_value(&self, value: Arc<dyn ValueFrame>) -> Frames {
        let rest = self.without(value.key());
        Frames(Some(Arc::new(Frame {
            kind: Kind::Value(value),
            rest,
        })))
    }

    /// This chain with `hooks` innermost.
    pub(crate) fn with_hooks(&self, hooks: Arc<dyn HookFrame>) -> Frames {
        Frames(Some(Arc::new(Frame {
            kind: Kind::Hooks(hooks),
            rest: self.clone(),
        })))
    }

    /// This chain without the frame of `key`: shared as it is when there is none, else the
    /// frames inside it copied (at most one per distinct key and hooks).
    fn without(&self, key: *const ()) -> Frames {
        let mut inside: SmallVec<[&Frame; 4]> = SmallVec::new();
        let mut found = None;
        for frame in self.iter() {
            if matches!(&frame.kind, Kind::Value(v) if v.key() == key) {
                found = Some(frame);
                break;
            }
            inside.push(frame);
        }
        let Some(found) = found else {
            return self.clone();
        };
        let mut chain = found.rest.clone();
        for frame in inside.into_iter().rev() {
            chain = Frames(Some(Arc::new(Frame {
                kind: frame.kind.clone(),
                rest: chain,
            })));
        }
        chain
    }

    /// The scoped values in force, as a memo key (see [`ValuesKey`]).
    pub(crate) fn values_key(&self) -> ValuesKey {
        let mut frame = self.0.as_ref();
        while let Some(f) = frame {
            if matches!(f.kind, Kind::Value(_)) {
                return ValuesKey(Some(Arc::clone(f)));
            }
            frame = f.rest.0.as_ref();
        }
        ValuesKey(None)
    }

    /// Put the chain in force for one poll: values set, hooks resumed (outermost first).
    /// Dropping the guard undoes it, innermost first, also when the poll panics.
    pub(crate) fn enter(&self) -> Entered<'_> {
        let mut frames: SmallVec<[(&Frame, *const ()); 4]> =
            self.iter().map(|f| (f, std::ptr::null())).collect();
        for (frame, previous) in frames.iter_mut().rev() {
            match &frame.kind {
                Kind::Value(v) => *previous = v.enter(),
                Kind::Hooks(h) => h.resume(),
            }
        }
        Entered { frames }
    }
}

/// The scoped values in force where a memoized call is made: equal for two calls under the
/// same value frames (the same `scope` calls), whatever hooks are around them. A frame holds
/// the values of its key and of every key outside it, so the innermost value frame stands for
/// all of them. It is held, not only compared, so that its address is not reused by another
/// frame while a memo table keeps it.
#[derive(Clone)]
pub(crate) struct ValuesKey(Option<Arc<Frame>>);

impl PartialEq for ValuesKey {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for ValuesKey {}

impl std::hash::Hash for ValuesKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_ref().map(Arc::as_ptr).hash(state);
    }
}

/// A chain in force; see [`Frames::enter`].
pub(crate) struct Entered<'a> {
    frames: SmallVec<[(&'a Frame, *const ()); 4]>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        for (frame, previous) in &self.frames {
            match &frame.kind {
                Kind::Value(v) => v.exit(*previous),
                Kind::Hooks(h) => h.pause(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Mutex;

    use super::*;

    thread_local! {
        static SLOT_A: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
        static SLOT_B: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    }

    /// A key: a `static`, whose address identifies it (as a `ScopedKey` is).
    struct Key(&'static std::thread::LocalKey<Cell<*const ()>>);
    static A: Key = Key(&SLOT_A);
    static B: Key = Key(&SLOT_B);

    struct Value(&'static Key, usize);
    impl ValueFrame for Value {
        fn key(&self) -> *const () {
            std::ptr::from_ref(self.0).cast()
        }
        fn enter(&self) -> *const () {
            (self.0)
                .0
                .with(|c| c.replace(std::ptr::without_provenance(self.1)))
        }
        fn exit(&self, previous: *const ()) {
            (self.0).0.with(|c| c.set(previous));
        }
    }

    struct Log(Arc<Mutex<Vec<&'static str>>>, &'static str);
    impl HookFrame for Log {
        fn resume(&self) {
            self.0.lock().unwrap().push(self.1);
        }
        fn pause(&self) {
            self.0.lock().unwrap().push("pause");
        }
    }

    fn read(key: &'static Key) -> usize {
        key.0.with(|c| c.get().addr())
    }

    #[test]
    fn a_chain_holds_each_key_once_and_puts_it_back() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let chain = Frames::default()
            .with_value(Arc::new(Value(&A, 1)))
            .with_hooks(Arc::new(Log(Arc::clone(&log), "outer")))
            .with_value(Arc::new(Value(&B, 2)))
            .with_value(Arc::new(Value(&A, 3)));
        assert_eq!(
            chain.iter().count(),
            3,
            "the outer A is hidden and left out"
        );
        {
            let _in_force = chain.enter();
            assert_eq!((read(&A), read(&B)), (3, 2));
        }
        assert_eq!((read(&A), read(&B)), (0, 0));
        assert_eq!(*log.lock().unwrap(), ["outer", "pause"]);
        // A deep recursion setting the same key at every level keeps one frame.
        let mut deep = Frames::default();
        for i in 0..1000 {
            deep = deep.with_value(Arc::new(Value(&A, i)));
        }
        assert_eq!(deep.iter().count(), 1);
    }

    #[test]
    fn the_values_key_ignores_hooks_and_tells_scopes_apart() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let values = Frames::default().with_value(Arc::new(Value(&A, 1)));
        let hooked = values.with_hooks(Arc::new(Log(log, "h")));
        assert!(values.values_key() == hooked.values_key());
        let other = Frames::default().with_value(Arc::new(Value(&A, 1)));
        assert!(
            values.values_key() != other.values_key(),
            "another `scope` call"
        );
        assert!(Frames::default().values_key() == Frames::default().values_key());
        assert!(Frames::default().values_key() != values.values_key());
    }
}
