"""Backups: consistent copies of a database folder, full or incremental, with checksums.

A backup is a folder `<dest>/<id>/` holding the manifest, the segment files it adds,
and `backup.json` (kind, base, the segments the manifest needs, and a SHA-256 per file).
Segments are immutable, so an incremental backup copies only the segments that its
chain (full -> incremental -> ...) lacks. A backup is written as `<id>.partial/` and
renamed when complete, so an interrupted one is never mistaken for a good one.

A restore copies into a staging folder next to the target and swaps it in by renames;
`_folder.settle_restore` finishes or rolls back a swap that was killed half-way (at the
next restore, or when the target is opened), so the target is never left empty.

A restored database gets a new peer identity: the original may have sent operations
numbered past the backup to its peers, and reusing its id would make the restored
database's new writes look like duplicates of those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pluresdb_lab._values import Backup, Progress, Verification
from pluresdb_lab.engine._folder import (
    MANIFEST,
    READY,
    REPLACED,
    RESTORING,
    fsync_path,
    hold_lock,
    settle_restore,
    staging_folder,
)
from pluresdb_lab.engine._store import report
from pluresdb_lab.errors import BackupError, DatabaseLockedError

BACKUP_FILE = "backup.json"
PARTIAL = ".partial"
CHUNK = 1 << 20


def _copy(src: Path, dst: Path, progress: Callable[[int], None]) -> str:
    """Copy a file, fsync it, and return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            progress(len(chunk))
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load(folder: Path) -> Backup:
    meta = json.loads((folder / BACKUP_FILE).read_text("utf-8"))
    return Backup(
        id=meta["id"],
        path=folder,
        kind=meta["kind"],
        base=meta["base"],
        created=datetime.fromisoformat(meta["created"]),
        size=int(meta["size"]),
        nodes=int(meta["nodes"]),
        checksums=dict(meta["checksums"]),
        segments=list(meta["segments"]),
    )


def list_backups(dest: str | os.PathLike[str]) -> list[Backup]:
    """Backups in `dest`, oldest first; interrupted ones are listed as incomplete."""
    root = Path(dest)
    if not root.is_dir():
        if root.exists():
            raise BackupError(f"{root} is a file; backups need a folder")
        return []
    found: list[Backup] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.endswith(PARTIAL) or not (folder / BACKUP_FILE).exists():
            stamp = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            name = folder.name.removesuffix(PARTIAL)
            found.append(Backup(name, folder, "unknown", None, stamp, size, 0, status="incomplete"))
            continue
        try:
            found.append(_load(folder))
        except (ValueError, KeyError, OSError):
            stamp = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            found.append(
                Backup(folder.name, folder, "unknown", None, stamp, 0, 0, status="incomplete")
            )
    return sorted(found, key=lambda b: (b.created, b.id))


def _chain(backup: Backup) -> list[Backup]:
    """The backup and every backup it builds on, newest first."""
    chain = [backup]
    seen = {backup.id}
    while chain[-1].base is not None:
        base_path = backup.path.parent / chain[-1].base
        if not (base_path / BACKUP_FILE).exists():
            raise BackupError(
                f"backup {chain[-1].id} builds on {chain[-1].base}, which is missing from "
                f"{backup.path.parent}"
            )
        base = _load(base_path)
        if base.id in seen:
            raise BackupError(f"backup chain of {backup.id} loops at {base.id}")
        seen.add(base.id)
        chain.append(base)
    return chain


def write_backup(
    dest: str | os.PathLike[str],
    *,
    manifest: dict[str, Any],
    segment_folder: Path,
    nodes: int,
    incremental: bool,
    progress: Progress | None,
) -> Backup:
    """Write a backup of the files `manifest` lists (which the caller keeps pinned)."""
    root = Path(dest)
    needed = [s["file"] for s in manifest["segments"]]
    base: Backup | None = None
    have: set[str] = set()
    if incremental:
        complete = (
            [b for b in list_backups(root) if b.status == "complete"] if root.is_dir() else []
        )
        if not complete:
            raise BackupError(
                f"no complete backup in {root} to build an incremental backup on; take a full "
                "backup first"
            )
        base = complete[-1]
        for link in _chain(base):
            have.update(name for name in link.checksums if name.startswith("seg-"))
    root.mkdir(parents=True, exist_ok=True)  # only once the backup can go ahead
    to_copy = [name for name in needed if name not in have]
    created = datetime.now(UTC)
    backup_id = created.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
    partial = root / (backup_id + PARTIAL)
    partial.mkdir()
    total = sum((segment_folder / name).stat().st_size for name in to_copy)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        report(progress, done, total)

    try:
        report(progress, 0, total)
        checksums = {
            name: _copy(segment_folder / name, partial / name, advance) for name in to_copy
        }
        saved = dict(manifest, wal=None)
        (partial / MANIFEST).write_text(json.dumps(saved), "utf-8")
        checksums[MANIFEST] = _sha256(partial / MANIFEST)
        size = sum((partial / name).stat().st_size for name in checksums)
        meta = {
            "id": backup_id,
            "kind": "incremental" if incremental else "full",
            "base": base.id if base else None,
            "created": created.isoformat(),
            "size": size,
            "nodes": nodes,
            "segments": needed,
            "checksums": checksums,
        }
        (partial / BACKUP_FILE).write_text(json.dumps(meta, indent=1), "utf-8")
        for name in [*checksums, BACKUP_FILE]:
            fsync_path(partial / name)
        final = root / backup_id
        os.rename(partial, final)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return _load(final)


