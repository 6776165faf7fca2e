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
//! Threads: fuser's workers dispatch requests and never block on a watcher;
//! a read of `head/watch` or of a head block that waits for acks is answered
//! from a thread of its own. One mutex guards the model; `pump` routes its
//! outputs after every call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, KernelConfig, LockOwner, MountOption, Notifier, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};
use wcfs_core::wire::{Oid, Tid};

use crate::model::{Change, CommitError, HeadRead, LinkId, Model, ModelConfig, Output, ReadId};

/// Whether this machine can mount FUSE filesystems (`/dev/fuse` and `fusermount3`, or root).
pub fn fuse_available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    let root = rustix_uid_is_root();
    let fusermount = [
        "/bin/fusermount3",
        "/usr/bin/fusermount3",
        "/bin/fusermount",
        "/usr/bin/fusermount",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if !root && !fusermount {
        return Err("neither root nor fusermount3".into());
    }
    Ok(())
}

fn rustix_uid_is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// Skips a test (prints why and returns) when FUSE is not usable here.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Err(why) = $crate::server::fuse_available() {
            eprintln!("SKIPPED: FUSE is not available: {why}");
            return;
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Node {
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
struct Nodes {
    by_node: HashMap<Node, u64>,
    by_ino: Vec<Node>,
}

impl Nodes {
    fn ino(&mut self, n: Node) -> u64 {
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
}

/// Longest line the server buffers from a client.
const MAX_CLIENT_LINE: usize = 4096;

struct State {
    model: Model,
    nodes: Nodes,
    links: BTreeMap<LinkId, LinkIo>,
    ready: BTreeMap<ReadId, Vec<u8>>,
    /// Head reads between computing their data and replying: a commit
    /// waits for them, or a stale page could land after its invalidation.
    reads_in_flight: usize,
    /// Links with a pin unacked, and since when.
    awaiting: BTreeMap<LinkId, Instant>,
    failures: Vec<(LinkId, String)>,
    /// When each pin in flight was queued for its link: `(link, stream)`.
    pin_sent: HashMap<(LinkId, u64), Instant>,
    /// Pin round trips: pin queued for the client -> its ack received.
    rtts: Vec<Duration>,
    invalidate: Vec<(Oid, u64)>,
    stopping: bool,
    /// Open watch links and bigfile handles: the clients, for `-autoexit`.
    clients: usize,
    /// Whether a client ever came.
    had_client: bool,
}

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
    blksize: u64,
    pintimeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cv.wait(g).unwrap_or_else(|e| e.into_inner())
    }
}

/// Routes every model output; call after every model call, under the lock.
fn pump(sh: &Shared, st: &mut State) {
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
                }
            }
            Output::Close { link } => {
                if let Some(l) = st.links.get_mut(&link) {
                    l.eof = true;
                }
            }
            Output::ReadReady { read } => {
                if let Some(d) = st.model.take_read(read) {
                    st.ready.insert(read, d);
                }
            }
            Output::Invalidate { oid, blk } => st.invalidate.push((oid, blk)),
            Output::ClientFailed { link, reason } => st.failures.push((link, reason)),
        }
    }
    let now = Instant::now();
    let links = st.model.links();
    let awaiting: Vec<LinkId> = links
        .into_iter()
        .filter(|&l| st.model.awaits_ack(l))
        .collect();
    st.awaiting.retain(|l, _| awaiting.contains(l));
    for l in awaiting {
        st.awaiting.entry(l).or_insert(now);
    }
    sh.cv.notify_all();
}

