//! `FileH::mmap_vm` on real memory: a small VM (a lock and a dirty set of
//! its own) over a reserved range; pins ask it under its lock, leave its
//! private pages, wait for its lock without holding the connection's, and
//! a failing hook naks the pin and takes the connection down. A tmpfs
//! directory laid out like WCFS, and a scripted server over a socketpair.
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{bs, open, wait_for, Tree, F, REV};
use wcfs_linux::{sys, Mapping, Vm, VmError};

/// A VM: a lock that can be held across calls, and the pages it laid.
#[derive(Default)]
struct TestVm {
    locked: Mutex<bool>,
    cv: Condvar,
    dirty: Mutex<HashSet<usize>>,
    fail: AtomicBool,
    asked: Mutex<Vec<u64>>,
}

impl TestVm {
    fn take(&self) {
        let mut l = self.locked.lock().unwrap();
        while *l {
            l = self.cv.wait(l).unwrap();
        }
        *l = true;
    }
    fn give(&self) {
        *self.locked.lock().unwrap() = false;
        self.cv.notify_all();
    }
    /// Lays a private page with `tag` over the page at `addr` (its own
    /// write fault: under its lock, telling the client nothing).
    fn dirty(&self, addr: usize, tag: &[u8]) {
        self.take();
        // SAFETY: a page of the test's reservation that the VM owns from
        // now on (the client leaves pages the VM reports dirty alone).
        unsafe {
            let p = libc::mmap(
                addr as *mut libc::c_void,
                bs(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            assert_eq!(p as usize, addr);
            std::ptr::copy_nonoverlapping(tag.as_ptr(), addr as *mut u8, tag.len());
        }
        self.dirty.lock().unwrap().insert(addr);
        self.give();
    }
}

impl Vm for TestVm {
    fn lock(&self) -> Result<(), VmError> {
        self.take();
        Ok(())
    }
    fn unlock(&self) {
        self.give();
    }
    fn is_dirty(&self, page: *const u8, blk: u64) -> Result<bool, VmError> {
        assert!(*self.locked.lock().unwrap(), "asked without the VM's lock");
        self.asked.lock().unwrap().push(blk);
        if self.fail.load(Ordering::Relaxed) {
            return Err(VmError(libc::EIO));
        }
        Ok(self.dirty.lock().unwrap().contains(&(page as usize)))
    }
}

fn tag_at(addr: usize) -> String {
    let b: Vec<u8> = (0..2)
        .map(|i| sys::probe_read(addr + i).expect("readable"))
        .collect();
    String::from_utf8_lossy(&b)
        .trim_end_matches('\0')
        .to_string()
}

/// A connection with `F` open, a reservation of `nblk` blocks (released
/// when dropped, after the mappings made in it) and a VM.
/// Fields drop in this order: the server's end first (the client's
/// closes then end at once), the directory last.
struct Setup {
    srv: common::Server,
    fh: wcfs_linux::FileH,
    conn: wcfs_linux::Conn,
    _tree: Tree,
    base: *mut u8,
    len: usize,
    vm: Arc<TestVm>,
    hook: Arc<dyn Vm>,
}

fn setup(name: &str, nblk: usize) -> Setup {
    let tree = Tree::new(name);
    let (conn, fh, srv) = open(&tree);
    let len = nblk * bs();
    let vm = Arc::new(TestVm::default());
    Setup {
        srv,
        fh,
        conn,
        _tree: tree,
        base: sys::reserve(len).unwrap(),
        len,
        hook: vm.clone(),
        vm,
    }
}

impl Setup {
    /// Maps blocks `0..n` at block `at` of the reservation, serving the VM.
    fn map(&self, at: usize, n: u64) -> Mapping {
        assert!((at + n as usize) * bs() <= self.len);
        // SAFETY: inside our reservation (asserted), which no Rust object
        // uses; the test touches it only by probes and the VM's pages.
        map_vm(&self.fh, unsafe { self.base.add(at * bs()) }, n, &self.hook)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // SAFETY: our reservation; the mappings in it were dropped first.
        unsafe { sys::unmap(self.base as usize, self.len) }.unwrap();
    }
}

fn map_vm(fh: &wcfs_linux::FileH, base: *mut u8, n: u64, vm: &Arc<dyn Vm>) -> Mapping {
    // SAFETY: `base` is our reservation of `n` blocks, which no Rust object
    // uses; the test touches it only by probes and the VM's private pages.
    unsafe { fh.mmap_vm(0, n, base, n as usize * bs(), vm) }.unwrap()
}

#[test]
fn pins_leave_the_vms_dirty_pages_and_remap_the_clean_ones() {
    let mut s = setup("vm-basic", 4);
    let (bs, b, vm) = (bs(), s.base as usize, s.vm.clone());
    let m = s.map(0, 4);
    assert_eq!(tag_at(b), "h0");
    vm.dirty(b, b"w0");

    let before = s.conn.stats();
    s.srv.send(&format!("2 pin {F} #0 @{REV}"));
    s.srv.expect("2 ack");
    s.srv.send(&format!("4 pin {F} #1 @{REV}"));
    s.srv.expect("4 ack");
    wait_for("pins", || s.fh.pinned().len() == 2);
    assert_eq!(tag_at(b), "w0", "the dirty page stays");
    assert_eq!(tag_at(b + bs), "r1", "the clean block shows the pin");
    assert_eq!(*vm.asked.lock().unwrap(), [0, 1]);
    let d = s.conn.stats().since(&before);
    assert_eq!(
        (d.pins, d.acks, d.dirty_kept, d.remaps),
        (2, 2, 1, 1),
        "{d:?}"
    );

    // The VM discards its page and asks for the block again, under its lock.
    vm.take();
    vm.dirty.lock().unwrap().clear();
    m.remap_blk(0).unwrap();
    vm.give();
    assert_eq!(tag_at(b), "r0", "after a discard: the data as of at");
}

#[test]
fn a_pin_waits_for_the_vm_lock_while_the_vm_calls_remap_blk_and_unmap() {
    let mut s = setup("vm-wait", 4);
    let (bs, b, vm) = (bs(), s.base as usize, s.vm.clone());
    let m = s.map(0, 2);
    let m2 = s.map(2, 2);

    vm.take();
    s.srv.send(&format!("2 pin {F} #1 @{REV}"));
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.fh.pinned().is_empty(), "the pin waits for the VM's lock");
    // Under its lock the VM uses the connection: the pin thread does not
    // hold the connection's lock while it waits.
    m.remap_blk(0).unwrap();
    m2.unmap().unwrap();
    vm.give();
    s.srv.expect("2 ack");
    wait_for("pin", || s.fh.pinned() == [(1, REV)]);
    assert_eq!(tag_at(b + bs), "r1");
    assert_eq!(
        *vm.asked.lock().unwrap(),
        [1],
        "the unmapped area was not asked"
    );
    drop(m);
}

#[test]
fn a_failing_hook_naks_the_pin_and_takes_the_connection_down() {
    let mut s = setup("vm-fail", 2);
    let (base, vm) = (s.base, s.vm.clone());
    vm.fail.store(true, Ordering::Relaxed);
    let m = s.map(0, 2);
    s.srv.send(&format!("2 pin {F} #0 @{REV}"));
    let line = s.srv.read_line().expect("an answer");
    assert!(line.starts_with("2 nak"), "{line}");
    assert!(line.contains("VmDirty"), "{line}");
    wait_for("down", || m.is_faulting());
    assert_eq!(sys::probe_read(base as usize), Err(libc::EFAULT));
    assert!(!*vm.locked.lock().unwrap(), "the VM's lock was let go");
    let e = s.conn.down_reason().expect("down");
    assert!(e.to_string().contains("VmDirty"), "{e}");
    drop(m);
}
