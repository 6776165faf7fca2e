"""wcfs_rs.wendelin: wcfs-rs in the shape of wendelin.core's `_wcfs`.

wendelin.core's Python code and tests talk to their WCFS client through
one module, `wendelin.wcfs.client._wcfs`. This module offers the same
classes, with the same names, attributes and semantics, over wcfs-rs, so
that such code runs with nothing changed but which classes it is handed:

    PyWCFS      .mountpoint (settable str), .connect(at) -> PyConn
    PyConn      .at() -> p64, .open(foid) -> PyFileH, .resync(at), .close(), .wc
    PyFileH     .blksize, .mmap(blk_start, blk_len) -> PyMapping, .close(), .pinned
    PyMapping   .blk_start, .blk_stop, .fileh, .mem, .unmap()
    PyWatchLink(wc)  .sendReq(ctx, req), .recvReq(ctx) -> PinReq | None,
                .replyReq(ctx, req, reply), .closeWrite(), .close(), .fatalv, .rx_eof
    PinReq      .foid (p64), .blk, .at (p64, None for @head), .msg

Revisions and oids are ZODB's 8-byte big-endian `bytes` (`p64`; any
`bytes` subclass). `PyConn.open` of a file already open returns the same
`PyFileH`, counting the opens; the file closes with its last `close`.

`PyMapping.mem` (also `memoryview(m)`) is a read-only `memoryview` of the
mapping's memory that is not tracked: it keeps the mapping alive but never
blocks `unmap()`, it may be taken and kept whatever happens to the mapping, and
reading it after the file or connection was closed, after the connection
went down, or in a fork child faults (SIGSEGV). In a fork child, `close()`
and `unmap()` of what it inherited do nothing (the child has detached).

Errors: when pygolang (`golang`) is importable, every error is a pygolang
`error` (`except golang.error`) with the client's text; without it,
`wcfs_rs.Error` (and its subclasses) as in the Pythonic API. A `ctx` is
`None` or a pygolang context: its deadline and cancellation end a waiting
call promptly, with the context's error. Texts from the link (replies,
`PinReq.msg`, `fatalv`) are `golang.b(...)` with pygolang, `str` without.

pygolang is never required: `import wcfs_rs.wendelin` works without it.
"""

import os
import struct
import sys
import threading
import time

_raw = sys.modules["wcfs_rs._wendelin"]

try:
    import golang as _golang
    from golang import context as _gcontext
    from golang import errors as _gerrors
except ImportError:  # pygolang is optional
    _golang = None

__all__ = [
    "PyWCFS",
    "PyConn",
    "PyFileH",
    "PyMapping",
    "PyWatchLink",
    "PinReq",
    "PyPinReq",
    "have_pygolang",
]

#: Whether errors are pygolang errors (pygolang was importable).
have_pygolang = _golang is not None

# How often a call waiting on the watch link looks at its context: the
# bound on how late a cancellation is noticed.
_CTX_SLICE = 0.01


def _p64(v):
    return struct.pack(">Q", v)


def _u64(v, what):
    if not isinstance(v, bytes) or len(v) != 8:
        raise TypeError("%s: want 8 bytes (p64), got %r" % (what, v))
    return struct.unpack(">Q", v)[0]


def _text(v, what):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, str):
        return v
    raise TypeError("%s: want str or bytes, got %r" % (what, v))


def _out(s):
    return _golang.b(s) if _golang is not None else s


def _error(text):
    """The error of this layer for `text`."""
    if _golang is not None:
        return _gerrors.New(text)
    return _raw.Error(text)


def _call(f, *args):
    """Calls the client; its error becomes this layer's."""
    try:
        return f(*args)
    except _raw.Error as e:
        _reraise(e)


def _reraise(e):
    """Raises client error `e` as this layer's error."""
    if _golang is None:
        raise e
    raise _gerrors.New(str(e)) from None


def _in_fork_child(pid):
    return os.getpid() != pid


def _wait(ctx, call):
    """Runs `call(timeout)` until it returns, honouring `ctx`: its deadline
    and cancellation end the wait with the context's error."""
    if ctx is None:
        return _call(call, None)
    deadline = ctx.deadline()
    while True:
        err = ctx.err()
        if err is not None:
            raise err
        slice_ = _CTX_SLICE
        if deadline is not None:
            left = deadline - time.time()
            if left <= 0:
                raise ctx.err() or _gcontext.deadlineExceeded
            slice_ = min(slice_, left)
        try:
            return call(slice_)
        except _raw.Timeout:
            continue  # the slice ended: look at the context again
        except _raw.Error as e:
            _reraise(e)


