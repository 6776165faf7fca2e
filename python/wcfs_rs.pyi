"""The WCFS client: isolated, revision-exact views of ZODB bigfiles served by
WCFS (wendelin.core's FUSE filesystem), with zero-copy NumPy access.

Oids and tids are accepted as an int, as 16 hex digits (``"0000000000000001"``)
or as ZODB's 8-byte big-endian form (``ZODB.utils.p64``); they are returned
as ints.

Calls that can wait on the server (``join``, ``WCFS()``, ``head_at``,
``connect``, ``open``, ``resync``, ``close``, ``mmap``, ``mark_dirty``,
``remap_blk``, ``unmap``) release the GIL.

A ``Mapping`` lends its memory read-only and without copying
(``memoryview(m)``, ``numpy.frombuffer(m, dtype=...)``). Like Python's
``mmap``, unmapping it, or closing its file or connection, while such a
buffer lives raises ``BufferError``. What no check can cover: when the
connection goes down for a reason the caller does not control (a server
error, a broken link, a refused pin) or after ``resync`` raised
``GoingBackError``, every page of its mappings faults; a buffer lent
earlier and read after that is a SIGSEGV. New accesses through this module
raise ``ConnDownError`` first (``memoryview(m)``, ``m.mark_dirty``, ...),
``m.faulting`` tells whether lent buffers are still safe to read, and
``m.read()`` copies bytes out with the same check. The same holds in a
fork child: there every mapping faults and the module refuses access.
"""

from os import PathLike
from types import TracebackType
from typing import Optional, Type, Union

_Id = Union[int, str, bytes]

class Error(Exception):
    """Any error of the WCFS client. ``str(e)`` is the Rust error with its
    context chain; ``e.context`` is the context part
    (``wcfs <mnt>: conn<N> @<at>: f<oid>: <op>``)."""

    context: str

class ConnDownError(Error):
    """The connection is closed or down: its mappings fault from now on."""

class GoingBackError(ConnDownError):
    """``resync`` to a revision before the connection's: forbidden; the
    connection is down afterwards."""

class FileClosedError(Error):
    """The file handle was closed."""

class NotMountedError(Error):
    """No WCFS server is mounted there, or it serves another database."""

def join(zurl: str) -> WCFS:
    """The WCFS server of database ``zurl``, mounted where wendelin.core
    mounts it (``/dev/shm/wcfs/<sha1 of zurl>``); the same server for the
    same ``zurl`` within a process. Raises ``NotMountedError``."""

class WCFS:
    """A mounted WCFS server."""

    def __init__(self, mountpoint: Union[str, PathLike[str]]) -> None:
        """The WCFS server mounted at ``mountpoint``. Raises
        ``NotMountedError`` if there is none."""
    @property
    def mountpoint(self) -> str:
        """The mountpoint."""
    def head_at(self) -> int:
        """The latest revision (``head/at``)."""
    def connect(self, at: _Id) -> Conn:
        """A connection viewing the database as of ``at``; waits until the
        server has ``at``."""

class Conn:
    """A view of the database as of ``at``."""

    @property
    def at(self) -> int:
        """The revision this connection views."""
    @property
    def down_reason(self) -> Optional[str]:
        """Why the connection is down, or None."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
    def open(self, oid: _Id) -> FileH:
        """Opens bigfile ``oid``; each call gives a handle of its own."""
    def resync(self, at: _Id) -> None:
        """Moves the view forward to ``at``: mappings (and buffers lent from
        them) show the data as of ``at`` from now on. Going back raises
        ``GoingBackError`` and brings the connection down."""
    def close(self) -> None:
        """Closes the connection; its files and mappings stop working.
        Raises ``BufferError`` while a buffer of one of its mappings is lent."""
    def __enter__(self) -> Conn:
        """Returns the connection."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Closes the connection."""

class FileH:
    """One open bigfile of a connection."""

    @property
    def oid(self) -> int:
        """The file's oid."""
    @property
    def blksize(self) -> int:
        """The block size in bytes."""
    @property
    def closed(self) -> bool:
        """Whether this handle or its connection was closed."""
    def mmap(self, blk_start: int, blk_len: int) -> Mapping:
        """Maps blocks ``[blk_start, blk_start + blk_len)`` as of the
        connection's ``at``; blocks past the file's end read as zeros."""
    def pinned(self) -> dict[int, int]:
        """The pins in force, ``{blk: tid}`` (diagnostic)."""
    def close(self) -> None:
        """Closes this handle; its mappings stop working. Raises
        ``BufferError`` while a buffer of one of its mappings is lent."""
    def __enter__(self) -> FileH:
        """Returns the file handle."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Closes the file handle."""

class Mapping:
    """Blocks ``[blk_start, blk_stop)`` of a file in memory, as of the
    connection's ``at``. Supports the buffer protocol (read-only, bytes)."""

    @property
    def blk_start(self) -> int:
        """The first block mapped."""
    @property
    def blk_stop(self) -> int:
        """One past the last block mapped."""
    @property
    def faulting(self) -> bool:
        """Whether the memory faults now: lent buffers must not be read."""
    @property
    def closed(self) -> bool:
        """Whether ``unmap()`` was called."""
    @property
    def exports(self) -> int:
        """How many buffers of this mapping are lent now."""
    def mark_dirty(self, blk: int) -> None:
        """A private page lies over block ``blk``: pins leave it alone."""
    def remap_blk(self, blk: int) -> None:
        """The private page over ``blk`` is gone: map it per the pins."""
    def read(self, offset: int = 0, size: Optional[int] = None) -> bytes:
        """A copy of ``size`` bytes at ``offset`` (the rest by default).
        Checked, unlike a lent buffer: raises ``ConnDownError`` instead of
        faulting when the memory is known to fault."""
    def unmap(self) -> None:
        """Releases the memory. Raises ``BufferError`` while a lent buffer
        (``memoryview``, NumPy array) lives."""
    def close(self) -> None:
        """The same as ``unmap()``."""
    def __len__(self) -> int:
        """The length in bytes."""
    def __buffer__(self, flags: int) -> memoryview:
        """Lends the memory, read-only."""
    def __enter__(self) -> Mapping:
        """Returns the mapping."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Unmaps."""
