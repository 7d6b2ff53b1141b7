use asynq_core::asynq;

struct Page {
    html: String,
}

#[asynq(memo)]
fn render(id: u64) -> Page {
    Page { html: format!("<p>{id}</p>") }
}

fn main() {
    let _task = render(1);
}
