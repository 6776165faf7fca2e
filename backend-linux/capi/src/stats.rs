//! `wcfs_stats`: a connection's statistics, read without its lock.

use wcfs_linux::{ConnStats, PIN_TIME_BUCKETS};

use crate::conn::wcfs_conn;
use crate::ffi::handle;
use crate::result::{boundary, getter, wcfs_result, Failure};

/// Buckets of the pin handling time histogram (`WCFS_PIN_TIME_BUCKETS`).
pub const WCFS_PIN_TIME_BUCKETS: usize = 528;
const _: () = assert!(WCFS_PIN_TIME_BUCKETS == PIN_TIME_BUCKETS);

/// A snapshot of a connection's statistics (`wcfs_stats`): counters
/// since the connection was made, and the pin handling time histogram.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct wcfs_stats {
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
    /// Pins handled in bucket `i`'s range of ns, from reading the pin's
    /// line to writing its ack: log-linear buckets, 16 per power of two
    /// (`wcfs_core::PIN_TIME_BUCKETS`; `wcfs_stats_pin_time_bucket_end`).
    pub pin_time_ns: [u64; WCFS_PIN_TIME_BUCKETS],
}

impl From<ConnStats> for wcfs_stats {
    fn from(s: ConnStats) -> wcfs_stats {
        wcfs_stats {
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
pub unsafe extern "C" fn wcfs_conn_stats(c: *const wcfs_conn, out: *mut wcfs_stats) -> wcfs_result {
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
pub unsafe extern "C" fn wcfs_stats_pin_time_quantile(s: *const wcfs_stats, q: f64) -> u64 {
    getter(s, 0, |s| {
        let c = ConnStats {
            pin_time_ns: s.pin_time_ns,
            ..ConnStats::default()
        };
        c.pin_time_quantile(q).unwrap_or(0)
    })
}

/// The end (ns, exclusive) of bucket `i` of `wcfs_stats::pin_time_ns`,
/// the first time of bucket `i + 1`; `UINT64_MAX` for the last bucket (and
/// past it). Bucket `i` starts where bucket `i - 1` ends (bucket 0 at 0).
#[no_mangle]
pub extern "C" fn wcfs_stats_pin_time_bucket_end(i: usize) -> u64 {
    wcfs_core::pin_time_bucket_end(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_ends_are_the_cores() {
        assert_eq!(wcfs_stats_pin_time_bucket_end(0), 1);
        assert_eq!(
            wcfs_stats_pin_time_bucket_end(wcfs_core::pin_time_bucket(1500)),
            1536
        );
        assert_eq!(
            wcfs_stats_pin_time_bucket_end(WCFS_PIN_TIME_BUCKETS - 2),
            (1 << 36) - (1 << 31)
        );
        assert_eq!(
            wcfs_stats_pin_time_bucket_end(WCFS_PIN_TIME_BUCKETS - 1),
            u64::MAX
        );
        assert_eq!(wcfs_stats_pin_time_bucket_end(usize::MAX), u64::MAX);
    }
}
