"""What a database folder may hold, checked before anything in it is trusted or written.

Owns the names of the database's files (a manifest may only name plain files of the
expected form, so nothing outside the folder is ever opened, truncated or deleted), the
manifest's shape, telling a database folder from someone else's folder, turning a full
disk into `StorageFullError`, and settling a `restore_backup` that was killed mid-swap.

A restore into `X` stages its copy in `.X.restoring-<h>`, renames it `.X.ready-<h>`
once complete and fsynced, moves an old `X` to `.X.replaced-<h>`, renames the ready
copy to `X` and deletes the old one. `settle_restore` makes any moment of that safe:
with `X` missing, a ready copy that verifies becomes `X` (else the old folder comes
back); with `X` present, leftovers are deleted. A staging folder whose LOCK is held
belongs to a restore still running and is left alone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any

from pluresdb_lab.errors import (
    CorruptDatabaseError,
    DatabaseLockedError,
    NotADatabaseError,
    StorageError,
    StorageFullError,
)

MANIFEST = "MANIFEST.json"
FORMAT = 1
LOCK = "LOCK"
WAL_NAME = re.compile(r"wal-(\d{6,})\.log", re.ASCII)
SEGMENT_NAME = re.compile(r"seg-(\d{6,})\.arrow", re.ASCII)
# Temporary files of a write that was killed half-way (an open removes them).
LEFTOVER_NAME = re.compile(r"seg-\d{6,}\.tmp|MANIFEST\.json\.tmp", re.ASCII)
# Everything a database folder can hold before its first manifest is written.
_OWN_NAME = re.compile(
    r"LOCK|identity\.key|identity\.tmp|wal-\d{6,}\.log|seg-\d{6,}\.(arrow|tmp)"
    r"|MANIFEST\.json\.tmp",
    re.ASCII,
)
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
RESTORING, READY, REPLACED = "restoring", "ready", "replaced"
_CHUNK = 1 << 20


# -- failed writes -----------------------------------------------------------------------


def storage_error(
    exc: OSError, doing: str, outcome: str, advice: str | None = None
) -> StorageError:
    """The PluresDB error for a failed write: StorageFullError when the disk is full."""
    reason = exc.strerror or str(exc)
    if exc.errno in FULL_ERRNOS:
        if advice is None:
            advice = "Free some space on that disk (or raise the quota), then retry."
        message = f"{doing} failed: the disk is full ({reason}). {outcome} {advice}"
        return StorageFullError(exc.errno, message.rstrip(), exc.filename)
    message = f"{doing} failed: {reason}. {outcome} {advice or ''}"
    return StorageError(exc.errno or errno.EIO, message.rstrip(), exc.filename)


def raise_if_full(exc: OSError, doing: str, outcome: str) -> None:
    """Raise StorageFullError (from `exc`) when `exc` says the disk is full; any other
    failure is for the caller to re-raise as it is."""
    if exc.errno in FULL_ERRNOS:
        raise storage_error(exc, doing, outcome) from exc


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder: so the renames in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the manifest --------------------------------------------------------------------------


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a decoded manifest's shape, or None."""
    if not isinstance(manifest, dict):
        return f"it holds a JSON {type(manifest).__name__}, not an object"
    segments = manifest.get("segments")
    if not isinstance(segments, list):
        return "'segments' is not a list"
    files: set[str] = set()
    for i, entry in enumerate(segments):
        if not isinstance(entry, dict):
            return f"segments[{i}] is not an object"
        name = entry.get("file")
        if not isinstance(name, str) or not SEGMENT_NAME.fullmatch(name):
            return f"segments[{i}] names the file {name!r}, not a segment file (seg-NNNNNN.arrow)"
        if name in files:
            return f"segment file {name} is listed twice"
        files.add(name)
        for key, low in (("level", 0), ("number", 0), ("crc32", 0)):
            if not _is_int(entry.get(key), low):
                return f"segments[{i}] ({name}) has {key} {entry.get(key)!r}"
        if entry["crc32"] > 0xFFFFFFFF:
            return f"segments[{i}] ({name}) has crc32 {entry['crc32']!r}"
    wal = manifest.get("wal")
    if wal is not None and (not isinstance(wal, str) or not WAL_NAME.fullmatch(wal)):
        return f"'wal' names the file {wal!r}, not a write-ahead log (wal-NNNNNN.log)"
    for key in ("next", "bytes_ingested", "bytes_compacted"):
        if key in manifest and not _is_int(manifest[key]):
            return f"{key!r} is {manifest[key]!r}, not a count"
    if "peer_id" in manifest and not isinstance(manifest["peer_id"], str):
        return f"'peer_id' is {manifest['peer_id']!r}, not a string"
    return _state_problem(manifest.get("state", {}))


def _state_problem(state: Any) -> str | None:
    """The saved state's known entries: version vector, clock, vector dimensions."""
    if not isinstance(state, dict):
        return "'state' is not an object"
    for key in ("vv", "dims"):
        table = state.get(key, {})
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and _is_int(v) for k, v in table.items()
        ):
            return f"state {key!r} is not an object of counts"
    if "hlc" in state and not _is_int(state["hlc"]):
        return f"state 'hlc' is {state['hlc']!r}, not a clock reading"
    return None


