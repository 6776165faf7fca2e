//! Feature `log`: what the backend tells an operator, captured by a logger
//! of this test: the pin thread's start and end, a slow pin, the
//! connection going down and why.
#![cfg(feature = "log")]
mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{open, wait_for, Tree, F, REV};

static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "wcfs_linux"
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LINES
                .lock()
                .unwrap()
                .push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn lines() -> Vec<(log::Level, String)> {
    LINES.lock().unwrap().clone()
}

fn has(level: log::Level, part: &str) -> bool {
    lines().iter().any(|(l, s)| *l == level && s.contains(part))
}

#[test]
fn pin_thread_slow_pin_and_going_down_are_logged() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    // Every pin is slow from here on: its handling time is over 0 ns.
    wcfs_linux::set_slow_pin_threshold(Duration::ZERO);

    let tree = Tree::new("oplog");
    let (conn, _fh, mut srv) = open(&tree);
    let who = format!("conn{}", conn.id());
    wait_for("the start", || has(log::Level::Debug, "pin thread started"));
    assert!(
        lines()[0]
            .1
            .starts_with("wcfs /dev/shm/wcfs-linux-test-oplog"),
        "{:?}",
        lines()
    );

    srv.send(&format!("2 pin {F} #1 @{REV}"));
    srv.expect("2 ack");
    wait_for("the slow pin", || has(log::Level::Warn, "slow pin: "));

    // A pin for a file nobody watches: the connection goes down, saying why.
    srv.send("4 pin 00000000000000ff #0 @head");
    wait_for("the end", || has(log::Level::Debug, "pin thread ended"));
    let down = lines()
        .into_iter()
        .find(|(l, s)| *l == log::Level::Warn && s.contains("connection down: "))
        .expect("down logged");
    assert!(down.1.contains(&who), "{down:?}");
    assert_eq!(
        down.1.split("connection down: ").nth(1).unwrap(),
        conn.down_reason().expect("down").to_string(),
        "the reason is the core's"
    );
}
