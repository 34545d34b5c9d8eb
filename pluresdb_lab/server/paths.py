"""Which files a REST request may name: inside the database folder, or a folder the operator allows.

A token holder must not read, write or replace files outside of those: a path given
over REST is made absolute (relative to the database folder, never to the server's
working directory), `..` and symlinks are resolved, and only then is it compared with
the allowed folders. Inside the database folder, the database's own files (manifest,
segments, WAL, identity key, indexes, snapshots) stay off limits: overwriting them
would corrupt the database, and importing the identity key would leak it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from pluresdb_lab._api import backups_beside
from pluresdb_lab.errors import InvalidDataError, PathNotAllowedError

# Names at the top of a database folder that belong to the engine or the mesh.
OWN_FILES = (
    "LOCK",
    "MANIFEST.json*",
    "identity.key*",
    "seg-*",
    "wal-*",
    "indexes",
    "indexes.json*",
    "snapshots",
    "*.tmp",
)
HOW_TO_ALLOW = (
    "the server's operator can allow a folder with `pluresdb serve --allow-path DIR` "
    "or, on a Jupyter server, `c.PluresDBApp.allowed_paths = [DIR]`"
)


@dataclass(frozen=True, slots=True)
class PathPolicy:
    """The folders REST paths must resolve into (each already resolved)."""

    data: Path | None  # the database folder; None for an in-memory database
    allowed: tuple[Path, ...]

    @classmethod
    def of(cls, data: str | os.PathLike[str] | None, allowed: Iterable[str]) -> PathPolicy:
        """The policy of a database in `data` (None: in memory): its folder, its backups
        folder `<folder>-backups` and restore folders `<folder>-restored-*` beside it
        (where the Storage panel backs up and restores by default), and the operator's
        `allowed` folders."""
        folders = [Path(a).resolve() for a in allowed]
        if data is not None:
            folders.append(backups_beside(Path(data).resolve()))
        return cls(None if data is None else Path(data).resolve(), tuple(folders))

    def check(self, raw: str, what: str) -> Path:
        """`raw` as a resolved absolute path, or PathNotAllowedError naming it.

        Args:
            raw: the path as the request gave it; relative to the database folder.
            what: what the path is for ("export path", "backup folder"), for the message.
        """
        given = Path(raw)
        if not given.is_absolute():
            if self.data is None:
                raise PathNotAllowedError(
                    f"the {what} {raw!r} is relative, and this database is in memory (no "
                    f"folder to be relative to): give an absolute path inside {self._where()}"
                )
            given = self.data / given
        try:
            resolved = given.resolve()
        except (OSError, ValueError) as exc:  # a NUL byte, a symlink loop
            raise InvalidDataError(f"the {what} {raw!r} is not a usable path: {exc}") from None
        if self.data is not None and resolved.is_relative_to(self.data):
            inside = resolved.relative_to(self.data).parts
            if not inside or any(fnmatch(inside[0], pattern) for pattern in OWN_FILES):
                raise PathNotAllowedError(
                    f"the {what} {raw!r} is the database's own file or folder ({resolved}); "
                    "choose another name"
                )
            return resolved
        if any(resolved.is_relative_to(folder) for folder in self.allowed):
            return resolved
        if self.data is not None and _restored_beside(self.data, resolved):
            return resolved
        raise PathNotAllowedError(
            f"the {what} {raw!r} resolves to {resolved}, outside {self._where()}; " + HOW_TO_ALLOW
        )

    def _where(self) -> str:
        folders = ([] if self.data is None else [f"the database folder {self.data}"]) + [
            f"the allowed folder {folder}" for folder in self.allowed
        ]
        return ", ".join(folders) if folders else "any allowed folder (none is allowed)"


def _restored_beside(data: Path, path: Path) -> bool:
    """Whether `path` is in a `<data>-restored-*` folder next to the database folder."""
    if not path.is_relative_to(data.parent) or path == data.parent:
        return False
    return path.relative_to(data.parent).parts[0].startswith(f"{data.name}-restored-")
