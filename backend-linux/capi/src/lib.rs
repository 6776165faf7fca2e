//! The C ABI of the WCFS client: `include/wcfs.h` over `wcfs-linux`.
//!
//! Conventions (the header's "Conventions" section says the same for C):
//! - Handles (`wcfs_wcfs`, `wcfs_conn`, `wcfs_file`, `wcfs_mapping`) are
//!   opaque: a `Box` of the Rust handle, given out through an out-pointer and
//!   released by the matching `_free`. A handle keeps what it belongs to
//!   alive (a mapping its file and connection), so they may be freed in any
//!   order.
//! - Every exported function runs inside a panic boundary (`boundary`,
//!   `getter`): a panic becomes `WCFS_ERR_PANIC` (or a getter's default),
//!   never an unwind into C.
//! - A failing call returns a `wcfs_result` and keeps the full text of the
//!   error (`wcfs <mnt>: conn<N> @<at>: ...`) in a thread-local slot, copied
//!   out by `wcfs_last_error`; nothing is allocated for the caller to free.
//! - Nothing Rust crosses the boundary: ids and revisions are `uint64_t`,
//!   strings are NUL-terminated `char *` read during the call only.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use std::path::PathBuf;
use wcfs_core::wire::{Oid, Tid};

use wcfs_linux::{
    Autostart, Conn, ConnStats, ErrorKind, FileH, JoinOptions, Mapping, Wcfs, PIN_TIME_BUCKETS,
};

/// What a call did: `WCFS_OK`, or why it failed (the text: `wcfs_last_error`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wcfs_result {
    WCFS_OK = 0,
    /// A pointer the call needs was NULL.
    WCFS_ERR_NULL = 1,
    /// An argument is malformed (a string not UTF-8, a length that overflows).
    WCFS_ERR_INVALID_ARG = 2,
    /// The library panicked (a bug); the text says where.
    WCFS_ERR_PANIC = 3,
    /// No WCFS is mounted for this database (`wcfs_join`).
    WCFS_ERR_NOT_MOUNTED = 4,
    /// The mountpoint serves another database (`wcfs_join`).
    WCFS_ERR_ZURL_MISMATCH = 5,
    /// The OS refused (opening the mountpoint, reading `head/at`, ...).
    WCFS_ERR_IO = 6,
    /// The connection is closed or down.
    WCFS_ERR_CONN_CLOSED = 7,
    /// The file handle was closed.
    WCFS_ERR_FILE_CLOSED = 8,
    /// The mapping was unmapped.
    WCFS_ERR_NO_SUCH_MAPPING = 9,
    /// A block range out of the file's addressable range or the mapping.
    WCFS_ERR_BAD_RANGE = 10,
    /// `resync` to an older revision: forbidden, and the connection is down.
    WCFS_ERR_GOING_BACK = 11,
    /// The watch link broke.
    WCFS_ERR_LINK = 12,
    /// The server misbehaved or refused (its text in the error).
    WCFS_ERR_PROTOCOL = 13,
    /// A syscall the connection made failed.
    WCFS_ERR_OS = 14,
    /// The caller's buffer is too small (the call says how much it needs).
    WCFS_ERR_BUFFER_TOO_SMALL = 15,
    /// A caller's range (`wcfs_file_mmap_at`) misaligned, of the wrong
    /// length, or overlapping a mapping of the connection; left untouched.
    WCFS_ERR_BAD_ADDRESS = 16,
    /// The zurl has no normal form, so names no mountpoint (`wcfs_join`).
    WCFS_ERR_BAD_ZURL = 17,
    /// What is mounted there is not a WCFS serving this database, or is
    /// mounted by a user that is neither root nor the caller (`wcfs_join`).
    WCFS_ERR_UNTRUSTED = 18,
    /// Starting a server failed: none known (`$WCFS_SERVER`), it could not
    /// be spawned, it exited, or it did not answer in time (`wcfs_join`).
    WCFS_ERR_SERVER_START = 19,
}

