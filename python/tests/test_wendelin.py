"""wcfs_rs.wendelin, the `_wcfs`-shaped layer, against the FUSE test server.

Run twice by test.sh: with pygolang installed (errors are `golang.error`,
contexts are pygolang's) and without it (errors are `wcfs_rs.Error`, a
context is any object with `deadline()` and `err()`).
`$WCFS_EXPECT_PYGOLANG` (1 or 0) says which run this is, and is checked.
"""

import errno
import gc
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import wcfs_rs
from wcfs_rs import wendelin
from conftest import F, G, PAGE

try:
    import golang
    from golang import context
except ImportError:
    golang = None

ERR = golang.error if golang is not None else wcfs_rs.Error


def p64(v):
    return struct.pack(">Q", v)


class bytes_sub(bytes):
    """A bytes subclass, as ZODB and pygolang hand around."""


class WCFS(wendelin.PyWCFS):
    """A subclass with an `__init__` of its own, as wendelin.core's wcfs.WCFS."""

    def __init__(self, mountpoint, tag):
        self.tag = tag
        self.mountpoint = mountpoint


@pytest.fixture
def wc(srv):
    return WCFS(srv.mountpoint, "t")


def faults(mem, off=0):
    """Whether reading `mem[off]` faults, asked of the kernel (EFAULT)
    instead of touching it from Python (SIGSEGV)."""
    r, w = os.pipe()
    try:
        os.write(w, mem[off : off + 1])
        return False
    except OSError as e:
        assert e.errno == errno.EFAULT, e
        return True
    finally:
        os.close(r)
        os.close(w)


def blk(m, b):
    """The text at the start of block `b` of mapping `m`, through `mem`."""
    off = (b - m.blk_start) * m.fileh.blksize
    return bytes(m.mem[off : off + 8]).rstrip(b"\0").decode()


def read_head(srv, oid, b):
    """Reads block `b` of head as another process would (the server pins
    only blocks it served)."""
    fd = os.open(os.path.join(srv.mountpoint, "head", "bigfile", "%016x" % oid), os.O_RDONLY)
    try:
        return os.pread(fd, 8, b * PAGE)
    finally:
        os.close(fd)


class FakeCtx:
    """A context without pygolang: `deadline()` (time.time() based) and `err()`."""

    def __init__(self, timeout=None):
        self._deadline = None if timeout is None else time.time() + timeout
        self.cancelled = False

    def deadline(self):
        return self._deadline

    def err(self):
        if self.cancelled:
            return RuntimeError("context canceled")
        if self._deadline is not None and time.time() >= self._deadline:
            return TimeoutError("deadline exceeded")
        return None


def with_timeout(t):
    if golang is not None:
        return context.with_timeout(context.background(), t)
    ctx = FakeCtx(t)
    return ctx, lambda: None


def with_cancel():
    if golang is not None:
        return context.with_cancel(context.background())
    ctx = FakeCtx()
    return ctx, lambda: setattr(ctx, "cancelled", True)


def test_the_run_has_the_pygolang_it_expects():
    want = os.environ.get("WCFS_EXPECT_PYGOLANG")
    if want is None:
        pytest.skip("$WCFS_EXPECT_PYGOLANG not set (test.sh sets it)")
    assert wendelin.have_pygolang == (want == "1")
    assert wendelin.have_pygolang == (golang is not None)


