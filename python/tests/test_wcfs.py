"""wcfs_rs against the FUSE test server: every read below is a real page
fault on a FUSE file, through a zero-copy NumPy view of a Mapping."""

import ast
import builtins
import ctypes
import errno
import faulthandler
import gc
import os
import struct
import sys
import threading
import time

import numpy as np
import pytest

import wcfs_rs
from conftest import F, G, PAGE


def view(m):
    """A zero-copy NumPy view of a mapping's bytes."""
    return np.frombuffer(m, dtype=np.uint8)


def tag(a, m, blk):
    """The text at the start of block `blk` of mapping `m` ('' for zeros),
    read through its NumPy view `a`."""
    off = (blk - m.blk_start) * PAGE
    return bytes(a[off : off + 8]).rstrip(b"\0").decode()


def tags(a, m, blks):
    return [tag(a, m, b) for b in blks]


def open_mapping(w, at, nblk):
    """A connection at `at`, file F opened in it, its blocks [0, nblk) mapped."""
    conn = w.connect(at)
    fh = conn.open(F)
    return conn, fh, fh.mmap(0, nblk)


def p64(v):
    """ZODB.utils.p64."""
    return struct.pack(">Q", v)


def head_file(srv, oid):
    return os.path.join(srv.mountpoint, "head", "bigfile", f"{oid:016x}")


def tid_step(srv):
    """How far apart the server puts two commits (for revisions in the future)."""
    t1 = srv.commit({(G, 0): b"s1"})
    t2 = srv.commit({(G, 0): b"s2"})
    return t2 - t1


