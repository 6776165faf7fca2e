//! A pure, deterministic model of a WCFS server: a versioned store of
//! bigfiles, `head/at`, `@rev` data, and the watch protocol as the real
//! server speaks it (PROTOCOL sections 2-5), with its error texts.
//!
//! No threads, clocks or I/O: it is driven by calls (a client line, a head
//! read, a commit) and answers with [`Output`]s drained by `poll_output`.
//! A commit writes blocks and may delete a file's last blocks
//! ([`Change::DeleteFrom`]): head shrinks as on the real server (PROTOCOL
//! section 5, "Files can shrink"), with no pin for the deleted blocks to
//! existing watchers, setup pins for them on a later watch at an older
//! `at`, and no pins when they are written again.
//! The simulation and the FUSE test server both drive it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use wcfs_core::wire::{Oid, Tid};

/// How the model is set up.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Block size of every bigfile, in bytes (`st_blksize` of head files).
    pub blksize: u64,
    /// Tid distance behind head that is kept: a watch older than that (and
    /// older than every active watch) is refused "too far away back".
    pub history: u64,
    /// Which revision a pin names when several hold the right data.
    pub pin_rev: PinRevChoice,
    /// What `.wcfs/zurl` shows.
    pub zurl: String,
    /// What `.wcfs/pintimeout` shows, and how long a client has to ack.
    pub pintimeout_secs: f64,
}

impl ModelConfig {
    /// The usual set-up for tests: `blksize` blocks, a history long enough
    /// never to refuse a watch, pins naming the exact revision, a 30 s pin
    /// timeout, and `zurl` in `.wcfs/zurl`. Change a field with struct
    /// update syntax (`ModelConfig { history: 0, ..ModelConfig::new(..) }`).
    pub fn new(zurl: impl Into<String>, blksize: u64) -> ModelConfig {
        ModelConfig {
            blksize,
            history: u64::MAX / 2,
            pin_rev: PinRevChoice::Exact,
            zurl: zurl.into(),
            pintimeout_secs: 30.0,
        }
    }
}

/// Which revision `<= at` a pin names (the client must not depend on it).
#[derive(Clone, Copy, Debug)]
pub enum PinRevChoice {
    /// The revision that last changed the block at or before `at`.
    Exact,
    /// The oldest known revision with the right data.
    Oldest,
    /// Any revision with the right data, chosen from the seed.
    Seeded(u64),
}

/// A watch link (one open of `head/watch`), numbered from 1 in opening order.
pub type LinkId = u64;
/// A head read that waits for acks before its data can be served.
pub type ReadId = u64;

/// What the model asks its host (the simulation or the FUSE server) to do,
/// in order; taken with [`Model::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are named in each variant's doc
pub enum Output {
    /// One line (no `\n`) for the client on `link`.
    Send { link: LinkId, line: String },
    /// The server ends `link` (EOF to the client once its lines are read).
    Close { link: LinkId },
    /// A head read that waited for acks can be completed with `take_read`.
    ReadReady { read: ReadId },
    /// Drop this head block from the kernel page cache.
    Invalidate { oid: Oid, blk: u64 },
    /// A client nak'ed or did not ack in time.
    ClientFailed { link: LinkId, reason: String },
}

/// Why the store refuses a commit (nothing is committed then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// Reads or watch setups wait for acks (the real server holds its head lock).
    Busy,
    /// A block number or data length out of range, or a deletion in a file
    /// that does not exist.
    BadBlock,
}

/// One change of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Block `blk` of `oid` gets `data` (zero padded); the file grows to
    /// cover it.
    Write(Oid, u64, Vec<u8>),
    /// The blocks of `oid` from `blk` on are deleted (the highest keys of
    /// the ZBigFile's block table): head shrinks to `blk` blocks if it was
    /// longer. Existing watchers get no pin for them (no head read can
    /// reach them); `@rev` files before keep their size.
    DeleteFrom(Oid, u64),
}

impl From<&(Oid, u64, Vec<u8>)> for Change {
    fn from(c: &(Oid, u64, Vec<u8>)) -> Change {
        Change::Write(c.0, c.1, c.2.clone())
    }
}

/// The answer to a read of head data.
pub enum HeadRead {
    /// The data, at once: no watcher needs a pin and no pin of the block
    /// is in flight.
    Ready(Vec<u8>),
    /// The read waits for the acks of the block's pins (sent for it, or
    /// already in flight); [`Output::ReadReady`] names it once they are in
    /// (or their clients failed).
    Wait(ReadId),
}

