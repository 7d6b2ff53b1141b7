// Methods taking `&self`, `&mut self` and `self`, associated functions, and trait methods
// with and without a default body.

use asynq_core::{Runtime, asynq, ready};

struct Greeter {
    greeting: String,
    calls: u32,
}

impl Greeter {
    #[asynq]
    fn greet(&self, name: &str) -> String {
        format!("{}, {name}", self.greeting)
    }

    #[asynq]
    fn greet_twice(&mut self, name: &str) -> String {
        self.calls += 1;
        let (a, b) = (self.greet(name), Self::exclaim(name.to_owned())).await;
        format!("{a} {b}")
    }

    #[asynq]
    fn exclaim(name: String) -> String {
        format!("{name}!")
    }

    #[asynq]
    fn into_greeting(self) -> String {
        self.greeting
    }
}

// An asynq method named `run` is not a blocking `Runtime::run`: its task is awaited.
struct Job(u32);

impl Job {
    #[asynq]
    fn run(&self, times: u32) -> u32 {
        self.0 * times
    }

    #[asynq]
    fn run_twice(&self) -> u32 {
        let once = self.run(1).await;
        once + self.run(1).await
    }
}

trait Named {
    #[asynq]
    fn name(&self) -> String;

    #[asynq]
    fn shout(&self) -> String {
        self.name().await.to_uppercase()
    }
}

struct Alice;

impl Named for Alice {
    #[asynq]
    fn name(&self) -> String {
        ready("alice".to_owned()).await
    }
}

fn main() {
    let rt = Runtime::new();
    let mut greeter = Greeter {
        greeting: "hello".to_owned(),
        calls: 0,
    };
    assert_eq!(
        rt.run(greeter.greet_twice("bob")).unwrap(),
        "hello, bob bob!"
    );
    assert_eq!(greeter.calls, 1);
    assert_eq!(rt.run(greeter.into_greeting()).unwrap(), "hello");
    assert_eq!(rt.run(Alice.shout()).unwrap(), "ALICE");
    assert_eq!(rt.run(Job(21).run_twice()).unwrap(), 42);
}
