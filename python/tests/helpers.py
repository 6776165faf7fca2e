"""Helpers of the pytest suite: views of a mapping's bytes, a connection with
a mapping, ZODB's p64, head files, and a watchdog for tests that may hang."""

import faulthandler
import os
import struct
import sys

import numpy as np

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
