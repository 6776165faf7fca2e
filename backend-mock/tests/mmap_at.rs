//! Mappings at a caller-reserved address range (`Conn::mmap_at`): placed
//! with a fixed map over the caller's range, managed like any mapping,
//! and left reserved (faulting) for the caller when unmapped.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{Config, Error, MapId, OpOk, Src};
use wcfs_mock::{Call, Harness, Mem, Path};

const AT1: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);

/// Pages of `BS` bytes, so that alignment is checked.
fn paged(at: Tid, db: Db) -> H {
    Harness::new(
        at,
        Config {
            page_size: BS as usize,
            ..cfg()
        },
        db,
    )
}

fn db() -> Db {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a1"), (F, 1, "b1")]);
    db.commit(AT2, &[(F, 0, "a2")]);
    db
}

fn mmap_at(h: &mut H, f: wcfs_core::FileId, start: u64, len: u64, addr: usize) -> MapId {
    let op = h
        .conn
        .mmap_at(f, start, len, addr, (len * BS) as usize)
        .unwrap();
    match h.poll(op) {
        Some(Ok(OpOk::Mapped(m))) => m,
        r => panic!("{r:?}"),
    }
}

#[test]
fn maps_over_the_callers_range_with_one_fixed_map() {
    let mut h = paged(AT2, db());
    let f = open(&mut h, F, "ok").unwrap();
    let addr = h.be.reserve(3 * BS as usize);
    h.be.clear_trace();
    let m = mmap_at(&mut h, f, 0, 3, addr);
    // Head's data where the caller said, zeros past head's end (2 blocks).
    let fd = *h
        .be
        .open_fds()
        .iter()
        .find(|(_, p)| **p == Path::Head(F))
        .unwrap()
        .0;
    assert_eq!(
        h.be.trace(),
        [
            Call::MapFixed {
                addr,
                len: 3 * BS as usize,
                src: Src::File { fd, offset: 0 }
            },
            Call::MapFixed {
                addr: addr + 2 * BS as usize,
                len: BS as usize,
                src: Src::Zeros
            },
        ],
        "no MapNew: the caller's range is replaced in place"
    );
    assert_eq!(h.conn.mapping(m).unwrap().addr, addr);
    assert_eq!(reads(&h, m, 0..3), [ok("a2"), ok("b1"), ok("")]);
}

#[test]
fn pins_apply_to_callers_ranges_and_own_mappings_alike() {
    let mut h = paged(AT1, db());
    let f = open(&mut h, F, "ok").unwrap();
    let own = mmap(&mut h, f, 0, 2);
    let addr = h.be.reserve(2 * BS as usize);
    let theirs = mmap_at(&mut h, f, 0, 2, addr);
    assert_eq!(
        reads(&h, theirs, 0..2),
        [ok("a2"), ok("b1")],
        "head before the pin"
    );
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(reads(&h, theirs, 0..2), [ok("a1"), ok("b1")]);
    assert_eq!(reads(&h, own, 0..2), [ok("a1"), ok("b1")]);
    assert_eq!(
        h.be.at(addr),
        Some(Mem::File {
            path: Path::Rev(F, AT1),
            offset: 0
        })
    );
    // A second caller range over a pinned block shows the pin at once.
    let addr2 = h.be.reserve(BS as usize);
    let late = mmap_at(&mut h, f, 0, 1, addr2);
    assert_eq!(read(&h, late, 0), ok("a1"));
}

#[test]
fn unmap_leaves_the_range_reserved_for_its_owner() {
    let mut h = paged(AT2, db());
    let f = open(&mut h, F, "ok").unwrap();
    let len = 2 * BS as usize;
    let addr = h.be.reserve(len);
    let m = mmap_at(&mut h, f, 0, 2, addr);
    h.be.clear_trace();
    h.conn.unmap(m).unwrap();
    h.drain();
    assert_eq!(
        h.be.trace(),
        [Call::MapFixed {
            addr,
            len,
            src: Src::Fault
        }],
        "no munmap of the caller's range"
    );
    assert_eq!(
        h.be.regions(addr, len),
        [(addr, addr + len, Some(Mem::Fault))]
    );
    // The owner reuses its reservation.
    let again = mmap_at(&mut h, f, 1, 2, addr);
    assert_eq!(reads(&h, again, 1..3), [ok("b1"), ok("")]);
    // Own mappings are still released.
    let own = mmap(&mut h, f, 0, 1);
    let own_addr = h.conn.mapping(own).unwrap().addr;
    h.conn.unmap(own).unwrap();
    h.drain();
    assert_eq!(h.be.at(own_addr), None);
}

#[test]
fn close_faults_the_callers_range_and_keeps_it_reserved() {
    let mut h = paged(AT2, db());
    let f = open(&mut h, F, "ok").unwrap();
    let len = 2 * BS as usize;
    let addr = h.be.reserve(len);
    let m = mmap_at(&mut h, f, 0, 2, addr);
    close_file(&mut h, f).unwrap();
    assert_eq!(reads(&h, m, 0..2), [Err(addr), Err(addr + BS as usize)]);
    h.conn.unmap(m).unwrap();
    h.drain();
    assert_eq!(
        h.be.regions(addr, len),
        [(addr, addr + len, Some(Mem::Fault))]
    );
    // Going down faults it too, and keeps it reserved.
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap_at(&mut h, f, 0, 2, addr);
    h.recv("7 pin nonsense");
    assert!(h.conn.down_reason().is_some());
    assert_eq!(read(&h, m, 0), Err(addr));
    h.conn.unmap(m).unwrap();
    h.drain();
    assert_eq!(h.be.at(addr), Some(Mem::Fault));
}

