"""A connection at a revision keeps showing that revision's bytes while
another writer commits: the server pins the changed block to the
connection's revision, and we print the pins seen. With NumPy, zero-copy.

Runs the embedded WCFS test server (``wcfs-testserver``, the one the demo
runs) as a child and commits through its control channel (stdin)::

    cargo build --release -p wcfs-testkit --bin wcfs-testserver
    pip install ./python numpy    # or the wheel: see examples/README.md
    python examples/python/pins.py
"""

import os
import subprocess
import tempfile
import threading

import numpy
import wcfs_rs

F = 1  # the bigfile's oid


class Server:
    """The test server, in a process of its own, driven over stdin/stdout."""

    def __init__(self, mnt):
        binary = os.environ.get("WCFS_TESTSERVER", "target/release/wcfs-testserver")
        self.proc = subprocess.Popen(
            [binary, mnt, "--rmdir"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lock = threading.Lock()
        ready = self.proc.stdout.readline()  # "ready <head>" once mounted
        if not ready.startswith("ready "):
            raise RuntimeError("test server: %r" % ready)

    def commit(self, blk, text):
        """Commits text to block blk of bigfile F; the new revision (int)."""
        with self.lock:
            self.proc.stdin.write("commit %016x %d %s\n" % (F, blk, text))
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().split()
        if reply[:1] != ["ok"]:
            raise RuntimeError("commit: %r" % reply)
        return int(reply[1], 16)

    def quit(self):
        """Unmounts (EOF on the control channel) and waits for the exit."""
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise RuntimeError("test server exited with %d" % self.proc.returncode)
        self.proc.stdout.close()


def text(a):
    return a.tobytes().rstrip(b"\0").decode()


def main():
    mnt = tempfile.mkdtemp(prefix="wcfs-example-")
    srv = Server(mnt)
    srv.commit(0, "apple")
    at1 = srv.commit(1, "banana")
    print("committed @%016x: #0 apple, #1 banana" % at1)

    # Connect at a revision, open the bigfile, map its blocks #0 and #1.
    w = wcfs_rs.WCFS(mnt)
    with w.connect(at1) as conn, conn.open(F) as f, f.mmap(0, 2) as m:
        bs = f.blksize
        a = numpy.frombuffer(m, dtype=numpy.uint8)  # no copy: the mapping itself
        print('conn @%016x sees #0 "%s", #1 "%s"' % (at1, text(a[:16]), text(a[bs : bs + 16])))

        # Another writer commits #1, then reads head as any other client
        # would: before that read returns, the server pins our block #1.
        seen = {}

        def writer():
            seen["at"] = srv.commit(1, "BLUEBERRY")
            with open("%s/head/bigfile/%016x" % (mnt, F), "rb") as h:
                h.seek(bs)
                seen["head"] = h.read(9).decode()

        t = threading.Thread(target=writer)
        t.start()
        # Meanwhile we keep reading: always the bytes as of at1.
        reads = 0
        while t.is_alive() or reads == 0:
            assert text(a[bs : bs + 16]) == "banana", "the mapping moved off @%016x" % at1
            reads += 1
        t.join()
        print('another writer committed @%016x: #1 BLUEBERRY; head shows "%s"' % (seen["at"], seen["head"]))
        print('conn @%016x still sees #1 "%s" (%d reads during the commit)' % (at1, text(a[bs : bs + 16]), reads))
        for blk, rev in f.pinned().items():
            print("pin seen: #%d -> @%016x" % (blk, rev))
        s = conn.stats()
        p50 = wcfs_rs.pin_time_quantile(s["pin_time_ns"], 0.5)
        print("%d pin(s) acked, pin handling median <= %s ns" % (s["acks"], p50))
        assert f.pinned() == {1: at1}, f.pinned()
        del a  # the buffer lent by m, before m unmaps
    srv.quit()
    print("unmounted", mnt)


if __name__ == "__main__":
    main()