def test_subclass_views_pins_resync_and_going_back(srv, wc):
    at0 = srv.commit({(F, 0): b"a0"})
    at1 = srv.commit({(F, 2): b"c1", (F, 3): b"d1"})
    at2 = srv.commit({(F, 2): b"c2"})
    assert wc.tag == "t" and wc.mountpoint == srv.mountpoint
    conn = wc.connect(bytes_sub(p64(at1)))
    assert conn.wc is wc and conn.at() == p64(at1)
    with pytest.raises(AttributeError):
        conn.wc = None
    fh = conn.open(bytes_sub(p64(F)))
    assert fh.blksize == PAGE
    m1 = fh.mmap(2, 3)  # one block past the end
    assert (m1.blk_start, m1.blk_stop, len(m1.mem)) == (2, 5, 3 * PAGE)
    assert m1.fileh is fh and m1.mem.readonly
    assert fh.pinned == {}
    assert [blk(m1, b) for b in (2, 3, 4)] == ["c1", "d1", ""]
    assert fh.pinned == {2: p64(at1)}
    assert bytes(memoryview(m1)[:2]) == b"c1", "a buffer exporter, as _wcfs's"

    # Another connection at head sees its own bytes meanwhile.
    new = wc.connect(p64(at2))
    fnew = new.open(p64(F))
    mnew = fnew.mmap(2, 3)
    assert [blk(mnew, b) for b in (2, 3, 4)] == ["c2", "d1", ""]
    assert fnew.pinned == {}

    at3 = srv.commit({(F, 3): b"d3", (F, 4): b"e3"})
    assert [blk(m1, b) for b in (2, 3, 4)] == ["c1", "d1", ""]
    assert fh.pinned == {2: p64(at1), 3: p64(at1)}
    assert [blk(mnew, b) for b in (2, 3, 4)] == ["c2", "d1", ""]
    assert fnew.pinned == {3: p64(at1)}  # the revision of its data as of at2

    conn.resync(p64(at2))
    assert conn.at() == p64(at2)
    assert [blk(m1, b) for b in (2, 3)] == ["c2", "d1"]
    assert fh.pinned[3] == p64(at1) and 2 not in fh.pinned
    conn.resync(p64(at3))
    assert [blk(m1, b) for b in (2, 3, 4)] == ["c2", "d3", "e3"]
    assert fh.pinned == {}

    # The same file again: the same handle, closed by its last close.
    fh2 = conn.open(p64(F))
    assert fh2 is fh
    m3 = fh2.mmap(2, 1)
    fh2.close()
    assert blk(m1, 2) == "c2" and blk(m3, 2) == "c2"

    with pytest.raises(ERR, match=": going back in history is forbidden"):
        conn.resync(p64(at0))
    with pytest.raises(ERR, match=".*: connection closed"):
        conn.open(p64(F))
    assert faults(m1.mem) and faults(m3.mem)
    assert blk(mnew, 2) == "c2", "the other connection goes on"
    for m in (m1, m3, mnew):
        m.unmap()
        m.unmap()
    for f in (fh, fnew):
        f.close()
        f.close()
    conn.close()
    new.close()
    assert srv.failures() == []


def test_close_faults_mem_and_later_calls_say_so(srv, wc):
    at = srv.commit({(F, 1): b"b1", (G, 0): b"g0"})
    conn = wc.connect(p64(at))
    f1, f2 = conn.open(p64(F)), conn.open(p64(G))
    m11, m12, m21 = f1.mmap(0, 2), f1.mmap(1, 1), f2.mmap(0, 1)
    assert blk(m11, 1) == "b1" and blk(m12, 1) == "b1" and blk(m21, 0) == "g0"
    mem = m11.mem  # taken and kept: not tracked

    kept = f2.mmap(0, 1).mem  # the mapping object is gone at once: its mem keeps it
    gc.collect()
    assert bytes(kept[:2]) == b"g0" and not faults(kept)

    f1.close()
    assert faults(mem) and faults(mem, PAGE) and faults(m12.mem)
    assert blk(m21, 0) == "g0"
    with pytest.raises(ERR, match=".*: file already closed"):
        f1.mmap(0, 1)
    f1_ = conn.open(p64(F))
    assert f1_ is not f1
    m11_ = f1_.mmap(0, 2)
    assert blk(m11_, 1) == "b1" and faults(mem)

    conn.close()
    assert faults(m11_.mem) and faults(m21.mem) and faults(kept)
    with pytest.raises(ERR, match=".*: connection closed"):
        conn.open(p64(F))
    with pytest.raises(ERR, match=".*: connection closed"):
        conn.resync(p64(at))
    with pytest.raises(ERR, match=".*: file already closed"):
        f2.mmap(0, 1)  # not closed by the caller: by its connection
    for x in (m11, m12, m21, m11_):
        x.unmap()
    f1.close()
    f2.close()
    f1_.close()
    conn.close()