class Watchdog:
    """Ends the process (exit status 1) with every thread's traceback on the
    real stderr if a test hangs (for the GIL tests: a call that kept the GIL
    would hang, not fail). faulthandler's timer thread needs no GIL. The
    traceback shows under `--capture=sys` (as test.sh runs pytest); under
    pytest's default fd capture it is lost with the process, the exit status
    stays."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        faulthandler.dump_traceback_later(self.seconds, exit=True, file=sys.__stderr__)
        return self

    def __exit__(self, *exc):
        faulthandler.cancel_dump_traceback_later()
        return False


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


def test_every_exception_type(srv, tmp_path):
    at1 = srv.commit({(F, 0): b"a"})
    at2 = srv.commit({(F, 0): b"b"})
    for cls in (
        wcfs_rs.ConnDownError,
        wcfs_rs.FileClosedError,
        wcfs_rs.NotMountedError,
        wcfs_rs.BadZurlError,
        wcfs_rs.UntrustedError,
        wcfs_rs.ServerStartError,
    ):
        assert issubclass(cls, wcfs_rs.Error) and issubclass(cls, Exception)
    assert issubclass(wcfs_rs.GoingBackError, wcfs_rs.ConnDownError)

    # not mounted: a plain directory, a missing one, an unknown database
    # (with autostart off)
    for where in (tmp_path, tmp_path / "missing"):
        with pytest.raises(wcfs_rs.NotMountedError) as e:
            wcfs_rs.WCFS(str(where))
        assert e.value.context == f"wcfs {where}"
    with pytest.raises(wcfs_rs.NotMountedError, match="no wcfs server mounted for"):
        wcfs_rs.join(f"zeo://nowhere.example:{os.getpid()}", autostart=False)
    # a zurl of no known scheme names no mountpoint
    with pytest.raises(wcfs_rs.BadZurlError, match="can't normalize zurl with scheme"):
        wcfs_rs.join(f"test://nowhere/{os.getpid()}")

    w = wcfs_rs.WCFS(srv.mountpoint)
    conn, fh, m = open_mapping(w, at1, 1)

    # a plain Error (the base class only): a block outside the mapping
    with pytest.raises(wcfs_rs.Error) as e:
        m.mark_dirty(5)
    assert type(e.value) is wcfs_rs.Error
    assert str(e.value).startswith(e.value.context) and "mark_dirty #5" in e.value.context

    # file closed
    fh.close()
    assert fh.closed and m.faulting
    with pytest.raises(wcfs_rs.FileClosedError, match="file already closed") as e:
        fh.mmap(0, 1)
    assert e.value.context.endswith(f"f<{F:016x}>: mmap #0+1")
    with pytest.raises(wcfs_rs.FileClosedError):
        memoryview(m)
    fh.close()  # again: nothing

    # going back, then connection down
    conn.resync(at2)
    with pytest.raises(wcfs_rs.GoingBackError) as e:
        conn.resync(at1)
    assert f"conn" in e.value.context and "resync" in e.value.context
    with pytest.raises(wcfs_rs.ConnDownError) as e:
        conn.open(F)
    assert type(e.value) is wcfs_rs.ConnDownError
    conn.close()

    # closed by the caller
    conn, fh, m = open_mapping(w, at2, 1)
    conn.close()
    assert conn.closed and fh.closed and m.faulting
    for call in (lambda: conn.open(F), lambda: fh.mmap(0, 1), lambda: memoryview(m), lambda: conn.resync(at2)):
        with pytest.raises(wcfs_rs.ConnDownError):
            call()
    conn.close()  # again: nothing
    m.unmap()
    fh.close()


def test_join(joined_server):
    srv = joined_server
    at = srv.commit({(F, 0): b"joined"})
    w = wcfs_rs.join(srv.zurl)
    assert w.mountpoint == srv.mountpoint
    assert wcfs_rs.join(srv.zurl).mountpoint == srv.mountpoint
    assert w.head_at() == at
    with w.connect(at) as conn, conn.open(F) as fh, fh.mmap(0, 1) as m:
        assert tag(view(m), m, 0) == "joined"
    assert conn.closed and fh.closed and m.closed


def test_join_refuses_a_server_mounted_by_another_user(fuse):
    """The mountpoints' directory is world-writable: a server there mounted
    by another user than root or us is refused, before anything is read
    from it, with or without autostart."""
    from testserver import Server

    if os.geteuid() != 0:
        pytest.skip("mounting as another user needs root")
    nobody = 65534
    zurl = f"zeo://py-untrusted.example:{os.getpid()}"
    mnt = wcfs_rs.mountpoint_for(zurl)
    other = Server(mnt, zurl=zurl, mount_as=nobody)
    try:
        with open("/proc/self/mountinfo") as f:
            assert any(f" {mnt} " in l and f"user_id={nobody}," in l for l in f)
        for autostart in (False, True):
            with pytest.raises(wcfs_rs.UntrustedError, match=f"uid {nobody}") as e:
                wcfs_rs.join(zurl, autostart=autostart, server="/bin/false")
            assert e.value.context == f"wcfs {mnt}: join {zurl}"
            assert isinstance(e.value, wcfs_rs.Error)
    finally:
        other.stop()


def test_join_refuses_a_server_of_another_database(fuse):
    """A server mounted where `join(zurl)` looks, serving another database."""
    import hashlib

    from testserver import Server

    zurl = f"zeo://py-mismatch.example:{os.getpid()}"
    mnt = os.path.join("/dev/shm/wcfs", hashlib.sha1(zurl.encode()).hexdigest())
    assert wcfs_rs.mountpoint_for(zurl) == mnt
    other = Server(mnt, zurl=zurl + "-other")
    try:
        with pytest.raises(wcfs_rs.NotMountedError, match="serves") as e:
            wcfs_rs.join(zurl)
        assert e.value.context == f"wcfs {mnt}: join {zurl}"
    finally:
        other.stop()


def test_context_managers_close(srv, w):
    at = srv.commit({(F, 0): b"cm"})
    with w.connect(at) as conn:
        with conn.open(F) as fh:
            with fh.mmap(0, 1) as m:
                assert bytes(memoryview(m)[:2]) == b"cm"
            assert m.closed and not fh.closed
        assert fh.closed and not conn.closed
        # an exception inside passes through, and still closes
        with pytest.raises(KeyError):
            with conn.open(F) as fh2:
                raise KeyError("inside")
        assert fh2.closed
    assert conn.closed
    assert repr(conn).startswith("<wcfs_rs.Conn") and repr(w).startswith("<wcfs_rs.WCFS")


def test_handles_share_one_base(srv, w):
    """Conn, FileH and Mapping are wcfs_rs.Handle: one close(), closed and
    `with`. A file handle is closed with its connection; a mapping is not
    (it holds its memory until unmapped), though its memory faults."""
    at = srv.commit({(F, 0): b"h"})
    with pytest.raises(TypeError):
        wcfs_rs.Handle()
    assert not isinstance(w, wcfs_rs.Handle)
    conn, fh, m = open_mapping(w, at, 1)
    for h, cls in ((conn, wcfs_rs.Conn), (fh, wcfs_rs.FileH), (m, wcfs_rs.Mapping)):
        assert type(h) is cls and cls.__bases__ == (wcfs_rs.Handle,)
        assert h.__enter__() is h and not h.closed
        assert cls.close is wcfs_rs.Handle.close
    conn.close()
    assert conn.closed and fh.closed and not m.closed and m.faulting
    with pytest.raises(wcfs_rs.ConnDownError, match="connection closed$"):
        m.read()
    assert m.__exit__(None, None, None) is False
    assert m.closed
    with pytest.raises(ValueError, match="mapping unmapped$"):
        m.read()
    m.close()  # again: nothing
    conn.close()


def test_stub_agrees_with_the_module():
    """wcfs_rs.pyi names what the module has: each class with its bases at
    run time, each public method and property both ways, each function."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wcfs_rs.pyi")
    with open(path) as f:
        stub = ast.parse(f.read())
    typing_only = {"ConnStats"}  # a TypedDict: what Conn.stats() returns
    classes = [n for n in stub.body if isinstance(n, ast.ClassDef) and n.name not in typing_only]
    functions = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    types = {k for k, v in vars(wcfs_rs).items() if isinstance(v, type)}
    assert {c.name for c in classes} == types
    public = {k for k, v in vars(wcfs_rs).items() if callable(v) and not k.startswith("_")}
    assert functions == public - types
    for c in classes:
        cls = getattr(wcfs_rs, c.name)
        bases = tuple(getattr(wcfs_rs, b.id, None) or getattr(builtins, b.id) for b in c.bases)
        assert cls.__bases__ == (bases or (object,)), c.name
        # (annotated names, such as Error.context, are set on instances)
        declared = {n.name for n in c.body if isinstance(n, ast.FunctionDef)}
        public = {k for k in vars(cls) if not k.startswith("_")}
        assert {k for k in declared if not k.startswith("_")} == public, c.name
        for k in declared - public - {"__init__", "__buffer__"}:  # __new__; PEP 688 (3.12)
            assert k in vars(cls), (c.name, k)


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


