//! The C ABI of mappings that serve a user-space virtual-memory manager:
//! `wcfs_file_mmap_vm` and its callbacks (`wcfs_vm_ops`), over
//! `wcfs_linux::FileH::mmap_vm` (whose module doc states the contract; the
//! header says it again for C).

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use wcfs_linux::{Vm, VmError};

use crate::ffi::{give, handle, out_ptr};
use crate::file::wcfs_file;
use crate::mapping::wcfs_mapping;
use crate::result::{boundary, wcfs_result, Failure};

/// The callbacks of a VM (see the header): `lock` returns 0 once the VM's
/// lock is held, else an error code; `unlock` releases it; `is_dirty`
/// returns 1 when the VM laid a dirty page over the block at `page`, 0
/// when not, and a negative code on error. An error fails the pin asking
/// (nak, the connection goes down).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wcfs_vm_ops {
    /// Takes the VM's lock: 0 once held, else an error code.
    pub lock: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    /// Releases the VM's lock.
    pub unlock: Option<unsafe extern "C" fn(*mut c_void)>,
    /// Whether the VM laid a dirty page over block `blk` at `page`: 1, 0,
    /// or a negative error code.
    pub is_dirty: Option<unsafe extern "C" fn(*mut c_void, *const c_void, u64) -> c_int>,
}

/// A C VM: its callbacks (all set, checked by `wcfs_file_mmap_vm`) and the
/// pointer they get.
struct CVm {
    lock: unsafe extern "C" fn(*mut c_void) -> c_int,
    unlock: unsafe extern "C" fn(*mut c_void),
    is_dirty: unsafe extern "C" fn(*mut c_void, *const c_void, u64) -> c_int,
    vm: *mut c_void,
}

// SAFETY: the header's contract for `wcfs_file_mmap_vm`: the callbacks may
// be called from any thread (the pin thread, a resyncing thread) with `vm`,
// for as long as a mapping serves it; the library only passes `vm` back.
unsafe impl Send for CVm {}
// SAFETY: as for `Send`: the callbacks are called concurrently only as the
// header allows (`lock` from several threads; `is_dirty`/`unlock` by the
// thread holding the lock).
unsafe impl Sync for CVm {}

/// An error code of a callback as a `VmError` (its magnitude; `EIO` for 0).
fn code(rc: c_int) -> VmError {
    VmError(match rc.unsigned_abs() {
        0 => 5, // EIO
        n => n.min(i32::MAX as u32) as i32,
    })
}

impl Vm for CVm {
    fn lock(&self) -> Result<(), VmError> {
        // SAFETY: a callback of the caller's `wcfs_vm_ops`, with its `vm`.
        match unsafe { (self.lock)(self.vm) } {
            0 => Ok(()),
            rc => Err(code(rc)),
        }
    }
    fn unlock(&self) {
        // SAFETY: as in `lock`; this thread holds the lock.
        unsafe { (self.unlock)(self.vm) }
    }
    fn is_dirty(&self, page: *const u8, blk: u64) -> Result<bool, VmError> {
        // SAFETY: as in `lock`; this thread holds the VM's lock.
        match unsafe { (self.is_dirty)(self.vm, page.cast(), blk) } {
            rc if rc < 0 => Err(code(rc)),
            rc => Ok(rc > 0),
        }
    }
    fn id(&self) -> usize {
        self.vm as usize
    }
}

/// Maps blocks `[blk_start, blk_start + blk_len)` over the caller's range
/// `[addr, addr + len)` as `wcfs_file_mmap_at` does, as the base layer of
/// the VM `vm` whose callbacks are `ops`; see the header for the contract.
///
/// # Safety
///
/// `f` NULL or live; `out` writable; `ops` NULL or readable (it is copied);
/// the caller owns the range (`wcfs_file_mmap_at`'s contract), and the
/// callbacks may be called with `vm` from any thread while a mapping of the
/// connection serves `vm`, as the header says.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_mmap_vm(
    f: *const wcfs_file,
    blk_start: u64,
    blk_len: u64,
    addr: *mut c_void,
    len: usize,
    ops: *const wcfs_vm_ops,
    vm: *mut c_void,
    out: *mut *mut wcfs_mapping,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, f) = unsafe { (out_ptr(out)?, handle(f, "file")?) };
        // SAFETY: `ops` is NULL or readable (the contract).
        let ops = *unsafe { handle(ops, "ops")? };
        let (Some(lock), Some(unlock), Some(is_dirty)) = (ops.lock, ops.unlock, ops.is_dirty)
        else {
            return Err(Failure::null("ops: lock, unlock and is_dirty"));
        };
        let hook: Arc<dyn Vm> = Arc::new(CVm {
            lock,
            unlock,
            is_dirty,
            vm,
        });
        // SAFETY: the caller owns the range and keeps no other use of it
        // but the VM's own pages (this function's contract, which is
        // `FileH::mmap_vm`'s); alignment and length are checked by the core.
        let m = unsafe {
            f.0.mmap_vm(blk_start, blk_len, addr.cast::<u8>(), len, &hook)
        }?;
        give(out, wcfs_mapping(m));
        Ok(())
    })
}