def test_reading_mem_after_close_is_a_sigsegv(srv):
    """The real fault, in a process of its own."""
    at = srv.commit({(F, 0): b"x0"})
    code = textwrap.dedent(
        """
        import struct, sys
        from wcfs_rs import wendelin
        w = wendelin.PyWCFS(sys.argv[1])
        conn = w.connect(struct.pack(">Q", int(sys.argv[2])))
        m = conn.open(struct.pack(">Q", 1)).mmap(0, 1)
        print(bytes(m.mem[:2]).decode(), flush=True)
        conn.close()
        m.mem[0]
        print("not faulted", flush=True)
        """
    )
    p = subprocess.run(
        [sys.executable, "-c", code, srv.mountpoint, str(at)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.stdout == "x0\n", p.stderr
    assert p.returncode == -signal.SIGSEGV, (p.returncode, p.stderr)


def test_fork_child_faults_and_detaches_parent_goes_on(srv, wc):
    at1 = srv.commit({(F, 1): b"b1", (F, 3): b"d1"})
    conn = wc.connect(p64(at1))
    fh = conn.open(p64(F))
    m = fh.mmap(0, 4)
    assert [blk(m, b) for b in range(4)] == ["", "b1", "", "d1"]
    wl = wendelin.PyWatchLink(wc)
    pid = os.fork()
    if pid == 0:  # report by exit status only, never return into pytest
        code = 1
        try:
            if all(faults(m.mem, b * PAGE) for b in range(4)):
                code = 2
                m.unmap()  # nothing, silently
                fh.close()
                conn.close()
                wl.close()  # and no bye on the parent's link
                gc.collect()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert wl.sendReq(None, "watch %016x -" % F) in ("ok", b"ok"), "the parent's link goes on"
    wl.close()
    at2 = srv.commit({(F, 1): b"b2"})
    assert [blk(m, b) for b in range(4)] == ["", "b1", "", "d1"]
    assert fh.pinned == {1: p64(at1)}
    conn.resync(p64(at2))
    assert [blk(m, b) for b in range(4)] == ["", "b2", "", "d1"]
    assert fh.pinned == {}
    m.unmap()
    fh.close()
    conn.close()
    assert srv.failures() == []


def answer_pins(wl, n, reply=b"ack"):
    """Receives `n` server requests on `wl` and replies to each; returns them."""
    got = []
    for _ in range(n):
        req = wl.recvReq(None)
        assert req is not None
        wl.replyReq(None, req, reply)
        got.append(req)
    return got


def test_watch_link_setup_pins_errors_fatal_and_eof(srv, wc):
    at1 = srv.commit({(F, 0): b"a0", (F, 1): b"a1"})
    at2 = srv.commit({(F, 1): b"b1"})
    assert read_head(srv, F, 1).rstrip(b"\0") == b"b1"
    wl = wendelin.PyWatchLink(wc)
    assert wl.fatalv == []
    replies = []
    t = threading.Thread(target=lambda: replies.append(wl.sendReq(None, "watch %016x @%016x" % (F, at1))))
    t.start()
    (req,) = answer_pins(wl, 1)
    t.join(10)
    assert replies == ["ok"] or replies == [b"ok"]
    assert (req.foid, req.blk, req.at) == (p64(F), 1, p64(at1))
    assert req.msg in ("pin %016x #1 @%016x" % (F, at1), b"pin %016x #1 @%016x" % (F, at1))
    with pytest.raises(ERR, match="no server request awaits a reply"):
        wl.replyReq(None, req, b"ack")  # answered once

    # Moving forward unpins: the request's `at` is None for @head.
    t = threading.Thread(target=lambda: replies.append(wl.sendReq(None, b"watch %016x @%016x" % (F, at2))))
    t.start()
    (unpin,) = answer_pins(wl, 1)
    t.join(10)
    assert (unpin.blk, unpin.at) == (1, None)

    reply = wl.sendReq(None, "watch 01 @%016x" % at1)
    assert reply in ("error bad watch: invalid oid", b"error bad watch: invalid oid")
    wendelin._tpywlinkwrite(wl, b"hello\n")
    eof = wl.rx_eof
    if golang is not None:
        eof.recv()  # a channel, closed at EOF
    else:
        assert eof.wait(10) and eof.ready()
    assert wl.recvReq(None) is None
    assert wl.fatalv in (['invalid frame: "hello\\n"'], [b'invalid frame: "hello\\n"'])
    with pytest.raises(ERR, match="link is down"):
        wl.sendReq(None, "watch %016x -" % F)
    wl.close()
    wl.close()


class WatchLink(wendelin.PyWatchLink):
    """A subclass, as wendelin.core's tests make one."""

    def __init__(self, wc):
        super().__init__(wc)
        self.sent = 0

    def sendReq(self, ctx, req):
        self.sent += 1
        return super().sendReq(ctx, req)


def test_watch_link_bye_then_eof(srv, wc):
    srv.commit({(F, 0): b"a0"})
    wl = WatchLink(wc)
    assert wl.sendReq(None, bytes_sub(b"watch %016x -" % F)) in ("ok", b"ok")
    assert wl.sent == 1
    wl.closeWrite()
    assert wl.recvReq(None) is None
    eof = wl.rx_eof
    if golang is None:
        assert eof.ready()
    with pytest.raises(ERR, match="link is closed"):
        wl.sendReq(None, "watch %016x -" % F)
    wl.close()
    assert srv.failures() == []


def test_watch_link_ctx_deadline_and_cancellation(srv, wc):
    at = srv.commit({(F, 0): b"a0"})
    wl = wendelin.PyWatchLink(wc)
    # A watch in the future: the server answers once head reaches it.
    future = at + (1 << 40)
    ctx, cancel = with_timeout(0.2)
    t0 = time.monotonic()
    with pytest.raises(Exception) as e:
        wl.sendReq(ctx, "watch %016x @%016x" % (F, future))
    cancel()
    assert "deadline exceeded" in str(e.value)
    assert 0.15 < time.monotonic() - t0 < 5
    if golang is not None:
        assert isinstance(e.value, golang.error)

    ctx, cancel = with_cancel()
    threading.Timer(0.1, cancel).start()
    t0 = time.monotonic()
    with pytest.raises(Exception) as e:
        wl.recvReq(ctx)  # the server sends nothing
    assert "canceled" in str(e.value)
    assert time.monotonic() - t0 < 5
    # A context already cancelled: no wait at all.
    with pytest.raises(Exception):
        wl.recvReq(ctx)

    # The link goes on after both.
    assert wl.sendReq(None, "watch %016x -" % F) in ("ok", b"ok")
    wl.close()


def test_errors_are_this_runs_kind(srv, wc):
    at = srv.commit({(F, 0): b"a0"})
    conn = wc.connect(p64(at))
    conn.close()
    with pytest.raises(ERR) as e:
        conn.open(p64(F))
    assert str(e.value).endswith(": connection closed")
    assert str(e.value).startswith("wcfs %s: conn" % srv.mountpoint)
    if golang is None:
        assert isinstance(e.value, wcfs_rs.ConnDownError)
    else:
        assert not isinstance(e.value, wcfs_rs.Error)
    with pytest.raises(ERR, match="mountpoint not set"):
        wendelin.PyWCFS().connect(p64(at))
    with pytest.raises(TypeError):
        wc.connect(at)  # an int is not p64
    with pytest.raises(TypeError):
        wendelin.PyConn()


def held_inside(mnt):
    """Descriptors and mappings of this process inside `mnt`."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target == mnt or target.startswith(mnt + "/"):
            held.append(target)
    with open("/proc/self/maps") as f:
        held += [line for line in f if mnt in line]
    return held


def test_closed_handles_let_go_of_the_mount(srv, wc):
    """Both APIs: once everything is closed (the objects still alive), the
    process holds nothing inside the mount, and a plain unmount succeeds."""
    at = srv.commit({(F, 0): b"a0", (F, 1): b"a1"})
    conn = wc.connect(p64(at))
    fh = conn.open(p64(F))
    m = fh.mmap(0, 2)
    assert blk(m, 1) == "a1"
    wl = wendelin.PyWatchLink(wc)
    pw = wcfs_rs.WCFS(srv.mountpoint)
    pconn = pw.connect(at)
    pfh = pconn.open(F)
    pm = pfh.mmap(0, 2)
    assert pm.read(0, 2) == b"a0"
    assert held_inside(srv.mountpoint) != []

    m.unmap()
    fh.close()
    conn.close()
    wl.close()
    pm.unmap()
    pfh.close()
    pconn.close()
    assert held_inside(srv.mountpoint) == []
    assert wendelin.PyWCFS(srv.mountpoint)._wc().head_at() == at
    assert held_inside(srv.mountpoint) == []
    # Not lazy (no -z): fails with EBUSY while anything holds the mount.
    umount = ["fusermount3", "-u"] if shutil.which("fusermount3") else ["umount"]
    p = subprocess.run(umount + [srv.mountpoint], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert not srv.mounted()
    del m, fh, conn, wl, pm, pfh, pconn, pw


def test_stub_agrees_with_the_module():
    """stubs/wcfs_rs/wendelin.pyi names what the module has: its classes,
    and each one's public methods and properties both ways."""
    import ast
    import inspect

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stubs", "wcfs_rs", "wendelin.pyi")
    with open(path) as f:
        stub = ast.parse(f.read())
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")}
    public = {k for k in wendelin.__all__ if isinstance(getattr(wendelin, k), type)}
    assert set(classes) == public - {"PyPinReq"}
    assert wendelin.PyPinReq is wendelin.PinReq
    for name, c in classes.items():
        cls = getattr(wendelin, name)
        declared = {n.name for n in c.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
        annotated = {n.target.id for n in c.body if isinstance(n, ast.AnnAssign)}
        # methods and properties, inherited ones (from wcfs_rs._wendelin) too
        have = {k for k in dir(cls) if not k.startswith("_") and hasattr(inspect.getattr_static(cls, k), "__get__")}
        assert have == declared | (annotated & have), name
        assert declared <= have, name