/// A block's history: `(tid, data)` ascending.
type BlkHist = Vec<(Tid, Vec<u8>)>;

struct FileHist {
    created: Tid,
    /// `(tid, size)` ascending.
    sizes: Vec<(Tid, u64)>,
    blocks: BTreeMap<u64, BlkHist>,
    /// Opened through head: watches are allowed.
    known: bool,
    /// Blocks read through head (in the page cache, as the real server tracks).
    accessed: BTreeSet<u64>,
}

impl FileHist {
    /// The size from `at` on (`at` is the newest revision).
    fn set_size(&mut self, at: Tid, size: u64) {
        match self.sizes.last_mut() {
            Some(last) if last.0 == at => last.1 = size,
            _ => self.sizes.push((at, size)),
        }
    }
}

struct Watch {
    at: Tid,
    pinned: BTreeMap<u64, Tid>,
}

#[derive(Default)]
struct Link {
    watches: BTreeMap<Oid, Watch>,
    next_stream: u64,
    closed: bool,
}

/// A pin in flight and what waits for its ack.
struct PinRec {
    oid: Oid,
    blk: u64,
    waits: Vec<u64>,
}

enum WaitKind {
    /// `<stream> ok` once every pin is acked.
    Watch {
        link: LinkId,
        stream: u64,
    },
    Read {
        read: ReadId,
        oid: Oid,
        blk: u64,
    },
}

struct Wait {
    kind: WaitKind,
    pins: usize,
}

/// The model. See the module doc.
pub struct Model {
    cfg: ModelConfig,
    revs: Vec<Tid>,
    files: BTreeMap<Oid, FileHist>,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    /// Every pin not acked yet: `(link, server stream) -> pin`.
    pins: BTreeMap<(LinkId, u64), PinRec>,
    waits: BTreeMap<u64, Wait>,
    next_wait: u64,
    /// Watch requests waiting for head to reach their `at`.
    future: Vec<(LinkId, u64, Oid, Tid)>,
    ready: BTreeMap<ReadId, Vec<u8>>,
    next_read: ReadId,
    out: VecDeque<Output>,
}

/// Tids of consecutive commits are this far apart (about 0.23 s of ZODB time).
pub const TID_STEP: u64 = 0x0100_0000;

impl Model {
    /// A model with an empty first revision and no files or links.
    pub fn new(cfg: ModelConfig) -> Model {
        Model::new_at(cfg, Tid(0x0400_0000_0000_0000))
    }

    /// A model whose first (empty) revision is `head`.
    pub fn new_at(cfg: ModelConfig, head: Tid) -> Model {
        Model {
            cfg,
            revs: vec![head],
            files: BTreeMap::new(),
            links: BTreeMap::new(),
            next_link: 1,
            pins: BTreeMap::new(),
            waits: BTreeMap::new(),
            next_wait: 1,
            future: Vec::new(),
            ready: BTreeMap::new(),
            next_read: 1,
            out: VecDeque::new(),
        }
    }

    /// How the model was set up.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The newest revision.
    pub fn head(&self) -> Tid {
        *self.revs.last().expect("a first revision")
    }

    /// Every revision, oldest first.
    pub fn revs(&self) -> Vec<Tid> {
        self.revs.clone()
    }

    /// Every bigfile ever written, in oid order.
    pub fn files(&self) -> Vec<Oid> {
        self.files.keys().copied().collect()
    }

    /// The next thing for the host to do, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ---- the store ----

    /// Whether a commit would be taken now: no read or watch setup waits
    /// for acks (else [`CommitError::Busy`]).
    pub fn can_commit(&self) -> bool {
        self.waits.is_empty()
    }

    /// Commits `changes` (block `blk` of `oid` gets `data`, zero padded) as a
    /// new revision; returns it.
    pub fn commit(&mut self, changes: &[(Oid, u64, Vec<u8>)]) -> Result<Tid, CommitError> {
        self.commit_at(self.head().0 + TID_STEP, changes)
    }

    /// [`Model::commit`] with an explicit tid (after head).
    pub fn commit_at(
        &mut self,
        tid: u64,
        changes: &[(Oid, u64, Vec<u8>)],
    ) -> Result<Tid, CommitError> {
        let changes: Vec<Change> = changes.iter().map(Change::from).collect();
        self.commit_changes_at(tid, &changes)
    }

