//! How a run ends: a failure that says how to replay it, or a report of what
//! the run did.

use super::SimConfig;

/// A failed run: what broke, where, and how to replay it.
#[derive(Debug)]
pub struct Failure {
    /// The seed of the failing run.
    pub seed: u64,
    /// The step that failed (the run's `steps` and beyond: the liveness
    /// phase or the final close).
    pub step: usize,
    /// The run's configuration.
    pub cfg: SimConfig,
    /// The property broken, with what showed it.
    pub what: String,
    /// The run's choices (its swarm weights and faults), logged first.
    pub setup: String,
    /// The last events before the failure, naming operations and faults.
    pub tail: Vec<String>,
}

impl Failure {
    /// The command that replays the failing run up to its failure: a
    /// failure in the safety phase is reached with fewer steps (the steps
    /// before it do not depend on the run's length), a later one needs the
    /// whole run.
    pub fn replay(&self) -> String {
        let steps = if self.step < self.cfg.steps {
            self.step + 1
        } else {
            self.cfg.steps
        };
        format!(
            "SIM_SEED={} SIM_STEPS={steps} SIM_FAULTS={} cargo test --release -p wcfs-testkit --test sim sim_replay -- --nocapture",
            self.seed,
            u8::from(self.cfg.faults)
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation failed at step {}: {}", self.step, self.what)?;
        writeln!(f, "run: {}", self.setup)?;
        writeln!(f, "last events:")?;
        for e in &self.tail {
            writeln!(f, "  {e}")?;
        }
        write!(f, "replay: {}", self.replay())
    }
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Steps run (safety phase, liveness phase and final close).
    pub steps: usize,
    /// Hash of the run's log: equal for equal seeds (determinism).
    pub trace_hash: u64,
    /// User reads checked byte for byte against the model.
    pub reads_checked: usize,
    /// `pin` lines the server sent.
    pub pins: usize,
    /// Server-side faults injected ([`Fault`](super::Fault)).
    pub faults_injected: usize,
    /// OS calls the mocks failed.
    pub os_faults_injected: usize,
    /// Transactions committed.
    pub commits: usize,
    /// Mappings placed at a range the user reserved.
    pub fixed_maps: usize,
    /// Commits that deleted the last blocks of a file (head shrank).
    pub shrinks: usize,
    /// Client opens and resyncs that found head shorter than they last
    /// knew it (and the views stayed checked, byte-exact).
    pub shrinks_followed: usize,
    /// Reads of head past its end in a view set up before the shrink: the
    /// server's limit (SIGBUS on Linux), not checked for data.
    pub server_limit_faults: usize,
    /// Reads of zeros where head grew back, unpinned, between the client's
    /// stat and its watch (the same limit: see `regrowth_race`).
    pub regrowth_zeros: usize,
    /// Reads of a closed view the OS refused both to fault and to protect
    /// (the mapping says `exposed`): not checked for data.
    pub exposed_reads: usize,
}
