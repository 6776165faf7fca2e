//! Deterministic simulation: clients (the core on the mock OS) against the
//! server model, every interleaving chosen by one seed, with faults, and an
//! oracle that checks every byte a user could read.
//!
//! One `u64` seed decides everything: which faults are on for the run, the
//! order in which server lines, client lines and user operations happen,
//! how the server's bytes are chunked, what is committed. A run is a pure
//! function of its seed ([`run`] returns a trace hash to prove it). The
//! safety phase runs with faults; the liveness phase heals them and drives
//! every client to quiescence (bounded: a livelock fails the run).
//!
//! Checkers, after every step:
//! * bytes: every block of every live mapping shows the data as of its
//!   connection's `at` (zeros past the end); dirty blocks are the user's;
//!   head pages are checked through the simulated page cache, so that a
//!   read of an uncached head block goes to the server (and may pin).
//!   Commits also delete files' last blocks (head shrinks). Memory of a
//!   file past its end is SIGBUS and a client bug, except the server's
//!   limit (README, "Known limit"): head past its new end in a view whose
//!   client was told (last open/fstat) that the block exists; and zeros
//!   where the client was told head ends but head grew back, unpinned,
//!   before the watch. Both are counted in the report, never checked;
//! * faults: every mapping of a closed file or connection, of a connection
//!   that is down, or of a fork child faults;
//! * pins: at quiescence the core's `pinned` equals what the model pinned;
//! * the core's own `check_invariants`;
//! * outcomes: an injected fault brings its connection down with a clear
//!   error; nothing else ever does.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, ConnState, Error, FileId, MapId, OpId, OpOk, Stat};
use wcfs_mock::{Harness, Mem, Path, Store};

use crate::model::{Change, HeadRead, LinkId, Model, ModelConfig, Output, PinRevChoice, ReadId};

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

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

    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.below(v.len() as u64) as usize])
    }
}

/// What a run does.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Steps of the safety phase.
    pub steps: usize,
    /// Whether this run may inject faults (the seed still decides which).
    pub faults: bool,
}

/// Which faults a run injects, decided by the seed and logged first.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub malformed: bool,
    pub too_long: bool,
    pub wrong_stream: bool,
    pub eof_mid_request: bool,
    pub error_reply: bool,
    pub unwatched_pin: bool,
    pub huge_blk: bool,
    pub go_back: bool,
}

/// A failed run: what broke, where, and how to replay it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub what: String,
    /// The last events before the failure.
    pub tail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation failed at step {}: {}", self.step, self.what)?;
        writeln!(f, "last events:")?;
        for e in &self.tail {
            writeln!(f, "  {e}")?;
        }
        write!(
            f,
            "replay: SIM_SEED={} SIM_STEPS={} cargo test --release -p wcfs-testkit --test sim sim_replay -- --nocapture",
            self.seed,
            self.step + 1
        )
    }
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub steps: usize,
    pub trace_hash: u64,
    pub reads_checked: usize,
    pub pins: usize,
    pub faults_injected: usize,
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
}

/// The mock OS's view of the filesystem, answered by the model. One per
/// client: it remembers the head size it last told that client.
#[derive(Clone)]
pub struct ModelStore {
    pub model: Rc<RefCell<Model>>,
    /// `oid -> size` of `head/bigfile/<oid>` at this client's last open or
    /// fstat of it.
    pub told: BTreeMap<Oid, u64>,
    /// Opens and fstats of head that told a smaller size than the last one.
    pub shrunk: usize,
}

impl ModelStore {
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

