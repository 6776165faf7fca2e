//! What a run does and what it leaves out: its configuration, the faults it
//! may inject, the scheduler's steps, and the per-run weights (swarm testing)
//! drawn from the seed.

use wcfs_core::OsOp;
use wcfs_mock::user_op::UserOpKind;

use super::Rng;

/// What a run does.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Decides every choice of the run: same seed, same run.
    pub seed: u64,
    /// Steps of the safety phase.
    pub steps: usize,
    /// Whether this run may inject faults (the seed still decides which).
    pub faults: bool,
}

/// A fault the simulation injects into a client's connection. Every one
/// must bring that connection down with a clear error (or be refused), and
/// nothing else may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A `pin` line that does not parse.
    Malformed,
    /// A line longer than the client buffers.
    TooLong,
    /// A reply on a stream the client never opened.
    WrongStream,
    /// The server ends the link in the middle of a request.
    EofMidRequest,
    /// An `error` reply to the request in flight.
    ErrorReply,
    /// A pin of a file the client does not watch.
    UnwatchedPin,
    /// A pin of a block number no file can have.
    HugeBlk,
    /// The user resyncs to a revision older than the connection's.
    GoBack,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 8] = [
        Fault::Malformed,
        Fault::TooLong,
        Fault::WrongStream,
        Fault::EofMidRequest,
        Fault::ErrorReply,
        Fault::UnwatchedPin,
        Fault::HugeBlk,
        Fault::GoBack,
    ];
}

/// What the scheduler does in one step of the safety phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The server model commits (writes blocks, sometimes shrinks a file).
    Commit,
    /// A new client connects.
    Connect,
    /// Some of the server's bytes reach a client.
    ToClient,
    /// One client line reaches the server.
    ToServer,
    /// A client's operation in flight is polled.
    PollOp,
    /// A client's user makes one call ([`UserOp`]).
    User,
    /// A [`Fault`] is injected into a client's connection.
    Inject,
}

/// The run's weights, drawn from its seed and logged first (swarm testing:
/// each run leans on some steps and leaves some operations and faults out
/// altogether, so that rare interleavings get runs of their own).
#[derive(Clone, Debug)]
pub(super) struct Swarm {
    pub(super) steps: Vec<(Step, u32)>,
    pub(super) ops: Vec<(UserOpKind, u32)>,
    pub(super) faults: Vec<Fault>,
    /// OS calls the clients' mocks fail, with their chance in percent.
    pub(super) os_faults: Vec<(OsOp, u8)>,
}

impl Swarm {
    pub(super) fn draw(rng: &mut Rng, faults: bool) -> Swarm {
        let faults: Vec<Fault> = if faults && rng.chance(50) {
            Fault::ALL.into_iter().filter(|_| rng.chance(40)).collect()
        } else {
            Vec::new()
        };
        // Base weights (per mille), scaled by a half, one or one and a half.
        let scale = |rng: &mut Rng, w: u32| w * (1 + rng.below(3) as u32) / 2;
        let steps = [
            (Step::Commit, 100),
            (Step::Connect, 10),
            (Step::ToClient, 270),
            (Step::ToServer, 220),
            (Step::PollOp, 50),
            (Step::User, 335),
            (Step::Inject, 15),
        ]
        .map(|(s, w)| {
            (
                s,
                if s == Step::Inject && faults.is_empty() {
                    0
                } else {
                    scale(rng, w)
                },
            )
        })
        .to_vec();
        // Reads and opens are always on; any other operation is left out
        // of one run in seven (mapping stays on in one form or the other).
        let mut ops: Vec<(UserOpKind, u32)> = UserOpKind::ALL
            .iter()
            .map(|&k| {
                let base = match k {
                    UserOpKind::Read => 450,
                    UserOpKind::Open => 80,
                    UserOpKind::Mmap => 55,
                    UserOpKind::MmapAt => 35,
                    UserOpKind::Unmap => 50,
                    UserOpKind::Dirty => 30,
                    UserOpKind::Remap => 30,
                    UserOpKind::Resync => 80,
                    UserOpKind::CloseFile => 50,
                    UserOpKind::Close => 20,
                    UserOpKind::Fork => 10,
                };
                let always = matches!(k, UserOpKind::Read | UserOpKind::Open);
                let w = if !always && rng.below(7) == 0 {
                    0
                } else {
                    scale(rng, base)
                };
                (k, w)
            })
            .collect();
        if ops
            .iter()
            .all(|&(k, w)| w == 0 || !matches!(k, UserOpKind::Mmap | UserOpKind::MmapAt))
        {
            if let Some(m) = ops.iter_mut().find(|(k, _)| *k == UserOpKind::Mmap) {
                m.1 = 55;
            }
        }
        // OS-call failures: in half the runs with faults, each operation
        // that can fail does so in this run with a chance of 1 to 3 %, or
        // now and then 10 to 49 % (so that rare sequences, such as a fault
        // map and then its mprotect refused, happen too). Not VM calls: see sim_vm.
        let os_faults = if !faults.is_empty() || rng.chance(50) {
            let mut v = Vec::new();
            for op in OsOp::ALL.into_iter().filter(|op| !op.is_vm()) {
                if op.can_fail() && rng.chance(30) {
                    let percent = if rng.chance(10) {
                        10 + rng.below(40)
                    } else {
                        1 + rng.below(3)
                    };
                    v.push((op, percent as u8));
                }
            }
            v
        } else {
            Vec::new()
        };
        Swarm {
            steps,
            ops,
            faults,
            os_faults,
        }
    }
}

impl std::fmt::Display for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[(String, u32)]| {
            v.iter()
                .map(|(n, w)| {
                    if *w == 0 {
                        format!("{n} off")
                    } else {
                        format!("{n} {w}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let steps: Vec<(String, u32)> = self
            .steps
            .iter()
            .map(|(s, w)| (format!("{s:?}"), *w))
            .collect();
        let ops: Vec<(String, u32)> = self
            .ops
            .iter()
            .map(|(k, w)| (format!("{k:?}"), *w))
            .collect();
        write!(
            f,
            "steps [{}]; user ops [{}]; faults {:?}; OS faults [{}]",
            list(&steps),
            list(&ops),
            self.faults,
            self.os_faults
                .iter()
                .map(|(op, p)| format!("{op:?} {p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
