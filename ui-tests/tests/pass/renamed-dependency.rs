// asynq under a renamed dependency: `asynq-ui-downstream` depends on asynq-core as `aq` and
// writes `#[aq::asynq(crate = "aq")]`; its tasks compile there and run here.

fn main() {
    let rt = asynq_core::Runtime::new();
    assert_eq!(rt.run(downstream::double(4)).unwrap(), 8);
    assert_eq!(rt.run(downstream::doubles(1)).unwrap(), (4, 2));
}
