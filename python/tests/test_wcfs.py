"""wcfs_rs against the FUSE test server: every read below is a real page
fault on a FUSE file, through a zero-copy NumPy view of a Mapping."""

import ctypes
import errno
import os
import struct
import threading
import time

import numpy as np
import pytest

import wcfs_rs
from conftest import F, PAGE
from helpers import view, tag, tags, open_mapping, p64, head_file

def test_reference_scenario(srv, w):
    """PROTOCOL.md section 7, every step, through NumPy views."""
    srv.commit({(F, 0): b"", (F, 1): b""})
    at1 = srv.commit({(F, 2): b"c1", (F, 3): b"d1"})
    at2 = srv.commit({(F, 2): b"c2"})

    # 1.
    conn = w.connect(at1)
    assert conn.at == at1
    fh = conn.open(F)
    assert fh.blksize == PAGE and fh.oid == F
    m = fh.mmap(2, 3)
    assert (m.blk_start, m.blk_stop, len(m)) == (2, 5, 3 * PAGE)
    a = view(m)
    assert fh.pinned() == {}
    # 2. reading #2 faults into head, which has c2: our own connection is pinned first.
    assert tag(a, m, 2) == "c1"
    assert fh.pinned() == {2: at1}
    assert tags(a, m, range(2, 5)) == ["c1", "d1", ""]
    assert not a[2 * PAGE :].any()
    # 3.
    at3 = srv.commit({(F, 3): b"d3", (F, 4): b"e3"})
    assert tags(a, m, range(2, 5)) == ["c1", "d1", ""]
    assert fh.pinned() == {2: at1, 3: at1}
    # 4. the same NumPy array shows the data as of the new revision.
    conn.resync(at2)
    assert tags(a, m, range(2, 5)) == ["c2", "d1", ""]
    # 5.
    conn.resync(at3)
    assert tags(a, m, range(2, 5)) == ["c2", "d3", "e3"]
    assert fh.pinned() == {}
    # 6.
    past = fh.mmap(10, 2)
    pa = view(past)
    assert len(pa) == 2 * PAGE and not pa.any()
    fh2 = conn.open(F)
    fh2.close()
    assert tags(a, m, range(2, 5)) == ["c2", "d3", "e3"]
    # 7.
    with pytest.raises(wcfs_rs.GoingBackError, match="going back in history is forbidden"):
        conn.resync(at2)
    with pytest.raises(wcfs_rs.ConnDownError, match="connection closed$"):
        conn.open(F)
    assert m.faulting and past.faulting
    assert not m.exposed and not past.exposed
    with pytest.raises(wcfs_rs.ConnDownError):
        memoryview(m)
    del a, pa
    m.unmap()
    past.unmap()
    fh.close()
    conn.close()
    assert srv.failures() == []


def test_ids_int_hex_and_p64(srv, w):
    """Oids and tids as int, 16 hex digits and 8 big-endian bytes; ints back."""
    at1 = srv.commit({(F, 0): b"one"})
    at2 = srv.commit({(F, 0): b"two"})
    assert w.head_at() == at2 and isinstance(w.head_at(), int)
    for at_form, oid_form in [(at1, F), (f"{at1:016x}", f"{F:016x}"), (p64(at1), p64(F))]:
        with w.connect(at_form) as conn:
            assert conn.at == at1 and isinstance(conn.at, int)
            with conn.open(oid_form) as fh:
                assert fh.oid == F
                with fh.mmap(0, 1) as m:
                    assert tag(view(m), m, 0) == "one"
                conn.resync(f"{at2:016x}")
                assert conn.at == at2
                conn.resync(p64(at2))
                with fh.mmap(0, 1) as m:
                    assert tag(view(m), m, 0) == "two"
    with w.connect(at1) as conn:
        for bad in ["1", "000000000000000g", f"0x{at1:014x}", "0" * 17]:
            with pytest.raises(ValueError, match="16 hex digits"):
                conn.open(bad)
        with pytest.raises(ValueError, match="want 8"):
            conn.open(b"\0" * 7)
        with pytest.raises(ValueError, match="out of range"):
            conn.open(-1)
        with pytest.raises(ValueError, match="out of range"):
            conn.open(2**64)
        for bad in [1.0, None, True, [1]]:
            with pytest.raises(TypeError):
                conn.open(bad)
        assert conn.at == at1  # none of these reached the connection