#[test]
fn bad_ranges_are_refused_untouched() {
    let mut h = paged(AT2, db());
    let f = open(&mut h, F, "ok").unwrap();
    let bs = BS as usize;
    let addr = h.be.reserve(4 * bs);
    let own = mmap(&mut h, f, 0, 2);
    let own_addr = h.conn.mapping(own).unwrap().addr;
    let theirs = mmap_at(&mut h, f, 0, 2, addr);
    h.be.clear_trace();
    let cases = [
        (0, 2 * bs, Error::BadAddress(0)),
        (addr + 3, 2 * bs, Error::BadAddress(addr + 3)),
        (
            usize::MAX - bs + 1,
            2 * bs,
            Error::BadAddress(usize::MAX - bs + 1),
        ),
        (
            addr + 2 * bs,
            bs,
            Error::BadLength {
                len: bs,
                want: 2 * BS,
            },
        ),
        (
            addr + bs,
            2 * bs,
            Error::AddressInUse {
                addr: addr + bs,
                len: 2 * bs,
            },
        ),
        (
            own_addr - bs,
            2 * bs,
            Error::AddressInUse {
                addr: own_addr - bs,
                len: 2 * bs,
            },
        ),
    ];
    for (a, len, want) in cases {
        assert_eq!(h.conn.mmap_at(f, 0, 2, a, len), Err(want));
    }
    assert_eq!(
        h.conn.mmap_at(f, 0, 0, addr + 2 * bs, 0),
        Err(Error::BadRange)
    );
    h.drain();
    assert_eq!(h.be.trace(), [], "nothing touched");
    // Adjacent is fine.
    let next = mmap_at(&mut h, f, 1, 2, addr + 2 * bs);
    assert_eq!(reads(&h, next, 1..3), [ok("b1"), ok("")]);
    assert_eq!(reads(&h, theirs, 0..2), [ok("a2"), ok("b1")]);
    // A faulting mapping still holds its range.
    close_file(&mut h, f).unwrap();
    let f = open(&mut h, F, "ok").unwrap();
    assert!(matches!(
        h.conn.mmap_at(f, 0, 2, addr, 2 * bs),
        Err(Error::AddressInUse { .. })
    ));
    h.conn.unmap(theirs).unwrap();
    h.drain();
    mmap_at(&mut h, f, 0, 2, addr);
}

#[test]
fn a_failed_rev_open_leaves_the_range_reserved() {
    let mut h = Harness::new(
        AT1,
        Config {
            page_size: BS as usize,
            rev_cache: 1,
            ..cfg()
        },
        db(),
    );
    let f = open(&mut h, F, "ok").unwrap();
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    // Another pin's @rev file evicts @AT1 from the one-slot cache, and
    // @AT1 then cannot be opened: mapping block 0 needs it and fails.
    h.be.store.commits.push((Tid(0x5), F, 1, "b0"));
    h.recv(&format!("4 pin {F} #1 @{}", Tid(0x5)));
    assert_eq!(h.sent(), ["4 ack"]);
    h.be.store.head = Tid(0x8); // the store refuses @rev after its head
    let addr = h.be.reserve(2 * BS as usize);
    let op = h.conn.mmap_at(f, 0, 2, addr, 2 * BS as usize).unwrap();
    let r = h.poll(op);
    assert!(
        matches!(r, Some(Err(Error::Os { .. }))),
        "@{AT1} is gone: {r:?}"
    );
    assert_eq!(h.conn.mappings().count(), 0, "the mapping is forgotten");
    assert_eq!(
        h.be.regions(addr, 2 * BS as usize),
        [(addr, addr + 2 * BS as usize, Some(Mem::Fault))],
        "and the range is the caller's reservation again"
    );
}

/// The virtmem flow: reserve, map into it, dirty a block with a private
/// page (marked dirty first), a pin arrives and leaves it alone, the page
/// is discarded, `remap_blk` shows the pinned revision.
#[test]
fn virtmem_flow() {
    let mut h = paged(AT1, db());
    let f = open(&mut h, F, "ok").unwrap();
    let bs = BS as usize;
    let addr = h.be.reserve(2 * bs);
    let m = mmap_at(&mut h, f, 0, 2, addr);
    assert_eq!(read(&h, m, 0), ok("a2"), "head: no pin yet");
    // The ordering contract: mark dirty, then lay the private page.
    h.conn.mark_dirty(m, 0).unwrap();
    h.be.lay_private(addr, bs, b'w').unwrap();
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"], "acked: the pin is recorded");
    assert_eq!(pinned(&h, f), [(0, AT1)]);
    assert_eq!(
        h.be.at(addr),
        Some(Mem::Private(b'w')),
        "the user's page stays"
    );
    assert_eq!(read(&h, m, 0), ok("wwwwwwwwwwwwwwww"));
    // The VM layer discards its page (writes back elsewhere, or drops it).
    let op = h.conn.remap_blk(m, 0).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(read(&h, m, 0), ok("a1"), "the pinned revision");
    assert_eq!(read(&h, m, 1), ok("b1"));
}
