"""The handles: the base class, context managers, the stub, fork children,
and no leak over many cycles."""

import ast
import builtins
import gc
import os
import time

import pytest

import wcfs_rs
from conftest import F
from helpers import view, tag, open_mapping

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
