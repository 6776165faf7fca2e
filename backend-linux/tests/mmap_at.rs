//! `FileH::mmap_at` on real memory: the caller reserves a range with
//! `mmap(PROT_NONE)`, the client maps into it, and unmapping leaves it
//! reserved. A tmpfs directory laid out like WCFS, and a scripted server on
//! the other end of a socketpair.
mod common;

use common::{bs, open, wait_for, Tree, F, REV};
use wcfs_linux::{sys, ErrorKind, FileH, Mapping};

/// A range the test owns, reserved `PROT_NONE` as a runtime would.
struct Reservation {
    addr: *mut u8,
    len: usize,
}

impl Reservation {
    fn new(len: usize) -> Reservation {
        Reservation {
            addr: sys::reserve(len).unwrap(),
            len,
        }
    }

    fn at(&self, off: usize) -> usize {
        self.addr as usize + off
    }

    /// Maps `blk_len` blocks from `blk_start` at `off` into the reservation.
    fn map(&self, fh: &FileH, off: usize, blk_start: u64, blk_len: u64) -> Mapping {
        assert!(off + blk_len as usize * bs() <= self.len);
        // SAFETY: the range lies in our reservation, which no Rust object
        // uses; the test does not touch it while the mapping lives except
        // through `Mapping::read`, raw probes, and the private page of the
        // virtmem test (over a block marked dirty first).
        unsafe {
            fh.mmap_at(
                blk_start,
                blk_len,
                self.addr.add(off),
                blk_len as usize * bs(),
            )
        }
        .unwrap()
    }

    /// `/proc/self/maps` permissions of the mapping holding `addr`.
    fn perms(&self, off: usize) -> Option<String> {
        sys::map_perms(self.at(off))
    }