struct Fs {
    sh: Arc<Shared>,
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
                    drop(st);
                    reply.data(&assemble(&got, bs, offset, end));
                    return done_read(&self.sh);
                }
                drop(st);
                let sh = self.sh.clone();
                std::thread::spawn(move || {
                    let mut st = sh.lock();
                    loop {
                        if st.stopping {
                            break;
                        }
                        if waits.iter().all(|(_, r)| st.ready.contains_key(r)) {
                            for (b, r) in &waits {
                                got.insert(*b, st.ready.remove(r).expect("ready"));
                            }
                            break;
                        }
                        st = sh.wait(st);
                    }
                    drop(st);
                    reply.data(&assemble(&got, bs, offset, end));
                    done_read(&sh);
                });
            }
            Node::Watch => {
                let link = fh.0;
                let sh = self.sh.clone();
                drop(st);
                std::thread::spawn(move || {
                    let mut st = sh.lock();
                    loop {
                        let Some(l) = st.links.get_mut(&link) else {
                            return reply.data(&[]);
                        };
                        if !l.out.is_empty() {
                            let n = (size as usize).min(l.out.len());
                            let data: Vec<u8> = l.out.drain(..n).collect();
                            drop(st);
                            return reply.data(&data);
                        }
                        if l.eof || st.stopping {
                            return reply.data(&[]);
                        }
                        st = sh.wait(st);
                    }
                });
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
            st.links.remove(&fh.0);
            pump(&self.sh, &mut st);
        }
        if let Some(Node::Watch | Node::HeadFile(_) | Node::RevFile(..)) = node {
            st.clients = st.clients.saturating_sub(1);
            self.sh.cv.notify_all();
        }
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
    sh.cv.notify_all();
}

/// A mounted test server. Unmounts on drop (also when a test panics).
pub struct TestServer {
    sh: Arc<Shared>,
    session: Option<BackgroundSession>,
    notifier: Notifier,
    mountpoint: PathBuf,
    temp: bool,
    timer: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Mounts a server of a fresh model at `mountpoint`.
    pub fn mount(mountpoint: &Path, cfg: ModelConfig) -> io::Result<TestServer> {
        Self::mount_model(mountpoint, Model::new(cfg), false)
    }

