//! `wcfs_conn_stats`: a connection's statistics, read without its lock.

use wcfs_linux::{ConnStats, PIN_TIME_BUCKETS};

use crate::conn::wcfs_conn;
use crate::ffi::handle;
use crate::result::{boundary, getter, wcfs_result, Failure};

/// Buckets of the pin handling time histogram (`WCFS_PIN_TIME_BUCKETS`).
pub const WCFS_PIN_TIME_BUCKETS: usize = 40;
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
    /// Pins that found the VM's page dirty and left it (`wcfs_file_mmap_vm`).
    pub dirty_kept: u64,
    /// Pins handled in `[2^i, 2^(i+1))` ns, from reading the pin's line to
    /// writing its ack (bucket 0 also counts 0 ns; the last one everything
    /// longer).
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
            dirty_kept: s.dirty_kept,
            pin_time_ns: s.pin_time_ns,
        }
    }
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
