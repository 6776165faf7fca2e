//! The oracle bites: five deliberate client bugs, each caught by the
//! simulation within the default seed budget.
//!
//! `cargo test --release -p wcfs-testkit --features sim-bugs --test sim_bugs -- --nocapture`
#![cfg(feature = "sim-bugs")]

use wcfs_core::bugs::{set, Bug};
use wcfs_testkit::sim::{run, Failure, SimConfig};

/// The first failure among the default 2000 seeds of 400 steps.
fn first_failure() -> Option<Failure> {
    (0..2000u64).find_map(|seed| {
        run(&SimConfig {
            seed,
            steps: 400,
            faults: true,
        })
        .err()
    })
}

/// What a failure prints leads back to it: the run's weights and the
/// replay command come first and last, and running the configuration the
/// command names fails the same way at the same step.
fn replays(f: &Failure) {
    let text = f.to_string();
    assert!(text.contains(&format!("run: seed {} ", f.seed)), "{text}");
    assert!(text.contains("user ops ["), "{text}");
    assert!(text.ends_with(&format!("replay: {}", f.replay())), "{text}");
    let steps: usize = f
        .replay()
        .split_whitespace()
        .find_map(|w| w.strip_prefix("SIM_STEPS="))
        .and_then(|n| n.parse().ok())
        .expect("SIM_STEPS in the replay command");
    let again = run(&SimConfig {
        seed: f.seed,
        steps,
        faults: f.cfg.faults,
    })
    .expect_err("the replay fails too");
    assert_eq!((again.step, &again.what), (f.step, &f.what));
}

#[test]
fn every_deliberate_bug_is_caught() {
    if let Some(f) = first_failure() {
        panic!("the simulation fails without bugs: {f}");
    }
    for bug in [
        Bug::SkipRemapOnPin,
        Bug::IgnoreDirty,
        Bug::NoZerosPastEnd,
        Bug::ReleaseCallerRange,
        Bug::NoProtectFallback,
    ] {
        set(bug);
        let caught = first_failure();
        set(Bug::None);
        let f = caught.unwrap_or_else(|| panic!("{bug:?} not caught in 2000 seeds"));
        println!("{bug:?}: caught by seed {}: {}", f.seed, f.what);
        set(bug);
        replays(&f);
        set(Bug::None);
    }
}