class PyWCFS(object):
    """A WCFS server, by its mountpoint.

    Subclasses may define their own `__init__` that calls nothing of this
    one, and set `mountpoint` afterwards. Holds no descriptor inside the
    mount while none of its connections or watch links is live.
    """

    _mountpoint = None
    _rawwc = None

    def __init__(self, mountpoint=None):
        if mountpoint is not None:
            self.mountpoint = mountpoint

    @property
    def mountpoint(self):
        return self._mountpoint

    @mountpoint.setter
    def mountpoint(self, v):
        v = os.fsdecode(v)
        if v != self._mountpoint:
            self._mountpoint = v
            self._rawwc = None

    def _wc(self):
        if self._mountpoint is None:
            raise _error("wcfs: mountpoint not set")
        w = self._rawwc
        if w is None:
            w = self._rawwc = _call(_raw.Wcfs, self._mountpoint)
        return w

    def connect(self, at):
        """A connection viewing the database as of `at` (p64)."""
        at = _u64(at, "at")
        return PyConn._new(self, _call(self._wc().connect, at))


class PyConn(object):
    """A view of the database as of `at()`."""

    def __init__(self, *args, **kw):
        raise TypeError("PyConn is made by PyWCFS.connect")

    @classmethod
    def _new(cls, wc, raw):
        c = cls.__new__(cls)
        c._wc_ = wc
        c._raw = raw
        c._pid = os.getpid()
        c._lock = threading.Lock()
        c._files = {}  # oid -> PyFileH open through this connection
        return c

    @property
    def wc(self):
        """The PyWCFS this connection came from."""
        return self._wc_

    def at(self):
        return _p64(self._raw.at())

    def open(self, foid):
        """The open file `foid`: the same PyFileH while it is open."""
        oid = _u64(foid, "foid")
        with self._lock:
            fh = self._files.get(oid)
            if fh is not None:
                _call(self._raw.check_open, oid)
                fh._nopen += 1
                return fh
            fh = PyFileH._new(self, oid, _call(self._raw.open, oid))
            self._files[oid] = fh
            return fh

    def resync(self, at):
        _call(self._raw.resync, _u64(at, "at"))

    def close(self):
        """Closes the connection and every file of it: their mappings fault."""
        if _in_fork_child(self._pid):
            return
        try:
            _call(self._raw.close)
        finally:
            with self._lock:
                files, self._files = list(self._files.values()), {}
            for fh in files:
                fh._let_go()

    def __repr__(self):
        return "<PyConn conn%d @%016x>" % (self._raw.id(), self._raw.at())


class PyFileH(object):
    """An open bigfile of a connection."""

    def __init__(self, *args, **kw):
        raise TypeError("PyFileH is made by PyConn.open")

    @classmethod
    def _new(cls, conn, oid, raw):
        f = cls.__new__(cls)
        f._conn = conn
        f._foid = oid
        f._raw = raw
        f._nopen = 1
        return f

    @property
    def blksize(self):
        return self._raw.blksize

    @property
    def pinned(self):
        """{blk: rev (p64)} of the pins in force."""
        return {blk: _p64(rev) for blk, rev in self._raw.pinned().items()}

    def mmap(self, blk_start, blk_len):
        """Maps blocks [blk_start, blk_start + blk_len) as of the connection's at."""
        if blk_start < 0 or blk_len < 0:
            raise _error("mmap #%d+%d: negative block" % (blk_start, blk_len))
        return PyMapping._new(self, blk_start, blk_len)

    def close(self):
        """One close per open; the last one closes the file (its mappings fault)."""
        conn = self._conn
        if _in_fork_child(conn._pid):
            return
        with conn._lock:
            if self._nopen == 0:
                return
            self._nopen -= 1
            if self._nopen > 0:
                return
            if conn._files.get(self._foid) is self:
                del conn._files[self._foid]
        _call(self._raw.close)

    def _let_go(self):
        """The connection closed: so is this file, for every opener."""
        self._nopen = 0
        try:
            self._raw.close()
        except _raw.Error:
            pass  # the connection's close said what there was to say


