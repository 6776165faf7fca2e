"""The WCFS client: isolated, revision-exact views of ZODB bigfiles served by
WCFS (wendelin.core's FUSE filesystem), with zero-copy NumPy access.

Oids and tids are accepted as an int, as 16 hex digits (``"0000000000000001"``)
or as ZODB's 8-byte big-endian form (``ZODB.utils.p64``); they are returned
as ints.

``Conn``, ``FileH`` and ``Mapping`` are subclasses of ``Handle``:
``close()``, ``closed`` and ``with`` blocks (which close on leaving) work
the same on each; a mapping's ``close()`` is ``unmap()``.

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

The interpreter may exit with connections open: an exit handler says
goodbye on each (their mappings fault from then on), so the exit does not
wait for the server. ``os._exit`` and death by a signal run no exit
handler: close connections first when ending that way.
"""

from os import PathLike
from types import TracebackType
from typing import List, Optional, Sequence, Type, TypedDict, TypeVar, Union

_Id = Union[int, str, bytes]
_H = TypeVar("_H", bound="Handle")

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

class MappingClosedError(Error, ValueError):
    """The mapping was unmapped. Also a ``ValueError``, as for a closed
    file object."""

class DeadlineError(Error, TimeoutError):
    """The server did not answer, or end the link, before the deadline.
    Also a ``TimeoutError``."""

class NotMountedError(Error):
    """No WCFS server is mounted there, or it serves another database."""

class BadZurlError(Error):
    """``join``/``mountpoint_for``: the zurl has no normal form (a scheme
    other than file, zeo, demo, neo, neos), so it names no mountpoint."""

class UntrustedError(Error):
    """``join`` refuses what is mounted at the database's mountpoint: a
    mount by a user that is neither root nor the caller, or a filesystem
    that is not a wcfs."""

class ServerStartError(Error):
    """``join`` could not start a server: none known (``server=`` or
    ``$WCFS_SERVER``), it could not be spawned, it exited first, or it did
    not answer in time."""

def join(
    zurl: str,
    *,
    autostart: Optional[bool] = None,
    server: Union[str, PathLike[str], None] = None,
    options: Optional[Sequence[str]] = None,
    base: Union[str, PathLike[str], None] = None,
) -> WCFS:
    """The WCFS server of database ``zurl``, where wendelin.core mounts it
    (``mountpoint_for(zurl)``), accepted if its mount is a wcfs of root or
    of this user serving that database; the same server for the same
    database within a process.

    When nothing is mounted there a server is started,
    ``<server> [options] -autoexit <zurl> <mountpoint>``, and awaited:
    ``autostart`` True/False, or None for ``$WENDELIN_CORE_WCFS_AUTOSTART``
    (``yes``, the default, or ``no``); ``server`` the executable, None for
    ``$WCFS_SERVER``; ``options`` extra options after
    ``$WENDELIN_CORE_WCFS_OPTIONS``; ``base`` another directory of
    mountpoints than ``/dev/shm/wcfs``.

    Raises ``BadZurlError``, ``NotMountedError`` (nothing mounted and no
    autostart, or a server of another database), ``UntrustedError``,
    ``ServerStartError``."""

def mountpoint_for(zurl: str) -> str:
    """Where ``join(zurl)`` looks for the server of ``zurl``:
    ``/dev/shm/wcfs/<sha1 hex of the normalized zurl>``. Nothing is looked
    up or created. Raises ``BadZurlError``."""

PIN_TIME_BUCKETS: int
"""Length of ``ConnStats["pin_time_ns"]``: log-linear buckets, 16 per power
of two of ns, each at most 1/16 of its start wide."""

def pin_time_bucket_end(i: int) -> Optional[int]:
    """The end (ns, exclusive) of bucket ``i`` of ``pin_time_ns``, where
    bucket ``i + 1`` starts (bucket 0 starts at 0); None for the last
    bucket, which also counts everything longer."""

