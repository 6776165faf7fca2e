"""The cost of one Python-level `mmap` + full read through NumPy against the
same through the Rust API, side by side in one run on the FUSE test server.

    python/bench.py            (after python/test.sh, with its venv's python)

Per size: `fh.mmap(0, n)`, a read of the whole view through NumPy, then
`m.unmap()`, timed in a Python loop; against `wcfs_rs._rust_mmap_read`,
which does the same through `wcfs_linux::FileH` in a Rust loop. The reads:
"sum" sums every byte (`np.frombuffer(m, np.uint8).sum()` vs an iterator
sum over `Mapping::as_slice`), "copy" copies every byte into a buffer
allocated once (`np.copyto` vs `Mapping::read`), "touch" sums one byte per
page (the mapping and its page faults, without the per-byte work), "map"
reads nothing (mmap + the NumPy view + unmap: the fixed cost). Rounds
alternate the two; the medians are printed.
"""

import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
import wcfs_rs  # noqa: E402
from testserver import PAGE, Server, fuse_unavailable  # noqa: E402

F = 1
ROUNDS = 7


def py_loop(fh, nblk, iters, how):
    out = 0
    dst = np.empty(nblk * fh.blksize, dtype=np.uint8)
    t0 = time.perf_counter_ns()
    for _ in range(iters):
        m = fh.mmap(0, nblk)
        a = np.frombuffer(m, dtype=np.uint8)
        if how == "sum":
            out = int(a.sum())
        elif how == "copy":
            np.copyto(dst, a)
            out = len(dst)
        elif how == "touch":
            out = int(a[::PAGE].sum())
        else:
            out = len(a)
        del a
        m.unmap()
    return (time.perf_counter_ns() - t0) / iters, out


def main():
    why = fuse_unavailable()
    if why:
        sys.exit(f"bench: FUSE is not available: {why}")
    d = tempfile.mkdtemp(prefix="wcfs-pybench-")
    srv = Server(d)
    try:
        sizes = [1, 16, 256, 2048]  # blocks of one page
        big = max(sizes)
        for lo in range(0, big, 128):
            srv.commit({(F, b): bytes([b % 251 + 1]) * 64 for b in range(lo, lo + 128)})
        w = wcfs_rs.WCFS(srv.mountpoint)
        conn = w.connect(w.head_at())
        fh = conn.open(F)
        print(f"# wcfs_rs bench: block {PAGE} B, {ROUNDS} alternating rounds, medians")
        print(f"{'read':>5} {'blocks':>6} {'bytes':>9} {'python+numpy':>14} {'rust':>12} {'ratio':>7}")
        for how in ("sum", "copy", "touch", "map"):
            for nblk in sizes:
                iters = max(5, 20000 // nblk)
                py_loop(fh, nblk, iters, how)  # warm: head pages in the page cache
                wcfs_rs._rust_mmap_read(fh, 0, nblk, iters, how)
                py, rs = [], []
                for _ in range(ROUNDS):
                    t, out_py = py_loop(fh, nblk, iters, how)
                    py.append(t)
                    t, out_rs = wcfs_rs._rust_mmap_read(fh, 0, nblk, iters, how)
                    rs.append(t)
                    assert out_py == out_rs, (how, nblk, out_py, out_rs)
                p, r = statistics.median(py), statistics.median(rs)
                print(
                    f"{how:>5} {nblk:>6} {nblk * PAGE:>9} {p / 1000:>11.1f} us {r / 1000:>9.1f} us {p / r:>6.2f}x"
                )
        fh.close()
        conn.close()
    finally:
        srv.stop()
        if os.path.isdir(d):
            os.rmdir(d)


if __name__ == "__main__":
    main()