class PyMapping(_raw.Mapping):
    """A mapping of blocks of a file, with its memory as `mem`; a buffer
    exporter too (`memoryview(m)` is `m.mem`)."""

    @classmethod
    def _new(cls, fileh, blk_start, blk_len):
        m = _call(cls.__new__, cls, fileh._raw, blk_start, blk_len)
        m.fileh = fileh
        m._pid = os.getpid()
        return m

    @property
    def mem(self):
        """Read-only memoryview of the mapping, not tracked (see the module):
        it keeps the mapping alive, never blocks `unmap()`."""
        return memoryview(self)

    def unmap(self):
        """Releases the memory (also done when the object is collected); twice is fine."""
        if _in_fork_child(self._pid):
            return
        _call(super().unmap)


class PinReq(object):
    """A request of the server on a watch link: pin `blk` of `foid` to `at`."""

    def __init__(self, *args, **kw):
        raise TypeError("PinReq is made by PyWatchLink.recvReq")

    @classmethod
    def _new(cls, stream, oid, blk, at, msg):
        r = cls.__new__(cls)
        r._stream = stream
        r.foid = _p64(oid)
        r.blk = blk
        r.at = None if at is None else _p64(at)
        r.msg = _out(msg)
        return r

    def __repr__(self):
        return "<PinReq %d %s>" % (self._stream, self.msg)


PyPinReq = PinReq  # the name `_wcfs` gives it


class _EofEvent(object):
    """`rx_eof` without pygolang: ready once the link has ended."""

    def __init__(self, link):
        self._link = link

    def ready(self):
        return self._link.wait_ended(0)

    def wait(self, timeout=None):
        """True once the link has ended; False if `timeout` passed first."""
        return self._link.wait_ended(timeout)

    def recv(self):
        self._link.wait_ended(None)


class PyWatchLink(object):
    """A `head/watch` link of the caller's own, spoken line by line."""

    def __init__(self, wc):
        self._raw = _call(wc._wc().open_watch)
        self._pid = os.getpid()
        self._eof = None
        self._eof_lock = threading.Lock()

    def sendReq(self, ctx, req):
        """Sends `req` (any text) on a new stream; returns the server's reply."""
        stream = _call(self._raw.start_req, _text(req, "req"))
        try:
            reply = _wait(ctx, lambda t: self._raw.wait_reply(stream, t))
        finally:
            self._raw.abandon_req(stream)
        return _out(reply)

    def recvReq(self, ctx):
        """The next request of the server (a PinReq), or None once the link ended."""
        r = _wait(ctx, self._raw.recv_req)
        return None if r is None else PinReq._new(*r)

    def replyReq(self, ctx, req, reply):
        """Replies `reply` (e.g. b"ack") to `req`, once."""
        if ctx is not None and ctx.err() is not None:
            raise ctx.err()
        _call(self._raw.reply_req, req._stream, _text(reply, "reply"))

    def closeWrite(self):
        """Says bye: the server then ends the link."""
        _call(self._raw.close_write)

    def close(self):
        """Says bye unless said, waits for the link's end, lets go of it."""
        if _in_fork_child(self._pid):
            return
        _call(self._raw.close)

    @property
    def fatalv(self):
        """The server's fatal messages, in order."""
        return [_out(t) for t in self._raw.fatals()]

    @property
    def rx_eof(self):
        """Ready at the link's end: a pygolang channel closed then (with
        pygolang), else an object with `wait(timeout)`, `ready()`, `recv()`."""
        with self._eof_lock:
            if self._eof is None:
                if _golang is None:
                    self._eof = _EofEvent(self._raw)
                else:
                    ch = _golang.chan()
                    raw = self._raw

                    def close_at_eof():
                        raw.wait_ended(None)
                        ch.close()

                    threading.Thread(target=close_at_eof, daemon=True).start()
                    self._eof = ch
            return self._eof


def _tpywlinkwrite(wlink, pkt):
    """Writes `pkt` to the link as it is (for tests: frames no request makes)."""
    if isinstance(pkt, str):
        pkt = pkt.encode("utf-8")
    _call(wlink._raw.write_raw, pkt)
