//! A tiny versioned store for scripted scenarios: block data are short tags.
#![allow(dead_code)]

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, Error, FileId, MapId, OpOk, Stat};
use wcfs_mock::{Harness, Path, Store};

pub const BS: u64 = 16;
pub const F: Oid = Oid(1);
pub const G: Oid = Oid(2);

#[derive(Default)]
pub struct Db {
    /// (tid, oid, blk, tag), in commit order.
    pub commits: Vec<(Tid, Oid, u64, &'static str)>,
    /// (tid, oid, blk): blocks `blk..` of `oid` deleted at `tid` (head shrinks).
    pub deletes: Vec<(Tid, Oid, u64)>,
    pub head: Tid,
}

impl Db {
    pub fn commit(&mut self, at: Tid, changes: &[(Oid, u64, &'static str)]) {
        for &(oid, blk, tag) in changes {
            self.commits.push((at, oid, blk, tag));
        }
        self.head = at;
    }

    /// Deletes the blocks of `oid` from `blk` on at `at`: the file shrinks to `blk` blocks.
    pub fn delete_from(&mut self, at: Tid, oid: Oid, blk: u64) {
        self.deletes.push((at, oid, blk));
        self.head = at;
    }

    /// When block `blk` of `oid` was last deleted at or before `at`.
    fn deleted(&self, oid: Oid, at: Tid, blk: u64) -> Option<Tid> {
        self.deletes
            .iter()
            .filter(|d| d.0 <= at && d.1 == oid && d.2 <= blk)
            .map(|d| d.0)
            .max()
    }

    pub fn size(&self, oid: Oid, at: Tid) -> Option<u64> {
        let mut any = false;
        let mut size = 0;
        for c in self.commits.iter().filter(|c| c.0 <= at && c.1 == oid) {
            any = true;
            if self.deleted(oid, at, c.2).is_none_or(|d| d < c.0) {
                size = size.max((c.2 + 1) * BS);
            }
        }
        any.then_some(size)
    }

    pub fn tag(&self, oid: Oid, at: Tid, blk: u64) -> &'static str {
        let deleted = self.deleted(oid, at, blk);
        self.commits
            .iter()
            .rev()
            .find(|c| c.0 <= at && c.1 == oid && c.2 == blk)
            .filter(|c| deleted.is_none_or(|d| d < c.0))
            .map_or("", |c| c.3)
    }

    fn path_at(&self, p: Path) -> (Oid, Tid) {
        match p {
            Path::Head(oid) => (oid, self.head),
            Path::Rev(oid, rev) => (oid, rev),
        }
    }
}

impl Store for Db {
    fn head_at(&mut self) -> Tid {
        self.head
    }
    fn stat(&mut self, p: Path) -> Option<Stat> {
        let (oid, at) = self.path_at(p);
        if at > self.head {
            return None;
        }
        Some(Stat {
            size: self.size(oid, at)?,
            blksize: BS,
        })
    }
}

/// Revisions of the scenarios, in order.
pub const AT1: Tid = Tid(0x10);
pub const AT2: Tid = Tid(0x20);
pub const AT3: Tid = Tid(0x30);

/// `F` with blocks 0..4 tagged "a", "b", "c", "d" as of `at`.
pub fn abcd(at: Tid) -> Db {
    let mut db = Db::default();
    db.commit(at, &[(F, 0, "a"), (F, 1, "b"), (F, 2, "c"), (F, 3, "d")]);
    db
}

pub type H = Harness<Db>;

pub fn cfg() -> Config {
    Config {
        page_size: 1,
        ..Config::default()
    }
}

pub fn harness(at: Tid, db: Db) -> H {
    Harness::new(at, cfg(), db)
}

/// Reads block `blk` of mapping `m` as its tag ("" for zeros); `Err` on a
/// fault, also where the memory shows a file past its end (SIGBUS on Linux).
pub fn read(h: &H, m: MapId, blk: u64) -> Result<String, usize> {
    let map = h.conn.mapping(m).expect("mapping");
    let addr = map.blk_addr(blk);
    if let Some(wcfs_mock::Mem::File { path, offset }) = h.be.at(addr) {
        let (oid, at) = h.be.store.path_at(path);
        if offset >= h.be.store.size(oid, at).unwrap_or(0) {
            return Err(addr);
        }
    }
    let mut buf = vec![0u8; BS as usize];
    h.be.read(map.blk_addr(blk), &mut buf, |p, off, dst| {
        let (oid, at) = h.be.store.path_at(p);
        let mut blkdata = h.be.store.tag(oid, at, off / BS).as_bytes().to_vec();
        blkdata.resize(BS as usize, 0);
        let o = (off % BS) as usize;
        dst.copy_from_slice(&blkdata[o..o + dst.len()]);
    })?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8(buf[..end].to_vec()).unwrap())
}

pub fn reads(h: &H, m: MapId, blks: std::ops::Range<u64>) -> Vec<Result<String, usize>> {
    blks.map(|b| read(h, m, b)).collect()
}

pub fn ok(s: &str) -> Result<String, usize> {
    Ok(s.to_string())
}

/// Opens `oid`, expecting `watch <oid> @<at>` and answering it with `reply`.
pub fn open(h: &mut H, oid: Oid, reply: &str) -> Result<FileId, Error> {
    let op = h.conn.open(oid)?;
    if let Some(r) = h.poll(op) {
        return r.map(|ok| match ok {
            OpOk::Opened(f) => f,
            o => panic!("{o:?}"),
        });
    }
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let stream = sent[0].split(' ').next().unwrap().to_string();
    assert_eq!(sent[0], format!("{stream} watch {oid} @{}", h.conn.at()));
    h.recv(&format!("{stream} {reply}"));
    match h.poll(op).expect("open done") {
        Ok(OpOk::Opened(f)) => Ok(f),
        Ok(o) => panic!("{o:?}"),
        Err(e) => Err(e),
    }
}

pub fn mmap(h: &mut H, f: FileId, start: u64, len: u64) -> MapId {
    let op = h.conn.mmap(f, start, len).unwrap();
    match h.poll(op) {
        Some(Ok(OpOk::Mapped(m))) => m,
        r => panic!("{r:?}"),
    }
}

pub fn pinned(h: &H, f: FileId) -> Vec<(u64, Tid)> {
    h.conn.pinned(f)
}

pub fn close_file(h: &mut H, f: FileId) -> Result<OpOk, Error> {
    let op = h.conn.close_file(f)?;
    if let Some(r) = h.poll(op) {
        return r;
    }
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let stream = sent[0].split(' ').next().unwrap().to_string();
    h.recv(&format!("{stream} ok"));
    h.poll(op).expect("close done")
}

/// Resyncs to `at` with one file open: expects its `watch <oid> @<at>`,
/// feeds `lines` (pins) from the server, then `ok`; returns the result and
/// what the client answered to `lines`.
pub fn resync_one(h: &mut H, at: Tid, lines: &[String]) -> (Result<OpOk, Error>, Vec<String>) {
    let op = h.conn.resync(at).unwrap();
    if let Some(r) = h.poll(op) {
        return (r, h.sent());
    }
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let stream = sent[0].split(' ').next().unwrap().to_string();
    assert!(sent[0].ends_with(&format!(" @{at}")), "{sent:?}");
    for l in lines {
        h.recv(l);
    }
    let acks = h.sent();
    h.recv(&format!("{stream} ok"));
    (h.poll(op).expect("resync done"), acks)
}

/// The fixed maps the client performed since the trace was cleared: `(addr, len, src)`.
pub fn fixed_maps(h: &H) -> Vec<(usize, usize, wcfs_core::Src)> {
    h.be.trace()
        .iter()
        .filter_map(|c| match *c {
            wcfs_mock::Call::MapFixed { addr, len, src } => Some((addr, len, src)),
            _ => None,
        })
        .collect()
}
