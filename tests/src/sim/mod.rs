//! Deterministic simulation: clients (the core on the mock OS) against the
//! server model, every interleaving chosen by one seed, with faults, and an
//! oracle that checks every byte a user could read.
//!
//! One `u64` seed decides everything: the run's weights (swarm testing:
//! which [`Fault`]s, which failing OS calls (each client's mock sits in a
//! seeded `FaultInjector`) and which user operations are on at all, how often each
//! scheduler `Step` comes), the order in which server lines, client lines
//! and user operations ([`UserOp`](wcfs_mock::user_op::UserOp), shared with the `client` fuzz target)
//! happen, how the server's bytes are chunked, what is committed. The
//! weights are logged first. A run is a pure function of its seed ([`run`]
//! returns a trace hash to prove it). The safety phase runs with faults;
//! the liveness phase heals them and drives every client to quiescence
//! (bounded: a livelock fails the run). A failure names the property that
//! broke, the run's weights, the last events (operations and faults by
//! name), and the command that replays the seed.
//!
//! Checkers (`World::CHECKERS`), one per property, after every step:
//! * every readable block shows its revision's bytes: every block of every
//!   live mapping shows the data as of its connection's `at` (zeros past
//!   the end); head pages are checked through the simulated page cache, so
//!   that a read of an uncached head block goes to the server (and may
//!   pin). Commits also delete files' last blocks (head shrinks). Memory of
//!   a file past its end is SIGBUS and a client bug, except the server's
//!   limit (README, "Known limit"): head past its new end in a view whose
//!   client was told (last open/fstat) that the block exists; and zeros
//!   where the client was told head ends but head grew back, unpinned,
//!   before the watch. Both are counted in the report, never checked;
//! * dirty blocks keep the user's page until `remap_blk`;
//! * a connection that is not up shows no memory: every mapping of a
//!   connection that is down, closed or forked faults (and of a closed file,
//!   checked with the bytes);
//! * pins agree with the server's: when nothing is in flight the core's
//!   `pinned` equals what the model pinned;
//! * core invariants hold (`Conn::check_invariants`);
//! * and as clients end: only a fault brings a connection down (with a
//!   clear error), a fork child sends nothing, an ended client holds no
//!   descriptor.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{ConnState, FileId, MapId, OpId};
use wcfs_mock::{Harness, Mem};

use crate::model::{LinkId, Model, ReadId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Open(Oid),
    Resync(Tid),
    CloseFile(FileId),
    Close,
}

struct Client {
    name: String,
    proc_id: usize,
    h: Harness<ModelStore>,
    link: LinkId,
    link_closed: bool,
    inbox: VecDeque<u8>,
    inbox_eof: bool,
    outbox: VecDeque<String>,
    op: Option<(OpId, OpKind)>,
    files: Vec<(FileId, Oid)>,
    maps: Vec<MapId>,
    /// Dirty blocks and what their memory showed when the user dirtied
    /// them: the client must leave it so until `remap_blk`.
    dirty: BTreeMap<(MapId, u64), Option<Mem>>,
    /// Mappings placed at ranges the user reserved (`mmap_at`): their range.
    owned: BTreeMap<MapId, (usize, usize)>,
    /// Reservations the user holds with nothing mapped in (reused first).
    spare: Vec<(usize, usize)>,
    /// A fault was injected: going down is expected, naks too.
    faulted: bool,
    /// Injected OS failures already logged.
    os_logged: usize,
    forked: bool,
    /// Lines sent before the fork (the child must add none).
    sent_at_fork: usize,
}

impl Client {
    fn state(&self) -> ConnState {
        self.h.conn.state()
    }

    fn up(&self) -> bool {
        self.state() == ConnState::Up
    }

    /// Whether a fault hit this client: a bad server input or an OS call
    /// its mock failed. Going down is then expected, naks too.
    fn faulted(&self) -> bool {
        self.faulted || self.h.be.injected() > 0
    }

    fn resyncing(&self) -> bool {
        matches!(self.op, Some((_, OpKind::Resync(_))))
    }

    /// How many calls the mock OS has performed for this client. With
    /// [`Client::sent_since`], the only place the simulation reads the
    /// mock's trace.
    fn mock_calls(&self) -> usize {
        self.h.be.trace().len()
    }

    /// Whether a line was sent after the first `from` calls.
    fn sent_since(&self, from: usize) -> bool {
        self.h.be.trace()[from..]
            .iter()
            .any(|x| matches!(x, wcfs_mock::Call::Send(_)))
    }

    fn quiet(&self) -> bool {
        self.inbox.is_empty()
            && self.outbox.is_empty()
            && self.op.is_none()
            && !self.h.conn.is_stalled()
    }
}

struct PendingRead {
    client: usize,
    map: MapId,
    blk: u64,
}

struct World {
    rng: Rng,
    model: Rc<RefCell<Model>>,
    clients: Vec<Option<Client>>,
    procs: usize,
    cache: BTreeMap<(Oid, u64), Vec<u8>>,
    reads: BTreeMap<ReadId, PendingRead>,
    oids: Vec<Oid>,
    blksize: u64,
    swarm: Swarm,
    events: VecDeque<String>,
    hash: u64,
    step: usize,
    report: Report,
    seed: u64,
}

const FNV: u64 = 0xcbf2_9ce4_8422_2325;
const MAX_BLKS: u64 = 8;
const TAIL: usize = 60;

type Check = Result<(), String>;

/// A check of one property on one client.
type Checker = fn(&mut World, usize) -> Check;

thread_local! {
    /// Whether the log keeps every event (for `last_events`), not the last few.
    static TRACE_ALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The events of the last run, when `TRACE_ALL` was on.
    static LAST: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

mod checkers;
mod faults;
mod oracle;
mod report;
mod rng;
mod scheduler;
mod store;
mod swarm;
#[cfg(test)]
mod tests;
mod user;
mod world;

pub use report::{Failure, Report};
pub use rng::Rng;
pub use scheduler::{last_events, run, summary};
pub use store::ModelStore;
pub use swarm::{Fault, SimConfig};
use swarm::{Step, Swarm};
