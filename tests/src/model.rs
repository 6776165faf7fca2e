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
use std::fmt::Write as _;

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

    // ---- the filesystem ----

    /// An open of `head/bigfile/<oid>`: the file becomes known; its head size.
    pub fn open_head(&mut self, oid: Oid) -> Option<u64> {
        let head = self.head();
        let size = self.size(oid, head)?;
        self.files.get_mut(&oid).expect("file").known = true;
        Some(size)
    }

    /// A read of head block `blk` (a page-cache miss). Watchers whose view
    /// needs the old data are pinned first; the read then waits for acks.
    /// A read past head's end never reaches the server (the kernel answers
    /// it, or faults): it pins nobody and is not tracked.
    pub fn read_head(&mut self, oid: Oid, blk: u64) -> HeadRead {
        let head = self.head();
        let bs = self.cfg.blksize;
        if blk.saturating_mul(bs) >= self.size(oid, head).unwrap_or(0) {
            return HeadRead::Ready(vec![0; bs as usize]);
        }
        if let Some(f) = self.files.get_mut(&oid) {
            f.accessed.insert(blk);
        }
        let cur = self.data(oid, head, blk);
        let mut todo = Vec::new();
        for (&link, l) in &self.links {
            if let Some(w) = l.watches.get(&oid) {
                if !w.pinned.contains_key(&blk) && self.data(oid, w.at, blk) != cur {
                    todo.push((link, w.at));
                }
            }
        }
        // Pins of this block still in flight: the read waits for them too.
        let inflight: Vec<(LinkId, u64)> = self
            .pins
            .iter()
            .filter(|(_, p)| p.oid == oid && p.blk == blk)
            .map(|(&k, _)| k)
            .collect();
        if todo.is_empty() && inflight.is_empty() {
            return HeadRead::Ready(cur);
        }
        let read = self.next_read;
        self.next_read += 1;
        let wait = self.new_wait(WaitKind::Read { read, oid, blk });
        for k in inflight {
            self.pins.get_mut(&k).expect("pin").waits.push(wait);
            self.waits.get_mut(&wait).expect("wait").pins += 1;
        }
        for (link, at) in todo {
            let rev = self.pin_rev(link, oid, at, blk);
            self.send_pin(link, wait, oid, blk, Some(rev));
        }
        HeadRead::Wait(read)
    }

    /// The data of a waiting read once [`Output::ReadReady`] named it;
    /// `None` before, and after it was taken.
    pub fn take_read(&mut self, read: ReadId) -> Option<Vec<u8>> {
        self.ready.remove(&read)
    }

    // ---- watch links ----

    /// A client opened `head/watch`: a new link.
    pub fn link_open(&mut self) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(
            id,
            Link {
                next_stream: 2,
                ..Link::default()
            },
        );
        id
    }

    /// One line from the client, without its `\n`.
    pub fn link_recv(&mut self, link: LinkId, line: &[u8]) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (stream, msg) = match text.split_once(' ') {
            Some((s, m)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                match s.parse::<u64>() {
                    Ok(s) => (s, m),
                    Err(_) => {
                        return self.fatal(
                            link,
                            format!("invalid frame: {}", go_quote(&[line, b"\n"].concat())),
                        )
                    }
                }
            }
            _ => {
                return self.fatal(
                    link,
                    format!("invalid frame: {}", go_quote(&[line, b"\n"].concat())),
                )
            }
        };
        if stream % 2 == 0 {
            // A reply to one of our requests.
            let Some(pin) = self.pins.remove(&(link, stream)) else {
                return self.fatal(link, format!("{stream}: reply on unexpected stream"));
            };
            if msg == "ack" {
                return self.pin_done(pin);
            }
            self.pins.insert((link, stream), pin);
            let reason = msg.strip_prefix("nak: ").unwrap_or(msg).to_string();
            self.out.push_back(Output::ClientFailed { link, reason });
            return self.close_link(link);
        }
        if msg == "bye" {
            return self.close_link(link);
        }
        let reply = |m: &mut Model, r: String| m.send(link, format!("{stream} {r}"));
        let Some(args) = msg.strip_prefix("watch ") else {
            return reply(
                self,
                format!(
                    "error bad watch: not a watch request: {}",
                    go_quote(msg.as_bytes())
                ),
            );
        };
        let mut it = args.split(' ');
        let oid = match it.next().map(Oid::parse) {
            Some(Ok(o)) => o,
            _ => return reply(self, "error bad watch: invalid oid".into()),
        };
        match (it.next(), it.next()) {
            (Some("-"), None) => {
                if let Some(l) = self.links.get_mut(&link) {
                    l.watches.remove(&oid);
                }
                reply(self, "ok".into())
            }
            (Some(at), None) => match at.strip_prefix('@').map(Tid::parse) {
                Some(Ok(at)) => {
                    if at > self.head() {
                        self.future.push((link, stream, oid, at));
                    } else {
                        self.setup_watch(link, stream, oid, at);
                    }
                }
                _ => reply(self, "error bad watch: invalid at".into()),
            },
            _ => reply(self, "error bad watch: invalid at".into()),
        }
    }

    /// The client closed its end: its watches go, waits on it are released.
    pub fn link_close(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.closed = true;
        l.watches.clear();
        self.future.retain(|w| w.0 != link);
        let mine: Vec<(LinkId, u64)> = self.pins.keys().filter(|k| k.0 == link).copied().collect();
        for k in mine {
            if let Some(p) = self.pins.remove(&k) {
                self.pin_done(p);
            }
        }
    }

    /// The link did not ack in time.
    pub fn pin_timeout(&mut self, link: LinkId) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        self.out.push_back(Output::ClientFailed {
            link,
            reason: "pin timeout".into(),
        });
        self.close_link(link);
    }

    /// The links not closed, in id order.
    pub fn links(&self) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| !l.closed)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Pins the server believes in force (acked or not) for this watch.
    pub fn pinned(&self, link: LinkId, oid: Oid) -> BTreeMap<u64, Tid> {
        self.links
            .get(&link)
            .and_then(|l| l.watches.get(&oid))
            .map(|w| w.pinned.clone())
            .unwrap_or_default()
    }

    /// The revision `link` watches `oid` at, if it watches it.
    pub fn watch_at(&self, link: LinkId, oid: Oid) -> Option<Tid> {
        self.links.get(&link)?.watches.get(&oid).map(|w| w.at)
    }

    /// Whether a pin sent on `link` is still unacked.
    pub fn awaits_ack(&self, link: LinkId) -> bool {
        self.pins
            .range((link, 0)..=(link, u64::MAX))
            .next()
            .is_some()
    }

    /// The links with a pin still unacked, in id order: one lookup per
    /// such link, however many links and pins there are.
    pub fn links_awaiting_ack(&self) -> Vec<LinkId> {
        let mut links = Vec::new();
        let mut from = 0;
        while let Some((&(link, _), _)) = self.pins.range((from, 0)..).next() {
            links.push(link);
            match link.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        links
    }

    /// Whether block `blk` of `oid` is pinned (not `@head`) on `link` and
    /// the client acked that pin.
    pub fn pin_acked(&self, link: LinkId, oid: Oid, blk: u64) -> bool {
        self.links
            .get(&link)
            .and_then(|l| l.watches.get(&oid))
            .is_some_and(|w| w.pinned.contains_key(&blk))
            && !self
                .pins
                .iter()
                .any(|(k, p)| k.0 == link && p.oid == oid && p.blk == blk)
    }

    // ---- internals ----

    fn send(&mut self, link: LinkId, line: String) {
        self.out.push_back(Output::Send { link, line });
    }

    fn fatal(&mut self, link: LinkId, text: String) {
        self.send(link, format!("0 error: {text}"));
        self.close_link(link);
    }

    fn close_link(&mut self, link: LinkId) {
        self.link_close(link);
        self.out.push_back(Output::Close { link });
    }

    fn new_wait(&mut self, kind: WaitKind) -> u64 {
        let id = self.next_wait;
        self.next_wait += 1;
        self.waits.insert(id, Wait { kind, pins: 0 });
        id
    }

    /// Sends `pin <oid> #<blk> @<rev|head>` to `link` for `wait`, and records it.
    fn send_pin(&mut self, link: LinkId, wait: u64, oid: Oid, blk: u64, rev: Option<Tid>) {
        let l = self.links.get_mut(&link).expect("link");
        let stream = l.next_stream;
        l.next_stream += 2;
        let w = l.watches.get_mut(&oid).expect("watch");
        match rev {
            Some(r) => w.pinned.insert(blk, r),
            None => w.pinned.remove(&blk),
        };
        let rev = rev.map_or_else(|| "head".to_string(), |r| r.to_string());
        self.send(link, format!("{stream} pin {oid} #{blk} @{rev}"));
        self.pins.insert(
            (link, stream),
            PinRec {
                oid,
                blk,
                waits: vec![wait],
            },
        );
        self.waits.get_mut(&wait).expect("wait").pins += 1;
    }

    fn pin_done(&mut self, pin: PinRec) {
        for wait in pin.waits {
            let Some(w) = self.waits.get_mut(&wait) else {
                continue;
            };
            w.pins -= 1;
            if w.pins == 0 {
                let w = self.waits.remove(&wait).expect("wait");
                self.finish(w.kind);
            }
        }
    }

    fn finish(&mut self, kind: WaitKind) {
        match kind {
            WaitKind::Watch { link, stream } => {
                if self.links.get(&link).is_some_and(|l| !l.closed) {
                    self.send(link, format!("{stream} ok"));
                }
            }
            WaitKind::Read { read, oid, blk } => {
                let d = self.data(oid, self.head(), blk);
                self.ready.insert(read, d);
                self.out.push_back(Output::ReadReady { read });
            }
        }
    }

    /// Revisions `<= at` at which block `blk` already had its data as of `at`.
    fn valid_revs(&self, oid: Oid, at: Tid, blk: u64) -> Vec<Tid> {
        let want = self.data(oid, at, blk);
        self.revs
            .iter()
            .copied()
            .filter(|&r| r <= at && self.size(oid, r).is_some() && self.data(oid, r, blk) == want)
            .collect()
    }

    fn pin_rev(&self, link: LinkId, oid: Oid, at: Tid, blk: u64) -> Tid {
        let valid = self.valid_revs(oid, at, blk);
        let changed = self.files[&oid]
            .blocks
            .get(&blk)
            .and_then(|h| h.iter().rev().find(|e| e.0 <= at))
            .map(|e| e.0);
        match self.cfg.pin_rev {
            PinRevChoice::Exact => changed.filter(|c| valid.contains(c)).unwrap_or(valid[0]),
            PinRevChoice::Oldest => valid[0],
            PinRevChoice::Seeded(seed) => {
                let mut h =
                    seed ^ link.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ blk.rotate_left(17) ^ at.0;
                h ^= h >> 33;
                h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
                h ^= h >> 33;
                valid[(h % valid.len() as u64) as usize]
            }
        }
    }

    fn setup_watch(&mut self, link: LinkId, stream: u64, oid: Oid, at: Tid) {
        if self.links.get(&link).is_none_or(|l| l.closed) {
            return;
        }
        let head = self.head();
        let prefix = format!("setup watch f<{oid}> @{at}");
        let known = self.files.get(&oid).is_some_and(|f| f.known);
        if !known {
            return self.send(
                link,
                format!("{stream} error {prefix}: file not yet known to wcfs or is not a ZBigFile"),
            );
        }
        if let Some(w) = self.links[&link].watches.get(&oid) {
            if at < w.at {
                return self.send(
                    link,
                    format!("{stream} error {prefix}: going back in history is forbidden"),
                );
            }
        }
        let oldest_watch = self
            .links
            .values()
            .flat_map(|l| l.watches.values().map(|w| w.at))
            .min();
        let kept_from = head.0.saturating_sub(self.cfg.history);
        if at.0 < kept_from && oldest_watch.is_none_or(|o| at < o) || self.size(oid, at).is_none() {
            let dt = go_duration(tid_ns(head).saturating_sub(tid_ns(at)));
            return self.send(
                link,
                format!(
                    "{stream} error {prefix}: too far away back from head/at (@{head}); δt = {dt}"
                ),
            );
        }
        let l = self.links.get_mut(&link).expect("link");
        let w = l.watches.entry(oid).or_insert_with(|| Watch {
            at,
            pinned: BTreeMap::new(),
        });
        w.at = at;
        let pinned = w.pinned.clone();
        let f = &self.files[&oid];
        let blocks: BTreeSet<u64> = f.accessed.iter().chain(pinned.keys()).copied().collect();
        let mut todo = Vec::new();
        for blk in blocks {
            let want = self.data(oid, at, blk);
            if want == self.data(oid, head, blk) {
                if pinned.contains_key(&blk) {
                    todo.push((blk, None));
                }
            } else {
                let keep = pinned
                    .get(&blk)
                    .is_some_and(|&r| r <= at && self.data(oid, r, blk) == want);
                if !keep {
                    todo.push((blk, Some(self.pin_rev(link, oid, at, blk))));
                }
            }
        }
        let wait = self.new_wait(WaitKind::Watch { link, stream });
        for (blk, rev) in todo {
            self.send_pin(link, wait, oid, blk, rev);
        }
        if self.waits[&wait].pins == 0 {
            let w = self.waits.remove(&wait).expect("wait");
            self.finish(w.kind);
        }
    }
}

