"""Storage: statistics, compaction, flush, backups, import and export (server-side paths).

Every path in a request goes through `ApiHandler.server_path` (see `paths`): inside the
database folder or a folder the operator allows, else 403.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from pluresdb_lab.server.api import ApiHandler
from pluresdb_lab.server.errors import bad_request


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{key!r} is a non-empty string")
    return value


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _text(body, key)


class StatsHandler(ApiHandler):
    """GET: `storage_stats()`."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.db.storage_stats))


class CompactHandler(ApiHandler):
    """POST {"level": n|null}: compact now."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.call(self.db.compact, self.json_object().get("level")))


class FlushHandler(ApiHandler):
    """POST: write the memtable into a segment."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.call(self.db.flush)
        self.reply({})


class BackupsHandler(ApiHandler):
    """GET ?dest=: backups in a folder. POST {"dest", "incremental"}: back up now."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        dest = self.server_path(self.required_arg("dest"), "backup folder")
        self.reply({"backups": await self.call(self.db.backups, dest)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        dest = self.server_path(_text(body, "dest"), "backup folder")
        incremental = bool(body.get("incremental", False))
        self.reply(await self.call(self.db.backup, dest, incremental=incremental))


class VerifyBackupHandler(ApiHandler):
    """POST {"path"}: check every checksum of a backup."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        path = self.server_path(_text(self.json_object(), "path"), "backup")
        self.reply(await self.call(self.db.verify_backup, path))


class RestoreBackupHandler(ApiHandler):
    """POST {"path", "into", "overwrite"}: restore a backup into another folder (never
    the served database's)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        path = self.server_path(_text(body, "path"), "backup")
        into = self.server_path(_text(body, "into"), "restore folder")
        where = await self.call(
            self.db.restore_backup, path, into, overwrite=bool(body.get("overwrite", False))
        )
        self.reply({"path": str(where)})


class ImportHandler(ApiHandler):
    """POST {"path", "format", "type", "id_field", "mapping"}: import a file, all or nothing."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        mapping = body.get("mapping")
        if mapping is not None and not isinstance(mapping, dict):
            raise bad_request("'mapping' is an object {source column: field name or null}")
        path = self.server_path(_text(body, "path"), "import file")
        imported = await self.call(
            self.db.import_file,
            path,
            _optional_text(body, "format"),
            type=body.get("type"),
            id_field=body.get("id_field"),
            mapping=mapping,
        )
        self.reply({"imported": imported})


class ExportHandler(ApiHandler):
    """POST {"path", "format", "type", "query"}: export nodes or a SQL result to a file."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_object()
        path = self.server_path(_text(body, "path"), "export file")
        exported = await self.call(
            self.db.export,
            path,
            _optional_text(body, "format"),
            type=body.get("type"),
            query=_optional_text(body, "query"),
        )
        self.reply({"exported": exported})
