//! A FUSE filesystem that speaks the WCFS protocol, backed by the
//! [`model`](crate::model): the stand-in for the real (Go, ZODB) server.
//!
//! Layout (PROTOCOL section 2): `head/at`, `head/watch`, `head/bigfile/<oid>`,
//! `@<tid>/bigfile/<oid>` (found by lookup, never listed), `.wcfs/zurl`,
//! `.wcfs/pintimeout`. Bigfiles go through the kernel page cache; a commit
//! invalidates the changed head blocks, so the next access comes back as a
//! read, which pins every watcher that needs the old data and waits for
//! their acks before returning.
//!
//! Threads: fuser's workers dispatch requests and never block on a watcher.
//! A read of `head/watch` with no bytes to give, or of a head block that
//! waits for acks, is parked in the state with its reply; whichever call
//! produces what it waits for answers it (no thread per read, no wake-up of
//! unrelated waiters). One mutex guards the model; `pump` routes its outputs
//! after every call, and [`Shared::unlock`] answers the reads they complete
//! once per critical section (all the lines of one write: one answer), and
//! sends the answers once the lock is released.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};
use wcfs_core::wire::{Oid, Tid};

use crate::model::{HeadRead, LinkId, Model, Output, ReadId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Node {
    Root,
    Head,
    HeadAt,
    Watch,
    HeadBigfile,
    Wcfs,
    Zurl,
    PinTimeout,
    HeadFile(Oid),
    RevDir(Tid),
    RevBigfile(Tid),
    RevFile(Tid, Oid),
}

/// Inode numbers, given out on first lookup.
#[derive(Default)]
pub(super) struct Nodes {
    pub(super) by_node: HashMap<Node, u64>,
    pub(super) by_ino: Vec<Node>,
}

impl Nodes {
    pub(super) fn ino(&mut self, n: Node) -> u64 {
        if let Some(&i) = self.by_node.get(&n) {
            return i;
        }
        self.by_ino.push(n);
        let i = self.by_ino.len() as u64; // root is 1
        self.by_node.insert(n, i);
        i
    }

    fn node(&self, ino: u64) -> Option<Node> {
        self.by_ino.get(ino.checked_sub(1)? as usize).copied()
    }
}

/// A watch link's side of the server.
#[derive(Default)]
struct LinkIo {
    /// Bytes for the client, `\n`-terminated lines.
    out: VecDeque<u8>,
    /// The server ended the link: EOF once `out` is read.
    eof: bool,
    /// Bytes from the client not yet a whole line.
    partial: Vec<u8>,
    /// Reads of the link waiting for bytes (reply, size), oldest first.
    /// Invariant (whenever the state lock is free): none waits while `out`
    /// has bytes or the link is at its end (see [`Shared::unlock`]).
    reads: VecDeque<(ReplyData, u32)>,
}

impl LinkIo {
    /// Answers the waiting reads that can be: with bytes of `out`, or
    /// with EOF once the link ended (or the server stops).
    fn answer(&mut self, stopping: bool, outbox: &mut Vec<Answer>) {
        while let Some(&(_, size)) = self.reads.front() {
            let data = if !self.out.is_empty() {
                let n = (size as usize).min(self.out.len());
                self.out.drain(..n).collect()
            } else if self.eof || stopping {
                Vec::new()
            } else {
                break;
            };
            let (reply, _) = self.reads.pop_front().expect("front");
            outbox.push(Answer::Watch(reply, data));
        }
    }
}

/// A read of head blocks waiting for the acks of their pins.
struct HeadWait {
    reply: ReplyData,
    /// The blocks that wait, and their model reads.
    waits: Vec<(u64, ReadId)>,
    /// The blocks that did not wait.
    got: BTreeMap<u64, Vec<u8>>,
    offset: u64,
    end: u64,
}

/// An answer to a read, sent once the state lock is released.
enum Answer {
    /// Bytes of a watch link (empty: EOF).
    Watch(ReplyData, Vec<u8>),
    /// The data of a head read; counted in `reads_in_flight` until sent.
    Head(ReplyData, Vec<u8>),
}

/// Longest line the server buffers from a client.
const MAX_CLIENT_LINE: usize = 4096;

pub(super) struct State {
    pub(super) model: Model,
    pub(super) nodes: Nodes,
    links: BTreeMap<LinkId, LinkIo>,
    /// Links whose bytes or end changed since their reads were last served.
    touched: BTreeSet<LinkId>,
    ready: BTreeMap<ReadId, Vec<u8>>,
    /// A head read's block became ready since `head_waits` was last served.
    heads_ready: bool,
    /// Head reads waiting for acks; answered once all their blocks are ready.
    head_waits: Vec<HeadWait>,
    /// Answers completed under the lock, sent by [`Shared::unlock`].
    outbox: Vec<Answer>,
    /// Commits waiting on `cv` for the model and the head reads to settle:
    /// only then do settling events wake `cv`.
    pub(super) committers: usize,
    /// Head reads between computing their data and replying: a commit
    /// waits for them, or a stale page could land after its invalidation.
    pub(super) reads_in_flight: usize,
    /// Links with a pin unacked, and since when.
    awaiting: BTreeMap<LinkId, Instant>,
    pub(super) failures: Vec<(LinkId, String)>,
    /// When each pin in flight was queued for its link: `(link, stream)`.
    pin_sent: HashMap<(LinkId, u64), Instant>,
    /// Pin round trips: pin queued for the client -> its ack received.
    pub(super) rtts: Vec<Duration>,
    pub(super) invalidate: Vec<(Oid, u64)>,
    pub(super) stopping: bool,
    /// Open watch links and bigfile handles: the clients, for `-autoexit`.
    pub(super) clients: usize,
    /// Whether a client ever came.
    pub(super) had_client: bool,
}

pub(super) struct Shared {
    pub(super) st: Mutex<State>,
    /// Wakes the threads that wait for the state as a whole: commits
    /// (`committers`), the pin timer, the watchdog and `-autoexit` at a
    /// change of clients or at the stop. Reads are never waiting on it.
    pub(super) cv: Condvar,
    pub(super) blksize: u64,
    pub(super) pintimeout: Duration,
}

impl Shared {
    /// The state of a fresh server of `model`, the root inode numbered.
    pub(super) fn new(model: Model) -> Shared {
        let blksize = model.config().blksize;
        let pintimeout = Duration::from_secs_f64(model.config().pintimeout_secs);
        let sh = Shared {
            st: Mutex::new(State {
                model,
                nodes: Nodes::default(),
                links: BTreeMap::new(),
                touched: BTreeSet::new(),
                ready: BTreeMap::new(),
                heads_ready: false,
                head_waits: Vec::new(),
                outbox: Vec::new(),
                committers: 0,
                reads_in_flight: 0,
                awaiting: BTreeMap::new(),
                failures: Vec::new(),
                pin_sent: HashMap::new(),
                rtts: Vec::new(),
                invalidate: Vec::new(),
                stopping: false,
                clients: 0,
                had_client: false,
            }),
            cv: Condvar::new(),
            blksize,
            pintimeout,
        };
        sh.lock().nodes.ino(Node::Root);
        sh
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Releases the lock, then sends the answers queued under it (a reply
    /// is a write to the FUSE device: no I/O under the lock). Head reads
    /// leave `reads_in_flight` only once their data went out.
    pub(super) fn unlock(&self, mut st: MutexGuard<'_, State>) {
        let out = take_answers(&mut st);
        drop(st);
        self.send(out);
    }

    /// Sends answers taken with [`take_answers`] (the lock not held).
    fn send(&self, out: Vec<Answer>) {
        if out.is_empty() {
            return;
        }
        let mut heads = 0;
        for a in out {
            match a {
                Answer::Watch(reply, data) => reply.data(&data),
                Answer::Head(reply, data) => {
                    reply.data(&data);
                    heads += 1;
                }
            }
        }
        if heads > 0 {
            let mut st = self.lock();
            st.reads_in_flight -= heads;
            self.wake_committers(&st);
        }
    }

    /// Wakes the commits waiting for the state to settle, if any.
    pub(super) fn wake_committers(&self, st: &State) {
        if st.committers > 0 {
            self.cv.notify_all();
        }
    }
}

/// Answers what can be answered and takes the answers, to send once the
/// lock is released: the reads of the links touched since the last call,
/// and the head reads whose blocks are all ready; at the stop, every
/// waiting read (EOF, or the data there is).
fn take_answers(st: &mut State) -> Vec<Answer> {
    let heads = std::mem::take(&mut st.heads_ready);
    answer_waiting(st, heads);
    std::mem::take(&mut st.outbox)
}

/// Queues in `outbox` the answers [`take_answers`] takes; `heads`: look at
/// the head reads too.
fn answer_waiting(st: &mut State, heads: bool) {
    let stopping = st.stopping;
    let touched = if stopping {
        st.links.keys().copied().collect()
    } else {
        std::mem::take(&mut st.touched)
    };
    st.touched.clear();
    for link in touched {
        if let Some(l) = st.links.get_mut(&link) {
            l.answer(stopping, &mut st.outbox);
        }
    }
    if !(heads || stopping) || st.head_waits.is_empty() {
        return;
    }
    let mut i = 0;
    while i < st.head_waits.len() {
        let w = &st.head_waits[i];
        if !stopping && !w.waits.iter().all(|(_, r)| st.ready.contains_key(r)) {
            i += 1;
            continue;
        }
        let mut w = st.head_waits.swap_remove(i);
        for (b, r) in &w.waits {
            if let Some(d) = st.ready.remove(r) {
                w.got.insert(*b, d);
            }
        }
        let bs = st.model.config().blksize;
        let data = assemble(&w.got, bs, w.offset, w.end);
        st.outbox.push(Answer::Head(w.reply, data));
    }
}

/// Stops the server: every waiting read is answered (EOF on watch links,
/// what there is for head reads) and every thread waiting on `cv` woken.
pub(super) fn stop(sh: &Shared) {
    let mut st = sh.lock();
    st.stopping = true;
    sh.cv.notify_all();
    sh.unlock(st);
}

/// Routes every model output; call after every model call, under the
/// lock, and release the lock with [`Shared::unlock`] (which answers the
/// reads the outputs complete).
pub(super) fn pump(sh: &Shared, st: &mut State) {
    while let Some(out) = st.model.poll_output() {
        match out {
            Output::Send { link, line } => {
                if let Some((stream, _)) = line.split_once(" pin ") {
                    if let Ok(stream) = stream.parse::<u64>() {
                        st.pin_sent.insert((link, stream), Instant::now());
                    }
                }
                if let Some(l) = st.links.get_mut(&link) {
                    l.out.extend(line.as_bytes());
                    l.out.push_back(b'\n');
                    st.touched.insert(link);
                }
            }
            Output::Close { link } => {
                if let Some(l) = st.links.get_mut(&link) {
                    l.eof = true;
                    st.touched.insert(link);
                }
            }
            Output::ReadReady { read } => {
                if let Some(d) = st.model.take_read(read) {
                    st.ready.insert(read, d);
                    st.heads_ready = true;
                }
            }
            Output::Invalidate { oid, blk } => st.invalidate.push((oid, blk)),
            Output::ClientFailed { link, reason } => st.failures.push((link, reason)),
        }
    }
    let awaiting = st.model.links_awaiting_ack();
    st.awaiting.retain(|l, _| awaiting.contains(l));
    if !awaiting.is_empty() {
        let now = Instant::now();
        for l in awaiting {
            st.awaiting.entry(l).or_insert(now);
        }
    }
    sh.wake_committers(st);
}

pub(super) struct Fs {
    pub(super) sh: Arc<Shared>,
}

const TTL_STATIC: Duration = Duration::from_secs(3600);
const TTL_LIVE: Duration = Duration::ZERO;

impl Fs {
    fn attr(&self, st: &mut State, ino: u64, node: Node) -> Option<(FileAttr, Duration)> {
        let head = st.model.head();
        let (kind, size, perm, ttl) = match node {
            Node::Root
            | Node::Head
            | Node::HeadBigfile
            | Node::Wcfs
            | Node::RevDir(_)
            | Node::RevBigfile(_) => (FileType::Directory, 0, 0o555, TTL_LIVE),
            Node::HeadAt => (FileType::RegularFile, 16, 0o444, TTL_LIVE),
            Node::Watch => (FileType::RegularFile, 0, 0o600, TTL_LIVE),
            Node::Zurl => (
                FileType::RegularFile,
                st.model.config().zurl.len() as u64,
                0o444,
                TTL_STATIC,
            ),
            Node::PinTimeout => (
                FileType::RegularFile,
                pintimeout_text(&self.sh).len() as u64,
                0o444,
                TTL_STATIC,
            ),
            // Cached: every commit that changes a head file invalidates its
            // inode (attributes included), as the real server does.
            Node::HeadFile(oid) => (
                FileType::RegularFile,
                st.model.size(oid, head)?,
                0o444,
                TTL_STATIC,
            ),
            Node::RevFile(t, oid) => (
                FileType::RegularFile,
                st.model.size(oid, t)?,
                0o444,
                TTL_STATIC,
            ),
        };
        let t = SystemTime::UNIX_EPOCH;
        Some((
            FileAttr {
                ino: INodeNo(ino),
                size,
                blocks: size.div_ceil(512),
                atime: t,
                mtime: t,
                ctime: t,
                crtime: t,
                kind,
                perm,
                nlink: if kind == FileType::Directory { 2 } else { 1 },
                uid: 0,
                gid: 0,
                rdev: 0,
                blksize: self.sh.blksize as u32,
                flags: 0,
            },
            ttl,
        ))
    }

    fn child(st: &State, parent: Node, name: &str) -> Option<Node> {
        let head = st.model.head();
        Some(match (parent, name) {
            (Node::Root, "head") => Node::Head,
            (Node::Root, ".wcfs") => Node::Wcfs,
            (Node::Root, n) => {
                let t = Tid::parse(n.strip_prefix('@')?).ok()?;
                st.model.revs().contains(&t).then_some(Node::RevDir(t))?
            }
            (Node::Head, "at") => Node::HeadAt,
            (Node::Head, "watch") => Node::Watch,
            (Node::Head, "bigfile") => Node::HeadBigfile,
            (Node::Wcfs, "zurl") => Node::Zurl,
            (Node::Wcfs, "pintimeout") => Node::PinTimeout,
            (Node::HeadBigfile, n) => {
                let oid = Oid::parse(n).ok()?;
                st.model.size(oid, head)?;
                Node::HeadFile(oid)
            }
            (Node::RevDir(t), "bigfile") => Node::RevBigfile(t),
            (Node::RevBigfile(t), n) => {
                let oid = Oid::parse(n).ok()?;
                st.model.size(oid, t)?;
                Node::RevFile(t, oid)
            }
            _ => return None,
        })
    }
}

fn pintimeout_text(sh: &Shared) -> String {
    format!("{:.1}", sh.pintimeout.as_secs_f64())
}

fn slice_at(text: &[u8], offset: u64, size: u32) -> &[u8] {
    let start = (offset as usize).min(text.len());
    let end = start.saturating_add(size as usize).min(text.len());
    &text[start..end]
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Reads of one block at a time, like the real server's 2 MiB blocks.
        let _ = config.set_max_readahead(self.sh.blksize as u32);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut st = self.sh.lock();
        let Some(p) = st.nodes.node(parent.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(n) = name.to_str().and_then(|name| Fs::child(&st, p, name)) else {
            return reply.error(Errno::ENOENT);
        };
        let ino = st.nodes.ino(n);
        match self.attr(&mut st, ino, n) {
            Some((a, ttl)) => reply.entry(&ttl, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut st = self.sh.lock();
        let Some(n) = st.nodes.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match self.attr(&mut st, ino.0, n) {
            Some((a, ttl)) => reply.attr(&ttl, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.sh.lock();
        let Some(n) = st.nodes.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match n {
            Node::HeadFile(oid) => {
                if st.model.open_head(oid).is_none() {
                    return reply.error(Errno::ENOENT);
                }
                client_came(&self.sh, &mut st);
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Node::RevFile(..) => {
                client_came(&self.sh, &mut st);
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Node::Watch => {
                client_came(&self.sh, &mut st);
                let link = st.model.link_open();
                st.links.insert(link, LinkIo::default());
                reply.opened(
                    FileHandle(link),
                    FopenFlags::FOPEN_DIRECT_IO
                        | FopenFlags::FOPEN_NONSEEKABLE
                        | FopenFlags::FOPEN_STREAM,
                )
            }
            Node::HeadAt | Node::Zurl | Node::PinTimeout => {
                reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO)
            }
            _ => reply.error(Errno::EISDIR),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut st = self.sh.lock();
        let Some(n) = st.nodes.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        match n {
            Node::HeadAt => reply.data(slice_at(
                st.model.head().to_string().as_bytes(),
                offset,
                size,
            )),
            Node::Zurl => reply.data(slice_at(
                st.model.config().zurl.clone().as_bytes(),
                offset,
                size,
            )),
            Node::PinTimeout => {
                reply.data(slice_at(pintimeout_text(&self.sh).as_bytes(), offset, size))
            }
            Node::RevFile(t, oid) => {
                let data = blocks(&st.model, oid, t, offset, size, |m, b| m.data(oid, t, b));
                reply.data(&data)
            }
            Node::HeadFile(oid) => {
                let bs = self.sh.blksize;
                let head = st.model.head();
                let end = (offset + u64::from(size)).min(st.model.size(oid, head).unwrap_or(0));
                let mut waits = Vec::new();
                let mut got = BTreeMap::new();
                let mut b = offset / bs;
                while b * bs < end {
                    match st.model.read_head(oid, b) {
                        HeadRead::Ready(d) => {
                            got.insert(b, d);
                        }
                        HeadRead::Wait(r) => waits.push((b, r)),
                    }
                    b += 1;
                }
                pump(&self.sh, &mut st);
                st.reads_in_flight += 1;
                if waits.is_empty() {
                    self.sh.unlock(st);
                    reply.data(&assemble(&got, bs, offset, end));
                    return done_read(&self.sh);
                }
                st.head_waits.push(HeadWait {
                    reply,
                    waits,
                    got,
                    offset,
                    end,
                });
                st.heads_ready = true;
                self.sh.unlock(st);
            }
            Node::Watch => {
                let stopping = st.stopping;
                let State { links, outbox, .. } = &mut *st;
                let Some(l) = links.get_mut(&fh.0) else {
                    return reply.data(&[]);
                };
                l.reads.push_back((reply, size));
                l.answer(stopping, outbox);
                self.sh.unlock(st);
            }
            _ => reply.error(Errno::EISDIR),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.sh.lock();
        if st.nodes.node(ino.0) != Some(Node::Watch) {
            return reply.error(Errno::EBADF);
        }
        let link = fh.0;
        let Some(l) = st.links.get_mut(&link) else {
            return reply.error(Errno::EBADF);
        };
        if l.eof {
            return reply.error(Errno::EPIPE);
        }
        l.partial.extend_from_slice(data);
        let mut lines = Vec::new();
        while let Some(i) = l.partial.iter().position(|&b| b == b'\n') {
            lines.push(l.partial.drain(..=i).collect::<Vec<u8>>());
        }
        if l.partial.len() > MAX_CLIENT_LINE {
            lines.push(std::mem::take(&mut l.partial));
        }
        for mut line in lines {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if let Some(stream) = line
                .strip_suffix(b" ack")
                .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok())
            {
                if let Some(t) = st.pin_sent.remove(&(link, stream)) {
                    st.rtts.push(t.elapsed());
                }
            }
            st.model.link_recv(link, &line);
            pump(&self.sh, &mut st);
        }
        // The answers first: a reply waiting for this write's request
        // (`watch -` -> `ok`) reaches its reader without another wake-up.
        let out = take_answers(&mut st);
        drop(st);
        self.sh.send(out);
        reply.written(data.len() as u32)
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.sh.lock();
        let node = st.nodes.node(ino.0);
        if node == Some(Node::Watch) {
            st.model.link_close(fh.0);
            if let Some(mut l) = st.links.remove(&fh.0) {
                // No read can wait on a released file; should one, EOF.
                l.eof = true;
                l.out.clear();
                l.answer(true, &mut st.outbox);
            }
            pump(&self.sh, &mut st);
        }
        if let Some(Node::Watch | Node::HeadFile(_) | Node::RevFile(..)) = node {
            st.clients = st.clients.saturating_sub(1);
            self.sh.cv.notify_all();
        }
        self.sh.unlock(st);
        reply.ok()
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.sh.lock();
        let Some(n) = st.nodes.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let head = st.model.head();
        let files = |st: &State, at: Tid| -> Vec<(String, Node)> {
            st.model
                .files()
                .into_iter()
                .filter(|&o| st.model.size(o, at).is_some())
                .map(|o| {
                    (
                        o.to_string(),
                        if at == head {
                            Node::HeadFile(o)
                        } else {
                            Node::RevFile(at, o)
                        },
                    )
                })
                .collect()
        };
        let entries: Vec<(String, Node)> = match n {
            Node::Root => vec![("head".into(), Node::Head), (".wcfs".into(), Node::Wcfs)],
            Node::Head => vec![
                ("at".into(), Node::HeadAt),
                ("watch".into(), Node::Watch),
                ("bigfile".into(), Node::HeadBigfile),
            ],
            Node::Wcfs => vec![
                ("zurl".into(), Node::Zurl),
                ("pintimeout".into(), Node::PinTimeout),
            ],
            Node::HeadBigfile => files(&st, head),
            Node::RevDir(t) => vec![("bigfile".into(), Node::RevBigfile(t))],
            Node::RevBigfile(t) => files(&st, t)
                .into_iter()
                .map(|(name, n)| match n {
                    Node::HeadFile(o) => (name, Node::RevFile(t, o)),
                    n => (name, n),
                })
                .collect(),
            _ => return reply.error(Errno::ENOTDIR),
        };
        let mut all = vec![
            (".".to_string(), n, FileType::Directory),
            ("..".to_string(), n, FileType::Directory),
        ];
        for (name, node) in entries {
            let kind = match node {
                Node::HeadAt
                | Node::Watch
                | Node::Zurl
                | Node::PinTimeout
                | Node::HeadFile(_)
                | Node::RevFile(..) => FileType::RegularFile,
                _ => FileType::Directory,
            };
            all.push((name, node, kind));
        }
        for (i, (name, node, kind)) in all.into_iter().enumerate().skip(offset as usize) {
            let ino = st.nodes.ino(node);
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok()
    }
}

/// Bytes `[offset, end)` of a file from its blocks.
fn assemble(blocks: &BTreeMap<u64, Vec<u8>>, bs: u64, offset: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
    let mut pos = offset;
    while pos < end {
        let b = pos / bs;
        let within = (pos % bs) as usize;
        let take = ((bs - pos % bs).min(end - pos)) as usize;
        match blocks.get(&b) {
            Some(d) => out.extend_from_slice(&d[within..within + take]),
            None => out.extend(std::iter::repeat_n(0, take)),
        }
        pos += take as u64;
    }
    out
}

fn blocks(
    m: &Model,
    oid: Oid,
    at: Tid,
    offset: u64,
    size: u32,
    data: impl Fn(&Model, u64) -> Vec<u8>,
) -> Vec<u8> {
    let bs = m.config().blksize;
    let end = (offset + u64::from(size)).min(m.size(oid, at).unwrap_or(0));
    let mut got = BTreeMap::new();
    let mut b = offset / bs;
    while b * bs < end {
        got.insert(b, data(m, b));
        b += 1;
    }
    assemble(&got, bs, offset, end)
}

fn client_came(sh: &Shared, st: &mut State) {
    st.clients += 1;
    st.had_client = true;
    sh.cv.notify_all();
}

fn done_read(sh: &Shared) {
    let mut st = sh.lock();
    st.reads_in_flight -= 1;
    sh.wake_committers(&st);
}

/// How often the pin timer looks at the links awaiting acks (a pin sent
/// since its last look is timed from when `pump` saw it).
const PIN_TIMER_TICK: Duration = Duration::from_millis(20);

/// Times out links that do not ack a pin within `pintimeout`: wakes at the
/// first deadline or each [`PIN_TIMER_TICK`], and at the stop.
pub(super) fn pin_timer(sh: &Shared) {
    let mut st = sh.lock();
    while !st.stopping {
        let now = Instant::now();
        let late: Vec<LinkId> = st
            .awaiting
            .iter()
            .filter(|(_, &t)| now.duration_since(t) >= sh.pintimeout)
            .map(|(&l, _)| l)
            .collect();
        if !late.is_empty() {
            for l in late {
                st.model.pin_timeout(l);
                st.awaiting.remove(&l);
            }
            pump(sh, &mut st);
            sh.unlock(st);
            st = sh.lock();
            continue;
        }
        let next = st
            .awaiting
            .values()
            .map(|&t| (t + sh.pintimeout).saturating_duration_since(now))
            .min()
            .map_or(PIN_TIMER_TICK, |d| d.min(PIN_TIMER_TICK));
        let (g, _) = sh
            .cv
            .wait_timeout(st, next)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
    }
}
