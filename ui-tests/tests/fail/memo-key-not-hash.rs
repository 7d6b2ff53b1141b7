use asynq_core::asynq;

#[derive(Clone, PartialEq)]
struct Filter {
    min: f64,
}

#[asynq(memo)]
fn matching(filter: Filter, limit: u32) -> Vec<u32> {
    (0..limit).filter(|&x| f64::from(x) >= filter.min).collect()
}

fn main() {
    let _task = matching(Filter { min: 1.0 }, 3);
}
