//! Mappings that serve a user-space virtual-memory manager (`FileH::mmap_vm`):
//! the VM hook ([`Vm`]) and the connection's table of the VMs its mappings
//! serve (`Vms`).
//!
//! # The contract
//!
//! A VM (wendelin.core's virtmem is one) lays private dirty pages over
//! some blocks of an area it reserved, and tells nobody when it dirties a
//! page: its own write-fault handler does it, under its own lock. The
//! client keeps the base layer under those pages exact: when a pin comes
//! for a block of such a mapping, the pin thread
//!
//! 1. takes the VM's lock ([`Vm::lock`]), *without* holding the
//!    connection's lock (it waits for the VM like a user thread would);
//! 2. takes the connection's lock, and for each mapping of that VM over
//!    the block asks [`Vm::is_dirty`]: a dirty page stays (the pin is
//!    recorded, so a later `remap_blk` maps the right revision), a clean
//!    one is remapped;
//! 3. acks, and lets go of the VM's lock ([`Vm::unlock`]) still holding
//!    the connection's (releases wait for nobody).
//!
//! **Lock order**: the VM's lock, then the connection's, then the file's
//! (the core's state; one lock here). Several VMs over one block are
//! locked in ascending [`Vm::id`] order; a program that holds two VM locks
//! at once must take them in that order too.
//!
//! **Under its lock the VM may call** [`Mapping::remap_blk`] (after it
//! dropped a page: the block shows the data as of `at` again, per the pins
//! in force), [`Mapping::unmap`] (its area goes away), `mark_dirty`, and
//! `FileH::mmap_vm` (a new area). These take only the connection's lock,
//! never the VM's, so they cannot deadlock with a pin waiting for the VM.
//! **It must not**, under its lock: read or write the mapping's memory
//! where it has no page of its own (a read of head may wait for the server,
//! which waits for this very pin's ack: copy the base page *before* taking
//! the lock, the bytes are the data as of `at` whenever read), call
//! `Conn::resync`, `Conn::open`, `FileH::close` or `Conn::close` (they
//! wait for the server's replies, which follow pins that need the lock),
//! or take its lock again from `is_dirty` (which is called with it held).
//!
//! **What a pin costs the VM**: while a pin of a block under a VM mapping
//! is handled, the VM's lock is held for one `is_dirty` call per mapping of
//! that VM over the block, one `mmap(MAP_FIXED)` per clean one, and the
//! core's bookkeeping: a few microseconds (BENCHMARKS.md measures it), no
//! round trip to the server (the `@rev` file is opened before the lock is
//! taken, except when another thread evicted it from the cache meanwhile).
//! A resync that changes head's size asks the same way, per block of the
//! changed tail, on the resyncing thread.
//!
//! **Dirtiness is per block**: a pin replaces a whole block or leaves it.
//! A VM whose pages are smaller than the file's blocks copies and reports
//! the whole block when it writes into any page of it (wendelin.core's
//! virtmem pages are blocks); else a pin would leave the clean pages of a
//! partly dirty block on head, showing data newer than `at`.
//!
//! A hook that fails (`lock` or `is_dirty` return `Err`) fails that pin as
//! any other failed call does: the pin is nak'ed and the connection goes
//! down (its mappings fault).

use std::collections::HashMap;
use std::sync::Arc;

use spin::mutex::SpinMutex;
use spin::relax::Yield;
use wcfs_core::{Action, Errno, VmId};

use crate::handles::{FileH, Mapping};
use crate::Error;

/// A failure reported by a VM hook: an errno-like code (the connection's
/// error then reads `VmLock: errno <code>` or `VmDirty: errno <code>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmError(pub i32);

/// The hook of a virtual-memory manager a mapping serves as base layer
/// (see the module doc for the contract).
pub trait Vm: Send + Sync {
    /// Takes the VM's lock, waiting for it. Called by the pin thread (or a
    /// resyncing thread) without any lock of the client held.
    fn lock(&self) -> Result<(), VmError>;
    /// Releases the lock `lock` took, on the same thread. Called with the
    /// connection's lock held: must not wait.
    fn unlock(&self);
    /// Whether the VM laid a dirty page over block `blk`, whose page(s)
    /// start at `page` in one of its areas. Called with the VM's lock held
    /// (taken by [`Vm::lock`] on this thread) and the connection's: must
    /// not wait, nor call into this crate.
    fn is_dirty(&self, page: *const u8, blk: u64) -> Result<bool, VmError>;
    /// Names the VM's lock: mappings whose hooks return the same id share
    /// one lock (taken once per pin). Default: the hook's address.
    fn id(&self) -> usize {
        self as *const Self as *const () as usize
    }
}

