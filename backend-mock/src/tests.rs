//! Unit tests of the mock OS and the fault injector.

use wcfs_core::wire::{Oid, OutLine, Tid};
use wcfs_core::{BlockingOs, OsOp, QuickOs, Src, Stat};

use crate::*;

fn be() -> MockBackend<StatTable> {
    let mut st = StatTable::default();
    st.files.insert(
        Path::Head(Oid(1)),
        Stat {
            size: 64,
            blksize: 16,
        },
    );
    st.files.insert(
        Path::Rev(Oid(1), Tid(5)),
        Stat {
            size: 32,
            blksize: 16,
        },
    );
    MockBackend::new(st)
}

#[test]
fn fixed_maps_split_regions() {
    let mut b = be();
    let (h, _) = b.open_head(Oid(1)).unwrap();
    let (r, _) = b.open_rev(Oid(1), Tid(5)).unwrap();
    let a = b.map_new(h, 0, 64).unwrap();
    b.map_fixed(a + 16, 16, Src::File { fd: r, offset: 16 })
        .unwrap();
    b.map_fixed(a + 48, 16, Src::Zeros).unwrap();
    assert_eq!(
        b.at(a + 20),
        Some(Mem::File {
            path: Path::Rev(Oid(1), Tid(5)),
            offset: 20
        })
    );
    assert_eq!(
        b.at(a + 40),
        Some(Mem::File {
            path: Path::Head(Oid(1)),
            offset: 40
        })
    );
    assert_eq!(b.at(a + 50), Some(Mem::Zeros));
    assert_eq!(b.at(a + 64), None);
    b.map_fixed(a, 64, Src::Fault).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(b.read(a + 3, &mut buf, |_, _, _| {}), Err(a + 3));
    b.unmap(a, 64).unwrap();
    assert_eq!(b.at(a), None);
    assert!(
        b.map_fixed(a, 16, Src::Zeros).is_err(),
        "MAP_FIXED over nothing"
    );
}

#[test]
fn reservations_refuse_overlaps() {
    let mut b = be();
    let (h, _) = b.open_head(Oid(1)).unwrap();
    let a = b.map_new(h, 0, 64).unwrap();
    assert_eq!(b.reserve_at(a + 32, 64), Err(EEXIST), "overlaps a mapping");
    assert_eq!(
        b.reserve_at(a - 16, 17),
        Err(EEXIST),
        "touches its first byte"
    );
    let r = b.reserve(64);
    assert!(r >= a + 64, "fresh addresses");
    assert_eq!(b.at(r), Some(Mem::Fault), "reserved, inaccessible");
    assert_eq!(b.reserve_at(r + 63, 1), Err(EEXIST));
    b.map_fixed(r, 16, Src::File { fd: h, offset: 0 }).unwrap();
    b.lay_private(r, 16, b'x').unwrap();
    let mut buf = [0u8; 2];
    b.read(r + 3, &mut buf, |_, _, _| {}).unwrap();
    assert_eq!(&buf, b"xx");
    b.release(r, 64);
    assert_eq!(b.at(r), None);
    assert!(b.lay_private(r, 16, 1).is_err(), "over nothing");
    b.reserve_at(r, 64).unwrap();
    assert_eq!(b.at(r + 10), Some(Mem::Fault));
}

#[test]
fn read_goes_through_sources() {
    let mut b = be();
    let (h, _) = b.open_head(Oid(1)).unwrap();
    let a = b.map_new(h, 16, 32).unwrap();
    b.map_fixed(a + 16, 16, Src::Zeros).unwrap();
    let mut buf = [9u8; 32];
    b.read(a, &mut buf, |p, off, dst| {
        assert_eq!(p, Path::Head(Oid(1)));
        for (i, d) in dst.iter_mut().enumerate() {
            *d = (off as usize + i) as u8;
        }
    })
    .unwrap();
    assert_eq!(buf[0], 16);
    assert_eq!(buf[15], 31);
    assert!(buf[16..].iter().all(|&x| x == 0));
}

#[test]
fn counts_and_injected_faults() {
    let mut f = FaultInjector::new(be(), 1);
    f.set_fail_chance(OsOp::Send, 100, EPIPE);
    let bye = OutLine::new(&wcfs_core::wire::Frame {
        stream: 1,
        msg: wcfs_core::wire::Msg::Bye,
    });
    assert_eq!(f.send(&bye), Err(EPIPE));
    let (h, _) = f.open_head(Oid(1)).unwrap();
    f.map_new(h, 0, 16).unwrap();
    assert_eq!(f.inner.counts().mmap, 1);
    assert_eq!(f.inner.counts().open, 1);
    assert_eq!(f.inner.open_head(Oid(2)), Err(ENOENT));
}
