"""Argument checks that both the embedded engine and `RemoteDatabase` run, so each
rejection has one class and one message wherever the database lives.

The client runs only the checks it needs before sending: on values it would otherwise
reshape on the way (a dict read as a list of ops), cannot send (a callback, a datetime)
or puts into a URL or a query string (a node id). Everything else goes to
the server as given, and the server's engine judges it with the engine's own checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa

from pluresdb_lab.errors import InvalidDataError, InvalidIdError, InvalidOpError

RecordsKind = Literal["table", "frame", "dicts"]


def id_string(node_id: object) -> str:
    """A node id's form: a non-empty string (the engine then checks its content)."""
    if not isinstance(node_id, str):
        raise InvalidIdError(f"node ids are strings, got {type(node_id).__name__}: {node_id!r:.60}")
    if not node_id:
        raise InvalidIdError("node ids cannot be empty")
    return node_id


def check_id_list(ids: object) -> None:
    """`get_many`'s ids: a single id would otherwise be read as a list of characters."""
    if isinstance(ids, (str, bytes)):
        raise InvalidDataError("get_many() takes a list of ids; use get() for one id")


def records_kind(records: object) -> RecordsKind:
    """What `put_many` was given: an Arrow table, a pandas DataFrame, or dicts."""
    if isinstance(records, pa.Table):
        return "table"
    # by name, so that checking a value never imports pandas
    if type(records).__name__ == "DataFrame" and hasattr(records, "to_numpy"):
        return "frame"
    if isinstance(records, (str, bytes, dict)) or not isinstance(records, Iterable):
        raise InvalidDataError(
            "put_many() takes a list of dicts, a pandas DataFrame or a pyarrow Table, got "
            f"{type(records).__name__}"
        )
    return "dicts"


def frame_to_table(frame: Any) -> pa.Table:
    """A pandas DataFrame given to `put_many` as an Arrow table (without its index)."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidDataError(f"this DataFrame cannot be converted to Arrow: {exc}") from None


def check_op_list(ops: object) -> None:
    """`apply_ops`'s ops: a list (any iterable) of op dicts, not one op."""
    if isinstance(ops, (dict, str, bytes)) or not isinstance(ops, Iterable):
        raise InvalidOpError(f"apply_ops() takes a list of ops, got {type(ops).__name__}")


def check_callback(callback: object, call: str) -> None:
    """A callback given to `call` (such as "subscribe")."""
    if not callable(callback):
        raise InvalidDataError(f"{call}() needs a callable")


def epoch_seconds(when: object) -> float:
    """`as_of`'s moment: a datetime or epoch seconds, as epoch seconds."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return float(when)
    raise InvalidDataError(f"as_of() takes a datetime or epoch seconds, got {type(when).__name__}")
