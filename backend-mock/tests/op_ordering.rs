//! Opens, closes and resyncs: which run together and which wait.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::OpOk;

const AT: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);

fn db() -> Db {
    let mut db = Db::default();
    db.commit(AT, &[(F, 0, "f"), (G, 0, "g")]);
    db.commit(AT2, &[(F, 0, "f2")]);
    db
}

#[test]
fn resync_waits_for_opens_in_flight_and_opens_wait_for_resync() {
    let mut h = harness(AT, db());
    let o1 = h.conn.open(F).unwrap();
    assert_eq!(h.poll(o1), None);
    let rs = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(rs), None);
    let o2 = h.conn.open(G).unwrap();
    assert_eq!(h.poll(o2), None);
    assert_eq!(
        h.sent(),
        [format!("1 watch {F} @{AT}")],
        "resync and the later open wait"
    );
    h.recv("1 ok");
    assert!(matches!(h.poll(o1), Some(Ok(OpOk::Opened(_)))));
    assert_eq!(
        h.poll(o2),
        None,
        "the open queued after the resync still waits"
    );
    assert_eq!(h.poll(rs), None);
    assert_eq!(h.sent(), [format!("3 watch {F} @{AT2}")]);
    h.recv("3 ok");
    assert_eq!(h.poll(rs), Some(Ok(OpOk::Done)));
    assert_eq!(h.poll(o2), None);
    assert_eq!(
        h.sent(),
        [format!("5 watch {G} @{AT2}")],
        "opened at the new at"
    );
    h.recv("5 ok");
    assert!(matches!(h.poll(o2), Some(Ok(OpOk::Opened(_)))));
}

#[test]
fn second_open_of_a_file_in_flight_joins_it() {
    let mut h = harness(AT, db());
    let o1 = h.conn.open(F).unwrap();
    let o2 = h.conn.open(F).unwrap();
    assert_eq!(h.poll(o1), None);
    assert_eq!(h.poll(o2), None);
    assert_eq!(h.sent().len(), 1, "one watch for both");
    h.recv("1 ok");
    let a = h.poll(o1).unwrap().unwrap();
    let b = h.poll(o2).unwrap().unwrap();
    assert_eq!(a, b);
    let OpOk::Opened(f) = a else { panic!() };
    assert_eq!(close_file(&mut h, f), Ok(OpOk::Done));
    assert!(h.sent().is_empty());
    assert_eq!(close_file(&mut h, f), Ok(OpOk::Done));
    assert_eq!(
        h.conn.close_file(f).unwrap_err().to_string(),
        "file already closed"
    );
}

#[test]
fn reopen_while_closing_waits_for_the_close() {
    let mut h = harness(AT, db());
    let f = open(&mut h, F, "ok").unwrap();
    let c = h.conn.close_file(f).unwrap();
    assert_eq!(h.poll(c), None);
    let o = h.conn.open(F).unwrap();
    assert_eq!(h.poll(o), None);
    assert_eq!(h.sent(), [format!("3 watch {F} -")]);
    h.recv("3 ok");
    assert_eq!(h.poll(c), Some(Ok(OpOk::Done)));
    assert_eq!(h.poll(o), None);
    assert_eq!(h.sent(), [format!("5 watch {F} @{AT}")]);
    h.recv("5 ok");
    assert!(matches!(h.poll(o), Some(Ok(OpOk::Opened(g))) if g != f));
}

#[test]
fn resync_without_files_moves_at() {
    let mut h = harness(AT, db());
    let rs = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(rs), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.at(), AT2);
    assert!(h.sent().is_empty());
}

#[test]
fn resync_maps_head_over_a_tail_that_grew() {
    let mut d = Db::default();
    d.commit(AT, &[(F, 0, "a")]);
    let mut h = harness(AT, d);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 3);
    assert_eq!(reads(&h, m, 0..3), [ok("a"), ok(""), ok("")]);
    h.be.store.commit(AT2, &[(F, 2, "c")]);
    let rs = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(rs), None);
    h.recv("3 ok");
    assert_eq!(h.poll(rs), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.file_size(f), Some(3 * BS));
    assert_eq!(reads(&h, m, 0..3), [ok("a"), ok(""), ok("c")]);
}

/// A head file whose block size changed, or whose size is no multiple of
/// it, is not a file the view can follow: the connection goes down and the
/// mappings fault. (A head file that only shrank is followed: see
/// `shrink_at_resync.rs`.)
#[test]
fn resync_refuses_a_head_file_whose_blksize_changed_or_size_is_bad() {
    use wcfs_core::{ConnState, Error, Stat};
    use wcfs_mock::{Harness, Path, StatTable};
    for (bad, want) in [
        (
            Stat {
                size: 64,
                blksize: 32,
            },
            Error::HeadChanged {
                size: 64,
                blksize: 32,
            },
        ),
        (
            Stat {
                size: 40,
                blksize: 16,
            },
            Error::BadSize {
                size: 40,
                blksize: 16,
            },
        ),
    ] {
        let mut st = StatTable {
            head: AT,
            ..Default::default()
        };
        let good = Stat {
            size: 48,
            blksize: 16,
        };
        st.files.insert(Path::Head(F), good);
        let mut h = Harness::new(AT, cfg(), st);
        let op = h.conn.open(F).unwrap();
        assert_eq!(h.poll(op), None);
        h.sent();
        h.recv("1 ok");
        let Some(Ok(OpOk::Opened(f))) = h.poll(op) else {
            panic!("open")
        };
        let op = h.conn.mmap(f, 0, 3).unwrap();
        let Some(Ok(OpOk::Mapped(m))) = h.poll(op) else {
            panic!("mmap")
        };
        h.be.store.head = AT2;
        h.be.store.files.insert(Path::Head(F), bad);
        let rs = h.conn.resync(AT2).unwrap();
        assert_eq!(h.poll(rs), Some(Err(want.clone())));
        assert_eq!(h.conn.state(), ConnState::Down);
        assert_eq!(h.conn.down_reason(), Some(&want));
        let addr = h.conn.mapping(m).unwrap().blk_addr(0);
        assert_eq!(h.be.at(addr), Some(wcfs_mock::Mem::Fault));
        assert!(h.be.open_fds().is_empty());
    }
    assert!(Error::HeadChanged {
        size: 64,
        blksize: 32
    }
    .to_string()
    .contains("blksize is now 32"));
}