    /// Commits writes and deletions, in order, as a new revision; returns it.
    pub fn commit_changes(&mut self, changes: &[Change]) -> Result<Tid, CommitError> {
        self.commit_changes_at(self.head().0 + TID_STEP, changes)
    }

    /// [`Model::commit_changes`] with an explicit tid (after head).
    pub fn commit_changes_at(&mut self, tid: u64, changes: &[Change]) -> Result<Tid, CommitError> {
        if !self.can_commit() {
            return Err(CommitError::Busy);
        }
        let bs = self.cfg.blksize;
        let limit = (i64::MAX as u64) / bs;
        let bad = |c: &Change| match c {
            Change::Write(_, blk, data) => *blk >= limit || data.len() as u64 > bs,
            Change::DeleteFrom(oid, _) => {
                !self.files.contains_key(oid)
                    && !changes
                        .iter()
                        .any(|w| matches!(w, Change::Write(o, ..) if o == oid))
            }
        };
        if tid <= self.head().0 || changes.iter().any(bad) {
            return Err(CommitError::BadBlock);
        }
        let at = Tid(tid);
        let old_head = self.head();
        self.revs.push(at);
        for change in changes {
            let oid = match change {
                Change::Write(oid, ..) | Change::DeleteFrom(oid, _) => *oid,
            };
            let f = self.files.entry(oid).or_insert_with(|| FileHist {
                created: at,
                sizes: vec![(at, 0)],
                blocks: BTreeMap::new(),
                known: false,
                accessed: BTreeSet::new(),
            });
            let existed = f.created <= old_head;
            let cur = f.sizes.last().expect("size").1;
            // Blocks whose head data changes.
            let changed: Vec<(u64, Vec<u8>)> = match change {
                Change::Write(_, blk, data) => {
                    let mut d = data.clone();
                    d.resize(bs as usize, 0);
                    f.set_size(at, cur.max((blk + 1) * bs));
                    vec![(*blk, d)]
                }
                Change::DeleteFrom(_, blk) => {
                    let new = cur.min(blk.saturating_mul(bs));
                    f.set_size(at, new);
                    // Deleted blocks are tracked from now on: a client
                    // whose head size is shorter shows zeros there and
                    // never reads them through head, so a watch whose `at`
                    // has data there gets them pinned at setup. (Observed
                    // on the real server for a deleted block read through
                    // head before; for one never read the model takes the
                    // only choice that keeps such a view exact.)
                    f.accessed.extend(new / bs..cur / bs);
                    // A deleted block is a hole if the file grows again.
                    (new / bs..cur / bs)
                        .map(|b| (b, vec![0; bs as usize]))
                        .collect()
                }
            };
            for (blk, d) in changed {
                let h = f.blocks.entry(blk).or_default();
                match h.last_mut() {
                    Some(last) if last.0 == at => last.1 = d,
                    _ => h.push((at, d)),
                }
                if existed {
                    self.out.push_back(Output::Invalidate { oid, blk });
                }
            }
        }
        // Watches that waited for head to reach their at.
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .partition(|w| w.3 <= at);
        self.future = later;
        for (link, stream, oid, wat) in now {
            self.setup_watch(link, stream, oid, wat);
        }
        Ok(at)
    }

    /// Size of `oid` as of `at`; `None` when the file does not exist then.
    pub fn size(&self, oid: Oid, at: Tid) -> Option<u64> {
        let f = self.files.get(&oid)?;
        if f.created > at {
            return None;
        }
        f.sizes.iter().rev().find(|s| s.0 <= at).map(|s| s.1)
    }

    /// Block `blk` of `oid` as of `at` (blksize bytes, zeros past the end).
    pub fn data(&self, oid: Oid, at: Tid, blk: u64) -> Vec<u8> {
        let bs = self.cfg.blksize;
        let zeros = || vec![0; bs as usize];
        let Some(size) = self.size(oid, at) else {
            return zeros();
        };
        if blk.saturating_mul(bs) >= size {
            return zeros();
        }
        self.files[&oid]
            .blocks
            .get(&blk)
            .and_then(|h| h.iter().rev().find(|e| e.0 <= at))
            .map_or_else(zeros, |e| e.1.clone())
    }
}

mod go_fmt;
mod links;
#[cfg(test)]
mod tests;

pub use go_fmt::{go_duration, go_quote};