    /// Mounts on a new temporary directory (removed at unmount).
    pub fn start_temp(cfg: ModelConfig) -> io::Result<TestServer> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wcfs-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Self::mount_model(&dir, Model::new(cfg), true)
    }

    pub fn mount_model(mountpoint: &Path, model: Model, temp: bool) -> io::Result<TestServer> {
        let blksize = model.config().blksize;
        let pintimeout = Duration::from_secs_f64(model.config().pintimeout_secs);
        let sh = Arc::new(Shared {
            st: Mutex::new(State {
                model,
                nodes: Nodes::default(),
                links: BTreeMap::new(),
                ready: BTreeMap::new(),
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
        });
        sh.lock().nodes.ino(Node::Root);
        // As the real server: type `fuse.wcfs`, source the zurl (`join`
        // checks both). `subtype=` as a kernel option reaches mount(2) as
        // well as fusermount3; fusermount3 splits its options at commas
        // unless escaped, mount(2) takes the source as is.
        let zurl = sh.lock().model.config().zurl.clone();
        let mut cfg = Config::default();
        cfg.mount_options = vec![
            // SAFETY: geteuid has no preconditions.
            MountOption::FSName(if unsafe { libc::geteuid() } == 0 {
                zurl
            } else {
                zurl.replace('\\', "\\\\").replace(',', "\\,")
            }),
            MountOption::CUSTOM("subtype=wcfs".into()),
        ];
        cfg.n_threads = Some(4);
        let session = fuser::spawn_mount(Fs { sh: sh.clone() }, mountpoint, &cfg)?;
        let notifier = session.notifier();
        let timer = {
            let sh = sh.clone();
            std::thread::spawn(move || pin_timer(&sh))
        };
        watchdog(sh.clone(), mountpoint);
        Ok(TestServer {
            sh,
            session: Some(session),
            notifier,
            mountpoint: mountpoint.to_path_buf(),
            temp,
            timer: Some(timer),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn head(&self) -> Tid {
        self.sh.lock().model.head()
    }

    /// Commits once no read or watch setup waits for acks, then drops the
    /// changed head blocks from the kernel page cache.
    pub fn commit(&self, changes: &[(Oid, u64, Vec<u8>)]) -> Tid {
        let changes: Vec<Change> = changes.iter().map(Change::from).collect();
        self.commit_changes(&changes)
    }

    /// [`TestServer::commit`] of writes and deletions of last blocks. A
    /// deletion shrinks head: its blocks are dropped from the page cache and
    /// the kernel learns the new size at the next `stat` (the inode's
    /// attributes are invalidated with them), as with the real server.
    pub fn commit_changes(&self, changes: &[Change]) -> Tid {
        self.try_commit_changes(changes).expect("commit")
    }

    /// [`TestServer::commit_changes`] that reports a change the store refuses.
    pub fn try_commit_changes(&self, changes: &[Change]) -> Result<Tid, CommitError> {
        let mut st = self.sh.lock();
        while !st.model.can_commit() || st.reads_in_flight > 0 {
            st = self.sh.wait(st);
        }
        let at = st.model.commit_changes(changes)?;
        pump(&self.sh, &mut st);
        let inval = std::mem::take(&mut st.invalidate);
        let inos: Vec<(u64, u64)> = inval
            .into_iter()
            .filter_map(|(oid, blk)| {
                st.nodes
                    .by_node
                    .get(&Node::HeadFile(oid))
                    .map(|&i| (i, blk))
            })
            .collect();
        drop(st);
        let bs = self.sh.blksize as i64;
        for (ino, blk) in inos {
            let _ = self.notifier.inval_inode(INodeNo(ino), blk as i64 * bs, bs);
        }
        Ok(at)
    }

    /// Runs `f` on the model (for oracles).
    pub fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.sh.lock().model)
    }

    /// Clients that nak'ed or did not ack in time.
    pub fn failures(&self) -> Vec<(LinkId, String)> {
        self.sh.lock().failures.clone()
    }

    /// Pin round trips measured so far (pin queued -> ack received).
    pub fn pin_rtts(&self) -> Vec<Duration> {
        self.sh.lock().rtts.clone()
    }

    /// Waits for `-autoexit`'s moment: a client came, and none has been
    /// left for `idle` (a client reconnecting at once keeps the server);
    /// or none came within `first` of the start.
    pub fn wait_autoexit(&self, idle: Duration, first: Duration) {
        let start = Instant::now();
        let mut idle_since: Option<Instant> = None;
        let mut st = self.sh.lock();
        loop {
            let now = Instant::now();
            if !st.had_client {
                if now.duration_since(start) >= first {
                    return;
                }
            } else if st.clients == 0 {
                let since = *idle_since.get_or_insert(now);
                if now.duration_since(since) >= idle {
                    return;
                }
            } else {
                idle_since = None;
            }
            st = self
                .sh
                .cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Unmounts (waking every blocked read first).
    pub fn unmount(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let mut st = self.sh.lock();
            st.stopping = true;
            self.sh.cv.notify_all();
        }
        if let Some(s) = self.session.take() {
            // A plain unmount fails while a client still holds the mount
            // (EBUSY): detach it then, or it stays behind, dead, once this
            // process is gone.
            if let Err(busy) = s.umount_and_join() {
                if let Err(e) = detach(&self.mountpoint) {
                    eprintln!(
                        "wcfs test server: cannot unmount {}: {busy}; detach: {e}",
                        self.mountpoint.display()
                    );
                }
            }
        }
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
        if self.temp {
            remove_mountpoint(&self.mountpoint);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a mount may live before the watchdog declares the test hung.
pub const WATCHDOG: Duration = Duration::from_secs(240);

/// A hang on a FUSE mount served by this very process never ends by
/// itself (threads wait in the kernel for answers nobody will send). Past
/// [`WATCHDOG`] abort the FUSE connection, say so, and exit.
fn watchdog(sh: Arc<Shared>, mountpoint: &Path) {
    // The FUSE connection's number from the mount table, not from a stat of
    // the mountpoint: a server process must not wait on its own mount (a
    // signal ending it then leaves that thread waiting forever).
    let mnt = mountpoint.to_path_buf();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut st = sh.lock();
        while !st.stopping {
            if start.elapsed() > WATCHDOG {
                eprintln!(
                    "watchdog: FUSE test server at {} hung for {WATCHDOG:?}: aborting",
                    mnt.display()
                );
                if let Ok(Some(e)) = wcfs_linux::MountEntry::lookup(&mnt) {
                    let minor = e.minor;
                    let _ = std::fs::write(format!("/sys/fs/fuse/connections/{minor}/abort"), "1");
                }
                if let Err(e) = detach(&mnt) {
                    eprintln!("watchdog: cannot unmount {}: {e}", mnt.display());
                }
                std::process::exit(101);
            }
            st = sh
                .cv
                .wait_timeout(st, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    });
}

/// Times out links that do not ack a pin within `pintimeout`.
fn pin_timer(sh: &Shared) {
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
        }
        let (g, _) = sh
            .cv
            .wait_timeout(st, Duration::from_millis(20))
            .unwrap_or_else(|e| e.into_inner());
        st = g;
    }
}

/// Serves the control commands of `wcfs-testserver` (see its doc) read
/// from `input`, answering on `output`, until `quit` or EOF; then unmounts.
pub fn serve(srv: TestServer, input: impl io::BufRead, mut output: impl io::Write) {
    let hex = |s: &str| -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect()
    };
    let committed = |r: Result<Tid, CommitError>| match r {
        Ok(at) => format!("ok {at}"),
        Err(e) => format!("error commit refused: {e:?}"),
    };
    let _ = writeln!(output, "ready {}", srv.head());
    let _ = output.flush();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let mut w = line.split(' ');
        let reply = match w.next() {
            Some("head") => format!("ok {}", srv.head()),
            Some("commit") => {
                let (oid, blk) = (
                    w.next().and_then(|o| Oid::parse(o).ok()),
                    w.next().and_then(|b| b.parse().ok()),
                );
                let text: Vec<&str> = w.collect();
                match (oid, blk) {
                    (Some(oid), Some(blk)) => format!(
                        "ok {}",
                        srv.commit(&[(oid, blk, text.join(" ").into_bytes())])
                    ),
                    _ => "error usage: commit <oid-hex16> <blk> <text>".into(),
                }
            }
            Some("commitx") => {
                let parts: Vec<&str> = w.collect();
                let changes: Option<Vec<_>> = parts
                    .chunks(3)
                    .map(|c| {
                        let (oid, blk) = (Oid::parse(c.first()?).ok()?, c.get(1)?.parse().ok()?);
                        Some(match *c.get(2)? {
                            "-" => Change::DeleteFrom(oid, blk),
                            data => Change::Write(oid, blk, hex(data)?),
                        })
                    })
                    .collect();
                match changes {
                    Some(ch) if !ch.is_empty() => committed(srv.try_commit_changes(&ch)),
                    _ => "error usage: commitx <oid> <blk> <hex>|- ...".into(),
                }
            }
            Some("delete") => {
                let (oid, blk) = (
                    w.next().and_then(|o| Oid::parse(o).ok()),
                    w.next().and_then(|b| b.parse().ok()),
                );
                match (oid, blk, w.next()) {
                    (Some(oid), Some(blk), None) => {
                        committed(srv.try_commit_changes(&[Change::DeleteFrom(oid, blk)]))
                    }
                    _ => "error usage: delete <oid-hex16> <blk>".into(),
                }
            }
            Some("failures") => {
                let mut r = String::new();
                let f = srv.failures();
                let _ = write!(r, "ok {}", f.len());
                for (link, why) in f {
                    let _ = write!(r, "\t{link} {why}");
                }
                r
            }
            Some("stats") => {
                let mut r = srv.pin_rtts();
                r.sort();
                let q = |p: usize| {
                    r.get((r.len() * p / 100).min(r.len().saturating_sub(1)))
                        .map_or(0, |d| d.as_nanos())
                };
                format!("ok {} {} {}", r.len(), q(50), q(99))
            }
            Some("quit") => break,
            // For the tests of how a server process ends.
            Some("panic") => panic!("wcfs test server: panic asked for on the control channel"),
            _ => "error unknown command".into(),
        };
        let _ = writeln!(output, "{reply}");
        let _ = output.flush();
    }
    srv.unmount();
}

/// Unmounts `mnt` at once, whatever its clients are doing: lazily, so the
/// kernel drops the filesystem when its last user goes. Not mounted there
/// (any more) is success.
pub fn detach(mnt: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mnt.as_os_str().as_bytes())?;
    // SAFETY: umount2 on a NUL-terminated path; MNT_DETACH never waits for users.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        // Not root: the setuid helper unmounts what this user mounted.
        Some(libc::EPERM) => {
            let st = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(mnt)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            if st.success() || !is_mountpoint(mnt) {
                Ok(())
            } else {
                Err(io::Error::other(format!("fusermount3 -u -z: {st}")))
            }
        }
        _ => Err(e),
    }
}

