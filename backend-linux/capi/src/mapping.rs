//! `wcfs_mapping`: blocks of a file in memory.

use std::ffi::c_void;

use wcfs_linux::Mapping;

use crate::ffi::{free, handle};
use crate::result::{boundary, getter, wcfs_result, Failure};

/// A memory mapping of blocks of a file.
pub struct wcfs_mapping(pub(crate) Mapping);

/// The first byte of the mapping; NULL for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_addr(m: *const wcfs_mapping) -> *mut c_void {
    getter(m, std::ptr::null_mut(), |m| m.0.addr() as *mut c_void)
}

/// The mapping's length in bytes; 0 for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_len(m: *const wcfs_mapping) -> usize {
    getter(m, 0, |m| m.0.len())
}

/// The first block mapped; 0 for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_blk_start(m: *const wcfs_mapping) -> u64 {
    getter(m, 0, |m| m.0.blk_start())
}

/// One past the last block mapped; 0 for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_blk_stop(m: *const wcfs_mapping) -> u64 {
    getter(m, 0, |m| m.0.blk_stop())
}

/// Whether the mapping's memory faults now (closed, down, unmapped, fork
/// child); true for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_is_faulting(m: *const wcfs_mapping) -> bool {
    getter(m, true, |m| m.0.is_faulting())
}

/// Whether the view ended but the OS refused both to fault its memory and
/// to `mprotect` it, so it may still show old bytes; false for NULL.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_is_exposed(m: *const wcfs_mapping) -> bool {
    getter(m, false, |m| m.0.is_exposed())
}

/// Copies `len` bytes at `offset` of the mapping into `buf`; fails
/// instead of faulting when the mapping is known to fault.
///
/// # Safety
///
/// `m` NULL or live; `buf` NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_read(
    m: *const wcfs_mapping,
    offset: usize,
    buf: *mut c_void,
    len: usize,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let m = unsafe { handle(m, "mapping")? };
        if buf.is_null() && len > 0 {
            return Err(Failure::null("buf"));
        }
        let dst: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL and writable for `len` bytes per the contract.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
        };
        m.0.read(offset, dst)?;
        Ok(())
    })
}

/// A private page is about to be laid over block `blk`: pins leave it alone.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_mark_dirty(m: *const wcfs_mapping, blk: u64) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let m = unsafe { handle(m, "mapping")? };
        m.0.mark_dirty(blk)?;
        Ok(())
    })
}

/// The private page over `blk` is gone: map the block per the pins in force.
///
/// # Safety
///
/// `m` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_remap_blk(m: *const wcfs_mapping, blk: u64) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let m = unsafe { handle(m, "mapping")? };
        m.0.remap_blk(blk)?;
        Ok(())
    })
}

/// Releases the mapping's memory now (for every handle of it).
///
/// # Safety
///
/// `m` NULL or live; no thread uses the mapped memory any more.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_unmap(m: *const wcfs_mapping) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let m = unsafe { handle(m, "mapping")? };
        m.0.unmap()?;
        Ok(())
    })
}

/// Releases a `wcfs_mapping` handle (and unmaps if it was the last one). NULL is ignored.
///
/// # Safety
///
/// `m` is NULL or a handle from `wcfs_file_mmap*`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mapping_free(m: *mut wcfs_mapping) {
    // SAFETY: per the function's contract.
    unsafe { free(m) }
}
