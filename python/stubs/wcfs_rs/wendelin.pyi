"""Type stubs of ``wcfs_rs.wendelin``: wcfs-rs in the shape of wendelin.core's
``wendelin.wcfs.client._wcfs`` (see the module's docstring).

Revisions and oids are ZODB's 8-byte big-endian ``bytes`` (``p64``). Texts
from the watch link are ``golang.b(...)`` (bytes) with pygolang installed,
``str`` without; errors are ``golang.error`` with pygolang, ``wcfs_rs.Error``
without. A ``ctx`` is ``None`` or a pygolang context (any object with
``deadline() -> Optional[float]`` and ``err()``).
"""

from typing import Any, Dict, List, Optional, Protocol, Union

_Text = Union[str, bytes]

class _Context(Protocol):
    def deadline(self) -> Optional[float]: ...
    def err(self) -> Optional[BaseException]: ...

#: Whether errors are pygolang errors (pygolang was importable).
have_pygolang: bool

class PyWCFS:
    """A WCFS server by its mountpoint; subclasses may define their own
    ``__init__`` and set ``mountpoint`` afterwards."""

    mountpoint: Optional[str]
    def __init__(self, mountpoint: Optional[str] = None) -> None: ...
    def connect(self, at: bytes) -> PyConn: ...

class PyConn:
    """A view of the database as of ``at()``."""

    @property
    def wc(self) -> PyWCFS: ...
    def at(self) -> bytes: ...
    def open(self, foid: bytes) -> PyFileH:
        """The same PyFileH for the same oid while it is open (opens counted)."""
    def resync(self, at: bytes) -> None: ...
    def close(self) -> None: ...

class PyFileH:
    """An open bigfile; the last of its ``close()`` calls closes it."""

    @property
    def blksize(self) -> int: ...
    @property
    def pinned(self) -> Dict[int, bytes]:
        """``{blk: rev (p64)}`` of the pins in force."""
    def mmap(self, blk_start: int, blk_len: int) -> PyMapping: ...
    def close(self) -> None: ...

class PyMapping:
    """A mapping of blocks ``[blk_start, blk_stop)`` of ``fileh``; a buffer
    exporter (``memoryview(m)`` is ``m.mem``)."""

    fileh: PyFileH
    @property
    def blk_start(self) -> int: ...
    @property
    def blk_stop(self) -> int: ...
    @property
    def mem(self) -> memoryview:
        """Read-only and not tracked (it keeps the mapping alive, never
        blocks ``unmap``): reading it after the view ended (file or
        connection closed or down, fork child) is a SIGSEGV."""
    def unmap(self) -> None: ...

class PinReq:
    """A server request on a watch link."""

    foid: bytes
    blk: int
    at: Optional[bytes]
    """``None`` for ``@head`` (an unpin)."""
    msg: Any
    """The line after ``<stream> `` (``str``, or ``golang.b`` with pygolang)."""

PyPinReq = PinReq

class _EofEvent:
    def ready(self) -> bool: ...
    def wait(self, timeout: Optional[float] = None) -> bool: ...
    def recv(self) -> None: ...

class PyWatchLink:
    """A ``head/watch`` link of the caller's own, spoken line by line."""

    def __init__(self, wc: PyWCFS) -> None: ...
    def sendReq(self, ctx: Optional[_Context], req: _Text) -> Any:
        """The server's reply text to ``req`` (sent as given on a new odd stream)."""
    def recvReq(self, ctx: Optional[_Context]) -> Optional[PinReq]:
        """The next server request, or ``None`` once the link has ended."""
    def replyReq(self, ctx: Optional[_Context], req: PinReq, reply: _Text) -> None: ...
    def closeWrite(self) -> None: ...
    def close(self) -> None: ...
    @property
    def fatalv(self) -> List[Any]: ...
    @property
    def rx_eof(self) -> Any:
        """A pygolang channel closed at the link's end (with pygolang), else
        an object with ``wait(timeout)``, ``ready()`` and ``recv()``."""

def _tpywlinkwrite(wlink: PyWatchLink, pkt: _Text) -> None: ...