    fn resyncing(&self) -> bool {
        matches!(self.op, Some((_, OpKind::Resync(_))))
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
    faults: Faults,
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
                            .is_some_and(|c| c.faulted || !c.up())
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
        let (addr, oid, at, dirty, live, resyncing) = {
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

    /// Checks every block of every mapping that can be checked without a server read.
    fn check_all(&mut self) -> Check {
        for i in self.live() {
            let c = self.clients[i].as_ref().expect("client");
            c.h.conn
                .check_invariants()
                .map_err(|e| format!("client {i}: {e}"))?;
            let down = !matches!(c.state(), ConnState::Up | ConnState::Closing);
            let maps: Vec<(MapId, u64, u64)> =
                c.h.conn
                    .mappings()
                    .map(|(id, m)| (id, m.blk_start, m.blk_stop()))
                    .collect();
            for (map, start, stop) in maps {
                for blk in start..stop {
                    let c = self.clients[i].as_ref().expect("client");
                    let m = c.h.conn.mapping(map).expect("mapping");
                    let what = c.h.be.at(m.blk_addr(blk));
                    if down && !matches!(what, None | Some(Mem::Fault)) {
                        return Err(format!(
                            "client {i} is {:?} but #{blk} reads as {what:?}",
                            c.state()
                        ));
                    }
                    let cached = match what {
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
            // Dirty blocks keep the user's page.
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
            // Pins agree with the server's when nothing is in flight.
            if c.up() && c.quiet() && !c.faulted {
                let link = c.link;
                for (f, oid) in c.h.conn.files().collect::<Vec<_>>() {
                    let ours: BTreeMap<u64, Tid> = c.h.conn.pinned(f).into_iter().collect();
                    let theirs = self.model.borrow().pinned(link, oid);
                    if ours != theirs {
                        return Err(format!(
                            "client {i}: f<{oid}> pinned {ours:?}, server pinned {theirs:?}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    // ---- steps ----

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
            h: Harness::new(at, cfg, ModelStore::new(self.model.clone())),
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

    fn user_op(&mut self, i: usize) -> Check {
        let (up, busy, nfiles, nmaps) = {
            let c = self.client(i);
            (c.up(), c.op.is_some(), c.files.len(), c.maps.len())
        };
        let mut k = self.rng.below(100);
        if nfiles == 0 && up && !busy && k < 50 {
            k = 50; // open
        } else if nmaps == 0 && nfiles > 0 && k < 35 {
            k = 55; // mmap
        }
        match k {
            // read a block of a mapping
            0..=44 if nmaps > 0 => {
                let c = self.clients[i].as_ref().expect("client");
                let map = c.maps[self.rng.below(nmaps as u64) as usize];
                if let Some(m) = c.h.conn.mapping(map) {
                    let blk = m.blk_start + self.rng.below(m.blk_len);
                    self.log(format!("client {i} reads map {} #{blk}", map.0));
                    return self.read(i, map, blk);
                }
            }
            45..=52 if up && !busy => {
                let oid = self.rng.pick(&self.oids).expect("oids");
                if self
                    .model
                    .borrow()
                    .size(oid, self.model.borrow().head())
                    .is_none()
                {
                    return Ok(());
                }
                let op = self
                    .client(i)
                    .h
                    .conn
                    .open(oid)
                    .map_err(|e| format!("open: {e}"))?;
                self.client(i).op = Some((op, OpKind::Open(oid)));
                self.log(format!("client {i} open f<{oid}>"));
                return self.poll_op(i);
            }
            53..=61 if nfiles > 0 => {
                let k = self.rng.below(nfiles as u64) as usize;
                let (f, _) = self.client(i).files[k];
                let start = self.rng.below(MAX_BLKS + 2);
                let len = 1 + self.rng.below(4);
                let fixed = self.rng.chance(40);
                let range = if fixed {
                    self.refused_overlap(i, f, start, len)?;
                    Some(self.reservation(i, (len * self.blksize) as usize))
                } else {
                    None
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
                                let at = match range {
                                    Some(range) => {
                                        self.client(i).owned.insert(m, range);
                                        self.report.fixed_maps += 1;
                                        format!(" at {:#x}", range.0)
                                    }
                                    None => String::new(),
                                };
                                self.log(format!(
                                    "client {i} mmap #{start}+{len}{at} -> map {}",
                                    m.0
                                ));
                            }
                            r => return Err(format!("client {i}: mmap did not complete: {r:?}")),
                        }
                    }
                    Err(Error::FileClosed) | Err(Error::ConnClosed) => {
                        if let Some(range) = range {
                            self.client(i).spare.push(range);
                        }
                    }
                    Err(e) => return Err(format!("client {i}: mmap: {e}")),
                }
            }
            62..=66 if nmaps > 0 => {
                let idx = self.rng.below(nmaps as u64) as usize;
                let map = self.client(i).maps.swap_remove(idx);
                self.client(i).dirty.retain(|k, _| k.0 != map);
                self.client(i)
                    .h
                    .conn
                    .unmap(map)
                    .map_err(|e| format!("unmap: {e}"))?;
                self.client(i).h.drain();
                self.log(format!("client {i} unmap {}", map.0));
                let c = self.client(i);
                if let Some((addr, len)) = c.owned.remove(&map) {
                    // The user's range is left reserved, inaccessible.
                    let regions = c.h.be.regions(addr, len);
                    if regions != [(addr, addr + len, Some(Mem::Fault))] {
                        return Err(format!(
                            "client {i}: unmapped caller range {addr:#x}+{len:#x} is {regions:?}, not reserved"
                        ));
                    }
                    c.spare.push((addr, len));
                }
            }
            67..=72 if nmaps > 0 => {
                let k = self.rng.below(nmaps as u64) as usize;
                let map = self.client(i).maps[k];
                let Some((start, len)) = self
                    .client(i)
                    .h
                    .conn
                    .mapping(map)
                    .map(|m| (m.blk_start, m.blk_len))
                else {
                    return Ok(());
                };
                let blk = start + self.rng.below(len);
                if self.rng.chance(50) {
                    // The ordering contract: mark dirty, then lay the page.
                    self.client(i)
                        .h
                        .conn
                        .mark_dirty(map, blk)
                        .map_err(|e| e.to_string())?;
                    // Only over a live block: a faulting one faults on the write.
                    let private = self.rng.chance(50);
                    let tag = b'a' + self.rng.below(26) as u8;
                    let bs = self.blksize as usize;
                    let c = self.client(i);
                    let m = c.h.conn.mapping(map).expect("mapping");
                    let (addr, private) = (m.blk_addr(blk), private && !m.faulting);
                    if private {
                        c.h.be
                            .lay_private(addr, bs, tag)
                            .map_err(|e| format!("client {i}: lay a private page: {e:?}"))?;
                    }
                    let mem = c.h.be.at(addr);
                    c.dirty.insert((map, blk), mem);
                    self.log(format!(
                        "client {i} dirty map {} #{blk}{}",
                        map.0,
                        if private { " (private page)" } else { "" }
                    ));
                } else {
                    self.client(i).dirty.remove(&(map, blk));
                    let op = self
                        .client(i)
                        .h
                        .conn
                        .remap_blk(map, blk)
                        .map_err(|e| e.to_string())?;
                    let r = self.client(i).h.poll(op);
                    self.collect(i)?;
                    self.log(format!(
                        "client {i} remap_blk map {} #{blk} -> {r:?}",
                        map.0
                    ));
                }
            }
            73..=80 if up && !busy => {
                let (at, head) = (self.client(i).h.conn.at(), self.model.borrow().head());
                let revs: Vec<Tid> = self
                    .model
                    .borrow()
                    .revs()
                    .into_iter()
                    .filter(|&r| r >= at && r <= head)
                    .collect();
                let mut to = if self.rng.chance(50) {
                    head
                } else {
                    self.rng.pick(&revs).unwrap_or(at)
                };
                if self.faults.go_back && self.rng.chance(10) {
                    let back = self
                        .model
                        .borrow()
                        .revs()
                        .into_iter()
                        .rev()
                        .find(|&r| r < at);
                    if let Some(back) = back {
                        to = back;
                        self.client(i).faulted = true;
                        self.report.faults_injected += 1;
                    }
                }
                self.log(format!("client {i} resync @{at} -> @{to}"));
                match self.client(i).h.conn.resync(to) {
                    Ok(op) => {
                        self.client(i).op = Some((op, OpKind::Resync(to)));
                        return self.poll_op(i);
                    }
                    Err(Error::GoingBack { .. }) if to < at => {
                        self.client(i).h.drain();
                        return self.collect(i);
                    }
                    Err(e) => return Err(format!("resync: {e}")),
                }
            }
            81..=85 if up && !busy && nfiles > 0 => {
                let idx = self.rng.below(nfiles as u64) as usize;
                let (f, oid) = self.client(i).files.swap_remove(idx);
                let op = self
                    .client(i)
                    .h
                    .conn
                    .close_file(f)
                    .map_err(|e| format!("close_file: {e}"))?;
                self.client(i).op = Some((op, OpKind::CloseFile(f)));
                self.log(format!("client {i} close f<{oid}>"));
                return self.poll_op(i);
            }
            86..=87 if !busy => {
                let op = self.client(i).h.conn.close();
                self.log(format!("client {i} close -> {op:?}"));
                if let Ok(op) = op {
                    self.client(i).op = Some((op, OpKind::Close));
                    return self.poll_op(i);
                }
            }
            88 => {
                // Fork: the child takes over the process; the parent exits.
                let p = self.client(i).proc_id;
                for j in self.live() {
                    let c = self.client(j);
                    if c.proc_id != p || c.forked {
                        continue;
                    }
                    c.forked = true;
                    c.op = None;
                    c.h.conn.fork_child();
                    c.h.drain();
                    c.sent_at_fork = c.h.be.trace().len();
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
            }
            89..=92 if self.faults_on() && up => return self.inject(i),
            _ => {}
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

    /// Sometimes asks to map over a live mapping of the client: refused
    /// (`AddressInUse`) with nothing performed.
    fn refused_overlap(&mut self, i: usize, f: FileId, start: u64, len: u64) -> Check {
        if !self.rng.chance(20) {
            return Ok(());
        }
        let bs = self.blksize as usize;
        let c = self.clients[i].as_ref().expect("client");
        let placed: Vec<(usize, usize)> = c
            .maps
            .iter()
            .filter_map(|id| c.h.conn.mapping(*id))
            .filter(|m| m.addr != 0)
            .map(|m| (m.addr, m.len_bytes()))
            .collect();
        let Some((addr, mlen)) = self.rng.pick(&placed) else {
            return Ok(());
        };
        // Ending on the mapping's first byte, or starting on its last.
        let want = len as usize * bs;
        let a = if self.rng.chance(50) {
            (addr + 1).saturating_sub(want)
        } else {
            addr + mlen - 1
        };
        let c = self.client(i);
        // The address space refuses it too (`MAP_FIXED_NOREPLACE`).
        if c.h.be.reserve_at(a, want) != Err(wcfs_mock::EEXIST) {
            return Err(format!(
                "client {i}: reserving {a:#x}+{want:#x} over a live mapping was not refused"
            ));
        }
        let before = c.h.be.trace().len();
        let r = c.h.conn.mmap_at(f, start, len, a, want);
        c.h.drain();
        let touched = c.h.be.trace().len() != before;
        self.log(format!("client {i} mmap_at over map at {addr:#x}: {r:?}"));
        match r {
            Err(Error::AddressInUse { .. }) if !touched => Ok(()),
            Err(Error::FileClosed | Error::ConnClosed) => Ok(()),
            r => Err(format!(
                "client {i}: mmap_at {a:#x}+{want:#x} over a live mapping: {r:?} (touched: {touched})"
            )),
        }
    }

    fn faults_on(&self) -> bool {
        let f = self.faults;
        f.malformed
            || f.too_long
            || f.wrong_stream
            || f.eof_mid_request
            || f.error_reply
            || f.unwatched_pin
            || f.huge_blk
    }

    /// Injects one of the faults switched on for this run.
    fn inject(&mut self, i: usize) -> Check {
        let f = self.faults;
        let mut kinds = Vec::new();
        for (on, k) in [
            (f.malformed, 0),
            (f.too_long, 1),
            (f.wrong_stream, 2),
            (f.eof_mid_request, 3),
            (f.error_reply, 4),
            (f.unwatched_pin, 5),
            (f.huge_blk, 6),
        ] {
            if on {
                kinds.push(k);
            }
        }
        let Some(k) = self.rng.pick(&kinds) else {
            return Ok(());
        };
        let watched: Vec<Oid> = self.client(i).h.conn.files().map(|(_, o)| o).collect();
        let line = match k {
            0 => "2000000000 pin zz #1 @head\n".to_string(),
            1 => format!("{}\n", "x".repeat(3000)),
            2 => "1999999999 ok\n".to_string(),
            3 => "2000000002 pin 00000000".to_string(),
            4 => match self.client(i).op {
                Some(_) => "1999999997 error boom\n".to_string(),
                None => return Ok(()),
            },
            // An oid no client ever opens: unwatched however the client
            // moves on before it reads the line.
            5 => format!("2000000004 pin {} #0 @head\n", Oid(0xdead)),
            _ => match watched.first() {
                Some(o) => format!("2000000006 pin {o} #9223372036854775807 @head\n"),
                None => return Ok(()),
            },
        };
        self.report.faults_injected += 1;
        let c = self.client(i);
        c.faulted = true;
        c.inbox.extend(line.as_bytes());
        if k == 3 {
            c.inbox_eof = true;
        }
        self.log(format!("client {i} fault {k} injected"));
        Ok(())
    }

    /// One step of the scheduler.
    fn step(&mut self, commits: bool, faults: bool) -> Check {
        let live = self.live();
        let k = self.rng.below(100);
        match k {
            0..=9 if commits => self.commit()?,
            10 if live.len() < 8 => {
                let p = self.rng.below(self.procs as u64) as usize;
                self.new_client(p)?;
            }
            11..=37 => {
                if let Some(i) = self.rng.pick(&live) {
                    self.deliver_to_client(i)?;
                }
            }
            38..=59 => {
                if let Some(i) = self.rng.pick(&live) {
                    self.deliver_to_server(i)?;
                }
            }
            60..=64 => {
                if let Some(i) = self.rng.pick(&live) {
                    self.poll_op(i)?;
                }
            }
            _ => {
                if let Some(i) = self.rng.pick(&live) {
                    let saved = self.faults;
                    if !faults {
                        self.faults = Faults::default();
                    }
                    let r = self.user_op(i);
                    self.faults = saved;
                    r?;
                }
            }
        }
        self.retire()?;
        self.check_all()
    }

    /// Drops clients whose life is over, after checking how it ended.
    fn retire(&mut self) -> Check {
        for i in self.live() {
            let c = self.clients[i].as_ref().expect("client");
            let st = c.state();
            if st == ConnState::Down && !c.faulted {
                return Err(format!(
                    "{} went down: {:?}",
                    c.name,
                    c.h.conn.down_reason()
                ));
            }
            let over = matches!(st, ConnState::Down | ConnState::Closed | ConnState::Forked)
                && c.op.is_none()
                && c.link_closed;
            if over {
                if c.forked
                    && c.h.be.trace()[c.sent_at_fork..]
                        .iter()
                        .any(|x| matches!(x, wcfs_mock::Call::Send(_)))
                {
                    return Err(format!("{}: fork child sent a line", c.name));
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
                        "{}: descriptors leaked: {:?}",
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
    let faults = if cfg.faults && rng.chance(50) {
        let mut f = || rng.chance(40);
        Faults {
            malformed: f(),
            too_long: f(),
            wrong_stream: f(),
            eof_mid_request: f(),
            error_reply: f(),
            unwatched_pin: f(),
            huge_blk: f(),
            go_back: f(),
        }
    } else {
        Faults::default()
    };
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
        faults,
        events: VecDeque::new(),
        hash: FNV,
        step: 0,
        report: Report::default(),
        seed: cfg.seed,
    };
    w.log(format!(
        "seed {} blksize {blksize} pin_rev {pin_rev:?} faults {faults:?}",
        cfg.seed
    ));
    let fail = |w: &mut World, what: String| Failure {
        seed: w.seed,
        step: w.step,
        what,
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
        if let Err(e) = w.step(true, true) {
            return Err(fail(&mut w, e));
        }
    }
    w.step = cfg.steps;
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
        "{} seeds, {steps} steps in {secs:.2}s: {:.0} seeds/s, {:.0} steps/s; {} reads checked, {} pins, {} commits ({} shrinking a file, followed by {} client opens/resyncs), {} server-limit SIGBUS reads, {} server-limit zero reads, {} faults injected, {} fixed maps",
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
        reports.iter().map(|r| r.fixed_maps).sum::<usize>(),
    );
    s
}
