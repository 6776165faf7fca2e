//! Deterministic simulation: clients (the core on the mock OS) against the
//! server model, every interleaving chosen by one seed, with faults, and an
//! oracle that checks every byte a user could read.
//!
//! One `u64` seed decides everything: the run's weights (swarm testing:
//! which [`Fault`]s, which failing OS calls (each client's mock sits in a
//! seeded `FaultInjector`) and which user operations are on at all, how often each
//! scheduler `Step` comes), the order in which server lines, client lines
//! and user operations ([`UserOp`], shared with the `client` fuzz target)
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
use std::fmt::Write as _;
use std::rc::Rc;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, ConnState, Error, FileId, MapId, OpId, OpOk, OsOp, Stat};
use wcfs_mock::user_op::{pick, UserOp, UserOpKind};
use wcfs_mock::{Harness, Mem, Path, Store};

use crate::model::{Change, HeadRead, LinkId, Model, ModelConfig, Output, PinRevChoice, ReadId};

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator a seed starts.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One element of `v`, uniformly; `None` when it is empty.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.below(v.len() as u64) as usize])
    }

    /// One of `choices`, each as likely as its weight; `None` when all
    /// weigh nothing.
    pub fn weighted<T: Copy>(&mut self, choices: &[(T, u32)]) -> Option<T> {
        let total: u64 = choices.iter().map(|c| u64::from(c.1)).sum();
        if total == 0 {
            return None;
        }
        let mut x = self.below(total);
        for &(t, w) in choices {
            if x < u64::from(w) {
                return Some(t);
            }
            x -= u64::from(w);
        }
        unreachable!("x < total")
    }

    /// A byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

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
enum Step {
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
struct Swarm {
    steps: Vec<(Step, u32)>,
    ops: Vec<(UserOpKind, u32)>,
    faults: Vec<Fault>,
    /// OS calls the clients' mocks fail, with their chance in percent.
    os_faults: Vec<(OsOp, u8)>,
}

impl Swarm {
    fn draw(rng: &mut Rng, faults: bool) -> Swarm {
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
    /// Server-side faults injected ([`Fault`]).
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

/// The mock OS's view of the filesystem, answered by the model. One per
/// client: it remembers the head size it last told that client.
#[derive(Clone)]
pub struct ModelStore {
    /// The server's model, shared by every client of the run.
    pub model: Rc<RefCell<Model>>,
    /// `oid -> size` of `head/bigfile/<oid>` at this client's last open or
    /// fstat of it.
    pub told: BTreeMap<Oid, u64>,
    /// Opens and fstats of head that told a smaller size than the last one.
    pub shrunk: usize,
}

impl ModelStore {
    /// A store answering from `model`, having told this client nothing yet.
    pub fn new(model: Rc<RefCell<Model>>) -> ModelStore {
        ModelStore {
            model,
            told: BTreeMap::new(),
            shrunk: 0,
        }
    }
}

impl Store for ModelStore {
    fn head_at(&mut self) -> Tid {
        self.model.borrow().head()
    }

    fn stat(&mut self, path: Path) -> Option<Stat> {
        let mut m = self.model.borrow_mut();
        let blksize = m.config().blksize;
        let size = match path {
            Path::Head(oid) => {
                let size = m.open_head(oid)?;
                if self.told.insert(oid, size).is_some_and(|was| size < was) {
                    self.shrunk += 1;
                }
                size
            }
            Path::Rev(oid, rev) => {
                if !m.revs().contains(&rev) {
                    return None;
                }
                m.size(oid, rev)?
            }
        };
        Some(Stat { size, blksize })
    }
}

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

impl World {
    fn log(&mut self, e: String) {
        for b in e.as_bytes().iter().chain(b"\n") {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.events.len() == TAIL && !TRACE_ALL.with(|t| t.get()) {
            self.events.pop_front();
        }
        self.events.push_back(format!("#{} {e}", self.step));
    }

    fn client(&mut self, i: usize) -> &mut Client {
        self.clients[i].as_mut().expect("live client")
    }

    fn live(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| self.clients[i].is_some())
            .collect()
    }

    fn link_owner(&self, link: LinkId) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.link == link && !c.forked))
    }

    /// Routes every model output.
    fn pump(&mut self) -> Check {
        loop {
            let out = self.model.borrow_mut().poll_output();
            let Some(out) = out else { return Ok(()) };
            match out {
                Output::Send { link, line } => {
                    if line.contains(" pin ") {
                        self.report.pins += 1;
                    }
                    if let Some(i) = self.link_owner(link) {
                        let c = self.client(i);
                        c.inbox.extend(line.as_bytes());
                        c.inbox.push_back(b'\n');
                    }
                }
                Output::Close { link } => {
                    if let Some(i) = self.link_owner(link) {
                        self.client(i).inbox_eof = true;
                    }
                }
                Output::ReadReady { read } => {
                    let data = self.model.borrow_mut().take_read(read);
                    if let (Some(r), Some(data)) = (self.reads.remove(&read), data) {
                        let oid = self.clients[r.client].as_ref().and_then(|c| {
                            let m = c.h.conn.mapping(r.map)?;
                            c.h.conn.file_oid(m.file)
                        });
                        if let Some(oid) = oid {
                            self.cache.insert((oid, r.blk), data);
                        }
                        self.log(format!("read {read} ready"));
                        // The faulting access retries and sees whatever is mapped now.
                        self.read(r.client, r.map, r.blk)?;
                    }
                }
                Output::Invalidate { oid, blk } => {
                    self.cache.remove(&(oid, blk));
                }
                Output::ClientFailed { link, reason } => {
                    let who = self.link_owner(link);
                    let faulted = who.is_none_or(|i| {
                        self.clients[i]
                            .as_ref()
                            .is_some_and(|c| c.faulted() || !c.up())
                    });
                    if !faulted {
                        return Err(format!(
                            "server reports client failure on link {link}: {reason}"
                        ));
                    }
                }
            }
        }
    }

    /// Moves what the client sent to its outbox, and closes its link at the
    /// server when the client closed it.
    fn collect(&mut self, i: usize) -> Check {
        let c = self.client(i);
        let sent = c.h.sent();
        if c.forked && !sent.is_empty() {
            return Err(format!("{}: fork child sent {sent:?}", c.name));
        }
        c.outbox.extend(sent);
        if !c.h.be.link_open() && !c.link_closed {
            c.link_closed = true;
            let link = c.link;
            // What it sent before closing still reaches the server first.
            let lines: Vec<String> = c.outbox.drain(..).collect();
            for l in lines {
                self.model.borrow_mut().link_recv(link, l.as_bytes());
                self.pump()?;
            }
            self.model.borrow_mut().link_close(link);
            self.log(format!("client {i} link closed"));
            self.pump()?;
        }
        Ok(())
    }