/// A VM hook as the connection keeps it.
pub(crate) type Hook = Arc<dyn Vm>;

/// The VMs of a connection's mappings, by id, with the locks the client
/// holds of each (an entry stays while locked). A leaf lock: taken under
/// the connection's lock or alone, never the other way round, and never
/// held across a call of a hook.
#[derive(Default)]
pub(crate) struct Vms(SpinMutex<HashMap<u64, (Hook, u32)>, Yield>);

impl Vms {
    /// Registers `vm` for a new mapping (under the connection's lock, so no
    /// pin looks it up meanwhile); forgets VMs no mapping serves any more.
    pub(crate) fn register(&self, core: &wcfs_core::Conn, vm: &Hook) -> VmId {
        let id = vm.id() as u64;
        let mut t = self.0.lock();
        t.retain(|&k, (_, locks)| {
            *locks > 0 || k == id || core.mappings().any(|(_, m)| m.vm == Some(VmId(k)))
        });
        t.entry(id).or_insert_with(|| (vm.clone(), 0));
        VmId(id)
    }

    /// The hook a blocking `VmLock` will lock (looked up with the
    /// connection's lock held, performed without it).
    pub(crate) fn hook_for(&self, a: &Action) -> Option<Hook> {
        match *a {
            Action::VmLock { vm, .. } => self.get(vm),
            _ => None,
        }
    }

    fn get(&self, vm: VmId) -> Option<Hook> {
        self.0.lock().get(&vm.0).map(|(h, _)| h.clone())
    }

    /// Takes `hook`'s lock (no client lock held); counts it held.
    pub(crate) fn lock(&self, vm: VmId, hook: Option<Hook>) -> Result<(), Errno> {
        let hook = hook.ok_or(Errno(libc::ENOENT))?;
        hook.lock().map_err(|e| Errno(e.0))?;
        if let Some((_, locks)) = self.0.lock().get_mut(&vm.0) {
            *locks += 1;
        }
        Ok(())
    }

    pub(crate) fn is_dirty(&self, vm: VmId, addr: usize, blk: u64) -> Result<bool, Errno> {
        let hook = self.get(vm).ok_or(Errno(libc::ENOENT))?;
        hook.is_dirty(addr as *const u8, blk)
            .map_err(|e| Errno(e.0))
    }

    pub(crate) fn unlock(&self, vm: VmId) {
        let hook = {
            let mut t = self.0.lock();
            let Some((h, locks)) = t.get_mut(&vm.0) else {
                return;
            };
            *locks = locks.saturating_sub(1);
            h.clone()
        };
        hook.unlock();
    }
}

impl FileH {
    /// Maps blocks `[blk_start, blk_start + blk_len)` over the caller's
    /// range `[addr, addr + len)` as [`FileH::mmap_at`] does, as the base
    /// layer of an area of the virtual-memory manager `vm`: the pull
    /// contract of the seed's `FileH::mmap(blk, len, VMA*)`. From then on
    /// pins ask `vm`, under its lock, whether it laid a dirty page over a
    /// block before replacing the block, and leave dirty pages alone. See
    /// the module doc of `vm` (in ARCHITECTURE.md and the README) for the
    /// lock order, what the VM may call under its lock, and what a pin
    /// costs it. The connection keeps a clone of `vm` while a mapping
    /// serves it.
    ///
    /// Call it from the VM's thread with or without the VM's lock held.
    ///
    /// # Safety
    ///
    /// That of [`FileH::mmap_at`], where "private pages over blocks it
    /// marked dirty" reads "private pages the VM reports dirty".
    pub unsafe fn mmap_vm(
        &self,
        blk_start: u64,
        blk_len: u64,
        addr: *mut u8,
        len: usize,
        vm: &Arc<dyn Vm>,
    ) -> Result<Mapping, Error> {
        // SAFETY: the caller's contract is `mmap_at`'s.
        unsafe { self.map_over(blk_start, blk_len, addr, len, Some(vm)) }
    }
}
