//! `wcfs_file`: an open bigfile of a connection; its mappings made.

use std::ffi::c_void;

use wcfs_linux::FileH;

use crate::ffi::{free, give, handle, out_ptr};
use crate::mapping::wcfs_mapping;
use crate::result::wcfs_result::WCFS_ERR_BUFFER_TOO_SMALL;
use crate::result::{boundary, getter, wcfs_result, Failure};

/// An open bigfile of a connection.
pub struct wcfs_file(pub(crate) FileH);

/// A pin in force: block `blk` shows revision `rev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct wcfs_pin {
    /// The block.
    pub blk: u64,
    /// The revision it shows.
    pub rev: u64,
}

/// The file's oid; 0 for NULL.
///
/// # Safety
///
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_oid(f: *const wcfs_file) -> u64 {
    getter(f, 0, |f| f.0.oid().0)
}

/// The file's block size in bytes; 0 for NULL.
///
/// # Safety
///
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_blksize(f: *const wcfs_file) -> u64 {
    getter(f, 0, |f| f.0.blksize())
}

/// Maps blocks `[blk_start, blk_start + blk_len)` at an address the OS chooses.
///
/// # Safety
///
/// `f` NULL or live; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_mmap(
    f: *const wcfs_file,
    blk_start: u64,
    blk_len: u64,
    out: *mut *mut wcfs_mapping,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, f) = unsafe { (out_ptr(out)?, handle(f, "file")?) };
        give(out, wcfs_mapping(f.0.mmap(blk_start, blk_len)?));
        Ok(())
    })
}

/// Maps blocks `[blk_start, blk_start + blk_len)` over the caller's range
/// `[addr, addr + len)`; see the header for what happens to the range.
///
/// # Safety
///
/// `f` NULL or live; `out` writable; the caller owns `[addr, addr + len)`
/// (the contract of `FileH::mmap_at`, restated in the header).
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_mmap_at(
    f: *const wcfs_file,
    blk_start: u64,
    blk_len: u64,
    addr: *mut c_void,
    len: usize,
    out: *mut *mut wcfs_mapping,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, f) = unsafe { (out_ptr(out)?, handle(f, "file")?) };
        // SAFETY: the caller owns the range and keeps no other use of it
        // while the mapping lives (this function's contract, which is
        // `FileH::mmap_at`'s); alignment and length are checked by the core.
        let m = unsafe { f.0.mmap_at(blk_start, blk_len, addr.cast::<u8>(), len) }?;
        give(out, wcfs_mapping(m));
        Ok(())
    })
}

/// Copies the pins in force into `pins[..cap]`, sorted by block; `*n` gets their count.
///
/// # Safety
///
/// `f` NULL or live; `pins` NULL (with `cap == 0`) or writable for `cap`
/// entries; `n` writable.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_pinned(
    f: *const wcfs_file,
    pins: *mut wcfs_pin,
    cap: usize,
    n: *mut usize,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (f, n) = unsafe {
            (
                handle(f, "file")?,
                n.as_mut().ok_or_else(|| Failure::null("n"))?,
            )
        };
        let mut v = f.0.pinned();
        v.sort();
        *n = v.len();
        if v.len() > cap {
            return Err(Failure::new(
                WCFS_ERR_BUFFER_TOO_SMALL,
                format!("wcfs: {} pins, room for {cap}", v.len()),
            ));
        }
        for (i, (blk, rev)) in v.into_iter().enumerate() {
            // SAFETY: `i < cap` and `pins` is writable for `cap` entries
            // (non-NULL: `cap > i >= 0`).
            unsafe { pins.add(i).write(wcfs_pin { blk, rev: rev.0 }) };
        }
        Ok(())
    })
}

/// Closes the file (for every handle of it): its mappings fault from now on.
///
/// # Safety
///
/// `f` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_close(f: *const wcfs_file) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let f = unsafe { handle(f, "file")? };
        f.0.close()?;
        Ok(())
    })
}

/// Releases a `wcfs_file` handle. NULL is ignored.
///
/// # Safety
///
/// `f` is NULL or a handle from `wcfs_conn_open`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn wcfs_file_free(f: *mut wcfs_file) {
    // SAFETY: per the function's contract.
    unsafe { free(f) }
}
