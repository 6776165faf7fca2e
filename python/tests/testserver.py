"""The FUSE test server (`wcfs-testserver`) in a process of its own, driven
over its stdin, for the pytest fixtures and for ../bench.py.

The server reads commands on its stdin and answers one line each on its
stdout (see `serve()` in tests/src/server.rs): `commitx <oid> <blk> <hex>...`
-> `ok <tid>`, `head` -> `ok <tid>`, `failures` -> `ok <n>\t<link> <why>...`,
`quit`. It must not share a process with the client that maps its files (a
page fault on a FUSE file and a server thread growing its heap would wait for
each other on the process's mmap lock), hence the subprocess.
"""

import os
import subprocess
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = os.sysconf("SC_PAGE_SIZE")


def fuse_unavailable():
    """Why FUSE cannot be used here, or None (as `fuse_available()` in Rust)."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    fusermount = any(
        os.path.exists(p)
        for p in ("/bin/fusermount3", "/usr/bin/fusermount3", "/bin/fusermount", "/usr/bin/fusermount")
    )
    if os.geteuid() != 0 and not fusermount:
        return "neither root nor fusermount3"
    return None


def testserver_binary():
    """`$WCFS_TESTSERVER`, else the one cargo built (release first), else build it."""
    env = os.environ.get("WCFS_TESTSERVER")
    if env:
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("release", "debug"):
        p = target / profile / "wcfs-testserver"
        if p.is_file():
            return str(p)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "wcfs-testkit", "--bin", "wcfs-testserver"],
        cwd=REPO,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return str(target / "release" / "wcfs-testserver")


def _real_ids(uid):
    os.setresgid(uid, 0, 0)
    os.setresuid(uid, 0, 0)


class Server:
    """The test server process, driven over its stdin (as `ServerProcess`)."""

    def __init__(self, mountpoint, blksize=PAGE, zurl=None, pintimeout=10.0, mount_as=None):
        """`mount_as=uid`: the server runs with that real uid and gid (root
        stays its effective uid, to mount), so the kernel records the mount
        as that user's (`user_id=` in the mount table)."""
        self.mountpoint = str(mountpoint)
        self.blksize = blksize
        self.zurl = zurl or "test://py/" + self.mountpoint
        os.makedirs(self.mountpoint, exist_ok=True)
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [
                testserver_binary(),
                self.mountpoint,
                "--blksize", str(blksize),
                "--pintimeout", str(pintimeout),
                "--zurl", self.zurl,
                "--history", str(2**63 - 1),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            preexec_fn=None if mount_as is None else lambda: _real_ids(mount_as),
        )
        ready = self._proc.stdout.readline()
        if not ready.startswith("ready "):
            self._proc.kill()
            self._proc.wait()
            raise RuntimeError(f"test server did not start: {ready!r}")

    def call(self, cmd):
        with self._lock:
            self._proc.stdin.write(cmd + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline().rstrip("\n")
        if not line.startswith("ok"):
            raise RuntimeError(f"wcfs-testserver: {cmd}: {line!r}")
        return line

    def commit(self, changes):
        """Commits `{(oid, blk): bytes}`; returns the new head tid (int)."""
        cmd = "commitx"
        for (oid, blk), data in changes.items():
            data = data or bytes(1)  # the server's form of an empty block
            cmd += f" {oid:016x} {blk} {data.hex()}"
        return int(self.call(cmd).split()[1], 16)

    def head(self):
        return int(self.call("head").split()[1], 16)

    def failures(self):
        """Clients the server saw nak or time out: `[(link, why)]`."""
        parts = self.call("failures").split("\t")[1:]
        return [tuple(p.split(" ", 1)) for p in parts]

    def stop(self):
        try:
            with self._lock:
                self._proc.stdin.write("quit\n")
                self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass
        # The server unmounts at quit, unless the mount is busy (a failed
        # test still holds its files): detach it then, never leave it behind.
        if self.mounted():
            subprocess.run(["fusermount3", "-u", "-z", self.mountpoint], check=False, stdin=subprocess.DEVNULL)
        try:
            os.rmdir(self.mountpoint)
        except OSError:
            pass

    def mounted(self):
        with open("/proc/mounts") as f:
            return any(line.split()[1] == self.mountpoint for line in f)
