"""The pin time histogram's helpers: bucket ends and quantiles (no server)."""
import pytest

import wcfs_rs


def test_buckets_tile_the_line():
    n = wcfs_rs.PIN_TIME_BUCKETS
    ends = [wcfs_rs.pin_time_bucket_end(i) for i in range(n)]
    assert ends[-1] is None  # the last bucket counts everything longer
    assert ends[:32] == list(range(1, 33))  # one per ns below 32 ns
    for start, end in zip(ends, ends[1:-1]):
        assert start < end and (end - start) * 16 <= max(start, 16)


def test_quantiles_of_known_times():
    n = wcfs_rs.PIN_TIME_BUCKETS
    ends = [wcfs_rs.pin_time_bucket_end(i) for i in range(n - 1)]

    def bucket(ns):
        return next(i for i, e in enumerate(ends) if ns < e)

    counts = [0] * n
    counts[bucket(600_000)] += 90  # 600 µs
    counts[bucket(1_100_000)] += 10  # 1.1 ms
    p50 = wcfs_rs.pin_time_quantile(counts, 0.5)
    p99 = wcfs_rs.pin_time_quantile(counts, 0.99)
    assert 600_000 < p50 <= 600_000 * 1.0625
    assert 1_100_000 < p99 <= 1_100_000 * 1.0625
    assert wcfs_rs.pin_time_quantile([0] * n, 0.5) is None
    with pytest.raises(ValueError, match="not %d" % n):
        wcfs_rs.pin_time_quantile([0] * 40, 0.5)