/// Nanoseconds since 1900 of a ZODB tid: high 32 bits count minutes, the
/// low 32 bits a fraction of the minute.
fn tid_ns(t: Tid) -> u128 {
    let minutes = u128::from(t.0 >> 32);
    let frac = u128::from(t.0 & 0xffff_ffff);
    minutes * 60_000_000_000 + (frac * 60_000_000_000 + (1 << 31)) / (1 << 32)
}

/// A duration as Go prints it: `14ns`, `1.5µs`, `3.2ms`, `2.5s`, `1m2.5s`, `1h0m0s`.
pub fn go_duration(ns: u128) -> String {
    fn frac(v: u128, unit: u128) -> String {
        let whole = v / unit;
        let mut rest = format!("{:0width$}", v % unit, width = unit.to_string().len() - 1);
        while rest.ends_with('0') {
            rest.pop();
        }
        if rest.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{rest}")
        }
    }
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", frac(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", frac(n, 1_000_000)),
        n => {
            let (h, m) = (n / 3_600_000_000_000, n / 60_000_000_000 % 60);
            let s = frac(n % 60_000_000_000, 1_000_000_000);
            if h > 0 {
                format!("{h}h{m}m{s}s")
            } else if m > 0 {
                format!("{m}m{s}s")
            } else {
                format!("{s}s")
            }
        }
    }
}

