"""Every error PluresDB Lab raises on purpose: one class per kind of mistake.

Messages say what was wrong and what to do about it. A call that raises one of these
has written nothing.
"""

from __future__ import annotations


class PluresDBError(Exception):
    """Base class of every PluresDB Lab error."""


class InvalidIdError(PluresDBError, ValueError):
    """A node id that is not a non-empty string without NUL characters, or too long."""


class InvalidDataError(PluresDBError, ValueError):
    """Node data that JSON cannot hold, or records that cannot be ingested."""


class VectorDimensionError(InvalidDataError):
    """A vector whose length differs from the dimension fixed for its type."""


class NodeTooLargeError(InvalidDataError):
    """A node whose encoded data exceeds the database's `max_node_bytes`."""


class ReservedNameError(InvalidDataError):
    """A type or field name starting with '_' (reserved for edges, rules, settings...)."""


class DatabaseClosedError(PluresDBError):
    """The database was closed; open it again with `pluresdb_lab.connect`."""


class DatabaseLockedError(PluresDBError):
    """Another process holds the database folder open."""


class CorruptDatabaseError(PluresDBError):
    """A file of the database failed its checksum or could not be decoded."""


class ReadOnlyError(PluresDBError):
    """A write on a read-only view (such as `db.as_of(...)`)."""


class NotFoundError(PluresDBError, KeyError):
    """An unknown node id, version or conflict id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidOpError(PluresDBError, ValueError):
    """A replication operation that is malformed; nothing of its batch was applied."""


class OperationCancelled(PluresDBError):
    """A long operation was cancelled by its progress callback; nothing was left half-made."""


class BackupError(PluresDBError):
    """A backup that is incomplete, damaged, or cannot be restored where asked."""


class InvalidQueryError(InvalidDataError):
    """A query spec, filter or search call that is malformed; the message names the part."""


class IndexNotFoundError(NotFoundError):
    """An index name that `db.indexes()` does not list."""


class MeshError(PluresDBError):
    """A mesh call that cannot be done as asked (bad option, mesh closed, no folder...)."""


class PeerRefusedError(MeshError):
    """A peer failed the mesh handshake: unknown, bad signature or wrong mesh secret."""


class RemoteError(PluresDBError):
    """A server refused a remote call (no or wrong token, no permission) or failed on it."""


class FrontEndMissingError(PluresDBError):
    """The panels' JavaScript bundle was not built into pluresdb_lab/static."""


class InvalidRequestError(PluresDBError):
    """A panel's view sent a request the panel cannot understand (unknown method, bad params)."""


class StorageError(PluresDBError, OSError):
    """Writing the database's files failed (a full disk, an I/O error); the message says
    whether the write was applied and what to do. `errno` is the operating system's."""

    def __str__(self) -> str:  # OSError would prefix "[Errno n]"
        return self.strerror if self.strerror else super().__str__()


class StorageFullError(StorageError):
    """The disk or the user's quota is full (ENOSPC, EDQUOT): free space, then retry."""


class NotADatabaseError(PluresDBError):
    """A path that is a file, or a folder holding files that are not a PluresDB database."""


class PathNotAllowedError(RemoteError):
    """A server refused a file path given over REST: it lies outside the folders it allows."""
