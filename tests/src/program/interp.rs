//! The interpreter: one asynq function per node kind would be compiled code; one recursive
//! function that reads the node does it for any program.

use std::collections::BTreeMap;
use std::sync::Arc;

use asynq_core::{BoxFuture, DataSource, Task, asynq};

use crate::faults::PANIC_MESSAGE;

use super::{Fail, Node, NodeId, Program, SrcA, SrcB, SrcC, combine, key_of, mix};

/// Evaluate node `id` of `program` as an asynq task.
#[asynq]
pub fn eval(program: Arc<Program>, id: NodeId) -> Result<i64, Fail> {
    let _live = program.live.guard();
    match program.nodes[id].clone() {
        Node::Const(v) => Ok(v),
        Node::Load(src, key) => load(src, key).await,
        Node::Chain(src, child) => {
            let v = eval_boxed(Arc::clone(&program), child).await?;
            load(src, key_of(v)).await
        }
        Node::Join(children) => {
            let tasks: Vec<_> = children
                .iter()
                .map(|&c| eval_boxed(Arc::clone(&program), c))
                .collect();
            combine(tasks.await)
        }
        Node::Pair(a, b) => {
            let (x, y) = (
                eval_boxed(Arc::clone(&program), a),
                eval_boxed(Arc::clone(&program), b),
            )
                .await;
            combine([x, y])
        }
        Node::Array(a, b) => {
            let tasks = [
                eval_boxed(Arc::clone(&program), a),
                eval_boxed(Arc::clone(&program), b),
            ];
            combine(tasks.await)
        }
        Node::Map(children) => {
            let tasks: BTreeMap<usize, _> = children
                .iter()
                .enumerate()
                .map(|(i, &c)| (i, eval_boxed(Arc::clone(&program), c)))
                .collect();
            combine(tasks.await.into_values())
        }
        Node::Maybe(child, flag) => {
            let task = flag.then(|| eval_boxed(Arc::clone(&program), child));
            task.await.unwrap_or(Ok(0))
        }
        Node::Seq(children) => {
            let mut h = 17;
            for c in children {
                h = mix(h, eval_boxed(Arc::clone(&program), c).await?);
            }
            Ok(h)
        }
        Node::Branch(cond, then, other) => {
            let v = eval_boxed(Arc::clone(&program), cond).await?;
            let next = if v % 2 == 0 { then } else { other };
            eval_boxed(program, next).await
        }
        Node::Catch(child) => Ok(eval_boxed(program, child)
            .await
            .unwrap_or_else(|e| e.code())),
        Node::Memo(child) => eval_memo(Shared(program), child).await,
        Node::Panic => panic!("{PANIC_MESSAGE} in node n{id}"),
    }
}

/// [`eval`], boxed for recursion.
///
/// `eval(..).boxed()` written inside `eval` itself cannot prove `Send` (the type would contain
/// itself); a plain function with a named return type breaks the cycle, so the interpreter's
/// tasks are `Send` and run under multi-threaded executors too.
pub fn eval_boxed(
    program: Arc<Program>,
    id: NodeId,
) -> Task<BoxFuture<'static, Result<i64, Fail>>> {
    eval(program, id).boxed()
}

/// A program as a memo key: compared by identity.
#[derive(Clone, Debug)]
pub struct Shared(pub Arc<Program>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Shared {}

impl std::hash::Hash for Shared {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// [`eval`] of node `id`, memoized: calls of the same node in a run share one execution.
#[asynq(boxed, memo)]
pub fn eval_memo(program: Shared, id: NodeId) -> Result<i64, Fail> {
    eval(program.0, id).await
}

/// Fetch `key` from store `src`.
#[asynq]
pub fn load(src: u8, key: u32) -> Result<i64, Fail> {
    let result = match src {
        0 => SrcA::load(key).await,
        1 => SrcB::load(key).await,
        _ => SrcC::load(key).await,
    };
    result.map_err(Fail::from)
}

/// The root task of `program`.
pub fn root_task(program: &Arc<Program>) -> Task<BoxFuture<'static, Result<i64, Fail>>> {
    eval_boxed(Arc::clone(program), program.root())
}

/// The name `Error::TaskPanicked` gives to a panic of the interpreter.
pub fn eval_name() -> String {
    format!("{}::eval", module_path!())
}