use wcfs_result::*;

/// A mounted WCFS server (from `wcfs_open` or `wcfs_join`).
pub struct wcfs_wcfs(Wcfs);
/// A connection: a view of the database as of one revision.
pub struct wcfs_conn(Conn);
/// An open bigfile of a connection.
pub struct wcfs_file(FileH);
/// A memory mapping of blocks of a file.
pub struct wcfs_mapping(Mapping);

/// A pin in force: block `blk` shows revision `rev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct wcfs_pin {
    pub blk: u64,
    pub rev: u64,
}

/// Buckets of the pin handling time histogram (`WCFS_PIN_TIME_BUCKETS`).
pub const WCFS_PIN_TIME_BUCKETS: usize = 528;
const _: () = assert!(WCFS_PIN_TIME_BUCKETS == PIN_TIME_BUCKETS);

/// A snapshot of a connection's statistics (`wcfs_conn_stats`): counters
/// since the connection was made, and the pin handling time histogram.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct wcfs_conn_stats {
    /// Pins to a revision applied.
    pub pins: u64,
    /// Pins back to head applied.
    pub unpins: u64,
    /// `ack` lines sent.
    pub acks: u64,
    /// `nak` lines sent.
    pub naks: u64,
    /// `@rev` files opened.
    pub rev_opens: u64,
    /// Pins whose `@rev` file was already open.
    pub rev_hits: u64,
    /// Blocks remapped one by one (pins, `remap_blk`, pinned blocks of new
    /// mappings and resyncs).
    pub remaps: u64,
    /// Resyncs completed.
    pub resyncs: u64,
    /// Pins handled in bucket `i`'s range of ns, from reading the pin's
    /// line to writing its ack: log-linear buckets, 16 per power of two
    /// (`wcfs_core::PIN_TIME_BUCKETS`; `wcfs_pin_time_bucket_end`).
    pub pin_time_ns: [u64; WCFS_PIN_TIME_BUCKETS],
}

impl From<ConnStats> for wcfs_conn_stats {
    fn from(s: ConnStats) -> wcfs_conn_stats {
        wcfs_conn_stats {
            pins: s.pins,
            unpins: s.unpins,
            acks: s.acks,
            naks: s.naks,
            rev_opens: s.rev_opens,
            rev_hits: s.rev_hits,
            remaps: s.remaps,
            resyncs: s.resyncs,
            pin_time_ns: s.pin_time_ns,
        }
    }
}

mod pin_time;
pub use pin_time::wcfs_pin_time_bucket_end;

// ---- errors and the panic boundary ----

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: its code and the text kept for `wcfs_last_error`.
struct Failure {
    code: wcfs_result,
    text: String,
}

impl Failure {
    fn new(code: wcfs_result, text: impl Into<String>) -> Failure {
        Failure {
            code,
            text: text.into(),
        }
    }

    fn null(what: &str) -> Failure {
        Failure::new(WCFS_ERR_NULL, format!("wcfs: {what} is NULL"))
    }
}

impl From<wcfs_linux::Error> for Failure {
    fn from(e: wcfs_linux::Error) -> Failure {
        let code = match &e.kind {
            ErrorKind::Core(c) => core_code(c),
            ErrorKind::Io { what, .. } if what.starts_with("autostart") => WCFS_ERR_SERVER_START,
            ErrorKind::Io { .. } => WCFS_ERR_IO,
            ErrorKind::NotMounted { .. } => WCFS_ERR_NOT_MOUNTED,
            ErrorKind::ZurlMismatch { .. } => WCFS_ERR_ZURL_MISMATCH,
            ErrorKind::BadZurl(_) => WCFS_ERR_BAD_ZURL,
            ErrorKind::NotWcfs { .. } | ErrorKind::Untrusted { .. } => WCFS_ERR_UNTRUSTED,
            ErrorKind::NoServerExecutable
            | ErrorKind::ServerExited { .. }
            | ErrorKind::ServerTimeout { .. } => WCFS_ERR_SERVER_START,
            ErrorKind::BadEnv { .. } => WCFS_ERR_INVALID_ARG,
        };
        Failure::new(code, e.to_string())
    }
}

