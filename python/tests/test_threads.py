"""Threads and the GIL: calls that wait release it, self pins while
blocked, and interpreter exit with a connection open."""

import sys
import threading
import time

import numpy as np
import pytest

from conftest import F
from helpers import view, tag, tags, open_mapping, head_file, tid_step, Watchdog

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
