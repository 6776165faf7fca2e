//! The deterministic simulation of VM-served mappings (`wcfs_testkit::sim_vm`).
//!
//! * `cargo test --release -p wcfs-testkit --test sim_vm` runs `SIM_VM_SEEDS`
//!   (default 2000) seeds of `SIM_VM_STEPS` (default 300) steps.
//! * `SIM_VM_SEED=<n> cargo test --release -p wcfs-testkit --test sim_vm replay -- --nocapture`
//!   replays one seed (a failure prints this command).
//! * With `--features sim-bugs`, the planted bug `IgnoreVmDirty` (pins
//!   replace pages the VM reports dirty) must be caught, and its failure
//!   replay the same way.
use wcfs_testkit::sim_vm::{run, VmReport};

/// The planted bugs are switched on process-wide: the tests of this binary
/// run one at a time, so that none runs while another's bug is on.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn default_seeds() {
    let _serial = serial();
    let (n, steps) = (env("SIM_VM_SEEDS", 2000), env("SIM_VM_STEPS", 300) as usize);
    let mut sum = VmReport::default();
    for seed in 0..n {
        let r = run(seed, steps).unwrap_or_else(|f| panic!("{f}"));
        sum.pins += r.pins;
        sum.dirty_kept += r.dirty_kept;
        sum.parks += r.parks;
        sum.discards += r.discards;
        sum.downs += r.downs;
    }
    eprintln!("{n} seeds x {steps} steps: {sum:?}");
    // The runs exercise what they check.
    assert!(sum.pins > n && sum.dirty_kept > n / 4, "{sum:?}");
    assert!(sum.parks > n / 4 && sum.discards > n, "{sum:?}");
    assert!(
        sum.downs > 0,
        "no failing VM callback took a connection down: {sum:?}"
    );
}

#[test]
fn replay() {
    let _serial = serial();
    let Ok(seed) = std::env::var("SIM_VM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("SIM_VM_SEED");
    match run(seed, env("SIM_VM_STEPS", 300) as usize) {
        Ok(r) => eprintln!("seed {seed}: {r:?}"),
        Err(f) => panic!("{f}"),
    }
}

#[test]
fn same_seed_same_run() {
    let _serial = serial();
    let a = format!("{:?}", run(7, 200));
    assert_eq!(a, format!("{:?}", run(7, 200)));
}

/// Planted bug `bug` is caught within 500 seeds, by a failure saying
/// `says`, which replays the same.
#[cfg(feature = "sim-bugs")]
fn caught(bug: wcfs_core::bugs::Bug, says: &str) {
    use wcfs_core::bugs::{set, Bug};
    set(bug);
    let f = (0..500).find_map(|seed| run(seed, 300).err());
    let again = f.as_ref().map(|f| run(f.seed, 300).expect_err("replays"));
    set(Bug::None);
    let f = f.unwrap_or_else(|| panic!("{bug:?} not caught in 500 seeds"));
    eprintln!("{bug:?}: caught by seed {}: {}", f.seed, f.what);
    assert!(f.what.contains(says), "{f}");
    let again = again.unwrap();
    assert_eq!((again.step, &again.what), (f.step, &f.what));
}

#[cfg(feature = "sim-bugs")]
#[test]
fn planted_vm_bugs_are_caught() {
    let _serial = serial();
    use wcfs_core::bugs::Bug;
    caught(Bug::IgnoreVmDirty, "replaced");
    caught(Bug::LockVmsDescending, "holding VM");
}
