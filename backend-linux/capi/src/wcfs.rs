//! `wcfs_wcfs`: a mounted server, opened or joined; connections made.

use std::ffi::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use wcfs_core::wire::Tid;
use wcfs_linux::{Autostart, JoinOptions, Wcfs};

use crate::conn::wcfs_conn;
use crate::ffi::{c_str, free, give, handle, out_ptr, utf8};
use crate::result::wcfs_result::{
    WCFS_ERR_BAD_ZURL, WCFS_ERR_BUFFER_TOO_SMALL, WCFS_ERR_INVALID_ARG,
};
use crate::result::{boundary, copy_text, getter, wcfs_result, Failure};

/// A mounted WCFS server (from `wcfs_open` or `wcfs_join`).
pub struct wcfs_wcfs(pub(crate) Wcfs);

/// Opens the WCFS mounted at `mountpoint`.
///
/// # Safety
///
/// `mountpoint` NUL-terminated; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_open(
    mountpoint: *const c_char,
    out: *mut *mut wcfs_wcfs,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, mnt) = unsafe { (out_ptr(out)?, c_str(mountpoint, "mountpoint")?) };
        let mnt = std::ffi::OsStr::from_bytes(mnt.to_bytes());
        give(out, wcfs_wcfs(Wcfs::open(mnt)?));
        Ok(())
    })
}

/// The server of database `zurl` where wendelin.core mounts it.
///
/// # Safety
///
/// `zurl` NUL-terminated; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_join(zurl: *const c_char, out: *mut *mut wcfs_wcfs) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, zurl) = unsafe { (out_ptr(out)?, utf8(zurl, "zurl")?) };
        give(out, wcfs_wcfs(Wcfs::join(zurl)?));
        Ok(())
    })
}

/// `wcfs_join` with another directory of mountpoints than `/dev/shm/wcfs`.
///
/// # Safety
///
/// `base` and `zurl` NUL-terminated; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_join_under(
    base: *const c_char,
    zurl: *const c_char,
    out: *mut *mut wcfs_wcfs,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, base, zurl) =
            unsafe { (out_ptr(out)?, c_str(base, "base")?, utf8(zurl, "zurl")?) };
        let base = std::path::Path::new(std::ffi::OsStr::from_bytes(base.to_bytes()));
        give(out, wcfs_wcfs(Wcfs::join_under(base, zurl)?));
        Ok(())
    })
}

/// `wcfs_join_options::autostart`: as `$WENDELIN_CORE_WCFS_AUTOSTART` says.
pub const WCFS_AUTOSTART_FROM_ENV: c_int = 0;
/// `wcfs_join_options::autostart`: start a server when none is mounted.
pub const WCFS_AUTOSTART_YES: c_int = 1;
/// `wcfs_join_options::autostart`: never start a server.
pub const WCFS_AUTOSTART_NO: c_int = 2;

/// How `wcfs_join_with` finds or starts the server (`wcfs_join_options`).
/// Every pointer may be NULL (the default); strings are read during the
/// call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wcfs_join_options {
    /// `WCFS_AUTOSTART_FROM_ENV` (0), `WCFS_AUTOSTART_YES` or `WCFS_AUTOSTART_NO`.
    pub autostart: c_int,
    /// The wcfs executable to autostart; NULL: `$WCFS_SERVER`.
    pub server: *const c_char,
    /// Options for an autostarted server (after `$WENDELIN_CORE_WCFS_OPTIONS`): `n_options` strings.
    pub options: *const *const c_char,
    /// How many strings `options` points to.
    pub n_options: usize,
    /// The directory of mountpoints; NULL: `/dev/shm/wcfs`.
    pub base: *const c_char,
    /// How long an autostarted server has to answer, in ms; 0: 30 s.
    pub start_timeout_ms: u32,
}

/// The Rust options `opts` describes (`NULL`: the defaults).
///
/// # Safety
///
/// `opts` NULL or readable, its strings NUL-terminated, `options` NULL
/// (with `n_options == 0`) or readable for `n_options` pointers.
unsafe fn join_options(opts: *const wcfs_join_options) -> Result<JoinOptions, Failure> {
    let mut o = JoinOptions::default();
    // SAFETY: per the function's contract.
    let Some(c) = (unsafe { opts.as_ref() }) else {
        return Ok(o);
    };
    let path = |p: *const c_char, what: &str| -> Result<Option<PathBuf>, Failure> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL, NUL-terminated per the contract.
        let s = unsafe { c_str(p, what) }?;
        Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(
            s.to_bytes(),
        ))))
    };
    o.autostart = match c.autostart {
        WCFS_AUTOSTART_FROM_ENV => Autostart::FromEnv,
        WCFS_AUTOSTART_YES => Autostart::Yes,
        WCFS_AUTOSTART_NO => Autostart::No,
        v => {
            return Err(Failure::new(
                WCFS_ERR_INVALID_ARG,
                format!("wcfs: join options: autostart {v} is none of WCFS_AUTOSTART_*"),
            ))
        }
    };
    o.server = path(c.server, "server")?;
    if let Some(b) = path(c.base, "base")? {
        o.base = b;
    }
    if c.n_options > 0 {
        if c.options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: readable for `n_options` pointers per the contract.
        let opts = unsafe { std::slice::from_raw_parts(c.options, c.n_options) };
        for &p in opts {
            // SAFETY: each NUL-terminated per the contract (NULL refused).
            o.options.push(unsafe { utf8(p, "option") }?.to_string());
        }
    }
    if c.start_timeout_ms > 0 {
        o.start_timeout = std::time::Duration::from_millis(c.start_timeout_ms.into());
    }
    Ok(o)
}