/// The code of a core error; every variant not named is the server's doing.
fn core_code(e: &wcfs_core::Error) -> wcfs_result {
    use wcfs_core::Error as E;
    match e {
        E::ConnClosed => WCFS_ERR_CONN_CLOSED,
        E::FileClosed => WCFS_ERR_FILE_CLOSED,
        E::NoSuchMapping => WCFS_ERR_NO_SUCH_MAPPING,
        E::BadRange => WCFS_ERR_BAD_RANGE,
        E::BadAddress(_) | E::BadLength { .. } | E::AddressInUse { .. } => WCFS_ERR_BAD_ADDRESS,
        E::GoingBack { .. } => WCFS_ERR_GOING_BACK,
        E::Link(_) => WCFS_ERR_LINK,
        E::Os { .. } => WCFS_ERR_OS,
        _ => WCFS_ERR_PROTOCOL,
    }
}

fn set_last_error(text: String) {
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("wcfs: panic in the library: {msg}")
}

/// Runs `f` as one exported call: a failure or a panic becomes a result
/// code and the thread's last error; nothing unwinds into C.
fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> wcfs_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => WCFS_OK,
        Ok(Err(fail)) => {
            set_last_error(fail.text);
            fail.code
        }
        Err(p) => {
            set_last_error(panic_text(&*p));
            WCFS_ERR_PANIC
        }
    }
}

/// Runs a getter: `default` for a NULL handle or a panic.
fn getter<H, T>(h: *const H, default: T, f: impl FnOnce(&H) -> T) -> T {
    // SAFETY: the caller passes NULL or a live handle of type H (the
    // header's conventions); a shared reference is all the getters need.
    let Some(h) = (unsafe { h.as_ref() }) else {
        return default;
    };
    catch_unwind(AssertUnwindSafe(|| f(h))).unwrap_or(default)
}

/// The handle behind `h`, or `WCFS_ERR_NULL`.
///
/// # Safety
///
/// `h` is NULL or a live handle given out by this library, not freed yet.
unsafe fn handle<'a, H>(h: *const H, what: &str) -> Result<&'a H, Failure> {
    // SAFETY: per the function's contract.
    unsafe { h.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// Stores a new handle into `*out` (checked non-NULL by `out_ptr`).
fn give<H>(out: &mut *mut H, h: H) {
    *out = Box::into_raw(Box::new(h));
}

/// The out-pointer `out`, cleared to NULL, or `WCFS_ERR_NULL`.
///
/// # Safety
///
/// `out` is NULL or valid for writing one pointer.
unsafe fn out_ptr<'a, H>(out: *mut *mut H) -> Result<&'a mut *mut H, Failure> {
    // SAFETY: per the function's contract.
    let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
    *out = std::ptr::null_mut();
    Ok(out)
}

/// A NUL-terminated string argument.
///
/// # Safety
///
/// `s` is NULL or a NUL-terminated string readable for the call.
unsafe fn c_str<'a>(s: *const c_char, what: &str) -> Result<&'a CStr, Failure> {
    if s.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the function's contract.
    Ok(unsafe { CStr::from_ptr(s) })
}

/// Frees a handle given out by this library.
///
/// # Safety
///
/// `h` is NULL or a handle of type H given out by this library, freed once.
unsafe fn free<H>(h: *mut H) {
    if h.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the function's contract: from `Box::into_raw`, not freed yet.
        drop(unsafe { Box::from_raw(h) })
    }));
}