/// Whether `path` is a mount point in this process's mount table.
pub fn is_mountpoint(path: &Path) -> bool {
    matches!(wcfs_linux::MountEntry::lookup(path), Ok(Some(_)))
}

/// Removes a mountpoint directory the server was given to own; says so on
/// stderr when it cannot.
fn remove_mountpoint(mnt: &Path) {
    match std::fs::remove_dir(mnt) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => eprintln!(
            "wcfs test server: cannot remove mountpoint {}: {e}",
            mnt.display()
        ),
    }
}

/// The signals that end a server process: SIGINT, SIGTERM, SIGHUP.
///
/// Blocks them in the calling thread and so in every thread it starts
/// afterwards: call it first thing in a server process, before any thread,
/// then [`end_cleanly`] once mounted.
pub fn block_end_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set calls on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Makes every abrupt end of this server process leave no mount behind:
/// one of the signals of [`block_end_signals`] (`set`), or a panic on any
/// thread, unmounts `mnt` (detached: clients may still hold it), removes
/// it when `rmdir`, and exits the process (0 on a signal, 101 on a panic).
/// An orderly end (`quit`, end of input) goes through [`TestServer::unmount`].
pub fn end_cleanly(set: libc::sigset_t, mnt: &Path, rmdir: bool) {
    fn finish(mnt: &Path, rmdir: bool, code: i32) -> ! {
        if let Err(e) = detach(mnt) {
            eprintln!("wcfs test server: cannot unmount {}: {e}", mnt.display());
        }
        if rmdir {
            remove_mountpoint(mnt);
        }
        let _ = io::stdout().flush();
        // SAFETY: ends the process without running destructors or atexit
        // handlers (a forked server shares them with its parent).
        unsafe { libc::_exit(code) }
    }
    let m = mnt.to_path_buf();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        finish(&m, rmdir, 101)
    }));
    let m = mnt.to_path_buf();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits for one of the signals `set` holds, blocked in
        // every thread by `block_end_signals`.
        unsafe { libc::sigwait(&set, &mut sig) };
        finish(&m, rmdir, 0)
    });
}

