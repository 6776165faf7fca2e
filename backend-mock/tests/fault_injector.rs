//! The fault injector: seeded, per-operation chances, replayable.

use wcfs_core::wire::{Frame, Msg, Oid, OutLine};
use wcfs_core::{BlockingOs, Errno, OsOp, QuickOs, Stat};
use wcfs_mock::{Call, FaultInjector, MockBackend, Path, StatTable, EBADF, ENOMEM};

const STAT: Stat = Stat {
    size: 4096,
    blksize: 4096,
};

fn mock() -> MockBackend<StatTable> {
    let mut st = StatTable::default();
    st.files.insert(Path::Head(Oid(1)), STAT);
    MockBackend::new(st)
}

fn ok() -> OutLine {
    OutLine::new(&Frame {
        stream: 1,
        msg: Msg::Ok,
    })
}

/// Which of `n` opens fail, under `seed` and `percent`.
fn opens(seed: u64, percent: u8, n: usize) -> Vec<bool> {
    let mut f = FaultInjector::new(mock(), seed);
    f.set_fail_chance(OsOp::OpenHead, percent, ENOMEM);
    (0..n)
        .map(|_| match f.open_head(Oid(1)) {
            Ok(_) => false,
            Err(e) => {
                assert_eq!(e, ENOMEM);
                true
            }
        })
        .collect()
}

#[test]
fn nothing_fails_without_a_chance() {
    let mut f = FaultInjector::new(mock(), 7);
    for _ in 0..100 {
        f.open_head(Oid(1)).unwrap();
        f.send(&ok()).unwrap();
    }
    assert_eq!(f.injected(), 0);
}

#[test]
fn a_seed_replays_its_failures() {
    assert_eq!(opens(42, 30, 200), opens(42, 30, 200));
    assert_ne!(opens(42, 30, 200), opens(43, 30, 200));
}

#[test]
fn chances_are_kept_per_operation() {
    let failed = opens(5, 30, 1000).iter().filter(|&&x| x).count();
    assert!((200..400).contains(&failed), "{failed} of 1000 at 30 %");
    assert!(opens(5, 100, 50).iter().all(|&x| x));

    // A failed call does not reach the inner backend; other operations are untouched.
    let mut f = FaultInjector::new(mock(), 9);
    f.set_fail_chance(OsOp::Send, 100, EBADF);
    assert_eq!(f.send(&ok()), Err(EBADF));
    f.open_head(Oid(1)).unwrap();
    assert_eq!(f.injected(), 1);
    let ops: Vec<OsOp> = f.inner.trace().iter().map(Call::op).collect();
    assert_eq!(ops, [OsOp::OpenHead]);
}

#[test]
fn closes_cannot_fail() {
    let mut f = FaultInjector::new(mock(), 3);
    f.set_fail_chance(OsOp::Close, 100, Errno(5));
    f.set_fail_chance(OsOp::CloseLink, 100, Errno(5));
    assert_eq!(f.fail_chance(OsOp::Close).0, 0);
    assert_eq!(f.fail_chance(OsOp::CloseLink).0, 0);
    assert!(!OsOp::Close.can_fail() && !OsOp::CloseLink.can_fail());
}