def test_isolation_while_another_thread_commits_and_reads_head(srv, w):
    """Two connections at two revisions keep their data while another thread
    commits and reads head through NumPy (each of its reads pins both)."""
    nblk = 8
    at1 = srv.commit({(F, b): f"a{b}".encode() for b in range(nblk)})
    at2 = srv.commit({(F, b): f"b{b}".encode() for b in range(0, nblk, 2)})
    want1 = [f"a{b}" for b in range(nblk)]
    want2 = [f"b{b}" if b % 2 == 0 else f"a{b}" for b in range(nblk)]
    c1, c2 = w.connect(at1), w.connect(at2)
    f1, f2 = c1.open(F), c2.open(F)
    m1, m2 = f1.mmap(0, nblk), f2.mmap(0, nblk)
    a1, a2 = view(m1), view(m2)
    assert tags(a1, m1, range(nblk)) == want1
    assert tags(a2, m2, range(nblk)) == want2

    errors = []
    done = threading.Event()

    def committer():
        try:
            head = np.memmap(head_file(srv, F), dtype=np.uint8, mode="r")
            for n in range(60):
                blk = n % nblk
                srv.commit({(F, blk): f"h{n}".encode()})
                # The read waits for the server to pin c1 and c2 (this process).
                got = bytes(head[blk * PAGE : blk * PAGE + 8]).rstrip(b"\0").decode()
                if got != f"h{n}":
                    errors.append(f"head #{blk}: {got!r} after commit h{n}")
            del head
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))
        finally:
            done.set()

    t = threading.Thread(target=committer)
    t.start()
    checks = 0
    while not done.is_set() or checks == 0:
        assert tags(a1, m1, range(nblk)) == want1
        assert tags(a2, m2, range(nblk)) == want2
        checks += 1
    t.join()
    assert errors == []
    assert tags(a1, m1, range(nblk)) == want1
    assert tags(a2, m2, range(nblk)) == want2
    # every block changed since at1 (and at2) is pinned to the old data
    assert f1.pinned() == {b: at1 for b in range(nblk)}
    assert f2.pinned() == {b: (at2 if b % 2 == 0 else at1) for b in range(nblk)}
    assert checks > 0
    del a1, a2
    for x in (m1, m2, f1, f2, c1, c2):
        x.close()
    assert srv.failures() == []


def test_resync_forward_and_refusal_backward(srv, w):
    at1 = srv.commit({(F, 0): b"v1"})
    at2 = srv.commit({(F, 0): b"v2"})
    at3 = srv.commit({(F, 1): b"w3"})
    conn, fh, m = open_mapping(w, at1, 2)
    a = view(m)
    assert tags(a, m, range(2)) == ["v1", ""]
    conn.resync(at2)
    assert conn.at == at2
    assert tags(a, m, range(2)) == ["v2", ""]
    conn.resync(at3)
    assert tags(a, m, range(2)) == ["v2", "w3"]
    conn.resync(at3)  # to the same revision: nothing changes
    assert conn.at == at3 and tags(a, m, range(2)) == ["v2", "w3"]
    with pytest.raises(wcfs_rs.GoingBackError) as e:
        conn.resync(at1)
    assert isinstance(e.value, wcfs_rs.ConnDownError)
    assert "going back in history is forbidden" in str(e.value)
    assert e.value.context in str(e.value) and f"@{at3:016x}" in e.value.context
    assert "going back" in conn.down_reason
    # down: forward is refused too, and nothing of it can be lent again
    with pytest.raises(wcfs_rs.ConnDownError, match="connection closed"):
        conn.resync(at3)
    with pytest.raises(wcfs_rs.ConnDownError):
        view(m)
    del a
    m.unmap()
    fh.close()
    conn.close()


