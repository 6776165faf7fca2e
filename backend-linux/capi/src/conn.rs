//! `wcfs_conn`: a view of the database as of a revision.

use std::ffi::c_char;

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::Conn;

use crate::ffi::{free, give, handle, out_ptr};
use crate::file::wcfs_file;
use crate::result::{boundary, copy_text, getter, wcfs_result};

/// A connection: a view of the database as of one revision.
pub struct wcfs_conn(pub(crate) Conn);

/// The revision the connection views; 0 for NULL.
///
/// # Safety
///
/// `c` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_at(c: *const wcfs_conn) -> u64 {
    getter(c, 0, |c| c.0.at().0)
}

/// The connection's number in its `wcfs` (the `N` of `conn<N>`); 0 for NULL.
///
/// # Safety
///
/// `c` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_id(c: *const wcfs_conn) -> u64 {
    getter(c, 0, |c| c.0.id())
}

/// Opens bigfile `oid`.
///
/// # Safety
///
/// `c` NULL or live; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_open(
    c: *const wcfs_conn,
    oid: u64,
    out: *mut *mut wcfs_file,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, c) = unsafe { (out_ptr(out)?, handle(c, "conn")?) };
        give(out, wcfs_file(c.0.open(Oid(oid))?));
        Ok(())
    })
}

/// Moves the view forward to `at`.
///
/// # Safety
///
/// `c` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_resync(c: *const wcfs_conn, at: u64) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let c = unsafe { handle(c, "conn")? };
        c.0.resync(Tid(at))?;
        Ok(())
    })
}

/// Closes the connection: its mappings fault from now on.
///
/// # Safety
///
/// `c` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_close(c: *const wcfs_conn) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let c = unsafe { handle(c, "conn")? };
        c.0.close()?;
        Ok(())
    })
}

/// Copies why the connection is down into `buf`; returns the text's full
/// length, 0 while the connection is up (or `c` is NULL).
///
/// # Safety
///
/// `c` NULL or live; `buf` NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_down_reason(
    c: *const wcfs_conn,
    buf: *mut c_char,
    len: usize,
) -> usize {
    getter(c, 0, |c| match c.0.down_reason() {
        // SAFETY: per the function's contract.
        Some(e) => unsafe { copy_text(&e.to_string(), buf, len) },
        None => 0,
    })
}

/// Releases a `wcfs_conn` handle. NULL is ignored.
///
/// # Safety
///
/// `c` is NULL or a handle from `wcfs_connect`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_free(c: *mut wcfs_conn) {
    // SAFETY: per the function's contract.
    unsafe { free(c) }
}
