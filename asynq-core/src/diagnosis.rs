//! What a stalled run says about the tasks still waiting.
//!
//! When nothing is runnable, nothing is pending and nothing is in flight while the root task
//! is unfinished, the run polls every unfinished future once more with a [`Diagnosis`] in
//! place: each task records where it waits, and the innermost waiting ones become the lines of
//! [`Error::Stall`](crate::Error::Stall).

/// What a stalled run's last pass recorded.
#[derive(Debug, Default)]
pub(crate) struct Diagnosis {
    /// The asynq functions being polled, outermost first: for a boxed task polled by the
    /// scheduler, the boxed tasks above it (a long chain shortened, `...` in its middle).
    pub(crate) stack: Vec<&'static str>,
    /// Innermost waiting tasks, each as its path from the root and what it waits on:
    /// `page > profile > stuck: waits on ...`.
    pub(crate) waiting: Vec<String>,
    /// Length of `waiting` when each frame of `stack` was entered.
    pub(crate) marks: Vec<usize>,
    /// What the innermost task polled last waits on, said by the future it awaits.
    pub(crate) note: Option<String>,
}

impl Diagnosis {
    /// A task starts a poll.
    pub(crate) fn enter(&mut self, task: &'static str) {
        self.stack.push(task);
        self.marks.push(self.waiting.len());
        self.note = None;
    }

    /// What the task being polled waits on (a fetch, a memoized call).
    pub(crate) fn waits_on(&mut self, what: String) {
        self.note = Some(what);
    }

    /// The task being polled waits on a boxed task, which is polled on its own and records
    /// what it waits on itself: nothing to record here.
    pub(crate) fn waits_on_detached(&mut self) {
        if let Some(mark) = self.marks.last_mut() {
            *mark = usize::MAX;
        }
    }

    /// The scheduler starts polling a boxed task, `path` the boxed tasks above it and itself
    /// (`hidden` more left out of its middle).
    pub(crate) fn enter_root(&mut self, path: Vec<&'static str>, hidden: usize) {
        self.stack.clear();
        self.marks.clear();
        let keep = path.len() / 2;
        for (i, name) in path.into_iter().enumerate() {
            if hidden > 0 && i == keep {
                self.stack.push("...");
            }
            self.stack.push(name);
        }
        // The boxed task's own frame: the last pushed, entered as `enter` would.
        let own = self.stack.pop().unwrap_or("<boxed>");
        self.enter(own);
    }

    /// The scheduler's poll of a boxed task ends.
    pub(crate) fn exit_root(&mut self, pending: bool) {
        self.exit(pending);
        self.stack.clear();
        self.marks.clear();
    }

    /// The task polled last ends its poll; record it if it waits and nothing inside it did
    /// (nor delegated it to a boxed task).
    pub(crate) fn exit(&mut self, pending: bool) {
        let mark = self.marks.pop().unwrap_or(0);
        if mark == usize::MAX {
            // Waits on a boxed task: propagate, so the tasks around it do not record either.
            if let Some(outer) = self.marks.last_mut() {
                *outer = usize::MAX;
            }
        } else if pending && self.waiting.len() == mark {
            let path: Vec<&str> = self
                .stack
                .iter()
                .map(|t| t.rsplit("::").next().unwrap_or(t))
                .collect();
            let note = self.note.take().unwrap_or_else(|| {
                "waits on a future that is neither an asynq task nor a fetch, so nothing \
                 will wake it"
                    .to_owned()
            });
            self.waiting.push(format!("{}: {note}", path.join(" > ")));
        }
        self.note = None;
        self.stack.pop();
    }
}