def test_buffer_error_with_live_exports(srv, w):
    """Like Python's mmap: no unmap or close under a lent buffer."""
    at = srv.commit({(F, 0): b"x" * 8, (F, 1): b"y"})
    conn, fh, m = open_mapping(w, at, 2)
    mv = memoryview(m)
    assert mv.readonly and mv.format == "B" and mv.nbytes == len(m) == 2 * PAGE
    assert m.exports == 1
    a = np.frombuffer(m, dtype=np.uint32)
    assert m.exports == 2
    assert a[0] == struct.unpack("<I", b"xxxx")[0] and len(a) == 2 * PAGE // 4
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1
    with pytest.raises(TypeError):
        mv[0] = 1
    for close in (m.unmap, m.close, fh.close, conn.close):
        with pytest.raises(BufferError, match="exported"):
            close()
    # nothing was closed: the memory still reads
    assert not m.closed and not fh.closed and not conn.closed and not m.faulting
    assert bytes(mv[:8]) == b"x" * 8 and bytes(mv[PAGE : PAGE + 1]) == b"y"
    mv.release()
    assert m.exports == 1
    del a
    assert m.exports == 0
    m.unmap()
    assert m.closed and m.faulting
    m.unmap()  # again: nothing
    with pytest.raises(ValueError, match="unmapped"):
        memoryview(m)
    # the context manager refuses too, and leaves the mapping usable
    m2 = fh.mmap(0, 1)
    with pytest.raises(BufferError):
        with m2:
            v = memoryview(m2)
    assert bytes(v[:1]) == b"x"
    v.release()
    with m2:
        pass
    assert m2.closed
    # a writable buffer is refused
    m3 = fh.mmap(0, 1)
    with pytest.raises(TypeError, match="not writable"):
        ctypes.c_char.from_buffer(m3)
    with pytest.raises(ValueError):
        np.frombuffer(m3, dtype=np.uint8).setflags(write=True)
    assert m3.exports == 0
    m3.unmap()
    fh.close()
    conn.close()


def test_conn_down_under_live_view(srv, w):
    """What remains after a forced shutdown: a view lent earlier faults.
    Every new access through the module raises first; the kernel shows the
    old view faults (EFAULT) without touching it from Python (a SIGSEGV)."""
    at1 = srv.commit({(F, 0): b"one"})
    at2 = srv.commit({(F, 0): b"two"})
    conn, fh, m = open_mapping(w, at2, 1)
    mv = memoryview(m)
    assert bytes(mv[:3]) == b"two"
    assert m.read(0, 3) == b"two" and m.read(1, 2) == b"wo"
    assert len(m.read()) == PAGE and m.read(PAGE - 2) == b"\0\0"
    with pytest.raises(wcfs_rs.Error, match="out of bounds"):
        m.read(PAGE - 2, 3)
    r, wr = os.pipe()
    try:
        assert os.write(wr, mv[:3]) == 3
        # resync back with a live view: the connection goes down; the error comes first.
        with pytest.raises(wcfs_rs.GoingBackError):
            conn.resync(at1)
        assert m.faulting
        with pytest.raises(wcfs_rs.ConnDownError, match="going back") as e:
            memoryview(m)
        assert e.value.context.startswith(f"wcfs {srv.mountpoint}: conn")
        with pytest.raises(wcfs_rs.ConnDownError):
            np.frombuffer(m, dtype=np.uint8)
        with pytest.raises(wcfs_rs.ConnDownError):
            m.read(0, 3)
        with pytest.raises(OSError) as e:
            os.write(wr, mv[:3])
        assert e.value.errno == errno.EFAULT
    finally:
        os.close(r)
        os.close(wr)
    mv.release()
    m.unmap()
    fh.close()
    conn.close()


def test_mark_dirty_keeps_pins_off_until_remap(srv, w):
    at1 = srv.commit({(F, 0): b"old0", (F, 1): b"old1"})
    srv.commit({(F, 0): b"new0", (F, 1): b"new1"})
    conn, fh, m = open_mapping(w, at1, 2)
    m.mark_dirty(0)
    # a read of head (another mapping of the same file) makes the server pin us
    head = np.memmap(head_file(srv, F), dtype=np.uint8, mode="r")
    assert bytes(head[:4]) == b"new0"
    assert bytes(head[PAGE : PAGE + 4]) == b"new1"
    del head
    assert fh.pinned() == {0: at1, 1: at1}
    a = view(m)
    # block 1 was remapped by its pin; block 0, marked dirty, was left alone
    assert tag(a, m, 1) == "old1"
    assert tag(a, m, 0) == "new0"
    m.remap_blk(0)
    assert tags(a, m, range(2)) == ["old0", "old1"]
    del a
    m.unmap()
    with pytest.raises(wcfs_rs.Error):
        m.remap_blk(0)
    fh.close()
    conn.close()