/// Copies `text` NUL-terminated into `buf[..len]`, cut at a character
/// boundary when too long; returns the full length (without the NUL).
///
/// # Safety
///
/// `buf` is NULL (then `len` must be 0) or writable for `len` bytes.
unsafe fn copy_text(text: &str, buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let mut n = text.len().min(len - 1);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `buf` is writable for `len > n` bytes per the contract;
        // `text` is a distinct Rust string.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}

// ---- errors ----

/// The name of a result code (`"WCFS_ERR_GOING_BACK"`), a static string;
/// `"WCFS_UNKNOWN"` for a value that is no code.
#[no_mangle]
pub extern "C" fn wcfs_result_name(result: c_int) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"WCFS_OK",
        1 => c"WCFS_ERR_NULL",
        2 => c"WCFS_ERR_INVALID_ARG",
        3 => c"WCFS_ERR_PANIC",
        4 => c"WCFS_ERR_NOT_MOUNTED",
        5 => c"WCFS_ERR_ZURL_MISMATCH",
        6 => c"WCFS_ERR_IO",
        7 => c"WCFS_ERR_CONN_CLOSED",
        8 => c"WCFS_ERR_FILE_CLOSED",
        9 => c"WCFS_ERR_NO_SUCH_MAPPING",
        10 => c"WCFS_ERR_BAD_RANGE",
        11 => c"WCFS_ERR_GOING_BACK",
        12 => c"WCFS_ERR_LINK",
        13 => c"WCFS_ERR_PROTOCOL",
        14 => c"WCFS_ERR_OS",
        15 => c"WCFS_ERR_BUFFER_TOO_SMALL",
        16 => c"WCFS_ERR_BAD_ADDRESS",
        17 => c"WCFS_ERR_BAD_ZURL",
        18 => c"WCFS_ERR_UNTRUSTED",
        19 => c"WCFS_ERR_SERVER_START",
        _ => c"WCFS_UNKNOWN",
    };
    s.as_ptr()
}

/// Copies the text of the last error of this thread into `buf`; see the header.
///
/// # Safety
///
/// `buf` is NULL (with `len == 0`) or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn wcfs_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.with(|l| {
            // SAFETY: per the function's contract.
            unsafe { copy_text(&l.borrow(), buf, len) }
        })
    }))
    .unwrap_or(0)
}

// ---- wcfs: a mounted server ----

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

/// A UTF-8 string argument.
///
/// # Safety
///
/// As for [`c_str`].
unsafe fn utf8<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: per the function's contract.
    unsafe { c_str(s, what) }?
        .to_str()
        .map_err(|_| Failure::new(WCFS_ERR_INVALID_ARG, format!("wcfs: {what} is not UTF-8")))
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

// ---- conn ----

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

/// Copies the connection's statistics now into `*out`, without stopping its pin thread.
///
/// # Safety
///
/// `c` NULL or live; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_get_stats(
    c: *const wcfs_conn,
    out: *mut wcfs_conn_stats,
) -> wcfs_result {
    boundary(|| {
        // SAFETY: per the function's contract.
        let (c, out) = unsafe {
            (
                handle(c, "conn")?,
                out.as_mut().ok_or_else(|| Failure::null("out"))?,
            )
        };
        *out = c.0.stats().into();
        Ok(())
    })
}