    fn poll_op(&mut self, i: usize) -> Check {
        let Some((op, kind)) = self.client(i).op else {
            return Ok(());
        };
        let r = self.client(i).h.poll(op);
        self.collect(i)?;
        let Some(r) = r else { return Ok(()) };
        self.client(i).op = None;
        self.log(format!("client {i} {kind:?} -> {r:?}"));
        let c = self.client(i);
        match (kind, r) {
            (OpKind::Open(oid), Ok(OpOk::Opened(f))) => c.files.push((f, oid)),
            (OpKind::Close, Ok(_)) => {
                if c.state() != ConnState::Closed {
                    return Err(format!("{}: close done but state {:?}", c.name, c.state()));
                }
            }
            (_, Ok(_)) => {}
            (kind, Err(e)) => {
                let expected = c.faulted
                    || matches!(
                        e,
                        Error::Os { .. } | Error::Link(_) | Error::ConnClosed | Error::FileClosed
                    ) && c.h.be.injected() > 0
                    || matches!(e, Error::Server(_))
                    || matches!(kind, OpKind::Close | OpKind::CloseFile(_))
                        && c.state() != ConnState::Up;
                if !expected {
                    return Err(format!("{}: {kind:?} failed: {e}", c.name));
                }
            }
        }
        Ok(())
    }

    // ---- the oracle ----