def test_gil_released_while_connect_and_resync_wait(srv, w):
    """connect(at) and resync(at) wait for the server to have `at`; another
    Python thread commits it. Had the waiting call kept the GIL, the
    committing thread could never run (the watchdog would end the run)."""
    step = tid_step(srv)
    with Watchdog(60):
        for verb in ("connect", "resync"):
            head = srv.head()
            want = head + step
            conn0 = w.connect(head)
            out = {}

            def blocked():
                try:
                    if verb == "connect":
                        out["conn"] = w.connect(want)
                    else:
                        conn0.resync(want)
                        out["conn"] = conn0
                except Exception as e:
                    out["err"] = e

            t = threading.Thread(target=blocked)
            t.start()
            spins = 0
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                spins += 1
            assert t.is_alive(), f"{verb} did not wait for {want:016x}"
            assert "conn" not in out
            assert spins > 1000  # this thread ran while the other one waited
            at = srv.commit({(F, 0): verb.encode()})
            assert at == want
            t.join(30)
            assert not t.is_alive() and "err" not in out, out
            c = out["conn"]
            assert c.at == want
            with c.open(F) as fh, fh.mmap(0, 1) as m:
                assert tag(view(m), m, 0) == verb
            c.close()
            conn0.close()


@pytest.mark.parametrize("blocked_on", ["resync of the pinned connection", "connect of another"])
def test_self_pin_while_blocked(srv, w, blocked_on):
    """One thread waits in a call on our connection (GIL released) while
    another reads head through NumPy: that read makes the server pin our own
    connection (in this process) and must not wait for the blocked thread."""
    step = tid_step(srv)
    at1 = srv.commit({(F, 0): b"old", (F, 1): b"one"})
    conn, fh, m = open_mapping(w, at1, 2)
    a = view(m)
    assert tag(a, m, 1) == "one"  # block 0 untouched: it still maps head
    later = at1 + 2 * step  # two commits from now
    out = {}

    def blocked():
        try:
            if blocked_on.startswith("resync"):
                conn.resync(later)
            else:
                out["other"] = w.connect(later)
        except Exception as e:
            out["err"] = e

    with Watchdog(60):
        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.05)
        at2 = srv.commit({(F, 0): b"new"})
        head = np.memmap(head_file(srv, F), dtype=np.uint8, mode="r")
        assert bytes(head[:3]) == b"new"  # waited for our own connection's ack
        del head
        assert t.is_alive(), "the blocked call returned before its revision existed"
        assert fh.pinned() == {0: at1}
        assert tag(a, m, 0) == "old"
        at3 = srv.commit({(F, 1): b"two"})
        assert at3 == later and at2 < at3
        t.join(30)
        assert not t.is_alive() and "err" not in out, out
    if blocked_on.startswith("resync"):
        assert conn.at == later
        assert tags(a, m, range(2)) == ["new", "two"]
    else:
        assert conn.at == at1
        assert tags(a, m, range(2)) == ["old", "one"]
        out["other"].close()
    del a
    m.unmap()
    fh.close()
    conn.close()
    assert srv.failures() == []