/// `wcfs_join` as `opts` say (NULL: the defaults).
///
/// # Safety
///
/// `zurl` NUL-terminated; `opts` as for `join_options`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn wcfs_join_with(
    zurl: *const c_char,
    opts: *const wcfs_join_options,
    out: *mut *mut wcfs_wcfs,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, zurl, opts) =
            unsafe { (out_ptr(out)?, utf8(zurl, "zurl")?, join_options(opts)?) };
        give(out, wcfs_wcfs(Wcfs::join_with(zurl, &opts)?));
        Ok(())
    })
}

/// Copies the mountpoint `wcfs_join` uses for `zurl` into `buf`.
///
/// # Safety
///
/// `zurl` NUL-terminated; `buf` NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mountpoint_for(
    zurl: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let zurl = unsafe { utf8(zurl, "zurl") }?;
        let mnt = wcfs_linux::mountpoint_for(zurl).map_err(|e| {
            Failure::new(
                WCFS_ERR_BAD_ZURL,
                format!("wcfs: mountpoint for {zurl}: {e}"),
            )
        })?;
        let mnt = String::from_utf8_lossy(mnt.as_os_str().as_bytes()).into_owned();
        if len <= mnt.len() {
            return Err(Failure::new(
                WCFS_ERR_BUFFER_TOO_SMALL,
                format!(
                    "wcfs: mountpoint for {zurl}: {} bytes needed, {len} given",
                    mnt.len() + 1
                ),
            ));
        }
        // SAFETY: per the function's contract; `len > 0` here.
        unsafe { copy_text(&mnt, buf, len) };
        Ok(())
    })
}

/// Releases a `wcfs_wcfs` handle. NULL is ignored.
///
/// # Safety
///
/// `w` is NULL or a handle from `wcfs_open`/`wcfs_join`, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn wcfs_free(w: *mut wcfs_wcfs) {
    // SAFETY: per the function's contract.
    unsafe { free(w) }
}

/// Copies the mountpoint into `buf`; returns its full length.
///
/// # Safety
///
/// `w` NULL or live; `buf` NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_mountpoint(
    w: *const wcfs_wcfs,
    buf: *mut c_char,
    len: usize,
) -> usize {
    getter(w, 0, |w| {
        let m = w.0.mountpoint().as_os_str().as_bytes();
        // The path as bytes; a mountpoint is not required to be UTF-8.
        let m = String::from_utf8_lossy(m);
        // SAFETY: per the function's contract.
        unsafe { copy_text(&m, buf, len) }
    })
}

/// Reads `head/at` into `*at`.
///
/// # Safety
///
/// `w` NULL or live; `at` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_head_at(w: *const wcfs_wcfs, at: *mut u64) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (w, at) = unsafe {
            (
                handle(w, "wcfs")?,
                at.as_mut().ok_or_else(|| Failure::null("at"))?,
            )
        };
        *at = w.0.head_at()?.0;
        Ok(())
    })
}

/// A connection viewing the database as of `at` (waits for `head/at >= at`).
///
/// # Safety
///
/// `w` NULL or live; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_connect(
    w: *const wcfs_wcfs,
    at: u64,
    out: *mut *mut wcfs_conn,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, w) = unsafe { (out_ptr(out)?, handle(w, "wcfs")?) };
        give(out, wcfs_conn(w.0.connect(Tid(at))?));
        Ok(())
    })
}

/// `wcfs_connect` with limits: `rev_cache` `@rev` files kept open (clamped
/// to 1..=16), at most `max_pins_per_file` pins per file (more brings the
/// connection down); 0 for either keeps its default.
///
/// # Safety
///
/// `w` NULL or live; `out` writable (the header's conventions).
#[no_mangle]
pub unsafe extern "C" fn wcfs_connect_with(
    w: *const wcfs_wcfs,
    at: u64,
    rev_cache: usize,
    max_pins_per_file: usize,
    out: *mut *mut wcfs_conn,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (out, w) = unsafe { (out_ptr(out)?, handle(w, "wcfs")?) };
        let d = wcfs_linux::Config::default();
        let cfg = wcfs_linux::Config {
            rev_cache: if rev_cache == 0 {
                d.rev_cache
            } else {
                rev_cache
            },
            max_pins_per_file: if max_pins_per_file == 0 {
                d.max_pins_per_file
            } else {
                max_pins_per_file
            },
            ..d
        };
        give(out, wcfs_conn(w.0.connect_with(Tid(at), cfg)?));
        Ok(())
    })
}