def pin_time_quantile(pin_time_ns: List[int], q: float) -> Optional[int]:
    """An upper bound (ns) of the ``q``-quantile of ``pin_time_ns``: the end
    of the bucket holding it, at most 6.25 % above the true time. None when
    nothing is counted or it lies in the last bucket. ValueError when the
    list does not have ``PIN_TIME_BUCKETS`` counts."""

class ConnStats(TypedDict):
    """``Conn.stats()``: counters since the connection was made."""

    pins: int
    unpins: int
    acks: int
    naks: int
    rev_opens: int
    rev_hits: int
    remaps: int
    resyncs: int
    dirty_kept: int
    pin_time_ns: List[int]

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
    def connect_with(
        self,
        at: _Id,
        *,
        rev_cache: Optional[int] = None,
        max_pins_per_file: Optional[int] = None,
    ) -> Conn:
        """``connect`` with tunables: ``rev_cache``, the ``@rev`` files kept
        open (1..=16, default 8); ``max_pins_per_file``, the most pins in
        force per file before the connection goes down (default 2**22)."""

class Handle:
    """The base class of ``Conn``, ``FileH`` and ``Mapping`` (not made
    directly): ``close()``, ``closed`` and the ``with`` statement."""

    def close(self) -> None:
        """Closes the handle: a connection's files and mappings, a file's
        mappings stop working; a mapping is unmapped (``Mapping.unmap()``).
        Raises ``BufferError`` while a buffer lent from its memory (or from a
        mapping under it) lives. Closing again does nothing."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: on this handle, or, for a file
        handle, on its connection (a mapping is closed by its own
        ``close()`` or ``unmap()`` only)."""
    def __enter__(self: _H) -> _H:
        """Returns the handle."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Closes the handle."""

class Conn(Handle):
    """A view of the database as of ``at``."""

    @property
    def id(self) -> int:
        """The connection's number within its WCFS (``conn<N>`` in error
        contexts)."""
    @property
    def at(self) -> int:
        """The revision this connection views."""
    @property
    def down_reason(self) -> Optional[str]:
        """Why the connection is down, or None."""
    def stats(self) -> ConnStats:
        """The connection's statistics, read without stopping its pin
        thread: pins and unpins applied, acks and naks sent, ``@rev`` files
        opened and reused, blocks remapped, resyncs, and ``pin_time_ns``:
        ``PIN_TIME_BUCKETS`` counts of pins handled (from reading the pin to
        writing its ack) in log-linear buckets of ns: bucket ``i`` ends at
        ``pin_time_bucket_end(i)``, where bucket ``i + 1`` starts."""
    def open(self, oid: _Id) -> FileH:
        """Opens bigfile ``oid``; each call gives a handle of its own."""
    def resync(self, at: _Id) -> None:
        """Moves the view forward to ``at``: mappings (and buffers lent from
        them) show the data as of ``at`` from now on. Going back raises
        ``GoingBackError`` and brings the connection down."""

class FileH(Handle):
    """One open bigfile of a connection."""

    @property
    def oid(self) -> int:
        """The file's oid."""
    @property
    def blksize(self) -> int:
        """The block size in bytes."""
    def mmap(self, blk_start: int, blk_len: int) -> Mapping:
        """Maps blocks ``[blk_start, blk_start + blk_len)`` as of the
        connection's ``at``; blocks past the file's end read as zeros."""
    def pinned(self) -> dict[int, int]:
        """The pins in force, ``{blk: tid}`` (diagnostic)."""

class Mapping(Handle):
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
    def exposed(self) -> bool:
        """Whether the view ended but the OS refused both to make its memory
        fault and to protect it: it may still show old bytes."""
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
        """Releases the memory (the same as ``close()``). Raises
        ``BufferError`` while a lent buffer (``memoryview``, NumPy array)
        lives."""
    def __len__(self) -> int:
        """The length in bytes."""
    def __buffer__(self, flags: int) -> memoryview:
        """Lends the memory, read-only."""
