"""Fixtures: a fresh FUSE test server per test (see testserver.py), and a
client of it."""

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import wcfs_rs

from testserver import PAGE, Server, fuse_unavailable  # noqa: F401 (PAGE: for the tests)

F = 1  # the bigfile every test uses
G = 2  # another one


def _require_fuse():
    why = fuse_unavailable()
    if why:
        pytest.skip(f"FUSE is not available: {why}")


@pytest.fixture
def fuse():
    """Skips the test where FUSE cannot be used (as `require_fuse!` in Rust)."""
    _require_fuse()


@pytest.fixture
def srv():
    """A fresh test server on a temporary mountpoint, block size = page size."""
    _require_fuse()
    d = tempfile.mkdtemp(prefix="wcfs-py-")
    srv = Server(d)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def w(srv):
    """`wcfs_rs.WCFS` of the test server `srv` (opened before the test's
    commits: a client sees them as they come)."""
    return wcfs_rs.WCFS(srv.mountpoint)


@pytest.fixture(autouse=True, scope="session")
def _no_join_locks_left():
    """join() takes a lock file `<hex>.lock` beside each mountpoint it
    looks at under /dev/shm/wcfs; its last holder unlinks it: this test run
    leaves none."""
    base = Path("/dev/shm/wcfs")
    before = set(base.glob("*.lock"))
    yield
    left = set(base.glob("*.lock")) - before
    for p in left:
        p.unlink(missing_ok=True)
    assert not left, "join left lock files: %s" % sorted(map(str, left))


@pytest.fixture
def joined_server():
    """A test server mounted where `wcfs_rs.join(zurl)` looks for it:
    /dev/shm/wcfs/<sha1 hex of zurl> (a zeo:// zurl is its own normal form)."""
    _require_fuse()
    zurl = f"zeo://py-join.example:{os.getpid()}/{threading.get_ident()}"
    mnt = Path("/dev/shm/wcfs") / hashlib.sha1(zurl.encode()).hexdigest()
    srv = Server(mnt, zurl=zurl)
    try:
        yield srv
    finally:
        srv.stop()
