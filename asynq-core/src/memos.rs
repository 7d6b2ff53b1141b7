//! The memo tables of one run: per memoized function, its executions by arguments (the
//! future of a memoized call is in [`memo`](crate::memo)).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::nodes::{LazyWaiter, Waiters};

/// The memo tables of one run, one per memoized function (and instantiation).
///
/// Keys and outputs are type-erased where the expansion checks them ([`check_key`],
/// [`check_output`]): the shared-execution future itself then carries no trait bounds, so a
/// type that cannot be a key is reported once, on the argument, and nowhere else.
#[derive(Default)]
pub(crate) struct Memos {
    tables: HashMap<TypeId, HashMap<Vec<ErasedKey>, Entry>>,
    /// The outputs of failed executions that calls waited on, by execution, with how many of
    /// those calls have yet to take theirs. A failure is gone from `tables` at once: the next
    /// call runs the body again.
    failed: HashMap<u64, (Box<dyn Any + Send>, usize)>,
    /// The number of the next execution.
    executions: u64,
}

impl fmt::Debug for Memos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memos")
            .field("functions", &self.tables.len())
            .finish()
    }
}

enum Entry {
    Running { execution: u64, waiters: Waiters },
    Done(Box<dyn Any + Send>),
}

/// One argument of a memoized call, type-erased: hashed, compared and cloned through its own
/// implementations.
#[doc(hidden)]
pub struct ErasedKey(pub(crate) Box<dyn DynKey>);

pub(crate) trait DynKey: Send + 'static {
    fn as_any(&self) -> &dyn Any;
    fn hash_into(&self, state: &mut dyn Hasher);
    fn eq_key(&self, other: &dyn DynKey) -> bool;
    fn clone_key(&self) -> Box<dyn DynKey>;
}

impl<K: Hash + Eq + Clone + Send + 'static> DynKey for K {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn hash_into(&self, mut state: &mut dyn Hasher) {
        TypeId::of::<K>().hash(&mut state);
        self.hash(&mut state);
    }
    fn eq_key(&self, other: &dyn DynKey) -> bool {
        other.as_any().downcast_ref::<K>() == Some(self)
    }
    fn clone_key(&self) -> Box<dyn DynKey> {
        Box::new(self.clone())
    }
}

impl Hash for ErasedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash_into(state);
    }
}

impl PartialEq for ErasedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_key(&*other.0)
    }
}

impl Eq for ErasedKey {}

impl Clone for ErasedKey {
    fn clone(&self) -> Self {
        ErasedKey(self.0.clone_key())
    }
}

impl fmt::Debug for ErasedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErasedKey")
    }
}

/// How to share a memoized function's output: store a clone, clone it back out, and tell
/// a failure (which is not kept).
#[doc(hidden)]
pub struct Shareable<T> {
    pub(crate) store: fn(&T) -> Box<dyn Any + Send>,
    pub(crate) load: fn(&(dyn Any + Send)) -> T,
    pub(crate) failed: fn(&T) -> bool,
}

impl<T> Shareable<T> {
    /// The same, with `failed` telling which outputs are failures.
    pub fn failures(self, failed: fn(&T) -> bool) -> Self {
        Shareable { failed, ..self }
    }
}

impl<T> fmt::Debug for Shareable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shareable")
    }
}

/// What a new call found in its function's table.
pub(crate) enum Found<T> {
    /// The output of a finished execution.
    Done(T),
    /// An execution under way: the call waits for it.
    Running(u64),
}

impl Memos {
    /// A call of function `id` with arguments `key`: the output of its finished execution, the
    /// execution under way it waits on (recording `waiter`), or `None`: the call runs the body.
    pub(crate) fn start<T>(
        &mut self,
        id: TypeId,
        key: &[ErasedKey],
        share: &Shareable<T>,
        waiter: LazyWaiter<'_>,
    ) -> Option<Found<T>> {
        let table = self.tables.entry(id).or_default();
        match table.get_mut(key) {
            Some(Entry::Done(output)) => Some(Found::Done((share.load)(&**output))),
            Some(Entry::Running { execution, waiters }) => {
                // The waiter (and the node it needs) only for a call that has to wait.
                waiters.push(waiter.get());
                Some(Found::Running(*execution))
            }
            None => {
                let execution = self.executions;
                self.executions += 1;
                let waiters = Waiters::new();
                table.insert(key.to_vec(), Entry::Running { execution, waiters });
                None
            }
        }
    }

    /// The execution of `key` finished with `output`: keep it for later calls, unless it is a
    /// failure (then only the calls that waited on it get it). Returns those calls.
    pub(crate) fn finish<T>(
        &mut self,
        id: TypeId,
        key: Vec<ErasedKey>,
        output: &T,
        share: &Shareable<T>,
    ) -> Waiters {
        let table = self.tables.entry(id).or_default();
        if (share.failed)(output) {
            let Some(Entry::Running { execution, waiters }) = table.remove(&key) else {
                return Waiters::new();
            };
            if !waiters.is_empty() {
                let stored = (share.store)(output);
                self.failed.insert(execution, (stored, waiters.len()));
            }
            return waiters;
        }
        match table.insert(key, Entry::Done((share.store)(output))) {
            Some(Entry::Running { waiters, .. }) => waiters,
            _ => Waiters::new(),
        }
    }

    /// The output of `execution` of `key`, for a call that waited on it, once it finished.
    pub(crate) fn take_output<T>(
        &mut self,
        id: TypeId,
        key: &[ErasedKey],
        execution: u64,
        share: &Shareable<T>,
    ) -> Option<T> {
        if let Some((output, readers)) = self.failed.get_mut(&execution) {
            let output = (share.load)(&**output);
            *readers -= 1;
            if *readers == 0 {
                self.failed.remove(&execution);
            }
            return Some(output);
        }
        match self.tables.get(&id)?.get(key)? {
            Entry::Done(output) => Some((share.load)(&**output)),
            Entry::Running { .. } => None,
        }
    }
}
