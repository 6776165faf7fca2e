//! The deterministic simulation: many seeds in the default run, replay of
//! one seed, determinism, and a soak mode.
//!
//! * `cargo test --release -p wcfs-testkit --test sim` runs `SIM_SEEDS`
//!   (default 2000) seeds of `SIM_STEPS` (default 400) steps, from seed
//!   `SIM_BASE` (default 0).
//! * `SIM_SEED=<n> [SIM_STEPS=<k>] [SIM_FAULTS=0] cargo test --release -p wcfs-testkit --test sim sim_replay -- --nocapture`
//!   replays one seed (`SIM_STEPS` default 400, faults allowed unless
//!   `SIM_FAULTS=0`); a failure prints this command for its seed.
//! * `SIM_PEEK=<n> [SIM_STEPS=<k>] cargo test --release -p wcfs-testkit --test sim sim_peek -- --nocapture`
//!   prints every event of a fault-free run of one seed (`SIM_STEPS`
//!   default 200).
//! * `SIM_SOAK_SECS=<s> cargo test --release -p wcfs-testkit --test sim sim_soak -- --nocapture`
//!   runs fresh seeds for that long and reports steps per second.
use std::time::Instant;

use wcfs_testkit::sim::{run, summary, Report, SimConfig};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seeds(seeds: impl Iterator<Item = u64> + Send + Clone, steps: usize) -> Vec<Report> {
    let seeds: Vec<u64> = seeds.collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunks: Vec<Vec<u64>> = (0..threads)
        .map(|t| seeds.iter().copied().skip(t).step_by(threads).collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                chunk
                    .into_iter()
                    .map(|seed| {
                        match run(&SimConfig {
                            seed,
                            steps,
                            faults: true,
                        }) {
                            Ok(r) => Ok(r),
                            Err(f) => Err(f.to_string()),
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut reports = Vec::new();
    for h in handles {
        for r in h.join().expect("sim thread") {
            match r {
                Ok(r) => reports.push(r),
                Err(f) => panic!("{f}"),
            }
        }
    }
    reports
}

#[test]
fn sim_many_seeds() {
    let n = env("SIM_SEEDS", 2000);
    let steps = env("SIM_STEPS", 400) as usize;
    let base = env("SIM_BASE", 0);
    let t = Instant::now();
    let reports = run_seeds(base..base + n, steps);
    println!("{}", summary(&reports, t.elapsed().as_secs_f64()));
    assert_eq!(reports.len() as u64, n);
    assert!(reports.iter().map(|r| r.reads_checked).sum::<usize>() > 0);
    assert!(
        reports.iter().map(|r| r.pins).sum::<usize>() > 0,
        "the runs must pin"
    );
    assert!(
        reports.iter().map(|r| r.faults_injected).sum::<usize>() > 0,
        "the runs must inject faults"
    );
}

#[test]
fn sim_is_deterministic() {
    for seed in [1u64, 7, 12345, 987654321] {
        let cfg = SimConfig {
            seed,
            steps: 300,
            faults: true,
        };
        let a = run(&cfg).unwrap_or_else(|f| panic!("{f}"));
        let b = run(&cfg).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}: two runs differ");
    }
    let a = run(&SimConfig {
        seed: 1,
        steps: 300,
        faults: true,
    })
    .unwrap();
    let b = run(&SimConfig {
        seed: 2,
        steps: 300,
        faults: true,
    })
    .unwrap();
    assert_ne!(
        a.trace_hash, b.trace_hash,
        "different seeds, different runs"
    );
}

#[test]
fn sim_replay() {
    let Ok(seed) = std::env::var("SIM_SEED") else {
        println!("set SIM_SEED=<n> (and SIM_STEPS) to replay a seed");
        return;
    };
    let seed: u64 = seed.parse().expect("SIM_SEED is a number");
    let steps = env("SIM_STEPS", 400) as usize;
    match run(&SimConfig {
        seed,
        steps,
        faults: env("SIM_FAULTS", 1) != 0,
    }) {
        Ok(r) => println!("seed {seed}: ok, {r:?}"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn sim_peek() {
    let Ok(seed) = std::env::var("SIM_PEEK") else {
        return;
    };
    let cfg = SimConfig {
        seed: seed.parse().unwrap(),
        steps: env("SIM_STEPS", 200) as usize,
        faults: false,
    };
    println!("{:?}", run(&cfg).map_err(|f| f.to_string()));
    for e in wcfs_testkit::sim::last_events(&cfg) {
        println!("{e}");
    }
}

#[test]
fn sim_soak() {
    let secs = env("SIM_SOAK_SECS", 0);
    if secs == 0 {
        println!("set SIM_SOAK_SECS=<s> to soak");
        return;
    }
    let t = Instant::now();
    let mut reports = Vec::new();
    let mut base = env("SIM_BASE", 1_000_000);
    while t.elapsed().as_secs() < secs {
        reports.extend(run_seeds(base..base + 200, env("SIM_STEPS", 500) as usize));
        base += 200;
    }
    println!("soak: {}", summary(&reports, t.elapsed().as_secs_f64()));
}
