"""join(zurl): mountpoints, autostart, and what join refuses."""

import gc
import os
import time

import pytest

import wcfs_rs
from conftest import F, PAGE
from helpers import view, tag

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