    /// Reads block `blk` of a mapping as a user would, and checks it.
    fn read(&mut self, i: usize, map: MapId, blk: u64) -> Check {
        let (addr, oid, at, dirty, live, resyncing, exposed) = {
            let c = self.clients[i].as_ref().expect("client");
            let Some(m) = c.h.conn.mapping(map) else {
                return Ok(());
            };
            let oid = c.h.conn.file_oid(m.file);
            (
                m.blk_addr(blk),
                oid,
                c.h.conn.at(),
                m.dirty.contains(&blk),
                !m.faulting,
                c.resyncing(),
                m.exposed,
            )
        };
        let what = self.clients[i].as_ref().expect("client").h.be.at(addr);
        let bs = self.blksize;
        // Memory of a file past its end is SIGBUS, as on Linux. (A dirty
        // block is the user's private page: it never faults.)
        if let Some(Mem::File { path, offset }) = what {
            let m = self.model.borrow();
            let size = match path {
                Path::Head(o) => m.size(o, m.head()),
                Path::Rev(o, rev) => m.size(o, rev),
            };
            if live && !dirty && offset >= size.unwrap_or(0) {
                // The server's limit (PROTOCOL section 5, "Files can
                // shrink"): head lost this block after the client was told
                // it exists (its last open/fstat of head), and the server
                // pins no deleted block, so the view still maps head there
                // until the client resyncs. On Linux this read is SIGBUS;
                // no client can avoid it, so it is not the client's bug.
                // Head mapped past what the client was told is.
                let told = match path {
                    Path::Head(o) => {
                        let c = self.clients[i].as_ref().expect("client");
                        c.h.be.store.told.get(&o).copied().unwrap_or(0)
                    }
                    Path::Rev(..) => 0,
                };
                if offset < told {
                    drop(m);
                    self.report.server_limit_faults += 1;
                    self.log(format!(
                        "client {i}: #{blk} is {path} past its new end: SIGBUS (server limit)"
                    ));
                    return Ok(());
                }
                return Err(format!("client {i}: #{blk} is {path} past its end: SIGBUS"));
            }
        }
        let got = match what {
            None | Some(Mem::Fault) => {
                if live && !dirty {
                    return Err(format!("client {i}: live mapping faults at #{blk}"));
                }
                return Ok(());
            }
            // The OS refused both MAP_FIXED and mprotect, and the client
            // says so on the mapping: nothing more a client can do.
            _ if !live && exposed => {
                self.report.exposed_reads += 1;
                self.log(format!("client {i}: #{blk} exposed: {what:?}"));
                return Ok(());
            }
            _ if !live => {
                return Err(format!(
                    "client {i}: closed mapping readable at #{blk} ({what:?})"
                ))
            }
            Some(Mem::Zeros) => vec![0; bs as usize],
            Some(Mem::Private(tag)) => vec![tag; bs as usize],
            Some(Mem::File {
                path: Path::Rev(o, rev),
                offset,
            }) => self.model.borrow().data(o, rev, offset / bs),
            Some(Mem::File {
                path: Path::Head(o),
                offset,
            }) if {
                let m = self.model.borrow();
                offset >= m.size(o, m.head()).unwrap_or(0)
            } =>
            {
                // Past head's end (a dirty block's original mapping): the
                // kernel answers without the server, and caches nothing.
                vec![0; bs as usize]
            }
            Some(Mem::File {
                path: Path::Head(o),
                offset,
            }) => {
                let b = offset / bs;
                match self.cache.get(&(o, b)) {
                    Some(d) => d.clone(),
                    None => {
                        let r = self.model.borrow_mut().read_head(o, b);
                        match r {
                            HeadRead::Ready(d) => {
                                self.cache.insert((o, b), d.clone());
                                d
                            }
                            HeadRead::Wait(id) => {
                                self.log(format!("client {i} read #{blk} waits ({id})"));
                                self.reads.insert(
                                    id,
                                    PendingRead {
                                        client: i,
                                        map,
                                        blk,
                                    },
                                );
                                return self.pump();
                            }
                        }
                    }
                }
            }
        };
        self.report.reads_checked += 1;
        if dirty || resyncing {
            return Ok(());
        }
        let oid = oid.ok_or_else(|| format!("client {i}: live mapping of a file that is gone"))?;
        let want = self.model.borrow().data(oid, at, blk);
        if got != want && what == Some(Mem::Zeros) && self.regrowth_race(i, oid, blk) {
            self.report.regrowth_zeros += 1;
            self.log(format!(
                "client {i}: #{blk} shows zeros, head regrew it unpinned (server limit)"
            ));
            return Ok(());
        }
        if got != want {
            return Err(format!(
                "client {i} @{at}: f<{oid}> #{blk} shows {:?} ({what:?}), want {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ));
        }
        Ok(())
    }

    /// The other face of the server's limit on shrinking files: the
    /// client was told (at its last open/fstat of head) that head has no
    /// block `blk`, so it shows zeros there; the block has data at the
    /// view's `at` (it was deleted after `at`), and head grew back over it
    /// with that same data before the watch was set up, so the server,
    /// which pins only blocks whose data differ from head's, never pinned
    /// it. Zeros until the next resync maps head there. A pin the client
    /// acked rules this out.
    fn regrowth_race(&self, i: usize, oid: Oid, blk: u64) -> bool {
        let c = self.clients[i].as_ref().expect("client");
        let told = c.h.be.store.told.get(&oid).copied().unwrap_or(0);
        blk * self.blksize >= told && !self.model.borrow().pin_acked(c.link, oid, blk)
    }

    // ---- the checkers: one per property, run after every step ----

    /// Every checker, named after the property it guards.
    const CHECKERS: [(&'static str, Checker); 5] = [
        ("core invariants hold", World::core_invariants_hold),
        (
            "a connection that is not up shows no memory",
            World::down_connections_only_fault,
        ),
        (
            "every readable block shows its revision's bytes",
            World::blocks_show_their_revision,
        ),
        (
            "dirty blocks keep the user's page",
            World::dirty_blocks_keep_the_users_page,
        ),
        (
            "pins agree with the server's",
            World::pins_agree_with_the_server,
        ),
    ];

    /// Runs every checker on every live client.
    fn check_all(&mut self) -> Check {
        for i in self.live() {
            for (property, check) in World::CHECKERS {
                check(self, i).map_err(|e| format!("{property}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The core's own `Conn::check_invariants`.
    fn core_invariants_hold(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        c.h.conn
            .check_invariants()
            .map_err(|e| format!("client {i}: {e}"))
    }

    /// Every block of every mapping of a connection that is down, closed or
    /// forked faults.
    fn down_connections_only_fault(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if matches!(c.state(), ConnState::Up | ConnState::Closing) {
            return Ok(());
        }
        for (_, m) in c.h.conn.mappings() {
            if m.exposed {
                // The OS refused both ways to fault it, and the mapping
                // says so: only after a refused mprotect.
                if !c.h.be.injected_ops().contains(&OsOp::Protect) {
                    return Err(format!("client {i}: exposed, yet no mprotect was refused"));
                }
                continue;
            }
            for blk in m.blk_start..m.blk_stop() {
                let what = c.h.be.at(m.blk_addr(blk));
                if !matches!(what, None | Some(Mem::Fault)) {
                    return Err(format!(
                        "client {i} is {:?} but #{blk} reads as {what:?}",
                        c.state()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The oracle on every block that can be read without a server read:
    /// see [`World::read`].
    fn blocks_show_their_revision(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        let maps: Vec<(MapId, u64, u64)> =
            c.h.conn
                .mappings()
                .map(|(id, m)| (id, m.blk_start, m.blk_stop()))
                .collect();
        for (map, start, stop) in maps {
            for blk in start..stop {
                let c = self.clients[i].as_ref().expect("client");
                let m = c.h.conn.mapping(map).expect("mapping");
                let cached = match c.h.be.at(m.blk_addr(blk)) {
                    Some(Mem::File {
                        path: Path::Head(o),
                        offset,
                    }) => {
                        let m = self.model.borrow();
                        let past_end = offset >= m.size(o, m.head()).unwrap_or(0);
                        past_end || self.cache.contains_key(&(o, offset / self.blksize))
                    }
                    _ => true,
                };
                if cached {
                    self.read(i, map, blk)?;
                }
            }
        }
        Ok(())
    }

    /// A block the user dirtied shows what it showed then until the user
    /// gives it back (`remap_blk`), whatever the server pins.
    fn dirty_blocks_keep_the_users_page(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        for (&(map, blk), &was) in &c.dirty {
            let Some(m) = c.h.conn.mapping(map) else {
                continue;
            };
            let now = c.h.be.at(m.blk_addr(blk));
            if !m.faulting && now != was {
                return Err(format!(
                    "client {i}: dirty block #{blk} of map {} remapped: {was:?} -> {now:?}",
                    map.0
                ));
            }
        }
        Ok(())
    }

    /// When nothing is in flight, the client's `pinned` is what the server
    /// pinned for it.
    fn pins_agree_with_the_server(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if !(c.up() && c.quiet() && !c.faulted()) {
            return Ok(());
        }
        for (f, oid) in c.h.conn.files() {
            let ours: BTreeMap<u64, Tid> = c.h.conn.pinned(f).into_iter().collect();
            let theirs = self.model.borrow().pinned(c.link, oid);
            if ours != theirs {
                return Err(format!(
                    "client {i}: f<{oid}> pinned {ours:?}, server pinned {theirs:?}"
                ));
            }
        }
        Ok(())
    }

    fn new_client(&mut self, proc_id: usize) -> Check {
        let (at, link) = {
            let mut m = self.model.borrow_mut();
            let revs = m.revs();
            let recent = &revs[revs.len().saturating_sub(6)..];
            let at = recent[self.rng.below(recent.len() as u64) as usize];
            (at, m.link_open())
        };
        let i = self.clients.len();
        let cfg = Config {
            page_size: 1,
            rev_cache: 1 + self.rng.below(4) as usize,
            ..Config::default()
        };
        self.clients.push(Some(Client {
            name: format!("client {i} (proc {proc_id})"),
            proc_id,
            h: {
                let seed = self.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut h = Harness::seeded(at, cfg, ModelStore::new(self.model.clone()), seed);
                for &(op, percent) in &self.swarm.os_faults {
                    let errno = match op {
                        OsOp::MapNew | OsOp::MapFixed | OsOp::Protect => wcfs_mock::ENOMEM,
                        OsOp::Send => wcfs_mock::EPIPE,
                        _ => wcfs_mock::EIO,
                    };
                    h.be.set_fail_chance(op, percent, errno);
                }
                h
            },
            link,
            link_closed: false,
            inbox: VecDeque::new(),
            inbox_eof: false,
            outbox: VecDeque::new(),
            op: None,
            files: Vec::new(),
            maps: Vec::new(),
            dirty: BTreeMap::new(),
            owned: BTreeMap::new(),
            spare: Vec::new(),
            faulted: false,
            os_logged: 0,
            forked: false,
            sent_at_fork: 0,
        }));
        self.log(format!("client {i} connects @{at} on link {link}"));
        Ok(())
    }

    fn commit(&mut self) -> Check {
        if !self.model.borrow().can_commit() {
            return Ok(());
        }
        let n = 1 + self.rng.below(3);
        let mut changes = Vec::new();
        for _ in 0..n {
            let oid = self.rng.pick(&self.oids).expect("oids");
            let blk = self.rng.below(MAX_BLKS);
            let tag = self.rng.below(1000);
            let mut d = format!("{oid}#{blk}:{tag}").into_bytes();
            d.truncate(self.blksize as usize);
            changes.push(Change::Write(oid, blk, d));
        }
        // Some commits delete a file's last blocks: head shrinks.
        let mut shrinks = false;
        if self.rng.chance(25) {
            let oid = self.rng.pick(&self.oids).expect("oids");
            let nblk = {
                let m = self.model.borrow();
                m.size(oid, m.head()).unwrap_or(0) / self.blksize
            };
            if nblk > 0 {
                let from = self.rng.below(nblk);
                let pos = self.rng.below(changes.len() as u64 + 1) as usize;
                changes.insert(pos, Change::DeleteFrom(oid, from));
                shrinks = true;
            }
        }
        let at = self.model.borrow_mut().commit_changes(&changes);
        match at {
            Ok(at) => {
                self.report.commits += 1;
                self.report.shrinks += usize::from(shrinks);
                let what: Vec<String> = changes
                    .iter()
                    .map(|c| match c {
                        Change::Write(o, b, _) => format!("{}#{b}", o.0),
                        Change::DeleteFrom(o, b) => format!("{}#{b}..:deleted", o.0),
                    })
                    .collect();
                self.log(format!("commit @{at}: {what:?}"));
                self.pump()
            }
            Err(e) => Err(format!("commit refused: {e:?}")),
        }
    }

    /// Delivers some of the server's bytes to a client.
    fn deliver_to_client(&mut self, i: usize) -> Check {
        let c = self.client(i);
        if c.inbox.is_empty() {
            if c.inbox_eof && matches!(c.state(), ConnState::Up | ConnState::Closing) {
                c.inbox_eof = false;
                c.h.eof();
                self.log(format!("client {i} EOF"));
                return self.collect(i);
            }
            return Ok(());
        }
        let len = c.inbox.len() as u64;
        let n = if self.rng.chance(60) {
            len as usize
        } else {
            1 + self.rng.below(len) as usize
        };
        let c = self.client(i);
        let bytes: Vec<u8> = c.inbox.drain(..n).collect();
        c.h.recv_bytes(&bytes);
        let text = String::from_utf8_lossy(&bytes).replace('\n', "⏎");
        self.log(format!("client {i} <- {text}"));
        self.collect(i)
    }

    /// Delivers one client line to the server.
    fn deliver_to_server(&mut self, i: usize) -> Check {
        let c = self.client(i);
        if c.link_closed {
            return Ok(());
        }
        let Some(line) = c.outbox.pop_front() else {
            return Ok(());
        };
        let link = c.link;
        self.log(format!("server <- client {i}: {line}"));
        self.model.borrow_mut().link_recv(link, line.as_bytes());
        self.pump()
    }

    // ---- the user: one function per operation ----

    /// Whether operation `k` is one the user of client `i` can make now.
    fn can(&self, i: usize, k: UserOpKind) -> bool {
        let c = self.clients[i].as_ref().expect("client");
        let (up, idle) = (c.up(), c.op.is_none());
        let (files, maps) = (!c.files.is_empty(), !c.maps.is_empty());
        match k {
            UserOpKind::Read | UserOpKind::Unmap | UserOpKind::Dirty | UserOpKind::Remap => maps,
            UserOpKind::Open | UserOpKind::Resync => up && idle,
            UserOpKind::Mmap | UserOpKind::MmapAt => files,
            UserOpKind::CloseFile => up && idle && files,
            UserOpKind::Close => idle,
            UserOpKind::Fork => true,
        }
    }

    /// The user of client `i` makes one call, drawn with the run's weights
    /// among those it can make now; a step where it can only close or fork
    /// does nothing (those end the client, and would end every new one).
    fn user(&mut self, i: usize) -> Check {
        let can: Vec<(UserOpKind, u32)> = self
            .swarm
            .ops
            .iter()
            .map(|&(k, w)| (k, if self.can(i, k) { w } else { 0 }))
            .collect();
        if can
            .iter()
            .all(|&(k, w)| w == 0 || matches!(k, UserOpKind::Close | UserOpKind::Fork))
        {
            return Ok(());
        }
        let Some(kind) = self.rng.weighted(&can) else {
            return Ok(());
        };
        let op = self.draw(kind);
        self.apply(i, op)
    }

    /// Operands for an operation of kind `k`, from the seed.
    fn draw(&mut self, k: UserOpKind) -> UserOp {
        let r = &mut self.rng;
        match k {
            UserOpKind::Read => UserOp::Read {
                map: r.byte(),
                blk: r.byte(),
            },
            UserOpKind::Open => UserOp::Open { oid: r.byte() },
            UserOpKind::Mmap => UserOp::Mmap {
                file: r.byte(),
                start: r.byte(),
                len: r.byte(),
            },
            UserOpKind::MmapAt => UserOp::MmapAt {
                file: r.byte(),
                start: r.byte(),
                len: r.byte(),
                over: r.chance(20).then(|| r.byte()),
            },
            UserOpKind::Unmap => UserOp::Unmap { map: r.byte() },
            UserOpKind::Dirty => UserOp::Dirty {
                map: r.byte(),
                blk: r.byte(),
                page: r.chance(50).then(|| b'a' + r.below(26) as u8),
            },
            UserOpKind::Remap => UserOp::Remap {
                map: r.byte(),
                blk: r.byte(),
            },
            UserOpKind::Resync => UserOp::Resync { to: r.byte() },
            UserOpKind::CloseFile => UserOp::CloseFile { file: r.byte() },
            UserOpKind::Close => UserOp::Close,
            UserOpKind::Fork => UserOp::Fork,
        }
    }

    /// Performs `op` for the user of client `i` and checks its outcome.
    fn apply(&mut self, i: usize, op: UserOp) -> Check {
        match op {
            UserOp::Read { map, blk } => self.op_read(i, map, blk),
            UserOp::Open { oid } => self.op_open(i, oid),
            UserOp::Mmap { file, start, len } => self.op_mmap(i, file, start, len, None),
            UserOp::MmapAt {
                file,
                start,
                len,
                over,
            } => self.op_mmap(i, file, start, len, Some(over)),
            UserOp::Unmap { map } => self.op_unmap(i, map),
            UserOp::Dirty { map, blk, page } => self.op_dirty(i, map, blk, page),
            UserOp::Remap { map, blk } => self.op_remap(i, map, blk),
            UserOp::Resync { to } => self.op_resync(i, to),
            UserOp::CloseFile { file } => self.op_close_file(i, file),
            UserOp::Close => self.op_close(i),
            UserOp::Fork => self.op_fork(i),
        }
    }

    /// A mapping of client `i` and one of its blocks, chosen by operands.
    fn map_blk(&self, i: usize, map: u8, blk: u8) -> Option<(MapId, u64)> {
        let c = self.clients[i].as_ref().expect("client");
        let id = pick(&c.maps, map)?;
        let m = c.h.conn.mapping(id)?;
        (m.blk_len > 0).then(|| (id, m.blk_start + u64::from(blk) % m.blk_len))
    }

    fn op_read(&mut self, i: usize, map: u8, blk: u8) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        self.log(format!("client {i} Read map {} #{blk}", map.0));
        self.read(i, map, blk)
    }

    fn op_open(&mut self, i: usize, oid: u8) -> Check {
        let oid = pick(&self.oids, oid).expect("oids");
        let exists = {
            let m = self.model.borrow();
            m.size(oid, m.head()).is_some()
        };
        if !exists {
            return Ok(());
        }
        let op = self
            .client(i)
            .h
            .conn
            .open(oid)
            .map_err(|e| format!("open: {e}"))?;
        self.client(i).op = Some((op, OpKind::Open(oid)));
        self.log(format!("client {i} Open f<{oid}>"));
        self.poll_op(i)
    }

    /// `mmap`, or `mmap_at` into a range the user reserved when `at` is
    /// given (first trying over a live mapping when it says so).
    fn op_mmap(&mut self, i: usize, file: u8, start: u8, len: u8, at: Option<Option<u8>>) -> Check {
        let Some((f, _)) = pick(&self.client(i).files, file) else {
            return Ok(());
        };
        let start = u64::from(start) % (MAX_BLKS + 2);
        let len = 1 + u64::from(len) % 4;
        let range = match at {
            Some(over) => {
                if let Some(over) = over {
                    self.refused_overlap(i, f, start, len, over)?;
                }
                Some(self.reservation(i, (len * self.blksize) as usize))
            }
            None => None,
        };
        let r = match range {
            Some((addr, n)) => self.client(i).h.conn.mmap_at(f, start, len, addr, n),
            None => self.client(i).h.conn.mmap(f, start, len),
        };
        match r {
            Ok(op) => {
                let r = self.client(i).h.poll(op);
                self.collect(i)?;
                match r {
                    Some(Ok(OpOk::Mapped(m))) => {
                        self.client(i).maps.push(m);
                        let (name, at) = match range {
                            Some(range) => {
                                self.client(i).owned.insert(m, range);
                                self.report.fixed_maps += 1;
                                ("MmapAt", format!(" at {:#x}", range.0))
                            }
                            None => ("Mmap", String::new()),
                        };
                        self.log(format!(
                            "client {i} {name} #{start}+{len}{at} -> map {}",
                            m.0
                        ));
                        Ok(())
                    }
                    // A failed OS call (its own mmap, or one that took
                    // the connection down) fails the op.
                    Some(Err(
                        e @ (Error::Os { .. }
                        | Error::Link(_)
                        | Error::ConnClosed
                        | Error::FileClosed),
                    )) if self.client(i).h.be.injected() > 0 => {
                        if let Some(range) = range {
                            self.client(i).spare.push(range);
                        }
                        self.log(format!("client {i} mmap -> {e:?}"));
                        Ok(())
                    }
                    r => Err(format!("client {i}: mmap did not complete: {r:?}")),
                }
            }
            Err(Error::FileClosed) | Err(Error::ConnClosed) => {
                if let Some(range) = range {
                    self.client(i).spare.push(range);
                }
                Ok(())
            }
            Err(e) => Err(format!("client {i}: mmap: {e}")),
        }
    }

    fn op_unmap(&mut self, i: usize, map: u8) -> Check {
        let c = self.client(i);
        if c.maps.is_empty() {
            return Ok(());
        }
        let map = c.maps.swap_remove(usize::from(map) % c.maps.len());
        c.dirty.retain(|k, _| k.0 != map);
        c.h.conn.unmap(map).map_err(|e| format!("unmap: {e}"))?;
        let injected = c.h.be.injected();
        c.h.drain();
        self.log(format!("client {i} Unmap map {}", map.0));
        self.collect(i)?;
        let c = self.client(i);
        if let Some((addr, len)) = c.owned.remove(&map) {
            // The user's range is left reserved, inaccessible, unless the
            // OS refused both ways to make it so (and it stays reserved).
            let regions = c.h.be.regions(addr, len);
            let refused = c.h.be.injected_ops()[injected..]
                .windows(2)
                .any(|w| w == [OsOp::MapFixed, OsOp::Protect]);
            let faults = regions == [(addr, addr + len, Some(Mem::Fault))];
            if refused && !faults && regions.iter().all(|r| r.2.is_some()) {
                self.log(format!("client {i}: caller's range {addr:#x} exposed"));
                return Ok(());
            }
            if regions != [(addr, addr + len, Some(Mem::Fault))] {
                return Err(format!(
                    "a caller's range stays reserved after unmap: client {i}: {addr:#x}+{len:#x} is {regions:?}"
                ));
            }
            c.spare.push((addr, len));
        }
        Ok(())
    }

    /// The ordering contract: mark dirty, then lay the page (only over a
    /// live block: a faulting one faults on the write).
    fn op_dirty(&mut self, i: usize, map: u8, blk: u8, page: Option<u8>) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        let bs = self.blksize as usize;
        let c = self.client(i);
        c.h.conn.mark_dirty(map, blk).map_err(|e| e.to_string())?;
        let m = c.h.conn.mapping(map).expect("mapping");
        let (addr, page) = (m.blk_addr(blk), page.filter(|_| !m.faulting));
        if let Some(tag) = page {
            c.h.be
                .lay_private(addr, bs, tag)
                .map_err(|e| format!("client {i}: lay a private page: {e:?}"))?;
        }
        let mem = c.h.be.at(addr);
        c.dirty.insert((map, blk), mem);
        self.log(format!(
            "client {i} Dirty map {} #{blk}{}",
            map.0,
            if page.is_some() {
                " (private page)"
            } else {
                ""
            }
        ));
        Ok(())
    }

    fn op_remap(&mut self, i: usize, map: u8, blk: u8) -> Check {
        let Some((map, blk)) = self.map_blk(i, map, blk) else {
            return Ok(());
        };
        let c = self.client(i);
        c.dirty.remove(&(map, blk));
        let op = c.h.conn.remap_blk(map, blk).map_err(|e| e.to_string())?;
        let r = c.h.poll(op);
        self.collect(i)?;
        self.log(format!("client {i} Remap map {} #{blk} -> {r:?}", map.0));
        Ok(())
    }

    /// Forward to head (even `to`) or to a revision between the
    /// connection's and head.
    fn op_resync(&mut self, i: usize, to: u8) -> Check {
        let (at, head) = (self.client(i).h.conn.at(), self.model.borrow().head());
        let to = if to.is_multiple_of(2) {
            head
        } else {
            let revs: Vec<Tid> = self
                .model
                .borrow()
                .revs()
                .into_iter()
                .filter(|&r| r >= at && r <= head)
                .collect();
            pick(&revs, to / 2).unwrap_or(at)
        };
        self.log(format!("client {i} Resync @{at} -> @{to}"));
        self.resync(i, to)
    }

    /// Starts a resync of client `i` to `to`; going back is refused.
    fn resync(&mut self, i: usize, to: Tid) -> Check {
        let at = self.client(i).h.conn.at();
        match self.client(i).h.conn.resync(to) {
            Ok(op) => {
                self.client(i).op = Some((op, OpKind::Resync(to)));
                self.poll_op(i)
            }
            Err(Error::GoingBack { .. }) if to < at => {
                self.client(i).h.drain();
                self.collect(i)
            }
            Err(e) => Err(format!("resync: {e}")),
        }
    }

    fn op_close_file(&mut self, i: usize, file: u8) -> Check {
        let c = self.client(i);
        if c.files.is_empty() {
            return Ok(());
        }
        let (f, oid) = c.files.swap_remove(usize::from(file) % c.files.len());
        let op =
            c.h.conn
                .close_file(f)
                .map_err(|e| format!("close_file: {e}"))?;
        c.op = Some((op, OpKind::CloseFile(f)));
        self.log(format!("client {i} CloseFile f<{oid}>"));
        self.poll_op(i)
    }

    fn op_close(&mut self, i: usize) -> Check {
        let op = self.client(i).h.conn.close();
        self.log(format!("client {i} Close -> {op:?}"));
        if let Ok(op) = op {
            self.client(i).op = Some((op, OpKind::Close));
            return self.poll_op(i);
        }
        Ok(())
    }

    /// The process forks: the child takes over every client of the
    /// process (the parent exits), and must add nothing to the link.
    fn op_fork(&mut self, i: usize) -> Check {
        let p = self.client(i).proc_id;
        self.log(format!("process {p} Fork (by client {i})"));
        for j in self.live() {
            let c = self.client(j);
            if c.proc_id != p || c.forked {
                continue;
            }
            c.forked = true;
            c.op = None;
            c.h.conn.fork_child();
            c.h.drain();
            c.sent_at_fork = c.mock_calls();
            let link = c.link;
            c.link_closed = true;
            c.outbox.clear();
            c.inbox.clear();
            self.log(format!("client {j} forked"));
            self.model.borrow_mut().link_close(link);
            self.pump()?;
            self.collect(j)?;
            let c = self.clients[j].as_ref().expect("client");
            if c.h.conn.mappings().any(|(_, m)| !m.faulting) {
                return Err(format!("client {j}: fork child keeps a live mapping"));
            }
        }
        Ok(())
    }

    /// A range of `len` bytes the user reserved: a spare one of that
    /// length, else a fresh reservation.
    fn reservation(&mut self, i: usize, len: usize) -> (usize, usize) {
        let c = self.client(i);
        match c.spare.iter().position(|r| r.1 == len) {
            Some(k) => c.spare.swap_remove(k),
            None => (c.h.be.reserve(len), len),
        }
    }

    /// Asks to map over live mapping `over >> 1` of the client (ending on
    /// its first byte, or starting on its last): refused (`AddressInUse`)
    /// with nothing performed.
    fn refused_overlap(&mut self, i: usize, f: FileId, start: u64, len: u64, over: u8) -> Check {
        let bs = self.blksize as usize;
        let c = self.clients[i].as_ref().expect("client");
        let placed: Vec<(usize, usize)> = c
            .maps
            .iter()
            .filter_map(|id| c.h.conn.mapping(*id))
            .filter(|m| m.addr != 0)
            .map(|m| (m.addr, m.len_bytes()))
            .collect();
        let Some((addr, mlen)) = pick(&placed, over >> 1) else {
            return Ok(());
        };
        let want = len as usize * bs;
        let a = if over & 1 == 0 {
            (addr + 1).saturating_sub(want)
        } else {
            addr + mlen - 1
        };
        let c = self.client(i);
        // The address space refuses it too (`MAP_FIXED_NOREPLACE`).
        if c.h.be.reserve_at(a, want) != Err(wcfs_mock::EEXIST) {
            return Err(format!(
                "a map over a live mapping is refused: client {i}: reserving {a:#x}+{want:#x} was not"
            ));
        }
        let before = c.mock_calls();
        let r = c.h.conn.mmap_at(f, start, len, a, want);
        c.h.drain();
        let touched = c.mock_calls() != before;
        self.log(format!("client {i} MmapAt over map at {addr:#x}: {r:?}"));
        match r {
            Err(Error::AddressInUse { .. }) if !touched => Ok(()),
            Err(Error::FileClosed | Error::ConnClosed) => Ok(()),
            r => Err(format!(
                "a map over a live mapping is refused: client {i}: mmap_at {a:#x}+{want:#x}: {r:?} (touched: {touched})"
            )),
        }
    }

    // ---- faults ----

    /// Injects one of the run's faults into client `i` (nothing when the
    /// fault does not apply to the client's state now).
    fn inject(&mut self, i: usize) -> Check {
        let Some(fault) = self.rng.pick(&self.swarm.faults) else {
            return Ok(());
        };
        let c = self.client(i);
        if !c.up() {
            return Ok(());
        }
        let line = match fault {
            Fault::Malformed => "2000000000 pin zz #1 @head\n".to_string(),
            Fault::TooLong => format!("{}\n", "x".repeat(3000)),
            Fault::WrongStream => "1999999999 ok\n".to_string(),
            Fault::EofMidRequest => "2000000002 pin 00000000".to_string(),
            Fault::ErrorReply => match c.op {
                Some(_) => "1999999997 error boom\n".to_string(),
                None => return Ok(()),
            },
            // An oid no client ever opens: unwatched however the client
            // moves on before it reads the line.
            Fault::UnwatchedPin => format!("2000000004 pin {} #0 @head\n", Oid(0xdead)),
            Fault::HugeBlk => match c.h.conn.files().next() {
                Some((_, o)) => format!("2000000006 pin {o} #9223372036854775807 @head\n"),
                None => return Ok(()),
            },
            Fault::GoBack => return self.go_back(i),
        };
        self.report.faults_injected += 1;
        let c = self.client(i);
        c.faulted = true;
        c.inbox.extend(line.as_bytes());
        if fault == Fault::EofMidRequest {
            c.inbox_eof = true;
        }
        self.log(format!("client {i} fault {fault:?} injected"));
        Ok(())
    }

    /// [`Fault::GoBack`]: the user of an idle client resyncs to a revision
    /// older than its connection's.
    fn go_back(&mut self, i: usize) -> Check {
        if self.client(i).op.is_some() {
            return Ok(());
        }
        let at = self.client(i).h.conn.at();
        let back = self
            .model
            .borrow()
            .revs()
            .into_iter()
            .rev()
            .find(|&r| r < at);
        let Some(back) = back else {
            return Ok(());
        };
        self.client(i).faulted = true;
        self.report.faults_injected += 1;
        self.log(format!(
            "client {i} fault GoBack injected: Resync @{at} -> @{back}"
        ));
        self.resync(i, back)
    }

    // ---- the scheduler ----

    /// One step of the safety phase, drawn with the run's weights.
    fn step(&mut self) -> Check {
        let live = self.live();
        let step = self.rng.weighted(&self.swarm.steps).expect("steps weigh");
        let client = self.rng.pick(&live);
        let r = match (step, client) {
            (Step::Commit, _) => self.commit(),
            (Step::Connect, _) if live.len() < 8 => {
                let p = self.rng.below(self.procs as u64) as usize;
                self.new_client(p)
            }
            (Step::ToClient, Some(i)) => self.deliver_to_client(i),
            (Step::ToServer, Some(i)) => self.deliver_to_server(i),
            (Step::PollOp, Some(i)) => self.poll_op(i),
            (Step::User, Some(i)) => self.user(i),
            (Step::Inject, Some(i)) => self.inject(i),
            _ => Ok(()),
        };
        // Named in the trace even when the step failed.
        self.log_os_faults();
        r?;
        self.retire()?;
        self.check_all()
    }

    /// Logs, by name, the OS calls the clients' mocks failed since the
    /// last step.
    fn log_os_faults(&mut self) {
        for i in self.live() {
            let c = self.client(i);
            let new: Vec<OsOp> = c.h.be.injected_ops()[c.os_logged..].to_vec();
            c.os_logged += new.len();
            for op in new {
                self.report.os_faults_injected += 1;
                self.log(format!("client {i} OS fault: {op:?} fails"));
            }
        }
    }

    /// Drops clients whose life is over, after checking how it ended.
    fn retire(&mut self) -> Check {
        for i in self.live() {
            self.down_only_after_a_fault(i)
                .map_err(|e| format!("only a fault brings a connection down: {e}"))?;
            let c = self.clients[i].as_ref().expect("client");
            let st = c.state();
            let over = matches!(st, ConnState::Down | ConnState::Closed | ConnState::Forked)
                && c.op.is_none()
                && c.link_closed;
            if over {
                if c.forked && c.sent_since(c.sent_at_fork) {
                    return Err(format!(
                        "a fork child sends nothing: {} sent a line",
                        c.name
                    ));
                }
                // Faulting mappings still unmap.
                let c = self.client(i);
                for m in std::mem::take(&mut c.maps) {
                    c.h.conn
                        .unmap(m)
                        .map_err(|e| format!("unmap after end: {e}"))?;
                }
                c.h.drain();
                if !c.h.be.open_fds().is_empty() {
                    return Err(format!(
                        "an ended client holds no descriptor: {} leaked {:?}",
                        c.name,
                        c.h.be.open_fds()
                    ));
                }
                self.report.shrinks_followed += c.h.be.store.shrunk;
                self.log(format!("client {i} retired ({st:?})"));
                self.reads.retain(|_, r| r.client != i);
                self.clients[i] = None;
            }
        }
        Ok(())
    }

    /// A connection goes down only after a fault was injected into it.
    fn down_only_after_a_fault(&mut self, i: usize) -> Check {
        let c = self.clients[i].as_ref().expect("client");
        if c.state() == ConnState::Down && !c.faulted() {
            return Err(format!(
                "{} went down: {:?}",
                c.name,
                c.h.conn.down_reason()
            ));
        }
        Ok(())
    }

    /// Liveness: no more faults or commits; deliver everything until every
    /// client is quiet.
    fn settle(&mut self) -> Check {
        for round in 0..20_000 {
            let mut busy = false;
            for i in self.live() {
                let c = self.clients[i].as_ref().expect("client");
                if !c.inbox.is_empty()
                    || c.inbox_eof && matches!(c.state(), ConnState::Up | ConnState::Closing)
                {
                    self.deliver_to_client(i)?;
                    busy = true;
                }
                if self.clients[i]
                    .as_ref()
                    .is_some_and(|c| !c.outbox.is_empty() && !c.link_closed)
                {
                    self.deliver_to_server(i)?;
                    busy = true;
                }
                if self.clients[i].as_ref().is_some_and(|c| c.op.is_some()) {
                    self.poll_op(i)?;
                    busy = true;
                }
            }
            if round == 1_000 {
                // A `bye` whose send failed never reaches the server, which
                // then never ends the link: the driver gives up on it after
                // its close timeout, as here.
                for i in self.live() {
                    let c = self.client(i);
                    if c.state() == ConnState::Closing && c.h.be.injected() > 0 {
                        c.h.conn.abandon_link(wcfs_mock::EPIPE);
                        c.h.drain();
                        self.log(format!("client {i} close times out"));
                        self.collect(i)?;
                    }
                }
            }
            self.retire()?;
            self.check_all()?;
            if !busy {
                if !self.reads.is_empty() {
                    return Err(format!(
                        "reads still waiting at quiescence: {:?}",
                        self.reads.keys().collect::<Vec<_>>()
                    ));
                }
                return Ok(());
            }
            let _ = round;
        }
        Err("livelock: no quiescence after 20000 rounds".into())
    }
}

/// Runs one seed: safety phase (faults as the seed decides), then liveness
/// (healed) and a final close of every connection.
pub fn run(cfg: &SimConfig) -> Result<Report, Failure> {
    let mut rng = Rng::new(cfg.seed);
    let blksize = [16, 32, 64][rng.below(3) as usize];
    let swarm = Swarm::draw(&mut rng, cfg.faults);
    let pin_rev = match rng.below(3) {
        0 => PinRevChoice::Exact,
        1 => PinRevChoice::Oldest,
        _ => PinRevChoice::Seeded(rng.next_u64()),
    };
    let model = Model::new(ModelConfig {
        blksize,
        history: u64::MAX / 4,
        pin_rev,
        zurl: "sim://".into(),
        pintimeout_secs: 30.0,
    });
    let mut w = World {
        rng,
        model: Rc::new(RefCell::new(model)),
        clients: Vec::new(),
        procs: 3,
        cache: BTreeMap::new(),
        reads: BTreeMap::new(),
        oids: vec![Oid(1), Oid(2), Oid(3)],
        blksize,
        swarm,
        events: VecDeque::new(),
        hash: FNV,
        step: 0,
        report: Report::default(),
        seed: cfg.seed,
    };
    let setup = format!(
        "seed {} blksize {blksize} pin_rev {pin_rev:?}; {}",
        cfg.seed, w.swarm
    );
    w.log(setup.clone());
    let fail = |w: &mut World, what: String| Failure {
        seed: w.seed,
        step: w.step,
        cfg: cfg.clone(),
        what,
        setup: setup.clone(),
        tail: w.events.iter().cloned().collect(),
    };
    // A first commit so that files exist.
    let first: Vec<(Oid, u64, Vec<u8>)> =
        w.oids.iter().map(|&o| (o, 0, b"init".to_vec())).collect();
    let r = w.model.borrow_mut().commit(&first);
    if let Err(e) = r {
        return Err(fail(&mut w, format!("first commit: {e:?}")));
    }
    if let Err(e) = w.pump() {
        return Err(fail(&mut w, e));
    }
    for p in 0..w.procs {
        if let Err(e) = w.new_client(p) {
            return Err(fail(&mut w, e));
        }
    }
    for s in 0..cfg.steps {
        w.step = s;
        if let Err(e) = w.step() {
            return Err(fail(&mut w, e));
        }
    }
    w.step = cfg.steps;
    // Liveness: the OS stops failing, so every client must finish.
    for c in w.clients.iter_mut().flatten() {
        for op in OsOp::ALL {
            c.h.be.set_fail_chance(op, 0, wcfs_mock::EIO);
        }
    }
    if let Err(e) = w.settle() {
        return Err(fail(&mut w, e));
    }
    // Close everything; every mapping must fault afterwards.
    for i in w.live() {
        let c = w.client(i);
        if c.up() && c.op.is_none() {
            if let Ok(op) = c.h.conn.close() {
                c.op = Some((op, OpKind::Close));
            }
        }
    }
    if let Err(e) = w.settle() {
        return Err(fail(&mut w, e));
    }
    w.report.steps = cfg.steps;
    w.report.trace_hash = w.hash;
    for c in w.clients.iter().flatten() {
        w.report.shrinks_followed += c.h.be.store.shrunk;
    }
    LAST.with(|l| *l.borrow_mut() = w.events.iter().cloned().collect());
    Ok(w.report)
}

/// The last events of a run (for looking at what a seed does).
pub fn last_events(cfg: &SimConfig) -> Vec<String> {
    TRACE_ALL.with(|t| t.set(true));
    let r = run(cfg);
    TRACE_ALL.with(|t| t.set(false));
    match r {
        Ok(_) => LAST.with(|l| l.take()),
        Err(f) => f.tail,
    }
}

thread_local! {
    static TRACE_ALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Formats a report line.
pub fn summary(reports: &[Report], secs: f64) -> String {
    let steps: usize = reports.iter().map(|r| r.steps).sum();
    let mut s = String::new();
    let _ = write!(
        s,
        "{} seeds, {steps} steps in {secs:.2}s: {:.0} seeds/s, {:.0} steps/s; {} reads checked, {} pins, {} commits ({} shrinking a file, followed by {} client opens/resyncs), {} server-limit SIGBUS reads, {} server-limit zero reads, {} faults injected, {} OS faults injected, {} exposed reads, {} fixed maps",
        reports.len(),
        reports.len() as f64 / secs,
        steps as f64 / secs,
        reports.iter().map(|r| r.reads_checked).sum::<usize>(),
        reports.iter().map(|r| r.pins).sum::<usize>(),
        reports.iter().map(|r| r.commits).sum::<usize>(),
        reports.iter().map(|r| r.shrinks).sum::<usize>(),
        reports.iter().map(|r| r.shrinks_followed).sum::<usize>(),
        reports.iter().map(|r| r.server_limit_faults).sum::<usize>(),
        reports.iter().map(|r| r.regrowth_zeros).sum::<usize>(),
        reports.iter().map(|r| r.faults_injected).sum::<usize>(),
        reports.iter().map(|r| r.os_faults_injected).sum::<usize>(),
        reports.iter().map(|r| r.exposed_reads).sum::<usize>(),
        reports.iter().map(|r| r.fixed_maps).sum::<usize>(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Swarm testing: across seeds, every fault and every operation other
    /// than reads and opens is left out of some runs and on in others; reads,
    /// opens and some kind of mapping are always on; no faults when the run
    /// may not inject them.
    #[test]
    fn swarm_leaves_things_out_of_some_runs() {
        let swarms: Vec<Swarm> = (0..500)
            .map(|seed| Swarm::draw(&mut Rng::new(seed), true))
            .collect();
        let weight = |s: &Swarm, k: UserOpKind| s.ops.iter().find(|o| o.0 == k).expect("kind").1;
        for k in UserOpKind::ALL {
            let on = swarms.iter().filter(|s| weight(s, k) > 0).count();
            match k {
                UserOpKind::Read | UserOpKind::Open => assert_eq!(on, swarms.len(), "{k:?}"),
                _ => assert!(on > 0 && on < swarms.len(), "{k:?} on in {on} runs"),
            }
        }
        assert!(swarms
            .iter()
            .all(|s| weight(s, UserOpKind::Mmap) + weight(s, UserOpKind::MmapAt) > 0));
        for f in Fault::ALL {
            let on = swarms.iter().filter(|s| s.faults.contains(&f)).count();
            assert!(on > 0 && on < swarms.len(), "{f:?} on in {on} runs");
        }
        let inject = |s: &Swarm| {
            s.steps
                .iter()
                .find(|x| x.0 == Step::Inject)
                .expect("inject")
                .1
        };
        assert!(swarms
            .iter()
            .all(|s| s.faults.is_empty() == (inject(s) == 0)));
        assert!((0..100).all(|seed| Swarm::draw(&mut Rng::new(seed), false).faults.is_empty()));
        // Some runs fail OS calls, some fail none; MapNew and Send among them.
        assert!(swarms.iter().any(|s| s.os_faults.is_empty()));
        for op in [OsOp::MapNew, OsOp::Send, OsOp::OpenHead, OsOp::WaitHeadAt] {
            assert!(swarms.iter().any(|s| s.os_faults.iter().any(|f| f.0 == op)));
        }
        let text = swarms[0].to_string();
        assert!(
            text.contains("Read ") && text.contains("ToClient "),
            "{text}"
        );
    }

    #[test]
    fn weighted_never_picks_a_weightless_choice() {
        let mut rng = Rng::new(7);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            let k = rng
                .weighted(&[(0usize, 1), (1, 0), (2, 2)])
                .expect("some weight");
            seen[k] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[0] > 700 && seen[2] > 1700, "{seen:?}");
        assert_eq!(rng.weighted(&[(0u8, 0)]), None);
    }
}
