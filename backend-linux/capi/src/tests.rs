use std::ffi::{c_int, CStr};

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::{ConnStats, Kind};

use super::*;
use std::os::unix::ffi::OsStrExt;

use crate::result::wcfs_result::*;
use crate::result::*;
use std::ptr::{null, null_mut};
use wcfs_linux::foreign::foreign;

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
        assert_eq!(wcfs_conn_stats(null(), &mut st), WCFS_ERR_NULL);
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
        assert_eq!(wcfs_stats_pin_time_quantile(null(), 0.5), 0);
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
    let zurl = std::ffi::CString::new(format!("zeo://capi-test-{}", std::process::id())).unwrap();
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
fn every_kind_has_its_code_and_name_from_the_table() {
    for k in Kind::ALL {
        let row = foreign(k);
        let code = wcfs_result::of(k);
        assert_eq!(code as i32, row.c_code, "{k}");
        // SAFETY: wcfs_result_name returns a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(wcfs_result_name(code as c_int)) };
        assert_eq!(name, row.c_name, "{k}");
    }
    for (i, c) in wcfs_result::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i);
        assert!(wcfs_result::name(i as c_int).is_some(), "{c:?} unnamed");
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(wcfs_result_name(99)) };
    assert_eq!(unknown, c"WCFS_UNKNOWN");
}

#[test]
fn core_errors_map_to_their_codes() {
    use wcfs_core::Error as E;
    let code = |e: E| wcfs_result::of(e.kind());
    assert_eq!(code(E::ConnClosed), WCFS_ERR_CONN_CLOSED);
    assert_eq!(code(E::FileClosed), WCFS_ERR_FILE_CLOSED);
    assert_eq!(code(E::NoSuchMapping), WCFS_ERR_NO_SUCH_MAPPING);
    assert_eq!(code(E::BadRange), WCFS_ERR_BAD_RANGE);
    assert_eq!(code(E::BadAddress(1)), WCFS_ERR_BAD_ADDRESS);
    assert_eq!(code(E::BadLength { len: 1, want: 2 }), WCFS_ERR_BAD_ADDRESS);
    assert_eq!(
        code(E::AddressInUse { addr: 1, len: 2 }),
        WCFS_ERR_BAD_ADDRESS
    );
    let back = E::GoingBack {
        at: Tid(2),
        to: Tid(1),
    };
    assert_eq!(code(back), WCFS_ERR_GOING_BACK);
    assert_eq!(code(E::UnexpectedPin(Oid(1))), WCFS_ERR_PROTOCOL);
    assert_eq!(code(E::TooManyPins(Oid(1))), WCFS_ERR_PROTOCOL);
    assert_eq!(code(E::NotDrained), WCFS_ERR_BUG);
}

#[test]
fn quantiles_of_a_c_snapshot() {
    let mut s = wcfs_stats::from(ConnStats::default());
    // SAFETY: `s` is a live local.
    assert_eq!(unsafe { wcfs_stats_pin_time_quantile(&s, 0.5) }, 0);
    s.pin_time_ns[wcfs_core::pin_time_bucket(1500)] = 99; // [1472, 1536) ns
    s.pin_time_ns[wcfs_core::pin_time_bucket(70_000)] = 1; // [69632, 73728) ns
                                                           // SAFETY: as above.
    unsafe {
        assert_eq!(wcfs_stats_pin_time_quantile(&s, 0.5), 1536);
        assert_eq!(wcfs_stats_pin_time_quantile(&s, 1.0), 73_728);
    }
}