    /// The range `[off, off+len)` is still reserved: mapped, inaccessible.
    fn assert_reserved(&self, off: usize, len: usize) {
        for o in (off..off + len).step_by(bs()) {
            assert_eq!(self.perms(o).as_deref(), Some("---p"), "offset {o:#x}");
            assert_eq!(sys::probe_read(self.at(o)), Err(libc::EFAULT));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: our reservation; every mapping into it is gone.
        unsafe { sys::unmap(self.addr as usize, self.len) }.unwrap();
    }
}

fn tag_at(addr: usize) -> String {
    let b = [sys::probe_read(addr), sys::probe_read(addr + 1)];
    let bytes: Vec<u8> = b.iter().map(|r| r.expect("readable")).collect();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .to_string()
}

#[test]
fn maps_into_a_reservation_and_unmap_keeps_it_reserved() {
    let tree = Tree::new("basic");
    let (conn, fh, mut srv) = open(&tree);
    let bs = bs();
    let r = Reservation::new(8 * bs);
    let m = r.map(&fh, bs, 0, 6);
    assert_eq!(m.addr() as usize, r.at(bs));
    let tags: Vec<String> = (0..6).map(|i| tag_at(r.at((1 + i) * bs))).collect();
    assert_eq!(tags, ["h0", "h1", "h2", "h3", "", ""], "zeros past the end");
    r.assert_reserved(0, bs);
    r.assert_reserved(7 * bs, bs);

    // A pin replaces a block of the caller's range, past @REV's end zeros.
    srv.send(&format!("2 pin {F} #1 @{REV}"));
    srv.expect("2 ack");
    srv.send(&format!("4 pin {F} #3 @{REV}"));
    srv.expect("4 ack");
    wait_for("pins", || fh.pinned().len() == 2);
    assert_eq!(tag_at(r.at(2 * bs)), "r1");
    assert_eq!(tag_at(r.at(4 * bs)), "");

    m.unmap().unwrap();
    r.assert_reserved(0, 8 * bs);

    // The owner maps into its reservation again; a pinned block shows its pin.
    let m = r.map(&fh, 0, 1, 2);
    assert_eq!(tag_at(r.at(0)), "r1");
    assert_eq!(tag_at(r.at(bs)), "h2");
    drop(m);
    r.assert_reserved(0, 2 * bs);
    drop(conn);
}

#[test]
fn bad_ranges_are_refused_and_left_alone() {
    let tree = Tree::new("bad");
    let (_conn, fh, _srv) = open(&tree);
    let bs = bs();
    let r = Reservation::new(4 * bs);
    let kind = |res: Result<Mapping, wcfs_linux::Error>| match res {
        Err(e) => match e.kind {
            ErrorKind::Core(c) => c,
            k => panic!("{k:?}"),
        },
        Ok(m) => panic!("mapped {m:?}"),
    };
    // SAFETY (each call): ranges inside our reservation, refused untouched.
    let misaligned = kind(unsafe { fh.mmap_at(0, 1, r.addr.add(8), bs) });
    assert_eq!(misaligned, wcfs_core::Error::BadAddress(r.at(8)));
    let short = kind(unsafe { fh.mmap_at(0, 2, r.addr, bs) });
    assert_eq!(
        short,
        wcfs_core::Error::BadLength {
            len: bs,
            want: 2 * bs as u64
        }
    );
    let m = r.map(&fh, 0, 0, 2);
    let overlap = kind(unsafe { fh.mmap_at(0, 2, r.addr.add(bs), 2 * bs) });
    assert!(matches!(overlap, wcfs_core::Error::AddressInUse { .. }));
    r.assert_reserved(2 * bs, 2 * bs);
    assert_eq!(tag_at(r.at(bs)), "h1", "the live mapping is untouched");
    let e = unsafe { fh.mmap_at(0, 2, r.addr.add(bs), 2 * bs) }.unwrap_err();
    assert!(
        e.to_string().contains("overlaps a mapping"),
        "error text: {e}"
    );
    drop(m);
}

#[test]
fn close_faults_the_range_and_keeps_it_reserved() {
    let tree = Tree::new("close");
    let (conn, fh, mut srv) = open(&tree);
    let bs = bs();
    let r = Reservation::new(2 * bs);
    let m = r.map(&fh, 0, 0, 2);
    assert_eq!(tag_at(r.at(0)), "h0");
    // Closing the connection: bye, then the server ends the link.
    let closer = std::thread::spawn(move || {
        srv.expect("3 bye");
        drop(srv);
    });
    conn.close().unwrap();
    closer.join().unwrap();
    assert!(m.is_faulting());
    r.assert_reserved(0, 2 * bs);
    drop(m);
    r.assert_reserved(0, 2 * bs);
}

/// The virtmem flow of the issue: reserve, map into it, dirty block 0 with
/// a private page (marked dirty first, then the page laid over it), a pin
/// arrives and must leave the page alone, the page is discarded,
/// `remap_blk` shows the pinned revision.
#[test]
fn virtmem_flow() {
    let tree = Tree::new("virtmem");
    let (conn, fh, mut srv) = open(&tree);
    let bs = bs();
    let r = Reservation::new(2 * bs);
    let m = r.map(&fh, 0, 0, 2);
    assert_eq!(tag_at(r.at(0)), "h0");

    // 1. mark dirty, 2. lay a private page over the block and write it.
    m.mark_dirty(0).unwrap();
    // SAFETY: block 0 of our reservation, marked dirty: the client leaves
    // it to us until `remap_blk`.
    unsafe {
        let p = libc::mmap(
            r.addr.cast(),
            bs,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        );
        assert_eq!(p, r.addr.cast());
        std::ptr::copy_nonoverlapping(b"w!".as_ptr(), r.addr, 2);
    }

    let before = conn.stats();
    srv.send(&format!("2 pin {F} #0 @{REV}"));
    srv.expect("2 ack");
    wait_for("pin", || fh.pinned() == [(0, REV)]);
    assert_eq!(tag_at(r.at(0)), "w!", "the pin left the private page alone");
    assert_eq!(r.perms(0).as_deref(), Some("rw-p"));
    let d = conn.stats().since(&before);
    assert_eq!((d.pins, d.acks, d.remaps), (1, 1, 0), "{d:?}");
    assert_eq!(d.pin_times(), 1, "the ack's handling time was recorded");

    // 3. the VM layer discards its page; 4. remap_blk.
    m.remap_blk(0).unwrap();
    assert_eq!(tag_at(r.at(0)), "r0", "the pinned revision");
    assert_eq!(r.perms(0).as_deref(), Some("r--s"));
    assert_eq!(tag_at(r.at(bs)), "h1");
    drop(m);
    r.assert_reserved(0, 2 * bs);
}