/// A string quoted as Go's `%q` does.
pub fn go_quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    let text = String::from_utf8_lossy(b);
    let valid = std::str::from_utf8(b).is_ok();
    if !valid {
        for &c in b {
            match c {
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b'\n' => s.push_str("\\n"),
                b'\t' => s.push_str("\\t"),
                b'\r' => s.push_str("\\r"),
                0x20..=0x7e => s.push(c as char),
                _ => {
                    let _ = write!(s, "\\x{c:02x}");
                }
            }
        }
    } else {
        for c in text.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\t' => s.push_str("\\t"),
                '\r' => s.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(s, "\\x{:02x}", c as u32);
                }
                c => s.push(c),
            }
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Oid = Oid(1);

    fn cfg(pin_rev: PinRevChoice) -> ModelConfig {
        ModelConfig {
            pin_rev,
            ..ModelConfig::new("test://", 16)
        }
    }

    fn sent(m: &mut Model) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(o) = m.poll_output() {
            match o {
                Output::Send { line, .. } => v.push(line),
                Output::Close { .. } => v.push("<close>".into()),
                Output::ClientFailed { reason, .. } => v.push(format!("<failed: {reason}>")),
                Output::ReadReady { read } => v.push(format!("<ready {read}>")),
                Output::Invalidate { .. } => {}
            }
        }
        v
    }

    fn recv(m: &mut Model, l: LinkId, line: &str) -> Vec<String> {
        m.link_recv(l, line.as_bytes());
        sent(m)
    }

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn verbatim_errors_and_frames() {
        let head = Tid(0x040d3dfb3836f121);
        let mut m = Model::new_at(
            ModelConfig {
                history: 0,
                ..cfg(PinRevChoice::Exact)
            },
            Tid(0x040d3dfb3836f000),
        );
        m.commit_at(head.0, &[(F, 0, b("a"))]).unwrap();
        m.commit_at(0x040d3dfb3836f122, &[(F, 0, b("b"))]).unwrap();
        sent(&mut m);
        let l = m.link_open();
        assert_eq!(
            recv(&mut m, l, "1 watch 0000000000000001 @040d3dfb3836f122"),
            ["1 error setup watch f<0000000000000001> @040d3dfb3836f122: file not yet known to wcfs or is not a ZBigFile"]
        );
        m.open_head(F).unwrap();
        assert_eq!(
            recv(&mut m, l, "3 watch 0000000000000001 @040d3dfb3836f121"),
            ["3 error setup watch f<0000000000000001> @040d3dfb3836f121: too far away back from head/at (@040d3dfb3836f122); δt = 14ns"]
        );
        assert_eq!(
            recv(&mut m, l, "5 watch 0000000000000001 @040d3dfb3836f122"),
            ["5 ok"]
        );
        assert_eq!(
            recv(&mut m, l, "5 watch 0000000000000001 @040d3dfb3836f121"),
            ["5 error setup watch f<0000000000000001> @040d3dfb3836f121: going back in history is forbidden"]
        );
        assert_eq!(
            recv(&mut m, l, "1 watch 01 @040d3dfb3836f122"),
            ["1 error bad watch: invalid oid"]
        );
        assert_eq!(
            recv(&mut m, l, "1 watch 0000000000000001 @zz"),
            ["1 error bad watch: invalid at"]
        );
        assert_eq!(
            recv(&mut m, l, "1 hello"),
            ["1 error bad watch: not a watch request: \"hello\""]
        );
        assert_eq!(recv(&mut m, l, "7 watch 0000000000000001 -"), ["7 ok"]);
        assert_eq!(
            recv(&mut m, l, "7 watch 0000000000000002 -"),
            ["7 ok"],
            "also when not watching"
        );
        assert_eq!(
            recv(&mut m, l, "hello"),
            ["0 error: invalid frame: \"hello\\n\"", "<close>"]
        );
        let l = m.link_open();
        assert_eq!(
            recv(&mut m, l, "2 watch 0000000000000001 @040d3dfb3836f122"),
            ["0 error: 2: reply on unexpected stream", "<close>"]
        );
        let l = m.link_open();
        assert_eq!(recv(&mut m, l, "11 bye"), ["<close>"]);
    }

    #[test]
    fn recorded_setup_lazy_pin_and_move_forward() {
        // PROTOCOL section 4: pins during setup, a lazy pin, unpins when moving forward.
        let (a, w, c) = (
            Tid(0x040d3dfb078a3c22),
            Tid(0x040d3dfb08ebeb99),
            Tid(0x040d3dfb0a880eee),
        );
        let mut m = Model::new_at(cfg(PinRevChoice::Exact), Tid(0x040d3dfb00000000));
        m.commit_at(a.0, &[(F, 0, b("a0")), (F, 1, b("a1")), (F, 2, b("a2"))])
            .unwrap();
        m.commit_at(c.0, &[(F, 0, b("c0")), (F, 1, b("c1")), (F, 2, b("c2"))])
            .unwrap();
        m.open_head(F).unwrap();
        for blk in [0, 2] {
            assert!(matches!(m.read_head(F, blk), HeadRead::Ready(_)));
        }
        sent(&mut m);
        let l = m.link_open();
        assert_eq!(
            recv(&mut m, l, &format!("1 watch {F} @{w}")),
            [format!("2 pin {F} #0 @{a}"), format!("4 pin {F} #2 @{a}")]
        );
        assert!(!m.can_commit(), "setup holds the head lock");
        assert_eq!(m.commit(&[(F, 0, b("x"))]), Err(CommitError::Busy));
        assert!(recv(&mut m, l, "2 ack").is_empty());
        assert_eq!(recv(&mut m, l, "4 ack"), ["1 ok"]);
        // Lazy pin on a head read of #1.
        let HeadRead::Wait(r) = m.read_head(F, 1) else {
            panic!("must wait")
        };
        assert_eq!(sent(&mut m), [format!("6 pin {F} #1 @{a}")]);
        assert_eq!(m.take_read(r), None);
        assert_eq!(recv(&mut m, l, "6 ack"), [format!("<ready {r}>")]);
        assert_eq!(&m.take_read(r).unwrap()[..2], b"c1");
        assert_eq!(m.pinned(l, F).len(), 3);
        // Move forward: unpins.
        assert_eq!(
            recv(&mut m, l, &format!("3 watch {F} @{c}")),
            [
                format!("8 pin {F} #0 @head"),
                format!("10 pin {F} #1 @head"),
                format!("12 pin {F} #2 @head")
            ]
        );
        recv(&mut m, l, "8 ack");
        recv(&mut m, l, "10 ack");
        assert_eq!(recv(&mut m, l, "12 ack"), ["3 ok"]);
        assert!(m.pinned(l, F).is_empty());
        assert!(m.can_commit());
    }

    #[test]
    fn nak_fails_the_client_and_close_releases_waits() {
        let mut m = Model::new(cfg(PinRevChoice::Oldest));
        let at1 = m.commit(&[(F, 0, b("a"))]).unwrap();
        m.commit(&[(F, 0, b("b"))]).unwrap();
        m.open_head(F).unwrap();
        let l1 = m.link_open();
        let l2 = m.link_open();
        recv(&mut m, l1, &format!("1 watch {F} @{at1}"));
        recv(&mut m, l2, &format!("1 watch {F} @{at1}"));
        let HeadRead::Wait(r) = m.read_head(F, 0) else {
            panic!()
        };
        assert_eq!(sent(&mut m).len(), 2);
        let l3 = m.link_open();
        assert_eq!(m.links_awaiting_ack(), [l1, l2]);
        assert!(m.awaits_ack(l1) && m.awaits_ack(l2) && !m.awaits_ack(l3));
        assert_eq!(
            recv(&mut m, l1, "2 nak: cannot"),
            ["<failed: cannot>", "<close>"]
        );
        assert_eq!(m.links_awaiting_ack(), [l2], "a failed link's pins go");
        m.link_close(l2);
        assert!(m.links_awaiting_ack().is_empty());
        assert_eq!(sent(&mut m), [format!("<ready {r}>")]);
        assert!(m.can_commit());
        m.pin_timeout(l2);
        assert!(sent(&mut m).is_empty(), "closed links are not timed out");
    }

    #[test]
    fn watch_in_the_future_waits_for_head() {
        let mut m = Model::new(cfg(PinRevChoice::Exact));
        m.commit(&[(F, 0, b("a"))]).unwrap();
        m.open_head(F).unwrap();
        let l = m.link_open();
        let future = Tid(m.head().0 + TID_STEP);
        assert!(recv(&mut m, l, &format!("1 watch {F} @{future}")).is_empty());
        m.commit(&[(F, 1, b("b"))]).unwrap();
        assert_eq!(sent(&mut m), ["1 ok"]);
        assert_eq!(m.watch_at(l, F), Some(future));
    }

    /// Every pin names a revision <= at whose data is the data as of at.
    #[test]
    fn pins_name_valid_revisions() {
        for (seed, choice) in (0..60u64).map(|s| {
            (
                s,
                [
                    PinRevChoice::Exact,
                    PinRevChoice::Oldest,
                    PinRevChoice::Seeded(s),
                ][s as usize % 3],
            )
        }) {
            let mut m = Model::new(cfg(choice));
            let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut rnd = |n: u64| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) % n
            };
            let mut revs = vec![m.commit(&[(F, 0, b("init"))]).unwrap()];
            for i in 0..8 {
                let blk = rnd(5);
                revs.push(m.commit(&[(F, blk, format!("v{i}").into_bytes())]).unwrap());
            }
            m.open_head(F).unwrap();
            for blk in 0..5 {
                let _ = m.read_head(F, blk);
            }
            sent(&mut m);
            let at = revs[rnd(revs.len() as u64) as usize];
            let l = m.link_open();
            m.link_recv(l, format!("1 watch {F} @{at}").as_bytes());
            for line in sent(&mut m) {
                if let Some(rest) = line.split_once(" pin ").map(|x| x.1) {
                    let parts: Vec<&str> = rest.split(' ').collect();
                    let blk: u64 = parts[1][1..].parse().unwrap();
                    let rev = Tid::parse(&parts[2][1..]).unwrap();
                    assert!(rev <= at, "seed {seed}: pin after at");
                    assert_eq!(
                        m.data(F, rev, blk),
                        m.data(F, at, blk),
                        "seed {seed}: wrong data"
                    );
                    assert_ne!(
                        m.data(F, m.head(), blk),
                        m.data(F, at, blk),
                        "seed {seed}: needless pin"
                    );
                }
            }
        }
    }

    #[test]
    fn reference_scenario_pins() {
        // PROTOCOL section 7 at the model level: what the client's pinned becomes.
        let mut m = Model::new(cfg(PinRevChoice::Exact));
        m.commit(&[(F, 0, b("")), (F, 1, b(""))]).unwrap();
        let at1 = m.commit(&[(F, 2, b("c1")), (F, 3, b("d1"))]).unwrap();
        let at2 = m.commit(&[(F, 2, b("c2"))]).unwrap();
        m.open_head(F).unwrap();
        let l = m.link_open();
        assert_eq!(recv(&mut m, l, &format!("1 watch {F} @{at1}")), ["1 ok"]);
        let HeadRead::Wait(_) = m.read_head(F, 2) else {
            panic!()
        };
        assert_eq!(sent(&mut m), [format!("2 pin {F} #2 @{at1}")]);
        recv(&mut m, l, "2 ack");
        assert!(matches!(m.read_head(F, 3), HeadRead::Ready(_)));
        let at3 = m.commit(&[(F, 3, b("d3")), (F, 4, b("e3"))]).unwrap();
        let HeadRead::Wait(_) = m.read_head(F, 3) else {
            panic!()
        };
        assert_eq!(sent(&mut m), [format!("4 pin {F} #3 @{at1}")]);
        recv(&mut m, l, "4 ack");
        assert_eq!(m.pinned(l, F), BTreeMap::from([(2, at1), (3, at1)]));
        // resync(at2): #2 unpinned, #3 stays.
        assert_eq!(
            recv(&mut m, l, &format!("3 watch {F} @{at2}")),
            [format!("6 pin {F} #2 @head")]
        );
        assert_eq!(recv(&mut m, l, "6 ack"), ["3 ok"]);
        assert_eq!(m.pinned(l, F), BTreeMap::from([(3, at1)]));
        // resync(at3): nothing pinned.
        assert_eq!(
            recv(&mut m, l, &format!("5 watch {F} @{at3}")),
            [format!("8 pin {F} #3 @head")]
        );
        assert_eq!(recv(&mut m, l, "8 ack"), ["5 ok"]);
        assert!(m.pinned(l, F).is_empty());
    }

    /// PROTOCOL section 5, "Files can shrink": the four observations.
    #[test]
    fn deleting_the_last_blocks_shrinks_head() {
        let mut m = Model::new(cfg(PinRevChoice::Exact));
        let t0 = m
            .commit(&[
                (F, 0, b("a")),
                (F, 1, b("b")),
                (F, 2, b("c")),
                (F, 3, b("d")),
            ])
            .unwrap();
        m.open_head(F).unwrap();
        for blk in 0..4 {
            assert!(matches!(m.read_head(F, blk), HeadRead::Ready(_)));
        }
        sent(&mut m);
        let l = m.link_open();
        assert_eq!(recv(&mut m, l, &format!("1 watch {F} @{t0}")), ["1 ok"]);

        let t1 = m.commit_changes(&[Change::DeleteFrom(F, 3)]).unwrap();
        assert_eq!(m.size(F, t0), Some(64));
        assert_eq!(m.size(F, t1), Some(48));
        assert_eq!(m.data(F, t1, 3), vec![0; 16]);
        assert!(sent(&mut m).is_empty(), "no pin for the deleted block");
        assert!(matches!(m.read_head(F, 3), HeadRead::Ready(d) if d == vec![0; 16]));
        assert!(
            sent(&mut m).is_empty(),
            "a read past head's end pins nobody"
        );
        assert_eq!(
            recv(&mut m, l, &format!("3 watch {F} @{t1}")),
            ["3 ok"],
            "re-watching at the new head: no pin or unpin"
        );

        let l2 = m.link_open();
        assert_eq!(
            recv(&mut m, l2, &format!("1 watch {F} @{t0}")),
            [format!("2 pin {F} #3 @{t0}")],
            "a new watch at an older at pins the deleted block at setup"
        );
        assert_eq!(recv(&mut m, l2, "2 ack"), ["1 ok"]);

        let t2 = m.commit(&[(F, 3, b("d2"))]).unwrap();
        assert_eq!(m.size(F, t2), Some(64));
        assert!(sent(&mut m).is_empty(), "growing back pins nobody");
        assert_eq!(&m.data(F, t2, 3)[..2], b"d2");

        // A deleted block that is not written again reads as a hole.
        m.commit_changes(&[Change::DeleteFrom(F, 2)]).unwrap();
        let t4 = m.commit(&[(F, 3, b("e"))]).unwrap();
        assert_eq!(m.data(F, t4, 2), vec![0; 16]);
        assert_eq!(
            m.commit_changes(&[Change::DeleteFrom(Oid(9), 0)]),
            Err(CommitError::BadBlock),
            "no deletion in a file that does not exist"
        );
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(14), "14ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(3_200_000), "3.2ms");
        assert_eq!(go_duration(62_500_000_000), "1m2.5s");
        assert_eq!(go_quote(b"hello\n"), "\"hello\\n\"");
        assert_eq!(go_quote(b"a\"b\xff"), "\"a\\\"b\\xff\"");
    }
}
