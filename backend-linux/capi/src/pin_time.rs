//! The buckets of `wcfs_conn_stats::pin_time_ns`, named for C.

/// The end (ns, exclusive) of bucket `i` of `wcfs_conn_stats::pin_time_ns`,
/// the first time of bucket `i + 1`; `UINT64_MAX` for the last bucket (and
/// past it). Bucket `i` starts where bucket `i - 1` ends (bucket 0 at 0).
#[no_mangle]
pub extern "C" fn wcfs_pin_time_bucket_end(i: usize) -> u64 {
    wcfs_core::pin_time_bucket_end(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WCFS_PIN_TIME_BUCKETS;

    #[test]
    fn bucket_ends_are_the_cores() {
        assert_eq!(wcfs_pin_time_bucket_end(0), 1);
        assert_eq!(
            wcfs_pin_time_bucket_end(wcfs_core::pin_time_bucket(1500)),
            1536
        );
        assert_eq!(
            wcfs_pin_time_bucket_end(WCFS_PIN_TIME_BUCKETS - 2),
            (1 << 36) - (1 << 31)
        );
        assert_eq!(
            wcfs_pin_time_bucket_end(WCFS_PIN_TIME_BUCKETS - 1),
            u64::MAX
        );
        assert_eq!(wcfs_pin_time_bucket_end(usize::MAX), u64::MAX);
    }
}