def _counts():
    with open("/proc/self/maps") as f:
        maps = sum(1 for _ in f)
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "maps": maps,
        "threads": len(os.listdir("/proc/self/task")),
    }


def test_no_leak_after_1000_cycles(srv, w):
    """1,000 connect/open/mmap/read/unmap/close cycles (half closing
    explicitly, half by dropping the last reference) leave no descriptor,
    mapping or pin thread behind."""
    at1 = srv.commit({(F, b): f"r{b}".encode() for b in range(4)})
    srv.commit({(F, 0): b"later"})  # so that reads pin

    def cycle(i):
        if i % 2 == 0:
            with w.connect(at1) as conn, conn.open(F) as fh, fh.mmap(0, 4) as m:
                a = view(m)
                assert tag(a, m, i % 4) == f"r{i % 4}"
                del a
                # block 0 is pinned to at1: the new mapping remapped it
                assert conn.stats()["remaps"] >= 1
        else:
            conn = w.connect(at1)
            fh = conn.open(F)
            m = fh.mmap(i % 3, 2)
            assert tag(view(m), m, m.blk_start) == f"r{m.blk_start}"
            del conn, fh, m

    for i in range(20):
        cycle(i)
    gc.collect()
    before = _counts()
    for i in range(1000):
        cycle(i)
    gc.collect()
    # pin threads end once the server closes the link: give them a moment
    deadline = time.monotonic() + 10
    while _counts() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _counts() == before
    assert srv.failures() == []


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


def test_fork_child_is_refused_access(srv, w):
    """In a fork child the client detaches: its mappings fault there, and
    the module says so instead of lending the memory (the parent goes on)."""
    at = srv.commit({(F, 0): b"parent"})
    conn, fh, m = open_mapping(w, at, 1)
    assert m.read(0, 6) == b"parent"
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only, never return into pytest
        code = 10
        try:
            code = 11 if m.faulting else 12
            try:
                memoryview(m)
                code = 13
            except wcfs_rs.ConnDownError:
                pass
            try:
                m.read(0, 1)
                code = 14
            except wcfs_rs.ConnDownError:
                pass
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 11, status
    assert not m.faulting and m.read(0, 6) == b"parent"
    assert tag(view(m), m, 0) == "parent"
    m.unmap()
    fh.close()
    conn.close()