def load_manifest(path: Path) -> dict[str, Any]:
    """A manifest read and checked; CorruptDatabaseError names the file and the problem."""
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise CorruptDatabaseError(f"manifest {path} is not UTF-8 text") from None
    except OSError as exc:
        raise CorruptDatabaseError(f"manifest {path} cannot be read: {exc.strerror}") from None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise CorruptDatabaseError(f"manifest {path} is not valid JSON: {exc}") from None
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise CorruptDatabaseError(
            f"manifest {path} has format {manifest.get('format')!r}; this "
            f"version of PluresDB Lab reads format {FORMAT}"
        )
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise CorruptDatabaseError(
            f"manifest {path} is damaged: {problem}; restore the database from a backup"
        )
    result: dict[str, Any] = manifest
    return result


def file_number(name: str) -> int:
    """The number in a WAL or segment file name (seg-000012.arrow -> 12)."""
    found = WAL_NAME.fullmatch(name) or SEGMENT_NAME.fullmatch(name)
    assert found is not None
    return int(found.group(1))


# -- whose folder is this ------------------------------------------------------------------


def check_folder(folder: Path) -> None:
    """Refuse a path that is a file, or a folder of someone else's files, before anything
    is written there. A new path, an empty folder or a folder holding only what a
    database leaves before its first manifest (LOCK, identity key, WAL) is fine."""
    if folder.exists() and not folder.is_dir():
        raise NotADatabaseError(
            f"{folder} is a file, not a folder; a database is a folder: give a new or "
            "empty folder's path (or an existing database's)"
        )
    if not folder.is_dir() or (folder / MANIFEST).exists():
        return
    foreign = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_symlink() or not entry.is_file() or not _OWN_NAME.fullmatch(entry.name)
    )
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise NotADatabaseError(
            f"{folder} is not a PluresDB database: it has no {MANIFEST} and holds other "
            f"files ({shown}{more}); choose an empty or new folder for the database"
        )


# -- interrupted restores ------------------------------------------------------------------


def staging_folder(target: Path, kind: str, tag: str | None = None) -> Path:
    """`.<name>.<kind>-<tag>` next to `target` (a fresh tag unless given)."""
    return target.parent / f".{target.name}.{kind}-{tag or uuid.uuid4().hex[:6]}"


def _staging_folders(target: Path) -> dict[str, list[Path]]:
    kinds = f"{RESTORING}|{READY}|{REPLACED}"
    pattern = re.compile(rf"\.{re.escape(target.name)}\.({kinds})-[0-9a-f]{{6}}")
    found: dict[str, list[tuple[int, str, Path]]] = {RESTORING: [], READY: [], REPLACED: []}
    try:
        entries = list(os.scandir(target.parent))
    except OSError:  # no parent folder yet, or not ours to read
        entries = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        try:
            if match and entry.is_dir(follow_symlinks=False):
                stamp = entry.stat(follow_symlinks=False).st_mtime_ns
                found[match.group(1)].append((stamp, entry.name, Path(entry.path)))
        except FileNotFoundError:  # removed meanwhile by another process settling it
            continue
    # newest first, so which one of several is kept does not depend on listing order
    return {kind: [p for *_, p in sorted(items, reverse=True)] for kind, items in found.items()}


def hold_lock(folder: Path, *, create: bool) -> int | None:
    """flock `folder`/LOCK (the file a database or a running restore holds); returns the
    descriptor to close when done, None when there is no LOCK (and `create` is false).
    DatabaseLockedError when someone holds it."""
    flags = os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    try:
        fd = os.open(folder / LOCK, flags, 0o644)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseLockedError(f"{folder} is in use by another process") from None
    return fd


def _in_use(folder: Path) -> bool:
    try:
        fd = hold_lock(folder, create=False)
    except DatabaseLockedError:
        return True
    except OSError:  # LOCK is a symlink or unreadable: not a live restore's
        return False
    if fd is not None:
        os.close(fd)
    return False


def _complete(folder: Path) -> bool:
    """Whether a staged copy is whole: its manifest reads and every segment it lists
    matches the manifest's checksum."""
    try:
        manifest = load_manifest(folder / MANIFEST)
        for entry in manifest["segments"]:
            crc = 0
            with open(folder / entry["file"], "rb") as f:
                while chunk := f.read(_CHUNK):
                    crc = zlib.crc32(chunk, crc)
            if crc != entry["crc32"]:
                return False
    except (CorruptDatabaseError, OSError):
        return False
    return True


def settle_restore(target: Path) -> None:
    """Finish or roll back a `restore_backup` into `target` that was killed, and delete
    its staging folders, so `target` holds the old database or the restored one."""
    found = _staging_folders(target)
    if not any(found.values()):
        return
    live = {p for paths in found.values() for p in paths if _in_use(p)}
    if not os.path.lexists(target):
        if live:
            raise DatabaseLockedError(
                f"a restore into {target} is in progress in another process; wait for it "
                "to finish, then connect"
            )
        # Finish the swap with a whole restored copy, else put the old folder back.
        candidates = [p for p in found[READY] if _complete(p)] + found[REPLACED]
        if candidates:
            try:
                os.rename(candidates[0], target)
            except OSError:
                if not os.path.lexists(target):
                    raise
                # another process settled it first
            fsync_path(target.parent)
    for paths in found.values():
        for path in paths:
            if path not in live and path.exists():
                shutil.rmtree(path, ignore_errors=True)
    fsync_path(target.parent)
