//! A wrapper that fails a backend's operations by seeded chances.

use wcfs_core::wire::{Oid, OutLine, Tid};
use wcfs_core::{Backend, BlockingOs, Errno, Fd, OsOp, QuickOs, Src, Stat, VmId};

/// Wraps a backend and fails operations by chance: each [`OsOp`] has its
/// own chance (in percent, 0 by default) and errno, and one seed decides
/// every draw, so a run replays exactly from its seed (after smoltcp's
/// `FaultInjector`). Closes cannot fail: their chances stay 0.
pub struct FaultInjector<B> {
    /// The backend whose operations may fail.
    pub inner: B,
    rng: u64,
    chances: [(u8, Errno); OsOp::ALL.len()],
    injected: Vec<OsOp>,
}

/// The injector stands for the backend it wraps: the mock's own calls
/// (trace, memory, store) go through to it.
impl<B> core::ops::Deref for FaultInjector<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> core::ops::DerefMut for FaultInjector<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: Backend> FaultInjector<B> {
    /// Fails nothing until a chance is set.
    pub fn new(inner: B, seed: u64) -> Self {
        FaultInjector {
            inner,
            // splitmix64 of the seed: never 0, as xorshift needs.
            rng: {
                let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) | 1
            },
            chances: [(0, Errno(0)); OsOp::ALL.len()],
            injected: Vec::new(),
        }
    }

    /// `op` fails with `errno` in `percent` (capped at 100) of its calls.
    /// Ignored for the operations that cannot fail ([`OsOp::can_fail`]).
    pub fn set_fail_chance(&mut self, op: OsOp, percent: u8, errno: Errno) {
        if op.can_fail() {
            self.chances[op as usize] = (percent.min(100), errno);
        }
    }

    /// The chance and errno set for `op`.
    pub fn fail_chance(&self, op: OsOp) -> (u8, Errno) {
        self.chances[op as usize]
    }

    /// Failures injected so far.
    pub fn injected(&self) -> usize {
        self.injected.len()
    }

    /// The operations failed so far, in order.
    pub fn injected_ops(&self) -> &[OsOp] {
        &self.injected
    }

    fn check(&mut self, op: OsOp) -> Result<(), Errno> {
        let (percent, errno) = self.chances[op as usize];
        if percent == 0 {
            return Ok(());
        }
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 100 < u64::from(percent) {
            self.injected.push(op);
            return Err(errno);
        }
        Ok(())
    }
}

impl<B: Backend> QuickOs for FaultInjector<B> {
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno> {
        self.check(OsOp::MapNew)?;
        self.inner.map_new(fd, offset, len)
    }
    fn map_fixed(&mut self, addr: usize, len: usize, src: Src) -> Result<(), Errno> {
        self.check(OsOp::MapFixed)?;
        self.inner.map_fixed(addr, len, src)
    }
    fn protect(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.check(OsOp::Protect)?;
        self.inner.protect(addr, len)
    }
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno> {
        self.check(OsOp::Unmap)?;
        self.inner.unmap(addr, len)
    }
    fn send(&mut self, line: &OutLine) -> Result<(), Errno> {
        self.check(OsOp::Send)?;
        self.inner.send(line)
    }
    fn close(&mut self, fd: Fd) {
        self.inner.close(fd)
    }
    fn close_link(&mut self) {
        self.inner.close_link()
    }
    fn vm_is_dirty(&mut self, vm: VmId, addr: usize, blk: u64) -> Result<bool, Errno> {
        self.check(OsOp::VmDirty)?;
        self.inner.vm_is_dirty(vm, addr, blk)
    }
    fn vm_unlock(&mut self, vm: VmId) {
        self.inner.vm_unlock(vm)
    }
}

impl<B: Backend> BlockingOs for FaultInjector<B> {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        self.check(OsOp::WaitHeadAt)?;
        self.inner.wait_head_at(at)
    }
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno> {
        self.check(OsOp::OpenHead)?;
        self.inner.open_head(oid)
    }
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        self.check(OsOp::OpenRev)?;
        self.inner.open_rev(oid, rev)
    }
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno> {
        self.check(OsOp::StatHead)?;
        self.inner.stat(fd)
    }
    fn vm_lock(&mut self, vm: VmId) -> Result<(), Errno> {
        self.check(OsOp::VmLock)?;
        self.inner.vm_lock(vm)
    }
}