/// The test server in a process of its own, driven over its stdin.
///
/// Clients that mmap head files must not share a process with the server:
/// a page fault on a FUSE file holds the process's `mmap_lock` while it
/// waits for the server, and a server thread that then grows its heap
/// (`mprotect`, `brk`, `mmap`) waits for that lock: a deadlock. The real
/// WCFS is a process of its own too. The handle keeps a replica of the
/// model's store (commits are deterministic) for the tests' oracles.
pub struct ServerProcess {
    proc_: Proc,
    io: Mutex<ControlPipes>,
    replica: Mutex<Model>,
    mountpoint: PathBuf,
}

/// The server process's control channel: commands in, answers out.
type ControlPipes = (
    Box<dyn io::Write + Send>,
    io::BufReader<Box<dyn io::Read + Send>>,
);

enum Proc {
    Spawned(std::process::Child),
    Forked(libc::pid_t),
}

impl Proc {
    /// Whether the process ended (reaping it).
    fn ended(&mut self) -> bool {
        match self {
            Proc::Spawned(c) => !matches!(c.try_wait(), Ok(None)),
            Proc::Forked(pid) => {
                let mut status = 0;
                // SAFETY: our own child; WNOHANG does not block.
                unsafe { libc::waitpid(*pid, &mut status, libc::WNOHANG) != 0 }
            }
        }
    }