def test_readme_example(srv, w):
    """The README's Python example, as written there (two revisions compared)."""
    oid = F
    at_old = srv.commit({(F, b): np.full(PAGE // 8, b, np.float64).tobytes() for b in range(16)})
    srv.commit({(F, 3): np.full(PAGE // 8, -1.0).tobytes()})

    # --- as in README.md ---
    with w.connect(at_old) as old, w.connect(w.head_at()) as new:
        with old.open(oid) as f1, new.open(oid) as f2:
            with f1.mmap(0, 16) as m1, f2.mmap(0, 16) as m2:
                a1 = np.frombuffer(m1, dtype=np.float64)  # zero-copy, read-only
                a2 = np.frombuffer(m2, dtype=np.float64)
                changed = np.flatnonzero(a1 != a2)  # element indices
                del a1, a2  # release the views before the mappings unmap
    # ---
    per_blk = f1.blksize // 8
    assert changed.tolist() == list(range(3 * per_blk, 4 * per_blk))


def test_conn_stats(srv, w):
    """Conn.stats(): a pin to our connection, triggered by a head read of
    this process, counts once as a pin, an ack and a pin time."""
    at1 = srv.commit({(F, 0): b"a1", (F, 1): b"b1"})
    with w.connect(at1) as conn, conn.open(F) as fh, fh.mmap(0, 2) as m:
        s0 = conn.stats()
        assert set(s0) == {
            "pins", "unpins", "acks", "naks", "rev_opens", "rev_hits", "remaps", "resyncs", "dirty_kept", "pin_time_ns",
        }
        assert len(s0["pin_time_ns"]) == wcfs_rs.PIN_TIME_BUCKETS
        assert s0["pins"] == s0["acks"] == s0["naks"] == s0["resyncs"] == 0
        srv.commit({(F, 1): b"b2"})
        with open(head_file(srv, F), "rb") as f:
            f.seek(PAGE)
            assert f.read(2) == b"b2"  # the server pinned us first
        # The pin's time is recorded once its ack is written, which the
        # server may see (and answer our read) before the write returns.
        deadline = time.monotonic() + 5
        while sum(conn.stats()["pin_time_ns"]) == sum(s0["pin_time_ns"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        s1 = conn.stats()
        assert (s1["pins"], s1["acks"], s1["naks"]) == (1, 1, 0)
        assert sum(s1["pin_time_ns"]) == sum(s0["pin_time_ns"]) + 1
        assert s1["remaps"] >= s0["remaps"] + 1
        assert tags(view(m), m, [0, 1]) == ["a1", "b1"]
        conn.resync(srv.head())
        assert conn.stats()["resyncs"] == 1
    assert srv.failures() == []


# ---- join: mountpoints, autostart, refusals ----


def test_connect_with_tunables_and_conn_id(srv, w):
    """connect_with's max_pins_per_file bounds the pins a server can make a
    connection keep; Conn.id is the N of conn<N> in error contexts."""
    at1 = srv.commit({(F, 0): b"a0", (F, 1): b"a1"})
    srv.commit({(F, 0): b"b0", (F, 1): b"b1"})
    conn = w.connect_with(at1, rev_cache=1, max_pins_per_file=1)
    other = w.connect(at1)
    assert conn.id != other.id
    fh = conn.open(F)
    m = fh.mmap(0, 2)
    a = view(m)
    assert tag(a, m, 0) == "a0"  # the first pin is within the bound
    del a
    # The second pin is one too many: the connection goes down.
    head = np.memmap(head_file(srv, F), dtype=np.uint8, mode="r")
    assert bytes(head[PAGE : PAGE + 2]) == b"b1"
    del head
    assert "too many pins" in conn.down_reason
    with pytest.raises(wcfs_rs.ConnDownError) as e:
        fh.mmap(0, 1)
    assert f"conn{conn.id} @" in e.value.context
    with pytest.raises(TypeError):
        w.connect_with(at1, 8)  # the tunables are keyword-only
    m.unmap()
    fh.close()
    conn.close()
    other.close()