/// An upper bound (ns) of the `q`-quantile of the pin handling time in
/// `s` (the end of the bucket holding it); 0 when none was recorded or
/// `s` is NULL.
///
/// # Safety
///
/// `s` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn wcfs_conn_stats_pin_time_quantile(
    s: *const wcfs_conn_stats,
    q: f64,
) -> u64 {
    getter(s, 0, |s| {
        let c = ConnStats {
            pin_time_ns: s.pin_time_ns,
            ..ConnStats::default()
        };
        c.pin_time_quantile(q).unwrap_or(0)
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

// ---- file ----

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

// ---- mapping ----

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    fn last_error() -> String {
        // SAFETY: (NULL, 0) asks for the length only.
        let n = unsafe { wcfs_last_error(null_mut(), 0) };
        let mut buf = vec![0u8; n + 1];
        // SAFETY: `buf` is writable for its length.
        let m = unsafe { wcfs_last_error(buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(m, n);
        CStr::from_bytes_with_nul(&buf)
            .unwrap()
            .to_str()
            .unwrap()
            .into()
    }

    #[test]
    fn a_panic_becomes_a_result_code_and_its_text() {
        let r = boundary(|| panic!("boom {}", 42));
        assert_eq!(r, WCFS_ERR_PANIC);
        assert_eq!(last_error(), "wcfs: panic in the library: boom 42");
        let r = boundary(|| std::panic::panic_any(7u8));
        assert_eq!(r, WCFS_ERR_PANIC);
        assert_eq!(last_error(), "wcfs: panic in the library: (no message)");
        let x = 5u64;
        assert_eq!(getter(&x, 9, |_| -> u64 { panic!("in a getter") }), 9);
        assert_eq!(getter(null::<u64>(), 9, |x| *x), 9);
        assert_eq!(getter(&x, 9, |x| *x), 5);
    }

    #[test]
    fn failures_keep_their_text_successes_leave_it() {
        assert_eq!(
            boundary(|| Err(Failure::new(WCFS_ERR_IO, "first"))),
            WCFS_ERR_IO
        );
        assert_eq!(boundary(|| Ok(())), WCFS_OK);
        assert_eq!(last_error(), "first");
        // Per thread: another thread has its own (empty) slot.
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
        assert_eq!(last_error(), "first");
    }

    #[test]
    fn last_error_is_cut_at_a_character_boundary() {
        let _ = boundary(|| Err(Failure::new(WCFS_ERR_IO, "ab\u{e9}cd"))); // é: 2 bytes
        let mut buf = [0x55u8; 4];
        // SAFETY: `buf` is writable for 4 bytes.
        let n = unsafe { wcfs_last_error(buf.as_mut_ptr().cast(), 4) };
        assert_eq!(n, 6);
        // 3 bytes fit, but the third is half of é: cut before it.
        assert_eq!(&buf[..3], b"ab\0");
        let mut one = [0x55u8; 1];
        // SAFETY: `one` is writable for 1 byte.
        assert_eq!(unsafe { wcfs_last_error(one.as_mut_ptr().cast(), 1) }, 6);
        assert_eq!(one, [0]);
    }

    #[test]
    fn null_and_malformed_arguments_are_refused() {
        let mut w: *mut wcfs_wcfs = NonNullSentinel::get();
        // SAFETY: every pointer is NULL, a live local, or a string literal.
        unsafe {
            assert_eq!(wcfs_open(null(), &mut w), WCFS_ERR_NULL);
            assert!(w.is_null(), "out cleared");
            assert_eq!(last_error(), "wcfs: mountpoint is NULL");
            assert_eq!(wcfs_open(c"/".as_ptr(), null_mut()), WCFS_ERR_NULL);
            assert_eq!(last_error(), "wcfs: out is NULL");
            assert_eq!(
                wcfs_join_under(c"/nonexistent".as_ptr(), c"\xff".as_ptr(), &mut w),
                WCFS_ERR_INVALID_ARG
            );
            assert_eq!(last_error(), "wcfs: zurl is not UTF-8");
            let mut at = 0;
            assert_eq!(wcfs_head_at(null(), &mut at), WCFS_ERR_NULL);
            let mut c = null_mut();
            assert_eq!(wcfs_connect(null(), 1, &mut c), WCFS_ERR_NULL);
            assert_eq!(wcfs_connect_with(null(), 1, 0, 0, &mut c), WCFS_ERR_NULL);
            let mut f = null_mut();
            assert_eq!(wcfs_conn_open(null(), 1, &mut f), WCFS_ERR_NULL);
            assert_eq!(wcfs_conn_resync(null(), 1), WCFS_ERR_NULL);
            assert_eq!(wcfs_conn_close(null()), WCFS_ERR_NULL);
            let mut st = std::mem::zeroed();
            assert_eq!(wcfs_conn_get_stats(null(), &mut st), WCFS_ERR_NULL);
            let mut m = null_mut();
            assert_eq!(wcfs_file_mmap(null(), 0, 1, &mut m), WCFS_ERR_NULL);
            assert_eq!(
                wcfs_file_mmap_at(null(), 0, 1, null_mut(), 0, &mut m),
                WCFS_ERR_NULL
            );
            let mut n = 0;
            assert_eq!(
                wcfs_file_pinned(null(), null_mut(), 0, &mut n),
                WCFS_ERR_NULL
            );
            assert_eq!(wcfs_file_close(null()), WCFS_ERR_NULL);
            assert_eq!(wcfs_mapping_mark_dirty(null(), 0), WCFS_ERR_NULL);
            assert_eq!(wcfs_mapping_remap_blk(null(), 0), WCFS_ERR_NULL);
            assert_eq!(wcfs_mapping_unmap(null()), WCFS_ERR_NULL);
            let mut b = [0u8; 4];
            assert_eq!(
                wcfs_mapping_read(null(), 0, b.as_mut_ptr().cast(), 4),
                WCFS_ERR_NULL
            );
            assert_eq!(wcfs_conn_down_reason(null(), null_mut(), 0), 0);
            // Getters give their documented defaults.
            assert_eq!(wcfs_conn_at(null()), 0);
            assert_eq!(wcfs_conn_id(null()), 0);
            assert_eq!(wcfs_file_oid(null()), 0);
            assert_eq!(wcfs_file_blksize(null()), 0);
            assert!(wcfs_mapping_addr(null()).is_null());
            assert_eq!(wcfs_mapping_len(null()), 0);
            assert_eq!(wcfs_mapping_blk_start(null()), 0);
            assert_eq!(wcfs_mapping_blk_stop(null()), 0);
            assert!(wcfs_mapping_is_faulting(null()));
            assert!(!wcfs_mapping_is_exposed(null()));
            assert_eq!(wcfs_mountpoint(null(), null_mut(), 0), 0);
            assert_eq!(wcfs_conn_stats_pin_time_quantile(null(), 0.5), 0);
            wcfs_free(null_mut());
            wcfs_conn_free(null_mut());
            wcfs_file_free(null_mut());
            wcfs_mapping_free(null_mut());
        }
    }

    /// A non-NULL pointer value to see out-pointers cleared (never dereferenced).
    struct NonNullSentinel;
    impl NonNullSentinel {
        fn get<T>() -> *mut T {
            std::ptr::NonNull::dangling().as_ptr()
        }
    }

    #[test]
    fn open_of_no_mount_is_an_io_error_with_context() {
        let mut w = NonNullSentinel::get();
        // SAFETY: a string literal and a live local.
        let r = unsafe { wcfs_open(c"/nonexistent/wcfs".as_ptr(), &mut w) };
        assert_eq!(r, WCFS_ERR_IO);
        assert!(w.is_null());
        assert!(
            last_error().starts_with("wcfs /nonexistent/wcfs: open mountpoint: "),
            "{}",
            last_error()
        );
        let base = std::env::temp_dir().join(format!("wcfs-capi-unit-{}", std::process::id()));
        let cbase = std::ffi::CString::new(base.as_os_str().as_bytes()).unwrap();
        // SAFETY: live C strings and a live local.
        let r = unsafe { wcfs_join_under(cbase.as_ptr(), c"zeo://x".as_ptr(), &mut w) };
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(r, WCFS_ERR_NOT_MOUNTED);
        assert!(last_error().ends_with("no wcfs server mounted for zeo://x"));
        // Where wendelin.core mounts: /dev/shm/wcfs/<sha1 of zurl>.
        let zurl =
            std::ffi::CString::new(format!("zeo://capi-test-{}", std::process::id())).unwrap();
        let no = wcfs_join_options {
            autostart: WCFS_AUTOSTART_NO,
            server: std::ptr::null(),
            options: std::ptr::null(),
            n_options: 0,
            base: std::ptr::null(),
            start_timeout_ms: 0,
        };
        // SAFETY: a live C string, live options and a live local.
        let r = unsafe { wcfs_join_with(zurl.as_ptr(), &no, &mut w) };
        assert_eq!(r, WCFS_ERR_NOT_MOUNTED);
        assert!(w.is_null());
        let e = last_error();
        assert!(e.starts_with("wcfs /dev/shm/wcfs/"), "{e}");
        assert!(
            e.ends_with(&format!(
                "no wcfs server mounted for {}",
                zurl.to_str().unwrap()
            )),
            "{e}"
        );
        // Autostart (the default) with no server executable known.
        if std::env::var_os("WCFS_SERVER").is_none()
            && std::env::var_os("WENDELIN_CORE_WCFS_AUTOSTART").is_none()
        {
            // SAFETY: a live C string and a live local.
            let r = unsafe { wcfs_join(zurl.as_ptr(), &mut w) };
            assert_eq!(r, WCFS_ERR_SERVER_START);
            assert!(w.is_null());
            assert!(last_error().contains("none to start"), "{}", last_error());
        }
        // join's lock file beside that mountpoint is gone with its last holder.
        let mnt = wcfs_linux::mountpoint_for(zurl.to_str().unwrap()).unwrap();
        assert!(
            !mnt.with_extension("lock").exists(),
            "join left its lock file"
        );
        // SAFETY: a string literal and a live local.
        let r = unsafe { wcfs_join_with(c"nosuch://db".as_ptr(), std::ptr::null(), &mut w) };
        assert_eq!(r, WCFS_ERR_BAD_ZURL);
        let bad = wcfs_join_options { autostart: 3, ..no };
        // SAFETY: as above.
        let r = unsafe { wcfs_join_with(zurl.as_ptr(), &bad, &mut w) };
        assert_eq!(r, WCFS_ERR_INVALID_ARG);
    }

    #[test]
    fn core_errors_map_to_their_codes() {
        use wcfs_core::Error as E;
        assert_eq!(core_code(&E::ConnClosed), WCFS_ERR_CONN_CLOSED);
        assert_eq!(core_code(&E::FileClosed), WCFS_ERR_FILE_CLOSED);
        assert_eq!(core_code(&E::NoSuchMapping), WCFS_ERR_NO_SUCH_MAPPING);
        assert_eq!(core_code(&E::BadRange), WCFS_ERR_BAD_RANGE);
        assert_eq!(core_code(&E::BadAddress(1)), WCFS_ERR_BAD_ADDRESS);
        assert_eq!(
            core_code(&E::BadLength { len: 1, want: 2 }),
            WCFS_ERR_BAD_ADDRESS
        );
        assert_eq!(
            core_code(&E::AddressInUse { addr: 1, len: 2 }),
            WCFS_ERR_BAD_ADDRESS
        );
        assert_eq!(
            core_code(&E::GoingBack {
                at: Tid(2),
                to: Tid(1)
            }),
            WCFS_ERR_GOING_BACK
        );
        assert_eq!(core_code(&E::UnexpectedPin(Oid(1))), WCFS_ERR_PROTOCOL);
        assert_eq!(core_code(&E::TooManyPins(Oid(1))), WCFS_ERR_PROTOCOL);
    }

    #[test]
    fn quantiles_of_a_c_snapshot() {
        let mut s = wcfs_conn_stats::from(ConnStats::default());
        // SAFETY: `s` is a live local.
        assert_eq!(unsafe { wcfs_conn_stats_pin_time_quantile(&s, 0.5) }, 0);
        s.pin_time_ns[wcfs_core::pin_time_bucket(1500)] = 99; // [1472, 1536) ns
        s.pin_time_ns[wcfs_core::pin_time_bucket(70_000)] = 1; // [69632, 73728) ns
                                                               // SAFETY: as above.
        unsafe {
            assert_eq!(wcfs_conn_stats_pin_time_quantile(&s, 0.5), 1536);
            assert_eq!(wcfs_conn_stats_pin_time_quantile(&s, 1.0), 73_728);
        }
    }
}