    fn kill(&mut self) {
        match self {
            Proc::Spawned(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Proc::Forked(pid) => {
                let mut status = 0;
                // SAFETY: our own child.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                    libc::waitpid(*pid, &mut status, 0);
                }
            }
        }
    }
}

fn temp_mountpoint(kind: &str) -> io::Result<PathBuf> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wcfs-{kind}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl ServerProcess {
    /// Starts `wcfs-testserver` (next to the running test binary, as cargo
    /// builds it for integration tests) on a new temporary directory.
    pub fn start_temp(cfg: ModelConfig) -> io::Result<ServerProcess> {
        let dir = temp_mountpoint("proc")?;
        let exe = std::env::current_exe()?;
        let bin = exe
            .ancestors()
            .map(|d| d.join("wcfs-testserver"))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "wcfs-testserver binary not built")
            })?;
        let mut child = std::process::Command::new(bin)
            .arg(&dir)
            .args(["--blksize", &cfg.blksize.to_string()])
            .args(["--pintimeout", &cfg.pintimeout_secs.to_string()])
            .args(["--zurl", &cfg.zurl])
            .args(["--history", &cfg.history.to_string()])
            .arg("--rmdir")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdin: Box<dyn io::Write + Send> = Box::new(child.stdin.take().expect("piped"));
        let stdout: Box<dyn io::Read + Send> = Box::new(child.stdout.take().expect("piped"));
        Self::handshake(Proc::Spawned(child), stdin, stdout, cfg, dir)
    }

    /// Forks a child that mounts and serves (no binary needed). Call it
    /// before starting threads: the child keeps only the forking thread.
    /// The server ends, unmounting and removing its directory, when the
    /// handle is dropped, on SIGINT/SIGTERM/SIGHUP, on a panic, and when
    /// the thread that forked it ends (`PR_SET_PDEATHSIG`).
    pub fn fork_temp(cfg: ModelConfig) -> io::Result<ServerProcess> {
        let dir = temp_mountpoint("demo")?;
        let (to_child_r, to_child_w) = std::io::pipe()?;
        let (from_child_r, from_child_w) = std::io::pipe()?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child only mounts, serves its pipe, and exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop((to_child_w, from_child_r));
            let set = block_end_signals();
            // The parent dying ends the server too (its end of the control
            // pipe closing does as well, unless a grandchild inherited it).
            // SAFETY: prctl with integer arguments; getppid has no preconditions.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    libc::raise(libc::SIGTERM);
                }
            }
            match TestServer::mount_model(&dir, Model::new(cfg), true) {
                Ok(srv) => {
                    end_cleanly(set, &dir, true);
                    serve(srv, io::BufReader::new(to_child_r), from_child_w)
                }
                Err(e) => {
                    let mut out = from_child_w;
                    let _ = writeln!(out, "error mount: {e}");
                    remove_mountpoint(&dir);
                }
            }
            // SAFETY: end the server child without the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        drop((to_child_r, from_child_w));
        Self::handshake(
            Proc::Forked(pid),
            Box::new(to_child_w),
            Box::new(from_child_r),
            cfg,
            dir,
        )
    }

    fn handshake(
        mut proc_: Proc,
        stdin: Box<dyn io::Write + Send>,
        stdout: Box<dyn io::Read + Send>,
        cfg: ModelConfig,
        dir: PathBuf,
    ) -> io::Result<ServerProcess> {
        use std::io::BufRead;
        let mut stdout = io::BufReader::new(stdout);
        let mut ready = String::new();
        stdout.read_line(&mut ready)?;
        if !ready.starts_with("ready ") {
            proc_.kill();
            return Err(io::Error::other(format!(
                "test server did not start: {ready:?}"
            )));
        }
        Ok(ServerProcess {
            proc_,
            io: Mutex::new((stdin, stdout)),
            replica: Mutex::new(Model::new(cfg)),
            mountpoint: dir,
        })
    }

    fn call(&self, cmd: &str) -> String {
        use std::io::{BufRead, Write};
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(io.0, "{cmd}").expect("wcfs-testserver stdin");
        let mut l = String::new();
        io.1.read_line(&mut l).expect("wcfs-testserver stdout");
        let l = l.trim_end().to_string();
        assert!(l.starts_with("ok"), "wcfs-testserver: {cmd}: {l}");
        l
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The server's process id.
    pub fn pid(&self) -> libc::pid_t {
        match &self.proc_ {
            Proc::Spawned(c) => c.id() as libc::pid_t,
            Proc::Forked(pid) => *pid,
        }
    }

    /// Asks the server to panic (to test how a server process ends).
    pub fn ask_panic(&self) {
        use std::io::Write;
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(io.0, "panic");
        let _ = io.0.flush();
    }

    /// Commits; returns the new head (the same as the replica's).
    pub fn commit(&self, changes: &[(Oid, u64, Vec<u8>)]) -> Tid {
        let changes: Vec<Change> = changes.iter().map(Change::from).collect();
        self.commit_changes(&changes)
    }

    /// Deletes the blocks of `oid` from `blk` on (head shrinks); returns the new head.
    pub fn delete_from(&self, oid: Oid, blk: u64) -> Tid {
        self.commit_changes(&[Change::DeleteFrom(oid, blk)])
    }

    /// Commits writes and deletions (`commitx`, `-` for a deletion);
    /// returns the new head (the same as the replica's).
    pub fn commit_changes(&self, changes: &[Change]) -> Tid {
        let mut cmd = String::from("commitx");
        for c in changes {
            match c {
                Change::Write(oid, blk, data) => {
                    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                    cmd.push_str(&format!(
                        " {oid} {blk} {}",
                        if hex.is_empty() { "00".into() } else { hex }
                    ));
                }
                Change::DeleteFrom(oid, blk) => cmd.push_str(&format!(" {oid} {blk} -")),
            }
        }
        // The replica first: a reader may learn of the new head from the
        // server and ask the replica for it at once.
        let padded: Vec<Change> = changes
            .iter()
            .map(|c| match c {
                Change::Write(o, b, d) if d.is_empty() => Change::Write(*o, *b, vec![0]),
                c => c.clone(),
            })
            .collect();
        let at = self
            .replica
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commit_changes(&padded)
            .expect("replica commit");
        let got = self.call(&cmd);
        assert_eq!(got, format!("ok {at}"), "replica diverged from the server");
        at
    }

    pub fn head(&self) -> Tid {
        Tid::parse(self.call("head").trim_start_matches("ok ")).expect("tid")
    }

    /// Runs `f` on the replica of the store (data and sizes; no links).
    pub fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.replica.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Pin round trips on the server: `(count, median ns, p99 ns)`.
    pub fn pin_rtt_stats(&self) -> (u64, u64, u64) {
        let l = self.call("stats");
        let v: Vec<u64> = l
            .split(' ')
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        (v[0], v[1], v[2])
    }

    /// Clients that nak'ed or timed out, as `(link, reason)`.
    pub fn failures(&self) -> Vec<(LinkId, String)> {
        let l = self.call("failures");
        l.split('\t')
            .skip(1)
            .filter_map(|f| {
                f.split_once(' ')
                    .map(|(l, r)| (l.parse().unwrap_or(0), r.to_string()))
            })
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        {
            use std::io::Write;
            let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(io.0, "quit");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.proc_.ended() {
            if Instant::now() > deadline {
                self.proc_.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // A server killed before it could unmount leaves its mount behind.
        if is_mountpoint(&self.mountpoint) {
            if let Err(e) = detach(&self.mountpoint) {
                eprintln!(
                    "wcfs test server: cannot unmount {}: {e}",
                    self.mountpoint.display()
                );
            }
        }
        remove_mountpoint(&self.mountpoint);
    }
}
