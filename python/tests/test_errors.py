"""Every kind of error has the Python class the one table gives it
(wcfs_linux::foreign, README "Errors"), and errors raised by real failures
carry theirs."""

import os

import pytest

import wcfs_rs

from conftest import F
from helpers import open_mapping

# The README's table, Python column: kind -> (class, class when the call's
# connection is closed or down once it returns).
E, DOWN = wcfs_rs.Error, wcfs_rs.ConnDownError
EXPECTED = {
    "ConnClosed": (DOWN, DOWN),
    "FileClosed": (wcfs_rs.FileClosedError, DOWN),
    "MappingClosed": (wcfs_rs.MappingClosedError, wcfs_rs.MappingClosedError),
    "BadRange": (E, DOWN),
    "BadAddress": (E, DOWN),
    "GoingBack": (wcfs_rs.GoingBackError, wcfs_rs.GoingBackError),
    "InvalidArg": (E, DOWN),
    "Protocol": (E, DOWN),
    "Link": (E, DOWN),
    "Timeout": (wcfs_rs.DeadlineError, wcfs_rs.DeadlineError),
    "Os": (E, DOWN),
    "Io": (E, DOWN),
    "NotMounted": (wcfs_rs.NotMountedError, wcfs_rs.NotMountedError),
    "ZurlMismatch": (wcfs_rs.NotMountedError, wcfs_rs.NotMountedError),
    "BadZurl": (wcfs_rs.BadZurlError, wcfs_rs.BadZurlError),
    "Untrusted": (wcfs_rs.UntrustedError, wcfs_rs.UntrustedError),
    "ServerStart": (wcfs_rs.ServerStartError, wcfs_rs.ServerStartError),
    "Bug": (E, DOWN),
}


def test_every_kind_has_the_class_of_the_table():
    table = wcfs_rs._error_table()
    assert [k for k, _, _ in table] == list(EXPECTED)
    for kind, up, down in table:
        assert (up, down) == EXPECTED[kind], kind
        assert issubclass(up, wcfs_rs.Error) and issubclass(down, wcfs_rs.Error), kind


def test_two_based_classes_are_errors_and_builtins():
    assert issubclass(wcfs_rs.MappingClosedError, wcfs_rs.Error)
    assert issubclass(wcfs_rs.MappingClosedError, ValueError)
    assert issubclass(wcfs_rs.DeadlineError, wcfs_rs.Error)
    assert issubclass(wcfs_rs.DeadlineError, TimeoutError)
    for cls in (wcfs_rs.MappingClosedError, wcfs_rs.DeadlineError):
        assert cls.__module__ == "wcfs_rs"


def test_read_after_unmap_raises_mapping_closed(srv, w):
    srv.commit({(F, 0): b"a"})
    conn, fh, m = open_mapping(w, srv.head(), 1)
    m.unmap()
    with pytest.raises(wcfs_rs.MappingClosedError, match="mapping unmapped$") as e:
        m.read()
    assert e.value.context.endswith("buffer #0..#1")
    fh.close()
    with pytest.raises(wcfs_rs.MappingClosedError):
        m.read()  # unmapped is what it is, whatever closed after
    conn.close()


def test_bad_zurl_has_its_class_and_context():
    with pytest.raises(wcfs_rs.BadZurlError) as e:
        wcfs_rs.mountpoint_for("nosuch://db")
    assert e.value.context == "wcfs: mountpoint for nosuch://db"


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
