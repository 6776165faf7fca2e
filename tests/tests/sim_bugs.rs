//! The oracle bites: four deliberate client bugs, each caught by the
//! simulation within the default seed budget.
//!
//! `cargo test --release -p wcfs-testkit --features sim-bugs --test sim_bugs -- --nocapture`
#![cfg(feature = "sim-bugs")]

use wcfs_core::bugs::{set, Bug};
use wcfs_testkit::sim::{run, SimConfig};

/// The first seed (of the default 2000, 400 steps) whose run fails, and why.
fn first_failure() -> Option<(u64, String)> {
    (0..2000u64).find_map(|seed| {
        run(&SimConfig {
            seed,
            steps: 400,
            faults: true,
        })
        .err()
        .map(|f| (seed, f.what))
    })
}

#[test]
fn every_deliberate_bug_is_caught() {
    assert_eq!(first_failure(), None, "the simulation passes without bugs");
    for bug in [
        Bug::SkipRemapOnPin,
        Bug::IgnoreDirty,
        Bug::NoZerosPastEnd,
        Bug::ReleaseCallerRange,
    ] {
        set(bug);
        let caught = first_failure();
        set(Bug::None);
        let (seed, what) = caught.unwrap_or_else(|| panic!("{bug:?} not caught in 2000 seeds"));
        println!("{bug:?}: caught by seed {seed}: {what}");
    }
}