def verify_backup(path: str | os.PathLike[str]) -> Verification:
    """Check that a backup is complete and every file of its chain matches its checksum."""
    folder = Path(path)
    if not (folder / BACKUP_FILE).exists():
        return Verification(
            False,
            [f"{folder} has no {BACKUP_FILE}: the backup is incomplete (it was interrupted)"],
            None,
            0,
        )
    problems: list[str] = []
    checked = 0
    try:
        backup = _load(folder)
        chain = _chain(backup)
    except (BackupError, ValueError, KeyError) as exc:
        return Verification(False, [f"{folder}: {exc}"], None, 0)
    holders: dict[str, Path] = {}
    for link in chain:
        for name, expected in link.checksums.items():
            file = link.path / name
            checked += 1
            if not file.exists():
                problems.append(f"{file} is missing")
            elif _sha256(file) != expected:
                problems.append(f"{file} does not match its checksum (the file is damaged)")
            if name.startswith("seg-"):
                holders.setdefault(name, link.path)
    for name in backup.segments:
        if name not in holders:
            problems.append(f"segment {name} is in none of the backups of this chain")
    return Verification(not problems, problems, backup, checked)


@contextlib.contextmanager
def _holding(folder: Path, *, create: bool, what: str) -> Iterator[None]:
    """Hold `folder`/LOCK for the block: no database opens it meanwhile, and
    `settle_restore` leaves a folder alone while its restore is running."""
    try:
        fd = hold_lock(folder, create=create)
    except DatabaseLockedError:
        raise DatabaseLockedError(what) from None
    try:
        if fd is not None and create:
            os.write(fd, str(os.getpid()).encode())  # what DatabaseLockedError shows
        yield
    finally:
        if fd is not None:
            os.close(fd)


def restore_backup(
    path: str | os.PathLike[str],
    into: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Verify a backup, then restore it into the folder `into` (which `connect` opens).

    An existing database folder is replaced only with `overwrite=True`, and then by a
    swap: the restored copy is complete on disk before the old folder is moved away. A
    kill at any moment leaves the old database or the restored one (see `_folder`).
    `into` must lie outside the folder of backups holding the backup: there it would
    replace a backup, or be listed as an incomplete one.
    """
    result = verify_backup(path)
    if not result.ok or result.backup is None:
        raise BackupError(
            "the backup failed verification; nothing was restored:\n  "
            + "\n  ".join(result.problems)
        )
    target = Path(into)
    backups = result.backup.path.resolve().parent
    if target.resolve().is_relative_to(backups):
        raise BackupError(
            f"restore into a folder outside the folder of backups {backups}, not {target}"
        )
    settle_restore(target)  # an earlier restore into `target` that was killed
    if target.exists() and not target.is_dir():
        raise BackupError(f"{target} is a file; restore into a folder (new or empty)")
    chain = _chain(result.backup)
    sources = {}
    for link in reversed(chain):
        for name in link.checksums:
            if name.startswith("seg-"):
                sources[name] = link.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise BackupError(
                    f"{target} already holds files; pass overwrite=True to replace that database"
                )
            busy = f"database {target} is open; close it before restoring a backup over it"
            held.enter_context(_holding(target, create=False, what=busy))
        staging = staging_folder(target, RESTORING)
        tag = staging.name.rsplit("-", 1)[1]
        staging.mkdir()
        try:
            held.enter_context(_holding(staging, create=True, what=f"{staging} is in use"))
            _fill(staging, result.backup, sources, progress)
            ready = staging_folder(target, READY, tag)
            os.rename(staging, ready)  # complete and fsynced: from here on it may be used
            fsync_path(target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = None
        try:
            if target.exists():
                old = staging_folder(target, REPLACED, tag)
                os.rename(target, old)
            os.rename(ready, target)
        except BaseException:
            if old is not None and not os.path.lexists(target):
                os.rename(old, target)  # put the old database back
            shutil.rmtree(ready, ignore_errors=True)
            raise
        fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        fsync_path(target.parent)
    return target


def _fill(
    staging: Path, backup: Backup, sources: dict[str, Path], progress: Progress | None
) -> None:
    """Copy the backup's segments and manifest into `staging`, every file fsynced."""
    total = sum(sources[name].stat().st_size for name in backup.segments)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        report(progress, done, total)

    report(progress, 0, total)
    for name in backup.segments:
        _copy(sources[name], staging / name, advance)
    shutil.copyfile(backup.path / MANIFEST, staging / MANIFEST)
    fsync_path(staging / MANIFEST)
    fsync_path(staging / "LOCK")
    fsync_path(staging)