def test_conn_stats(srv, w):
    """Conn.stats(): a pin to our connection, triggered by a head read of
    this process, counts once as a pin, an ack and a pin time."""
    at1 = srv.commit({(F, 0): b"a1", (F, 1): b"b1"})
    with w.connect(at1) as conn, conn.open(F) as fh, fh.mmap(0, 2) as m:
        s0 = conn.stats()
        assert set(s0) == {
            "pins", "unpins", "acks", "naks", "rev_opens", "rev_hits", "remaps", "resyncs", "pin_time_ns",
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


def _mounted(mnt):
    with open("/proc/self/mountinfo") as f:
        return [l.split(" - ")[1].split()[:2] for l in f if l.split()[4] == str(mnt)]


def test_mountpoint_for():
    """The mountpoint of a zurl: sha1 of its normal form under /dev/shm/wcfs."""
    import hashlib

    z = "zeo://db.example:8100"
    assert wcfs_rs.mountpoint_for(z) == "/dev/shm/wcfs/" + hashlib.sha1(z.encode()).hexdigest()
    # clients of one NEO cluster share it, whatever their credentials,
    # client options or order of masters
    assert wcfs_rs.mountpoint_for("neos://db@m2,m1?ca=/a&cert=/b&key=/c") == wcfs_rs.mountpoint_for(
        "neo://db@m1,m2?compress=true&key=/z"
    )
    for bad in ("http://x", "test://x", ""):
        with pytest.raises(wcfs_rs.BadZurlError):
            wcfs_rs.mountpoint_for(bad)


def test_join_autostart(fuse, tmp_path):
    """join starts the test server where the zurl's mountpoint is, shares it
    within the process, and the server ends by itself (-autoexit) once its
    last client is gone."""
    from testserver import testserver_binary

    zurl = f"neo://py-auto@m2:1,m1:1?cert=/c&key=/k&compress=true"
    w = wcfs_rs.join(zurl, autostart=True, server=testserver_binary(), options=["--blksize", str(PAGE)], base=tmp_path)
    mnt = w.mountpoint
    assert os.path.dirname(mnt) == str(tmp_path.resolve())
    assert os.path.basename(mnt) == os.path.basename(wcfs_rs.mountpoint_for(zurl))
    assert _mounted(mnt) == [["fuse.wcfs", zurl]]
    # the same server for the same database, written differently, without autostart
    w2 = wcfs_rs.join("neos://py-auto@m1:1,m2:1", autostart=False, base=tmp_path)
    assert w2.mountpoint == mnt
    head = w.head_at()
    with w.connect(head) as conn:
        assert conn.at == head
    del w, w2, conn
    gc.collect()
    deadline = time.monotonic() + 20
    while (_mounted(mnt) or os.path.exists(mnt)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mounted(mnt) == [], "the autostarted server did not end"
    assert not os.path.exists(mnt), "the autostarted server left its mountpoint"


def test_join_refusals(fuse, tmp_path, monkeypatch):
    """What join refuses, with autostart: no executable, one that exits or
    cannot be spawned, a server of another database; and the environment."""
    from testserver import testserver_binary

    zurl = f"zeo://py-refuse.example:{os.getpid()}"
    monkeypatch.delenv("WCFS_SERVER", raising=False)
    monkeypatch.delenv("WENDELIN_CORE_WCFS_OPTIONS", raising=False)
    monkeypatch.delenv("WENDELIN_CORE_WCFS_AUTOSTART", raising=False)
    with pytest.raises(wcfs_rs.ServerStartError, match="none to start") as e:
        wcfs_rs.join(zurl, base=tmp_path)  # autostart: yes by default
    assert zurl in str(e.value)
    with pytest.raises(wcfs_rs.ServerStartError, match="/bin/false exited"):
        wcfs_rs.join(zurl, autostart=True, server="/bin/false", base=tmp_path)
    with pytest.raises(wcfs_rs.ServerStartError, match="spawn"):
        wcfs_rs.join(zurl, autostart=True, server=str(tmp_path / "no-such-wcfs"), base=tmp_path)
    # a server that serves another database is stopped and refused
    other = "zeo://py-refuse-other.example:1"
    with pytest.raises(wcfs_rs.NotMountedError, match="serves"):
        wcfs_rs.join(zurl, autostart=True, server=testserver_binary(), options=["--zurl", other], base=tmp_path)
    mnt = os.path.join(str(tmp_path.resolve()), os.path.basename(wcfs_rs.mountpoint_for(zurl)))
    assert _mounted(mnt) == []
    # $WENDELIN_CORE_WCFS_AUTOSTART decides when the caller does not
    monkeypatch.setenv("WCFS_SERVER", testserver_binary())
    monkeypatch.setenv("WENDELIN_CORE_WCFS_AUTOSTART", "no")
    with pytest.raises(wcfs_rs.NotMountedError, match="no wcfs server mounted for"):
        wcfs_rs.join(zurl, base=tmp_path)
    monkeypatch.setenv("WENDELIN_CORE_WCFS_AUTOSTART", "maybe")
    with pytest.raises(wcfs_rs.Error, match="WENDELIN_CORE_WCFS_AUTOSTART"):
        wcfs_rs.join(zurl, base=tmp_path)
    assert _mounted(mnt) == []


# ---- exit with connections open ----

_EXIT_CHILD = r"""
import os, sys, threading, time
import wcfs_rs

mnt, at, how = sys.argv[1], int(sys.argv[2], 16), sys.argv[3]

def hold(ready):
    w = wcfs_rs.WCFS(mnt)
    conn = w.connect(at)
    fh = conn.open(1)
    m = fh.mmap(0, 2)
    assert bytes(memoryview(m)[:2]) == b"a1"
    assert fh.pinned() == {0: at}
    ready.set()
    if how == "thread":
        time.sleep(3600)  # a daemon thread: never finalized, its frame keeps all
    return conn, fh, m

ready = threading.Event()
if how == "thread":
    threading.Thread(target=hold, args=(ready,), daemon=True).start()
    ready.wait()
else:
    kept = hold(ready)
print("ready", flush=True)
sys.exit(3)
"""


@pytest.mark.parametrize("how", ["global", "thread"])
def test_interpreter_exit_with_a_conn_open(srv, how):
    """The interpreter exits promptly with a connection open (held by a
    global, or by a daemon thread that is never finalized)."""
    import subprocess

    at1 = srv.commit({(F, 0): b"a1", (F, 1): b"b1"})
    srv.commit({(F, 0): b"a2"})
    p = subprocess.Popen(
        [sys.executable, "-c", _EXIT_CHILD, srv.mountpoint, f"{at1:016x}", how],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 15
    while p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # stuck in the kernel, the child ends once the server unmounts (teardown)
    assert p.returncode == 3, f"{how}: the interpreter did not exit in time"
    p.stdout.close()
    assert srv.failures() == []
